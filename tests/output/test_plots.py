"""Every plot of the study: bar charts whose legend covers no bar, training curves, Fig. 1 with every method,
ranked lists framed right and wrong, the forest plot in page-sized parts."""


import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image

from henetlib.engine.efficiency import ACCURACY_ONLY, henet_rows
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


def test_bar_chart_legend_covers_no_bar():
    fig = plots.bar_chart(_bars(), "Losses")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = fig.legends[0].get_window_extent(renderer)
    for ax in fig.axes:
        for patch in ax.patches:
            assert not legend.overlaps(patch.get_window_extent(renderer))
        assert not legend.overlaps(ax.get_window_extent(renderer))
    plt.close(fig)


def test_training_curves():
    runs = fake_runs()
    fig = plots.training_curves(runs)
    assert len(fig.axes[0].lines) == 3 and len(fig.axes[1].lines) == 2  # a run without a check draws no fit line
    assert fig.axes[0].lines[0].get_ydata().tolist() == [3.0 / (e + 1) for e in range(5)]
    plt.close(fig)


def test_fig1_every_method_and_size_legend():
    import matplotlib.pyplot as plt

    rows = henet_rows(ours(), measurements())
    fig = fig1(rows)
    w, h = fig.get_size_inches()
    assert w <= style.MAX_WIDTH and h <= style.MAX_HEIGHT
    texts = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert set(TABLE1) <= texts and set(ACCURACY_ONLY) <= texts  # every Table 1 method is named
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["V = 100 MiB", "V = 200 MiB", "V = 350 MiB"]
    assert "HENet(+Both)" in fig1_note(rows)
    plt.close(fig)


def test_plot_ranked_results_marks_right_and_wrong(tmp_path):
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
    green, red = matplotlib.colors.to_rgba("limegreen"), matplotlib.colors.to_rgba("red")
    assert colors == [green, red, green]


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
