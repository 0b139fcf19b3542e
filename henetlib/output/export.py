"""Writing tables and figures atomically: ``<name>.md`` and ``.tex`` for a table; ``.pdf`` (one page per part
of a figure too tall for a page), ``.png`` at 300 dpi, ``.caption.txt`` and ``.tex`` for a figure; and where
a notebook kernel writes them (:func:`choose_figures_dir`)."""

from __future__ import annotations

import io
import logging
import os
import warnings
from pathlib import Path

import pandas as pd

from henetlib.output.formats import for_reader
from henetlib.output.latex import figure_tex, latex_table
from henetlib.output.prose import readable, with_lead
from henetlib.output.style import DPI, MAX_HEIGHT, MAX_WIDTH
from henetlib.system import files
from henetlib.system.files import atomic_write_bytes, atomic_write_text, figures_dir

logger = logging.getLogger(__name__)

FIGURES_DIR_ENV = "HENET_FIGURES_DIR"  # what figures_dir() reads
FIGURES_ENV = "HENET_FIGURES"  # "paper": a notebook kernel writes the study's own figures/
INTERACTIVE = "interactive"  # figures/interactive/: a notebook kernel's default, git-ignored
_chosen: str | None = None  # the folder choose_figures_dir() put in FIGURES_DIR_ENV (not the user's own)


def choose_figures_dir(regime: str = "default") -> Path:
    """Where a notebook kernel writes its tables and figures (:func:`henetlib.notebook.setup` asks each time
    its cell runs): a folder ``HENET_FIGURES_DIR`` already names, as it is (``make reproduce`` names the
    study's ``figures/`` or a regime's folder for its kernels; the tests, temp folders); else the study's
    ``figures/`` with ``HENET_FIGURES=paper`` (``figures/<regime>/`` for a regime other than the profile's
    default, as make reproduce writes it); else ``figures/interactive/``, git-ignored, so that exploring in
    JupyterLab never overwrites the committed figures. Sets ``HENET_FIGURES_DIR``, so that every writer
    follows (they all read :func:`figures_dir`), and logs where."""
    global _chosen
    named = os.environ.get(FIGURES_DIR_ENV)
    if named and named != _chosen:
        folder, why = Path(named), FIGURES_DIR_ENV
    else:
        want = os.environ.get(FIGURES_ENV, "").strip().lower()
        if want not in ("", INTERACTIVE, "paper"):
            raise ValueError(f"{FIGURES_ENV}={want!r}: use paper (the study's figures/) or leave it unset "
                             f"(figures/{INTERACTIVE}/).")
        os.environ.pop(FIGURES_DIR_ENV, None)  # this function's earlier choice: decide again
        if want == "paper":
            folder = figures_dir() if regime == "default" else figures_dir() / regime
            why = f"{FIGURES_ENV}=paper: the paper's figures, committed"
        else:
            folder = figures_dir() / INTERACTIVE
            why = f"git-ignored; {FIGURES_ENV}=paper writes the paper's figures/"
        _chosen = os.environ[FIGURES_DIR_ENV] = str(folder)
    shown = folder.relative_to(files.REPO_ROOT) if folder.is_relative_to(files.REPO_ROOT) else folder
    logger.info("Tables and figures go to %s/ (%s).", shown, why)
    return folder


def save_table(df: pd.DataFrame, name: str, cap: str, floatfmt: str = ".2f", folder: Path | None = None) -> Path:
    """Write ``figures/<name>.md`` and ``.tex`` atomically, with readable column names; returns the Markdown
    path. The ``.tex`` is :func:`latex_table`'s."""
    folder = folder or figures_dir()
    if (folder / f"{name}.caption.txt").exists():
        raise ValueError(f"{name} is a figure's name; a table of the same name would overwrite its .tex.")
    # internal names in words, and the caption opened by what the table shows (prose.LEADS)
    df, cap = for_reader(df), with_lead(name, cap)
    df = df.rename(columns={c: readable(str(c)) for c in df.columns})
    md = f"{df.to_markdown(index=False, floatfmt=floatfmt)}\n\n{cap}\n"
    atomic_write_text(folder / f"{name}.md", md)
    atomic_write_text(folder / f"{name}.tex", latex_table(df, cap, name, floatfmt))
    return folder / f"{name}.md"


def save_figure(fig, name: str, cap: str | None = None, folder: Path | None = None) -> list[Path]:
    """Save ``figures/<name>.pdf`` and ``.png`` (300 dpi) at the figure's own size, and the caption beside it
    in ``<name>.caption.txt`` and ``<name>.tex``; nothing is drawn into the image.

    ``fig`` may be a list of figures (a figure in page-sized parts): the PDF gets one page per part, the PNG
    is part 1 and ``<name>-2.png`` ... the others. A figure larger than 7.2 x 9 in is refused.
    """
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    folder = folder or figures_dir()
    if (folder / f"{name}.md").exists():
        raise ValueError(f"{name} is a table's name; a figure of the same name would overwrite its .tex "
                         "(name figures fig_...).")
    figs = list(fig) if isinstance(fig, (list, tuple)) else [fig]
    cap = with_lead(name, cap) if cap else cap  # what the figure shows first (prose.LEADS)
    for f in figs:
        w, h = f.get_size_inches()
        if w > MAX_WIDTH + 1e-6 or h > MAX_HEIGHT + 1e-6:
            raise ValueError(f"{name}: {w:.2f} x {h:.2f} in is larger than a page allows ({MAX_WIDTH} x {MAX_HEIGHT} "
                             "in); split it into parts.")
    with plt.rc_context({"pdf.fonttype": 42, "ps.fonttype": 42}):
        buf = io.BytesIO()
        # no creation date or software stamp: an unchanged figure stays byte-identical between runs
        with PdfPages(buf, metadata={"CreationDate": None, "Producer": None}) as pdf:
            for f in figs:
                pdf.savefig(f)
        atomic_write_bytes(folder / f"{name}.pdf", buf.getvalue())
        paths = [folder / f"{name}.pdf"]
        for k, f in enumerate(figs):
            png = folder / (f"{name}.png" if k == 0 else f"{name}-{k + 1}.png")
            buf = io.BytesIO()
            f.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
            atomic_write_bytes(png, buf.getvalue())
            paths.append(png)
    for stale in folder.glob(f"{name}-[0-9]*.png"):  # parts of an earlier, longer version
        if stale not in paths:
            stale.unlink()
    if cap:
        atomic_write_text(folder / f"{name}.caption.txt", cap + "\n")
        atomic_write_text(folder / f"{name}.tex", figure_tex(name, cap, float(figs[0].get_size_inches()[0]),
                                                             len(figs)))
    else:
        warnings.warn(f"{name}: saved without a caption; a paper figure needs one.", stacklevel=2)
    return paths
