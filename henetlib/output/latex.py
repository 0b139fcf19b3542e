"""LaTeX for print: booktabs tables that pdflatex compiles (escaped text, true minus signs, decimals aligned,
two-line headers, ``table*`` when wide, column groups when wider than a page, ``longtable`` when long or taller
than a page), figure environments that fit a page with their caption, a driver document, and
:func:`check_latex`, which compiles them and fails on anything that does not fit."""

from __future__ import annotations

import logging
import math
import re
import shutil
import subprocess
import tempfile
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from henetlib.output.formats import for_reader
from henetlib.output.prose import readable
from henetlib.output.style import ONE_COLUMN, use_style
from henetlib.system.files import figures_dir

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------------------
# LaTeX

LATEX_PACKAGES = ("booktabs", "longtable", "array", "amsmath", "amssymb", "graphicx", "xcolor", "siunitx",
                  "caption")
TEXT_WIDTH_PT = 483.0  # what a table may take: the driver's text (letter paper, 2 cm margins) less a margin
COLUMN_WIDTH_PT = 240.0  # one column of a two-column paper: narrower tables stay in a one-column float
# what a float (body and caption) may take: below the driver's 678 pt text height and a typical paper's 640 pt,
# so a float that fits here fits there too
FLOAT_HEIGHT_PT = 600.0
LONG_ROWS = 30  # more rows than this: longtable, which breaks across pages
ROW_PT, CAPTION_LINE_PT = 11.0, 12.0  # \small rows; a caption's lines at \normalsize
CHARS_PER_PT = 1 / 5.1  # characters per pt of line at \normalsize (a caption's length -> its lines)
UNMAPPED = r"\fbox{?}"  # what an unknown character prints as: visible in print, and found by check_latex

_UNICODE = {"±": r"$\pm$", "−": r"$-$", "–": "--", "—": "---", "✓": r"$\checkmark$", "✗": r"$\times$",
            "⊘": r"$\oslash$", "◇": r"$\diamond$",
            "×": r"$\times$", "≥": r"$\geq$", "≤": r"$\leq$", "→": r"$\rightarrow$", "…": r"\dots{}",
            "·": r"$\cdot$", "°": r"$^\circ$", "ρ": r"$\rho$", "λ": r"$\lambda$", "≈": r"$\approx$",
            "“": "``", "”": "''", "‘": "`", "’": "'", "„": ",,", "«": "<<", "»": ">>",
            "\u00a0": "~", "\u2009": r"\,", "\u202f": r"\,"}  # the paper's quoted sentences (claims tables)
_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
            ">": r"\textgreater{}", "|": r"\textbar{}"}
_NUMBER = re.compile(r"^\s*([+\-−]?\d+(?:\.\d+)?)(?:\s*±\s*(\d+(?:\.\d+)?))?\s*$")


def latex_escape(text: object) -> str:
    """Plain text -> LaTeX that pdflatex typesets as written (T1, utf8): specials escaped, Unicode marks and
    symbols mapped to amssymb/math commands, accented letters kept or reduced to their base letter. A
    character with no mapping prints as a boxed "?" (:data:`UNMAPPED`), which :func:`check_latex` reports:
    never silently, and never a bare "?" that reads as the text's own."""
    out = []
    for ch in str(text):
        if ch in _SPECIAL:
            out.append(_SPECIAL[ch])
        elif ch in _UNICODE:
            out.append(_UNICODE[ch])
        elif ord(ch) < 128 or ch in "äöüÄÖÜßéèàçñ":
            out.append(ch)
        else:
            base = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            if base:
                out.append(latex_escape(base))
            else:
                logger.warning("LaTeX: no mapping for %r (U+%04X); it prints as a boxed '?'", ch, ord(ch))
                out.append(UNMAPPED)
    return "".join(out)


def latex_number(text: str) -> str | None:
    """'-0.97 ± 4.98' -> '$-0.97 \\pm 4.98$' (a true minus); None when ``text`` is not a number."""
    m = _NUMBER.match(str(text))
    if not m:
        return None
    v = m.group(1).replace("−", "-")
    return f"${v}" + (rf" \pm {m.group(2)}" if m.group(2) else "") + "$"


def latex_cell(v: object, floatfmt: str = ".2f") -> str:
    """One cell: numbers in one format with a true minus, '--' where missing, text escaped."""
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "--"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"${int(v)}$"
    if isinstance(v, (float, np.floating)):
        return f"${format(float(v), floatfmt)}$"
    return latex_number(str(v)) or latex_escape(v)


def _header(col: str) -> str:
    """A header cell; "X (y)" becomes two lines, which keeps numeric columns narrow."""
    m = re.match(r"^(.*?)\s+(\(.*\))$", col)
    if not m:
        return latex_escape(col)
    return (r"\begin{tabular}[b]{@{}c@{}}" + latex_escape(m.group(1)) + r"\\" + latex_escape(m.group(2))
            + r"\end{tabular}")


def _plain(cell: str) -> str:
    """A cell's printed characters, roughly: the LaTeX commands and braces dropped."""
    return re.sub(r"\\[a-zA-Z]+|[${}]", "", cell)


def _column(series: pd.Series, floatfmt: str) -> tuple[list[str], str, float]:
    """(cells, alignment, estimated width in pt at \\small) of one column."""
    integral = pd.api.types.is_float_dtype(series) and bool(
        np.all([(not np.isfinite(x)) or float(x).is_integer() for x in series]))
    cells = []
    for v in series:
        if integral and isinstance(v, (float, np.floating)) and np.isfinite(v):
            cells.append(f"${int(v)}$")
        else:
            cells.append(latex_cell(v, floatfmt))
    numeric = all(c == "--" or c.startswith("$") and c.endswith("$") and not c.startswith(r"$\checkmark")
                  for c in cells)
    chars = max((len(_plain(c)) for c in cells), default=1)
    if not numeric and chars > 34:
        return cells, r">{\raggedright\arraybackslash}p{%.0fpt}" % (34 * 4.6), 34 * 4.6 + 12
    return cells, "r" if numeric else "l", chars * 4.6 + 12


def _header_width(col: str) -> float:
    m = re.match(r"^(.*?)\s+(\(.*\))$", col)
    parts = [m.group(1), m.group(2)] if m else [col]
    return max(len(p) for p in parts) * 4.6 + 12


def _blank_repeats(cells: list[str]) -> list[str]:
    """A first column that repeats its value on consecutive rows prints it once (booktabs grouping)."""
    return [c if i == 0 or c != cells[i - 1] else "" for i, c in enumerate(cells)]


def _key_columns(df: pd.DataFrame, widths: list[float]) -> tuple[int, bool]:
    """(k, unique): the leading columns that name a row, the fewest (at most 3, at most 40% of the text width)
    whose values together differ on every row, and whether they do. A table split into column groups repeats
    them in every group, so each group's rows can be read on their own (Fig. 5's "trained with" and "level")."""
    best = 1
    for k in range(1, min(3, df.shape[1] - 1) + 1):
        if sum(widths[:k]) > 0.4 * TEXT_WIDTH_PT:
            break
        best = k
        if not df.iloc[:, :k].astype(str).duplicated().any():
            return k, True
    return best, False


def caption_height(cap: str, width_pt: float) -> float:
    """Estimated height (pt) of a caption set in ``width_pt``, with the skip above it."""
    lines = math.ceil(len(_plain(latex_escape(cap))) / max(1.0, width_pt * CHARS_PER_PT))
    return 10.0 + CAPTION_LINE_PT * max(1, lines)


def latex_table(df: pd.DataFrame, cap: str, label: str, floatfmt: str = ".2f") -> str:
    """A booktabs table that compiles with :data:`LATEX_PACKAGES`: ``table`` when it fits a column,
    ``table*`` when it needs the text width, column groups (the key columns repeated) when wider than the
    text, ``longtable`` (which breaks across pages) when longer than :data:`LONG_ROWS` rows or when its
    groups, wrapped cells and caption would make a float taller than :data:`FLOAT_HEIGHT_PT`."""
    df = for_reader(df)
    df = df.rename(columns={c: readable(str(c)) for c in df.columns})
    cols = []
    for i, c in enumerate(df.columns):
        cells, align, w = _column(df[c], floatfmt)
        if i == 0:
            cells = _blank_repeats(cells)
        cols.append((c, cells, align, max(w, _header_width(c))))
    # a little too wide: narrower column gaps (3 pt a side instead of 6) before splitting into groups
    tight = TEXT_WIDTH_PT < sum(c[3] for c in cols) <= TEXT_WIDTH_PT + 6 * len(cols)
    if tight:
        cols = [(c, cells, align, w - 6) for c, cells, align, w in cols]
    # groups of columns that each fit the text width; every group repeats the key columns, led by a row
    # number when no narrow key names every row (the claims' rows), so a row is found again in every group
    nkey = 1
    if sum(c[3] for c in cols) > TEXT_WIDTH_PT:
        nkey, unique = _key_columns(df, [c[3] for c in cols])
        if not unique:
            cols.insert(0, ("row", [f"${i + 1}$" for i in range(len(df))], "r", 3 * 4.6 + 12))
            nkey = 2
    key_w = sum(c[3] for c in cols[:nkey])
    groups, cur, width = [], list(range(nkey)), key_w
    for i in range(nkey, len(cols)):
        if width + cols[i][3] > TEXT_WIDTH_PT and len(cur) > nkey:
            groups.append(cur)
            cur, width = list(range(nkey)), key_w
        cur.append(i)
        width += cols[i][3]
    groups.append(cur)
    widest = max(sum(cols[i][3] for i in g) for g in groups)
    cap_tex, lab = latex_escape(cap), f"tab:{label}"
    nrows = len(df)

    def tabular_rows(g: list[int]) -> tuple[str, str, str]:
        spec = "".join(cols[i][2] for i in g)
        head = " & ".join(_header(cols[i][0]) for i in g) + r" \\"
        body = "\n".join(" & ".join(cols[i][1][r] for i in g) + r" \\" for r in range(nrows))
        return spec, head, body

    def height(g: list[int]) -> float:
        """One group's printed height: a wrapped (p) cell takes a line per 34 characters; headers "X (y)" two."""
        wrapped = [i for i in g if cols[i][2].startswith(">")]
        lines = sum(max([1] + [math.ceil(len(_plain(cols[i][1][r])) / 34) for i in wrapped]) for r in range(nrows))
        head = 2 if any(re.match(r"^.*?\s+\(.*\)$", cols[i][0]) for i in g) else 1
        return (lines + head) * ROW_PT + 12.0  # the three booktabs rules and their gaps

    env = "table" if widest <= COLUMN_WIDTH_PT else "table*"
    # a float cannot break: its groups stack, so their heights add up, with the caption's
    tall = (sum(height(g) for g in groups) + 8.0 * (len(groups) - 1)
            + caption_height(cap, COLUMN_WIDTH_PT if env == "table" else TEXT_WIDTH_PT))
    if nrows > LONG_ROWS or tall > FLOAT_HEIGHT_PT:
        parts = []
        for k, g in enumerate(groups):
            spec, head, body = tabular_rows(g)
            if k == 0:
                more = f" (columns, part 1 of {len(groups)})" if len(groups) > 1 else ""
                title = f"\\caption{{{cap_tex}{more}}}\\label{{{lab}}}"
            else:  # the other column groups point back to the first rather than repeat its caption
                title = (f"\\caption{{Table~\\ref{{{lab}}}, continued: columns, part {k + 1} of {len(groups)}.}}"
                         f"\\label{{{lab}-{k + 1}}}")
            parts.append(
                "{\\small\n" + ("\\setlength{\\tabcolsep}{3pt}\n" if tight else "") + "\\begin{longtable}{" + spec + "}\n"
                f"{title}\\\\\n"
                f"\\toprule\n{head}\n\\midrule\n\\endfirsthead\n"
                f"\\multicolumn{{{len(g)}}}{{l}}{{\\footnotesize continued from the previous page}}\\\\\n"
                f"\\toprule\n{head}\n\\midrule\n\\endhead\n\\bottomrule\n\\endlastfoot\n{body}\n"
                "\\end{longtable}\n}\n")
        return "".join(parts)
    blocks = []
    for g in groups:
        spec, head, body = tabular_rows(g)
        blocks.append(f"\\begin{{tabular}}{{{spec}}}\n\\toprule\n{head}\n\\midrule\n{body}\n\\bottomrule\n"
                      "\\end{tabular}\n")
    gap = "\\setlength{\\tabcolsep}{3pt}\n" if tight else ""
    return (f"\\begin{{{env}}}[tbp]\n\\centering\n\\small\n{gap}" + "\\par\\medskip\n".join(blocks)
            + f"\\caption{{{cap_tex}}}\n\\label{{{lab}}}\n\\end{{{env}}}\n")


def figure_tex(name: str, cap: str, width_in: float, parts: int = 1) -> str:
    """The ``.tex`` of a saved figure: ``figure`` (one column) or ``figure*`` (two), ``\\includegraphics``
    of ``<name>.pdf`` (one float per page of a figure in parts), and the caption. The graphic keeps its
    width unless it and its caption would be taller than :data:`FLOAT_HEIGHT_PT`: then it shrinks to fit
    (``keepaspectratio``), so no float runs off the page."""
    one = width_in <= ONE_COLUMN + 0.2
    env = "figure" if one else "figure*"
    # a one-column figure keeps its printed size; a two-column one takes the text width
    width = f"{width_in * 72.27:.1f}pt" if one else "\\linewidth"
    out = []
    for k in range(parts):
        more = f" (part {k + 1} of {parts})" if parts > 1 else ""
        # the caption is as wide as the float: a column of a two-column paper for "figure"
        room = FLOAT_HEIGHT_PT - caption_height(cap + more, COLUMN_WIDTH_PT if one else TEXT_WIDTH_PT)
        opts = (f"page={k + 1}," if parts > 1 else "") + f"width={width},height={room:.0f}pt,keepaspectratio"
        lab = f"fig:{name}" + (f"-{k + 1}" if k else "")
        out.append(f"\\begin{{{env}}}[tbp]\n\\centering\n\\includegraphics[{opts}]{{{name}}}\n"
                   f"\\caption{{{latex_escape(cap)}{more}}}\n\\label{{{lab}}}\n\\end{{{env}}}\n")
    return "".join(out)


def latex_driver(names: Sequence[str], graphics_dir: str | Path = ".") -> str:
    """A plain article that ``\\input``s ``<name>.tex`` for every name: what the test compiles, and a
    starting point for a paper (T1, utf8, 2 cm margins, only :data:`LATEX_PACKAGES`)."""
    gdir = str(graphics_dir).rstrip("/") + "/"
    body = "\n\\clearpage\n".join(f"\\input{{{n}}}" for n in names)
    return ("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage[utf8]{inputenc}\n"
            # 2 cm margins by hand: geometry is not among the packages a paper's class may allow
            "\\setlength{\\textwidth}{\\dimexpr\\paperwidth-4cm}\\setlength{\\textheight}{\\dimexpr\\paperheight-4cm}\n"
            "\\setlength{\\oddsidemargin}{\\dimexpr2cm-1in}\\setlength{\\evensidemargin}{\\oddsidemargin}\n"
            "\\setlength{\\topmargin}{\\dimexpr2cm-1in-\\headheight-\\headsep}\n"
            + "".join(f"\\usepackage{{{p}}}\n" for p in LATEX_PACKAGES)
            + f"\\graphicspath{{{{{gdir}}}}}\n\\begin{{document}}\n{body}\n\\end{{document}}\n")


use_style()  # every figure drawn after importing this module uses the project style

# what check_latex reads in the log and in the sources
_OVERFULL_H = re.compile(r"Overfull \\hbox \(([\d.]+)pt too wide\)")
_OVERFULL_V = re.compile(r"Overfull \\vbox \(([\d.]+)pt too high\)")
_FLOAT_TOO_LARGE = re.compile(r"Float too large for page by ([\d.]+)pt")
_RERUN = re.compile(r"Rerun LaTeX|Rerun to get|Table widths have changed|Column widths have changed")
# a "?" straight before a word, as in ?the network?: where an old escape put a quotation mark it could not map
_QUOTE_AS_QMARK = re.compile(r"(?<![\w\\}?])\?(?=[A-Za-z])")


def source_problems(tex: str) -> list[str]:
    """What a written ``.tex`` gets wrong before it is compiled: characters printed as a boxed "?"
    (:data:`UNMAPPED`), and quotation marks that an escape turned into "?"."""
    out = []
    if UNMAPPED in tex:
        out.append(f"{tex.count(UNMAPPED)} character(s) with no LaTeX mapping print as a boxed '?'")
    hits = _QUOTE_AS_QMARK.findall(tex)
    if hits:
        at = _QUOTE_AS_QMARK.search(tex).start()
        out.append(f"{len(hits)} '?' where a quotation mark was (first: ...{tex[max(0, at - 20):at + 20]!r}...)")
    return out


def check_latex(folder: Path | None = None, names: Sequence[str] | None = None, tolerance_pt: float = 3.0,
                workdir: Path | None = None, max_passes: int = 3) -> dict:
    """Compile every ``<folder>/*.tex`` (or ``names``) with pdflatex from :func:`latex_driver`: at least two
    passes (a ``longtable`` aligns its columns on the second), more while the log asks for a rerun, up to
    ``max_passes``. Returns {"ok", "problems": what failed, in words, "overfull": [pt wider than the text],
    "log": the log's tail, "pdf", "passes"}. Not ok: a compile error, a box wider or taller than the page by
    more than ``tolerance_pt``, a float too large for its page (whose end would be lost), a missing
    character, or a quotation mark printed as "?" (:func:`source_problems`). Raises FileNotFoundError without
    pdflatex."""
    if shutil.which("pdflatex") is None:
        raise FileNotFoundError("pdflatex is not installed (apt-get install texlive-latex-recommended texlive-science).")
    folder = Path(folder or figures_dir()).resolve()
    names = list(names) if names is not None else sorted(p.stem for p in folder.glob("*.tex"))
    work = Path(workdir or tempfile.mkdtemp(prefix="henet-latex-"))
    work.mkdir(parents=True, exist_ok=True)
    problems = []
    for n in names:  # \input finds the snippets and \includegraphics the PDFs through these paths
        shutil.copy(folder / f"{n}.tex", work / f"{n}.tex")
        problems += [f"{n}.tex: {p}" for p in source_problems((folder / f"{n}.tex").read_text(encoding="utf-8"))]
    (work / "driver.tex").write_text(latex_driver(names, folder), encoding="utf-8")
    log, passes, proc = "", 0, None
    while passes < max(2, max_passes):
        passes += 1
        proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "driver.tex"], cwd=work,
                              capture_output=True, text=True, timeout=300)
        log = (work / "driver.log").read_text(errors="replace") if (work / "driver.log").exists() else proc.stdout
        if proc.returncode != 0 or (passes >= 2 and not _RERUN.search(log)):
            break
    if proc.returncode != 0:
        problems.append(f"pdflatex failed (exit {proc.returncode})")
    over = [float(x) for x in _OVERFULL_H.findall(log)]
    problems += [f"a box {x:.1f} pt wider than the text" for x in over if x > tolerance_pt]
    problems += [f"a box {float(x):.1f} pt taller than the page" for x in _OVERFULL_V.findall(log)
                 if float(x) > tolerance_pt]
    problems += [f"a float {float(x):.1f} pt too large for its page (its end is lost)"
                 for x in _FLOAT_TOO_LARGE.findall(log)]
    if "Missing character" in log:
        problems.append("a character missing from the font")
    if passes >= max_passes and _RERUN.search(log):
        problems.append(f"still asks for a rerun after {passes} passes")
    return {"ok": not problems, "problems": problems, "overfull": over, "log": log[-3000:],
            "pdf": work / "driver.pdf", "passes": passes}
