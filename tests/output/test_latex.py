"""Every kind of table and figure ``henetlib.output`` writes compiles with pdflatex from the driver (two passes),
fits its page (no box wider or taller than the page, no float too large for it), prints every quotation mark
as one, and no PDF has a Type 3 font; the check itself catches each of these faults."""

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from henetlib.output import export, formats, latex, plots, style

needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None,
                                    reason="pdflatex is absent (apt-get install texlive-latex-recommended "
                                           "texlive-science); .ci/run installs it")
TOLERANCE_PT = 3.0


def _board(n: int = 69) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    d = rng.normal(0, 3, n)
    verdicts = np.array(["reproduced", "contradicted", "unresolved", "not run"])[rng.integers(0, 4, n)]
    return pd.DataFrame({"claim": [f"T{2 + i // 12}.{i % 6 + 1}" for i in range(n)],
                         "comparison": [f"G1+P4+R16 | CE+OIM+Tri_MSE > P(1,{i % 6 + 1}) & 50% <ok>" for i in range(n)],
                         "metric": ["R1", "mAP"] * (n // 2) + ["ES"] * (n % 2), "ours diff": d,
                         "lo": d - 2, "hi": d + 2, "paper diff": np.where(np.arange(n) % 5 == 0, np.nan, d + 1),
                         "verdict": verdicts})


def _tables() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(1)
    names = ["AlignedReID", "PCB", "HPM", "MGN", "HENet(Base)", "HENet(+RPE)", "HENet(+Losses)", "HENet(+Both)"]
    wide = pd.DataFrame({"Method": names, **{c: rng.uniform(-5, 300, len(names)) for c in (
        "R1 (paper)", "mAP (paper)", "FD (paper)", "FD", "V MiB (paper)", "V MiB", "S fps (paper)", "S fps",
        "img/s @batch", "ES (paper)", "ES (our V, S)", "ES (paper, recomputed)", "extra_column_one",
        "extra_column_two")}})
    occl = pd.DataFrame({"trained_with": ["none", "none", "RE", "RE"], "test_occlusion": ["RE", "RPE(20)"] * 2,
                         "level": [0.0, 0.5, 0.0, 0.5], "R1": [68.9, 35.9, 70.1, 50.2], "R1_lo": [64.0, 31.0, 66.0, 46.0],
                         "R1_hi": [73.0, 40.0, 74.0, 54.0], "mAP": [57.3, 22.9, 58.0, 40.0]})
    return {
        "t_claims": formats.claims_table(_board()),
        "t_wide": wide,
        "t_fig5": formats.fig5_table(occl),
        "t_intervals": formats.with_intervals(pd.DataFrame({"Structure": ["P(1)", "P(1,2)"], "FD": [512, 1536],
                                                           "R1": [29.1, -3.2], "R1_lo": [25.0, -7.0],
                                                           "R1_hi": [33.0, 1.0], "R1 (paper)": [87.92, 90.15]})),
        "t_protocols": formats.protocols_table(pd.DataFrame({"protocol": ["flip-l2", "raw"], "R1": [68.9, 66.3],
                                                            "R10": [92.2, 90.5], "R5": [87.4, 85.2],
                                                            "mAP": [57.3, 52.2], "mINP": [36.2, 29.2]})),
    }


def test_escape_and_numbers():
    assert latex.latex_escape("a_b & 50% #1 > 0 ✓ ✗ ±") == (
        r"a\_b \& 50\% \#1 \textgreater{} 0 $\checkmark$ $\times$ $\pm$")
    # the paper's sentences are quoted with curly quotes: LaTeX's own quotes, never a "?"
    assert latex.latex_escape("“the network’s ‘best’”") == "``the network's `best'''"
    assert latex.latex_number("-0.97 ± 4.98") == r"$-0.97 \pm 4.98$"
    assert latex.latex_number("+2.23") == "$+2.23$"
    assert latex.latex_number("P(1,2)") is None
    assert latex.latex_cell(float("nan")) == "--"
    assert latex.latex_escape("café naïve") == "café naive"  # an accent T1 lacks: its base letter
    assert latex.latex_escape("a ☃ b") == f"a {latex.UNMAPPED} b"  # no mapping: a boxed "?", which the check finds


def test_protocol_columns_in_rank_order_and_readable_names():
    t = _tables()
    assert list(t["t_protocols"].columns) == ["protocol", "R1", "R5", "R10", "mAP", "mINP"]
    tex = latex.latex_table(t["t_fig5"], "cap", "x")
    assert "trained with" in tex and "trained\\_with" not in tex and "R1\\_occluded" not in tex
    # level 0 is one "clean" column, not a row repeated per test occlusion
    assert len(t["t_fig5"]) == 2 and "R1 clean" in t["t_fig5"].columns


def test_table_environments():
    t = _tables()
    assert "\\begin{longtable}" in latex.latex_table(t["t_claims"], "c", "claims")
    wide = latex.latex_table(t["t_wide"], "c", "wide")
    assert "\\begin{table*}" in wide and wide.count("\\begin{tabular}{") >= 2  # split into column groups
    assert "\\begin{table}" in latex.latex_table(t["t_protocols"], "c", "p")
    # few rows of long wrapped text would make a float taller than a page: a longtable too
    prose = pd.DataFrame({"claim": [f"C{i}" for i in range(12)], "sentence": ["word " * 60] * 12})
    assert "\\begin{longtable}" in latex.latex_table(prose, "c", "prose")
    # 30 rows fit a float, but not three column groups of them stacked (fig4_claims was 225 pt too tall)
    stacked = _board(30).assign(**{f"extra column {k}": "some words of text" for k in range(6)})
    tex = latex.latex_table(formats.claims_table(stacked).join(stacked.filter(like="extra")), "c", "stacked")
    assert "\\begin{table" not in tex and tex.count("\\begin{longtable}") >= 2
    assert "Table~\\ref{tab:stacked}, continued: columns, part 2" in tex


def test_every_column_group_repeats_the_columns_that_name_a_row():
    occl = pd.DataFrame({"trained_with": ["none"] * 3 + ["RE"] * 3, "test_occlusion": ["RE"] * 6,
                         "level": [0.0, 0.5, 1.0] * 2, "R1": [70.0, 40.0, 20.0] * 2, "R1_lo": [66.0, 36.0, 16.0] * 2,
                         "R1_hi": [74.0, 44.0, 24.0] * 2, "mAP": [50.0, 30.0, 10.0] * 2,
                         "mAP_lo": [46.0, 26.0, 6.0] * 2, "mAP_hi": [54.0, 34.0, 14.0] * 2})
    wide = formats.fig5_table(occl).assign(**{f"R1 under X{k}": "70.00 ± 4.00" for k in range(8)})
    tex = latex.latex_table(wide, "c", "f5")
    heads = [h for h in tex.splitlines() if h.startswith("trained with")]
    assert len(heads) >= 2 and all(h.startswith("trained with & level &") for h in heads)
    # no narrow key names every row (a claim has several rows): a row number leads every group
    rows = latex.latex_table(formats.claims_table(_board(12)).assign(more="text " * 12, other="words " * 12), "c", "r")
    assert rows.count("\\begin{tabular}") >= 2 and all(
        h.startswith("row & claim") for h in rows.splitlines() if h.startswith("row &"))


def test_a_figure_shrinks_to_fit_its_page_with_its_caption():
    tex = latex.figure_tex("tall", "A caption. " * 40, 3.3)
    m = re.search(r"includegraphics\[width=([\d.]+)pt,height=(\d+)pt,keepaspectratio\]", tex)
    assert m and float(m.group(1)) == pytest.approx(3.3 * 72.27, abs=0.1)  # a column figure keeps its width
    assert float(m.group(2)) < latex.FLOAT_HEIGHT_PT - 100  # and leaves room for a long caption
    assert "width=\\linewidth" in latex.figure_tex("wide", "c", 7.0)


@needs_pdflatex
def test_every_table_and_figure_compiles_without_overfull_boxes(tmp_path):
    import matplotlib.pyplot as plt

    (tmp_path / "build").mkdir()
    names = []
    for name, df in _tables().items():
        export.save_table(df, name, "Caption with 95% CI, a_b & <x> ± 1 — and ✓.", folder=tmp_path)
        names.append(name)
    fig, ax = style.figure("one", 2.0)
    ax.plot([0, 1], [0, -1], label="a")
    export.save_figure(fig, "f_one", "One-column figure; R1 (%)", folder=tmp_path)
    parts = plots.forest_plot(_board(), rows_per_part=30)
    assert isinstance(parts, list) and len(parts) == 3
    export.save_figure(parts, "f_forest", "Forest in parts", folder=tmp_path)
    export.save_figure(plots.bar_chart(pd.DataFrame({"L": ["a", "b"], "R1": [1.0, 2.0], "mAP": [1.0, 2.0],
                                                      "R1 (paper)": [3.0, 4.0], "mAP (paper)": [3.0, 4.0]}), "L"),
                       "f_bars", "Bars", folder=tmp_path)
    # a one-column figure as tall as a page, with a long caption (fig3_rpe was 3.3 pt too tall)
    tall, ax = style.figure("one", style.MAX_HEIGHT)
    ax.plot([0, 1], [0, 1])
    export.save_figure(tall, "f_tall", "A long caption that takes several lines. " * 12, folder=tmp_path)
    plt.close("all")
    names += ["f_one", "f_forest", "f_bars", "f_tall"]
    res = latex.check_latex(tmp_path, names, TOLERANCE_PT, workdir=tmp_path / "build")
    assert res["ok"], (res["problems"], res["log"])
    assert res["pdf"].stat().st_size > 0 and res["passes"] >= 2  # a longtable aligns on the second pass


@pytest.mark.skipif(shutil.which("pdffonts") is None, reason="pdffonts (poppler-utils) is absent")
def test_pdf_fonts_are_not_type3(tmp_path):
    fig, ax = style.figure("two", 2.0)
    ax.set_xlabel("speed S (fps) − R1 ± 95%")
    export.save_figure(fig, "f", "c", folder=tmp_path)
    out = subprocess.run(["pdffonts", str(tmp_path / "f.pdf")], capture_output=True, text=True).stdout
    assert "TrueType" in out and "Type 3" not in out, out


@needs_pdflatex
def test_check_latex_catches_overfull_and_unicode(tmp_path):
    (tmp_path / "wide.tex").write_text("\\begin{tabular}{l}\\rule{700pt}{1pt}\\\\\\end{tabular}\n")
    (tmp_path / "mark.tex").write_text("A raw mark: ✓\n")
    wide = latex.check_latex(tmp_path, ["wide"], workdir=tmp_path / "a")
    assert not wide["ok"] and max(wide["overfull"]) > 100
    assert not latex.check_latex(tmp_path, ["mark"], workdir=tmp_path / "b")["ok"]


@needs_pdflatex
def test_check_latex_catches_what_runs_off_the_page(tmp_path):
    # a float taller than the page: LaTeX only warns, and the float's end is lost
    (tmp_path / "float.tex").write_text("\\begin{table*}[tbp]\\centering\\rule{1pt}{800pt}\\caption{c}\\end{table*}\n")
    (tmp_path / "vbox.tex").write_text("\\vbox to 10pt{\\hrule height 60pt}\n")
    res = latex.check_latex(tmp_path, ["float"], workdir=tmp_path / "a")
    assert not res["ok"] and any("too large for its page" in p for p in res["problems"])
    res = latex.check_latex(tmp_path, ["vbox"], workdir=tmp_path / "b")
    assert not res["ok"] and any("taller than the page" in p for p in res["problems"])


@needs_pdflatex
def test_no_quotation_mark_prints_as_a_question_mark(tmp_path):
    """Every claims table quotes the paper's sentences with curly quotes: each becomes LaTeX's own quote, and
    the check fails a file where an escape turned one into "?" (as an old escape did)."""
    board = _board(6)
    sentences = pd.DataFrame({"claim": board["claim"], "sentence": [
        f"“the network’s ‘best’ result {i}” (l. {600 + i})" for i in range(6)], "verdict": board["verdict"]})
    export.save_table(sentences, "t_claims", "Claims quoting “the paper”.", folder=tmp_path)
    (tmp_path / "rows_claims.tex").write_text(latex.latex_table(formats.claims_table(board).assign(
        comparison=["“a” > “b”"] * 6), "Rows “quoted”.", "rows_claims"))
    for f in tmp_path.glob("*claims.tex"):
        tex = f.read_text()
        assert latex.source_problems(tex) == [] and "?" not in tex.replace("? unresolved", "")
        assert "``" in tex and "''" in tex
    res = latex.check_latex(tmp_path, ["t_claims", "rows_claims"], workdir=tmp_path / "a")
    assert res["ok"], res["problems"]
    (tmp_path / "old_claims.tex").write_text("?the network performance gradually increases? (l. 659-662)\n")
    (tmp_path / "box.tex").write_text(f"a snowman {latex.UNMAPPED}\n")
    res = latex.check_latex(tmp_path, ["old_claims", "box"], workdir=tmp_path / "b")
    assert not res["ok"] and any("quotation mark" in p for p in res["problems"])
    assert any("no LaTeX mapping" in p for p in res["problems"])


def test_every_verdict_mark_prints_in_latex():
    from henetlib.output.formats import VERDICT_MARKS

    for mark in VERDICT_MARKS.values():
        assert "fbox" not in latex.latex_escape(mark), mark
