"""The figure style, captions beside figures, sentences from the numbers, and the index page."""

import numpy as np
import pandas as pd
import pytest

from henetlib.output import export, formats, plots, prose, style


def _bars():
    return pd.DataFrame({"Losses": ["CE only", "CE+OIM", "CE+OIM+Tri+MSE"], "R1": [30.0, 45.0, 44.0],
                         "R1_lo": [26.0, 41.0, 40.0], "R1_hi": [34.0, 49.0, 48.0], "mAP": [20.0, 30.0, 33.0],
                         "R1 (paper)": [88.72, 91.33, 93.67], "mAP (paper)": [69.69, 73.42, 80.60]})


def test_style_and_sizes():
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    fig, ax = style.figure("one", 2.0)
    assert tuple(fig.get_size_inches()) == pytest.approx((style.ONE_COLUMN, 2.0))
    assert mpl.rcParams["pdf.fonttype"] == 42 and 8 <= mpl.rcParams["font.size"] <= 9
    # series differ by marker and line style as well as colour
    styles = [style.series_style(i) for i in range(4)]
    assert len({s["marker"] for s in styles}) == 4 and len({str(s["linestyle"]) for s in styles}) == 4
    with pytest.raises(ValueError, match="page"):
        style.figure(9.0, 2.0)
    plt.close("all")


def test_save_figure_puts_caption_beside_not_inside(tmp_path):
    import matplotlib.pyplot as plt

    fig, ax = style.figure("two", 2.0)
    ax.plot([0, 1], [0, 1])
    n_texts = len(fig.texts)
    export.save_figure(fig, "f", "Our caption.", folder=tmp_path)
    assert len(fig.texts) == n_texts  # nothing drawn into the image
    assert (tmp_path / "f.caption.txt").read_text().strip() == "Our caption."
    tex = (tmp_path / "f.tex").read_text()
    assert "\\begin{figure*}" in tex and "\\includegraphics[width=\\linewidth]{f}" in tex and "Our caption." in tex
    from PIL import Image

    w, h = Image.open(tmp_path / "f.png").size
    assert (w, h) == (round(7.0 * style.DPI), round(2.0 * style.DPI))
    big = plt.figure(figsize=(11, 4))
    with pytest.raises(ValueError, match="larger than a page"):
        export.save_figure(big, "g", "c", folder=tmp_path)
    plt.close("all")


def test_bar_chart_legend_covers_no_bar():
    import matplotlib.pyplot as plt

    fig = plots.bar_chart(_bars(), "Losses")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = fig.legends[0].get_window_extent(renderer)
    for ax in fig.axes:
        for patch in ax.patches:
            assert not legend.overlaps(patch.get_window_extent(renderer))
        assert not legend.overlaps(ax.get_window_extent(renderer))
    plt.close(fig)


def test_sentences_come_from_the_numbers():
    df = _bars()
    s = prose.compare_rows(df, "Losses", "R1", paper="R1 (paper)")
    assert s.startswith("Best R1: CE+OIM (45.0), 1.0 points ahead of CE+OIM+Tri+MSE (44.0)")
    assert "overlap" in s and "within the noise" in s and "paper's best is CE+OIM+Tri+MSE" in s
    df.loc[1, "R1"] = 60.0
    df.loc[1, ["R1_lo", "R1_hi"]] = [55.0, 65.0]
    assert "do not overlap" in prose.compare_rows(df, "Losses", "R1")
    curves = pd.DataFrame({"m": ["a", "a", "b", "b"], "p": [0.0, 0.5, 0.0, 0.5], "R1": [50.0, 40.0, 50.0, 48.0]})
    c = prose.describe_curves(curves, "p", "R1", "m")
    assert "b keeps the highest R1 (48.0)" in c and "a by -10.0" in c
    ranked = np.array([[0, 1, 2], [2, 1, 0]])
    note = prose.ranked_lists_note(ranked, [7, 8], [7, 9, 8], [0, 0], [1, 1, 1], [0, 1], topk=3)
    assert note.startswith("2 of the 2 queries shown find their identity at rank 1")


def test_fig4_table_shares_p0_row():
    df = pd.DataFrame({"method": ["RE", "RE", "RPE(20)", "RPE(20)"], "p": [0.0, 0.5, 0.0, 0.5],
                       "R1": [60.0, 50.0, 60.0, 55.0], "R1_lo": [55.0] * 4, "R1_hi": [65.0] * 4,
                       "mAP": [40.0] * 4, "R1_occluded": [1.0] * 4, "seeds": [1] * 4})
    t = formats.fig4_table(df)
    assert t["method"].tolist() == ["none (p = 0)", "RE", "RPE(20)"]
    assert "seeds" not in t and "R1 (occluded queries)" in t


def test_index_page_links_offline(tmp_path):
    from henetlib.study.reproduce import write_index

    figs, reps = tmp_path / "figures", tmp_path / "reports"
    figs.mkdir()
    reps.mkdir()
    (reps / "00_x.html").write_text("<html></html>")
    (figs / "claims.md").write_text("| claim | verdict |\n|:--|:--|\n| T2.1 | ✓ reproduced |\n| T2.2 | ? unresolved |\n"
                                    "| T2.3 | ✓ reproduced |\n\ncaption\n")
    (figs / "fig1.png").write_bytes(b"png")
    (figs / "fig1.pdf").write_bytes(b"pdf")
    (figs / "fig1.caption.txt").write_text("Fig one & more.")
    page = write_index(reps, ["00_x", "01_y"], {"00_x": 3.0}, {"profile": "test"}, figures=figs).read_text()
    assert 'href="00_x.html"' in page and "not rendered" in page
    assert "<b>2</b> reproduced" in page and "<b>1</b> unresolved" in page
    assert 'src="../figures/fig1.png"' in page and 'href="../figures/fig1.pdf"' in page and "Fig one &amp; more." in page
    assert "http://" not in page and "https://" not in page


def test_a_figure_and_a_table_never_share_a_name(tmp_path):
    import matplotlib.pyplot as plt

    export.save_table(pd.DataFrame({"a": [1.0]}), "t", "c", folder=tmp_path)
    fig, _ = style.figure("one", 1.0)
    with pytest.raises(ValueError, match="table's name"):
        export.save_figure(fig, "t", "c", folder=tmp_path)
    export.save_figure(fig, "f", "c", folder=tmp_path)
    with pytest.raises(ValueError, match="figure's name"):
        export.save_table(pd.DataFrame({"a": [1.0]}), "f", "c", folder=tmp_path)
    plt.close("all")


def test_training_curves_and_note():
    from types import SimpleNamespace

    def res(name, gain, conv):
        hist = [{"epoch": e, "loss": 3.0 / (e + 1)} for e in range(5)]
        reg = {"train_fit_check": {"mAP": 50.0}, "train_fit": {"mAP": 50.0 + gain}, "fit_gain_last": gain,
               "converged": conv}
        return SimpleNamespace(name=name, history=hist, regime=reg)

    runs = [res("a", 0.5, True), res("b", 4.0, False), SimpleNamespace(name="c", history=[], regime={})]
    fig = plots.training_curves(runs)
    assert len(fig.axes[0].lines) == 3 and len(fig.axes[1].lines) == 2  # a run without a check draws no fit line
    note = prose.training_note(runs)
    assert note.startswith("1 of 3 runs converged") and "4.0 points (b)" in note
    assert "no regime check" in prose.training_note([runs[2]])
