"""Tables and figures written atomically: a table's .md and .tex, a figure's .pdf, .png, caption beside it
(never drawn into it), parts of a tall figure as pages, names a table and a figure never share, and where a
notebook kernel writes them."""

import logging
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from PIL import Image

from henetlib.output import export, style
from henetlib.system import files
from henetlib.system.files import REPO_ROOT


def test_save_figure_puts_caption_beside_not_inside(tmp_path):
    fig, ax = style.figure("two", 2.0)
    ax.plot([0, 1], [0, 1])
    n_texts = len(fig.texts)
    export.save_figure(fig, "f", "Our caption.", folder=tmp_path)
    assert len(fig.texts) == n_texts  # nothing drawn into the image
    assert (tmp_path / "f.caption.txt").read_text().strip() == "Our caption."
    tex = (tmp_path / "f.tex").read_text()
    # the text width, shrunk (keepaspectratio) only if it and its caption would not fit a page
    assert "\\begin{figure*}" in tex and "\\includegraphics[width=\\linewidth," in tex and "keepaspectratio]{f}" in tex
    assert "Our caption." in tex
    w, h = Image.open(tmp_path / "f.png").size
    assert (w, h) == (round(7.0 * style.DPI), round(2.0 * style.DPI))
    big = plt.figure(figsize=(11, 4))
    with pytest.raises(ValueError, match="larger than a page"):
        export.save_figure(big, "g", "c", folder=tmp_path)
    plt.close("all")


def test_a_figure_and_a_table_never_share_a_name(tmp_path):
    export.save_table(pd.DataFrame({"a": [1.0]}), "t", "c", folder=tmp_path)
    fig, _ = style.figure("one", 1.0)
    with pytest.raises(ValueError, match="table's name"):
        export.save_figure(fig, "t", "c", folder=tmp_path)
    export.save_figure(fig, "f", "c", folder=tmp_path)
    with pytest.raises(ValueError, match="figure's name"):
        export.save_table(pd.DataFrame({"a": [1.0]}), "f", "c", folder=tmp_path)
    plt.close("all")


def test_save_table_writes_markdown_and_latex_with_readable_names(tmp_path):
    df = pd.DataFrame({"trained_with": ["RE"], "R1_occluded": [12.345]})
    md = export.save_table(df, "t", "The caption.", folder=tmp_path)
    text = md.read_text()
    assert md == tmp_path / "t.md" and "trained with" in text and "R1 (occluded queries)" in text
    assert "12.35" in text and text.rstrip().endswith("The caption.")
    tex = (tmp_path / "t.tex").read_text()
    assert "The caption." in tex and "\\label{" in tex and "12.35" in tex


def test_a_figure_in_parts_is_pages_and_pngs_and_stale_parts_go(tmp_path):
    parts = [style.figure("one", 1.0)[0] for _ in range(3)]
    paths = export.save_figure(parts, "f", "c", folder=tmp_path)
    assert [p.name for p in paths] == ["f.pdf", "f.png", "f-2.png", "f-3.png"]
    assert len(re.findall(rb"/Type\s*/Page(?!s)", (tmp_path / "f.pdf").read_bytes())) == 3  # one page per part
    export.save_figure(parts[:2], "f", "c", folder=tmp_path)  # a shorter version: its third part is gone
    assert not (tmp_path / "f-3.png").exists() and (tmp_path / "f-2.png").exists()
    plt.close("all")


def test_an_unchanged_figure_is_byte_identical_and_one_without_caption_warns(tmp_path):
    """No creation date or software stamp: the same figure drawn again writes the same bytes (a rerun of the
    study leaves unchanged figures unchanged in git)."""
    saved = []
    for run in ("1", "2"):
        fig, ax = style.figure("one", 1.0)
        ax.plot([0, 1], [1, 0])
        ax.set_xlabel("R1 (%)")
        export.save_figure(fig, "a", "c", folder=tmp_path / run)
        saved.append([(tmp_path / run / f).read_bytes() for f in ("a.pdf", "a.png")])
    assert saved[0] == saved[1]
    with pytest.warns(UserWarning, match="without a caption"):
        export.save_figure(fig, "b", folder=tmp_path)
    assert not (tmp_path / "b.caption.txt").exists() and (tmp_path / "b.pdf").exists()
    plt.close("all")


# ---------------------------------------------------------------------------------------------------------
# Where a notebook kernel writes: figures/interactive/ unless make reproduce or HENET_FIGURES=paper says figures/


@pytest.fixture
def clone(tmp_path, monkeypatch):
    """A stand-in clone (figures_dir()'s default lies under it) and a fresh kernel's environment: neither
    HENET_FIGURES_DIR nor HENET_FIGURES set, nothing chosen yet."""
    monkeypatch.setattr(files, "REPO_ROOT", tmp_path)
    for env in (export.FIGURES_DIR_ENV, export.FIGURES_ENV):
        monkeypatch.setenv(env, "")  # so that monkeypatch restores the variable after the test
        monkeypatch.delenv(env)
    monkeypatch.setattr(export, "_chosen", None)
    return tmp_path


def _save() -> Path:
    return export.save_table(pd.DataFrame({"a": [1.0]}), "t", "c")


def test_an_interactive_kernel_writes_outside_the_committed_figures(clone, monkeypatch, caplog):
    with caplog.at_level(logging.INFO, logger=export.__name__):
        assert export.choose_figures_dir() == clone / "figures" / "interactive"
    assert caplog.messages == ["Tables and figures go to figures/interactive/ (git-ignored; HENET_FIGURES=paper "
                               "writes the paper's figures/)."]
    assert _save() == clone / "figures" / "interactive" / "t.md"
    assert [p.name for p in (clone / "figures").iterdir()] == ["interactive"]
    assert export.choose_figures_dir() == clone / "figures" / "interactive"  # the setup cell run again
    # the opt-in, set in the same kernel before the setup cell runs again
    monkeypatch.setenv(export.FIGURES_ENV, "paper")
    assert export.choose_figures_dir() == clone / "figures"
    assert _save() == clone / "figures" / "t.md"
    assert export.choose_figures_dir("from-scratch") == clone / "figures" / "from-scratch"  # as reproduce has it
    monkeypatch.setenv(export.FIGURES_ENV, "papers")
    with pytest.raises(ValueError, match="HENET_FIGURES='papers'"):
        export.choose_figures_dir()
    monkeypatch.delenv(export.FIGURES_ENV)
    assert export.choose_figures_dir() == clone / "figures" / "interactive"


def test_make_reproduces_kernels_write_the_paper_figures(clone, monkeypatch):
    """make reproduce names the folder for its kernels (HENET_FIGURES_DIR, the study's figures/ or a regime's
    folder); the kernel keeps it, whatever HENET_FIGURES says."""
    monkeypatch.setenv(export.FIGURES_DIR_ENV, str(clone / "figures"))
    monkeypatch.setenv(export.FIGURES_ENV, "interactive")
    assert export.choose_figures_dir() == clone / "figures"
    assert _save() == clone / "figures" / "t.md"


@pytest.mark.skipif(shutil.which("git") is None or not (REPO_ROOT / ".git").exists(), reason="not a git clone")
def test_the_interactive_folder_is_git_ignored():
    rel = (REPO_ROOT / "figures" / export.INTERACTIVE / "t.md").relative_to(REPO_ROOT)
    assert subprocess.run(["git", "check-ignore", "-q", str(rel)], cwd=REPO_ROOT).returncode == 0
    assert subprocess.run(["git", "check-ignore", "-q", "figures/t.md"], cwd=REPO_ROOT).returncode == 1
