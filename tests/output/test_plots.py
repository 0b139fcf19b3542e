"""Every plot of the study: dot charts zoomed to the data on one scale, Fig. 4 in small multiples with the
paper on its own axis, Fig. 5 without merging bands, training curves with plain ticks, Fig. 1 with every
method and no hidden marker or overlapping label, ranked lists in a colour-blind-safe pair with a key, the
forest plot in page-sized parts."""


import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.text import Text
from matplotlib.transforms import Bbox
from PIL import Image

from henetlib.engine.efficiency import ACCURACY_ONLY, HENET_ROWS, henet_rows
from henetlib.output import plots, style
from henetlib.output.plots import fig1, plot_ranked_results
from henetlib.output.prose import fig1_note
from henetlib.paper import TABLE1
from tests.engine.efficiency_rows import measurements, ours
from tests.output.runs import fake_runs


def _bars():
    return pd.DataFrame({"Losses": ["CE only", "CE+OIM", "CE+OIM+Tri+MSE"], "R1": [30.0, 45.0, 44.0],
                         "R1_lo": [26.0, 41.0, 40.0], "R1_hi": [34.0, 49.0, 48.0], "mAP": [20.0, 30.0, 33.0],
                         "R1 (paper)": [88.72, 91.33, 93.67], "mAP (paper)": [69.69, 73.42, 80.60]})


def _fig4():
    rows = []
    for m in ("RE", "RPE(20)", "RE+RPE(20)"):
        for p in (0.0, 0.25, 0.5):
            v = 80.0 - 10 * p - (3 if m == "RE+RPE(20)" else 0)
            rows.append({"method": m, "p": p, "R1": v, "R1_lo": v - 4, "R1_hi": v + 4, "mAP": v - 10,
                         "mAP_lo": v - 13, "mAP_hi": v - 7,
                         "regime": "not converged" if (m, p) == ("RPE(20)", 0.5) else "paper"})
    return pd.DataFrame(rows)


def _overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_dot_chart_is_zoomed_on_one_scale_and_its_legend_covers_no_panel():
    df = _bars()
    fig = plots.bar_chart(df, "Losses")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = fig.legends[0].get_window_extent(renderer)
    assert len(fig.axes) == 4  # R1 ours, R1 paper, mAP ours, mAP paper
    for ax in fig.axes:
        assert not legend.overlaps(ax.get_window_extent(renderer))
    spans = [ax.get_xlim()[1] - ax.get_xlim()[0] for ax in fig.axes]
    assert max(spans) - min(spans) < 1e-9  # one scale: a gap between rows reads the same in every panel
    r1_ours, r1_paper = fig.axes[0].get_xlim(), fig.axes[1].get_xlim()
    assert r1_ours[0] > 0 and r1_ours[0] <= df["R1_lo"].min() and r1_ours[1] >= df["R1_hi"].max()  # zoomed, all in
    assert r1_paper[0] <= df["R1 (paper)"].min() and r1_paper[1] >= df["R1 (paper)"].max()
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == list(df["Losses"])
    plt.close(fig)
    bare = plots.bar_chart(df.drop(columns=["R1_lo", "R1_hi", "R1 (paper)", "mAP (paper)"]), "Losses")
    assert len(bare.axes) == 2
    plt.close(bare)


def test_fig4_small_multiples_mark_off_regime_runs_and_give_the_paper_its_own_axis():
    df = _fig4()
    fig = plots.curves(df, "p", "method", paper={"R1": [(0.5, 93.72, "paper")], "mAP": [(0.5, 80.53, "paper")]})
    axes = np.array(fig.axes).reshape(2, 4)  # metrics x (3 methods + the paper)
    assert [ax.get_title() for ax in axes[0]] == ["RE", "RPE(20)", "RE+RPE(20)", "paper"]
    for r, (m, pv) in enumerate((("R1", 93.72), ("mAP", 80.53))):
        ours_lim, paper_lim = axes[r, 0].get_ylim(), axes[r, 3].get_ylim()
        assert ours_lim[1] < pv and ours_lim[1] >= df[f"{m}_hi"].max()  # our axis fits our data, not the paper's
        assert paper_lim[0] < pv < paper_lim[1] and paper_lim[1] <= 100.0
        assert axes[r, 1].get_ylim() == ours_lim  # one scale per metric across the methods
    hollow = [ln for ln in axes[0, 1].lines if ln.get_markerfacecolor() == "white"]
    assert len(hollow) == 1 and list(hollow[0].get_xdata()) == [0.5]  # the not-converged run
    assert not any(isinstance(c, PolyCollection) for ax in fig.axes for c in ax.collections)  # no bands
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "not converged or not pretrained" in labels and "paper" in labels
    plt.close(fig)


def test_fig5_curves_draw_error_bars_side_by_side_not_bands():
    df = _fig4().rename(columns={"method": "trained_with", "p": "level"}).drop(columns="regime")
    df["test_occlusion"] = "RE"
    fig = plots.curves(df, "level", "trained_with", panel="test_occlusion")
    assert not any(isinstance(c, PolyCollection) for ax in fig.axes for c in ax.collections)
    xs = [ln.get_xdata()[0] for ln in fig.axes[0].lines if len(ln.get_xdata()) == 3]
    assert len(set(np.round(xs, 6))) == 3  # each group's bars stand apart
    plt.close(fig)


def test_training_curves_have_integer_epochs_and_plain_log_labels():
    runs = fake_runs()
    fig = plots.training_curves(runs)
    assert len(fig.axes[0].lines) == 3 and len(fig.axes[1].lines) == 2  # a run without a check draws no fit line
    assert fig.axes[0].lines[0].get_ydata().tolist() == [3.0 / (e + 1) for e in range(5)]
    fig.canvas.draw()
    ticks = [t for t in fig.axes[0].get_xticks() if fig.axes[0].get_xlim()[0] <= t <= fig.axes[0].get_xlim()[1]]
    assert all(float(t).is_integer() for t in ticks)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels() if t.get_text()]
    assert labels and all("^" not in s and "times" not in s for s in labels)
    plt.close(fig)


def test_fig1_every_method_no_hidden_marker_no_overlapping_label_axes_fitted():
    rows = henet_rows(ours(), measurements())
    fig = fig1(rows)
    w, h = fig.get_size_inches()
    assert w <= style.MAX_WIDTH and h <= style.MAX_HEIGHT
    texts = {t.get_text() for ax in fig.axes for t in ax.texts}
    peers = set(TABLE1) - set(HENET_ROWS)
    assert peers <= texts and set(ACCURACY_ONLY) <= texts  # every other method is named beside its point
    # the HENet rows by shape in a legend of their own: two of them sit exactly on the other two
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["V = 100 MiB", "V = 200 MiB", "V = 350 MiB"]
    assert [t.get_text() for t in fig.legends[1].get_texts()] == list(HENET_ROWS)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    for ax in fig.axes:
        labels = [t for t in ax.texts if t.get_text() in peers]
        boxes = [Text.get_window_extent(t, r) for t in labels]  # the text alone, without its leader line
        assert not any(_overlaps(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
        # +RPE and +Both share V and S with Base and +Losses: drawn hollow, so the filled marker shows through
        faces = [c.get_facecolor() for c in ax.collections if isinstance(c, PathCollection) and c.get_offsets().size]
        assert sum(len(f) == 0 or f[0][3] == 0 for f in faces) == 2
        assert ax.get_xscale() == "log"
        marks = []  # each marker's box in pixels, 80% of its size (scatter sizes are areas in points^2)
        for c in (c for c in ax.collections if isinstance(c, PathCollection) and c.get_offsets().size):
            (cx, cy), rad = ax.transData.transform(c.get_offsets()[0]), 0.8 * np.sqrt(c.get_sizes()[0] / np.pi) * fig.dpi / 72
            marks.append(Bbox.from_extents(cx - rad, cy - rad, cx + rad, cy + rad))
        assert len(marks) == (len(TABLE1) if ax in fig.axes[::2] else len(HENET_ROWS))  # nothing stray
        assert not any(_overlaps(b, m) for b in boxes for m in marks)  # no label on a marker
    right = fig.axes[1].get_xlim()
    s = rows["S fps"]
    assert right[0] > 0.5 * s.min() and right[0] < s.min() and right[1] > s.max()  # fitted, not from 0
    assert "HENet(+Both)" in fig1_note(rows)
    plt.close(fig)


def test_plot_ranked_results_marks_right_and_wrong_with_a_key(tmp_path):
    paths = []
    for i in range(5):
        p = tmp_path / f"{i}.png"
        Image.new("RGB", (8, 16), (i * 40, 0, 0)).save(p)
        paths.append(str(p))
    d = np.array([[0.1, 0.2, 0.3, 0.4]])
    fig = plot_ranked_results(d, paths[:1], paths[1:], [7], [7, 3, 7, 3], [0], [1, 1, 2, 2], topk=3)
    axes = fig.axes
    assert len(axes) == 4
    colors = [axes[i].spines["left"].get_edgecolor() for i in (1, 2, 3)]
    right, wrong = (matplotlib.colors.to_rgba(style.MATCH_STYLE[k][0]) for k in ("right", "wrong"))
    assert colors == [right, wrong, right]
    assert axes[2].spines["left"].get_linestyle() != axes[1].spines["left"].get_linestyle()  # greyscale too
    assert matplotlib.colors.to_rgba("red") not in colors and matplotlib.colors.to_rgba("limegreen") not in colors
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["right identity", "wrong identity"]
    plt.close(fig)


def test_forest_plot_splits_into_page_sized_parts():
    rng = np.random.default_rng(0)
    d = rng.normal(0, 2, 70)
    board = pd.DataFrame({"claim": [f"C{i}" for i in range(70)], "metric": ["R1"] * 70, "comparison": ["a > b"] * 70,
                          "ours diff": d, "lo": d - 1, "hi": d + 1, "paper diff": d + 0.5,
                          "verdict": ["reproduced", "contradicted"] * 35})
    parts = plots.forest_plot(board, rows_per_part=30)
    assert len(parts) == 3 and all(f.get_size_inches()[1] <= style.MAX_HEIGHT for f in parts)
    assert sum(len(f.axes[0].get_yticks()) for f in parts) == 70  # every row drawn once
    one = plots.forest_plot(board.head(10))
    assert not isinstance(one, list) and [t.get_text() for t in one.legends[0].get_texts()] == [
        "reproduced", "contradicted", "paper"]
    plt.close("all")


def test_error_bars_are_distances_to_the_bounds():
    df = pd.DataFrame({"R1": [50.0, 60.0], "R1_lo": [45.0, 59.0], "R1_hi": [52.0, 66.0]})
    assert plots.error_bars(df, "R1").tolist() == [[5.0, 1.0], [2.0, 6.0]]
