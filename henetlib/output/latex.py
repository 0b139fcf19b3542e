"""LaTeX for print: booktabs tables that pdflatex compiles (escaped text, true minus signs, decimals aligned,
two-line headers, ``table*`` when wide, column groups when wider than a page, ``longtable`` when long),
figure environments, a driver document, and :func:`check_latex`, which compiles them."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from henetlib.output.prose import readable
from henetlib.output.style import ONE_COLUMN, use_style
from henetlib.system.files import figures_dir

# ---------------------------------------------------------------------------------------------------------
# LaTeX

LATEX_PACKAGES = ("booktabs", "longtable", "array", "amsmath", "amssymb", "graphicx", "xcolor", "siunitx",
                  "caption")
TEXT_WIDTH_PT = 483.0  # what a table may take: the driver's text (letter paper, 2 cm margins) less a margin
COLUMN_WIDTH_PT = 240.0  # one column of a two-column paper: narrower tables stay in a one-column float
LONG_ROWS = 30  # more rows than this: longtable, which breaks across pages

_UNICODE = {"±": r"$\pm$", "−": r"$-$", "–": "--", "—": "---", "✓": r"$\checkmark$", "✗": r"$\times$",
            "×": r"$\times$", "≥": r"$\geq$", "≤": r"$\leq$", "→": r"$\rightarrow$", "…": r"\dots{}",
            "·": r"$\cdot$", "°": r"$^\circ$", "ρ": r"$\rho$", "λ": r"$\lambda$", "≈": r"$\approx$",
            "“": "``", "”": "''", "‘": "`", "’": "'"}  # the paper's quoted sentences (claims tables)
_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
            ">": r"\textgreater{}", "|": r"\textbar{}"}
_NUMBER = re.compile(r"^\s*([+\-−]?\d+(?:\.\d+)?)(?:\s*±\s*(\d+(?:\.\d+)?))?\s*$")


def latex_escape(text: object) -> str:
    """Plain text -> LaTeX that pdflatex typesets as written (T1, utf8): specials escaped, Unicode marks and
    symbols mapped to amssymb/math commands, so no character stops the compile or prints wrong."""
    out = []
    for ch in str(text):
        if ch in _SPECIAL:
            out.append(_SPECIAL[ch])
        elif ch in _UNICODE:
            out.append(_UNICODE[ch])
        elif ord(ch) < 128 or ch in "äöüÄÖÜßéèàçñ":
            out.append(ch)
        else:
            out.append("?")  # anything else would stop pdflatex: never silently, so keep it visible
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
    plain = [re.sub(r"\\[a-zA-Z]+|[${}]", "", c) for c in cells]
    chars = max((len(p) for p in plain), default=1)
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


def latex_table(df: pd.DataFrame, cap: str, label: str, floatfmt: str = ".2f") -> str:
    """A booktabs table that compiles with :data:`LATEX_PACKAGES`: ``table`` when it fits a column,
    ``table*`` when it needs the text width, column groups (key column repeated) when wider than the text,
    ``longtable`` when longer than :data:`LONG_ROWS` rows."""
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
    # groups of columns that each fit the text width; every group repeats the first (key) column
    groups, cur, width = [], [0], cols[0][3]
    for i in range(1, len(cols)):
        if width + cols[i][3] > TEXT_WIDTH_PT and len(cur) > 1:
            groups.append(cur)
            cur, width = [0], cols[0][3]
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

    # printed lines: a wrapped (p) column takes about one line per 34 characters; a float taller than a page
    # cannot break, so a table that long becomes a longtable too
    wrapped = [i for i, c in enumerate(cols) if c[2].startswith(">")]
    lines = sum(max([1] + [math.ceil(len(re.sub(r"\\[a-zA-Z]+|[${}]", "", cols[i][1][r])) / 34) for i in wrapped])
                for r in range(nrows))
    if nrows > LONG_ROWS or lines > LONG_ROWS + 10:
        parts = []
        for k, g in enumerate(groups):
            spec, head, body = tabular_rows(g)
            more = f" (columns, part {k + 1} of {len(groups)})" if len(groups) > 1 else ""
            parts.append(
                "{\\small\n" + ("\\setlength{\\tabcolsep}{3pt}\n" if tight else "") + "\\begin{longtable}{" + spec + "}\n"
                f"\\caption{{{cap_tex}{more}}}\\label{{{lab}{'' if k == 0 else f'-{k + 1}'}}}\\\\\n"
                f"\\toprule\n{head}\n\\midrule\n\\endfirsthead\n"
                f"\\multicolumn{{{len(g)}}}{{l}}{{\\footnotesize continued from the previous page}}\\\\\n"
                f"\\toprule\n{head}\n\\midrule\n\\endhead\n\\bottomrule\n\\endlastfoot\n{body}\n"
                "\\end{longtable}\n}\n")
        return "".join(parts)
    env = "table" if widest <= COLUMN_WIDTH_PT else "table*"
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
    of ``<name>.pdf`` (one float per page of a figure in parts), and the caption."""
    env = "figure" if width_in <= ONE_COLUMN + 0.2 else "figure*"
    size = "" if env == "figure" else "[width=\\linewidth]"
    out = []
    for k in range(parts):
        opts = size if parts == 1 else (f"[page={k + 1},width=\\linewidth]" if size else f"[page={k + 1}]")
        more = f" (part {k + 1} of {parts})" if parts > 1 else ""
        lab = f"fig:{name}" + (f"-{k + 1}" if k else "")
        out.append(f"\\begin{{{env}}}[tbp]\n\\centering\n\\includegraphics{opts}{{{name}}}\n"
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


def check_latex(folder: Path | None = None, names: Sequence[str] | None = None, tolerance_pt: float = 3.0,
                workdir: Path | None = None) -> dict:
    """Compile every ``<folder>/*.tex`` (or ``names``) with pdflatex from :func:`latex_driver`. Returns
    {"ok": compiled, no error and no box wider than the text by more than ``tolerance_pt``, "overfull": [pt],
    "log": the log's tail}. Raises FileNotFoundError without pdflatex."""
    if shutil.which("pdflatex") is None:
        raise FileNotFoundError("pdflatex is not installed (apt-get install texlive-latex-recommended texlive-science).")
    folder = Path(folder or figures_dir()).resolve()
    names = list(names) if names is not None else sorted(p.stem for p in folder.glob("*.tex"))
    work = Path(workdir or tempfile.mkdtemp(prefix="henet-latex-"))
    for n in names:  # \input finds the snippets and \includegraphics the PDFs through these paths
        shutil.copy(folder / f"{n}.tex", work / f"{n}.tex")
    (work / "driver.tex").write_text(latex_driver(names, folder), encoding="utf-8")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "driver.tex"], cwd=work,
                          capture_output=True, text=True, timeout=300)
    log = (work / "driver.log").read_text(errors="replace") if (work / "driver.log").exists() else proc.stdout
    over = [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]
    ok = proc.returncode == 0 and all(x <= tolerance_pt for x in over) and "Missing character" not in log
    return {"ok": ok, "overfull": over, "log": log[-3000:], "pdf": work / "driver.pdf"}
