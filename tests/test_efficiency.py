import pytest
import torch

from henetlib.engine.efficiency import ModelStats, efficiency_scores, measure, reference_models
from henetlib.output import style
from henetlib.paper import TABLE1


def table1_stats():
    return {k: ModelStats(v["r1"], v["mAP"], v["fd"], v["v"], v["s"]) for k, v in TABLE1.items()}


def test_table1_es_column():
    es = efficiency_scores(table1_stats())
    for name, row in TABLE1.items():
        assert round(es[name], 2) == row["es"], (name, es[name])


def test_reference_models_and_m1_scores_one():
    stats = table1_stats()
    assert reference_models(stats) == ("HPM", "AlignedReID")
    assert efficiency_scores(stats)["HPM"] == pytest.approx(1.0)


def test_order_invariance():
    stats = table1_stats()
    rev = dict(reversed(list(stats.items())))
    a, b = efficiency_scores(stats), efficiency_scores(rev)
    assert all(a[k] == pytest.approx(b[k]) for k in stats)


def test_errors():
    with pytest.raises(ValueError, match="at least one"):
        efficiency_scores({})
    with pytest.raises(ValueError, match="size_mb"):
        ModelStats(90, 70, 512, 0, 100)
    with pytest.raises(ValueError, match="fps"):
        ModelStats(90, 70, 512, 10, -1)


def test_measure_tiny_model_exact_parameters():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(4, 6))
    m = measure(model, input_size=(32, 16), device="cpu", batch=4, repeats=2, warmup=1, inner=1)
    assert m.params == 3 * 4 * 9 + 4 + 4 * 6 + 6
    assert m.size_mb == pytest.approx(m.params * 4 / 2**20)
    assert m.feature_dim == 6 and m.fps_batch1 > 0 and m.throughput > 0


def _measurements():
    from henetlib.engine.efficiency import Measurement

    def m(fd, v, s):
        return Measurement(fd, 1, 1, v, v, s, 2 * s, 8, "cpu", "test cpu", "float32", False)

    out = {k: m(v["fd"], v["v"], v["s"]) for k, v in TABLE1.items()}
    return out


def _ours():
    import pandas as pd

    return pd.DataFrame({"Method": ["HENet(Base)", "HENet(+RPE)", "HENet(+Losses)", "HENet(+Both)"],
                         "FD": [2048, 2048, 2560, 2560], "R1": [92.9, 93.6, 95.6, 96.0],
                         "R1_lo": [91.0, 92.0, 94.0, 95.0], "R1_hi": [94.0, 95.0, 97.0, 97.0],
                         "mAP": [79.6, 81.2, 86.8, 87.2]})


def test_henet_rows_es_from_our_numbers_matches_paper_when_fed_the_papers():
    from henetlib.engine.efficiency import henet_rows, paper_stats

    rows = henet_rows(_ours(), _measurements())
    # fed the paper's own numbers, our ES among the four rows equals the paper's recomputed among them
    assert rows["ES (ours)"].to_numpy() == pytest.approx(rows["ES (paper)"].to_numpy())
    es4 = efficiency_scores(paper_stats(("HENet(Base)", "HENet(+RPE)", "HENet(+Losses)", "HENet(+Both)")))
    assert rows.set_index("Method")["ES (paper)"].to_dict() == pytest.approx(es4)


def test_peers_table_and_fd_check():
    from henetlib.engine.efficiency import peers_table

    meas = _measurements()
    df = peers_table(meas)
    assert df["ES (ours)"].round(2).tolist() == df["ES (paper)"].tolist()  # paper's V and S in: paper's ES out
    meas["PCB"].feature_dim = 1
    with pytest.raises(ValueError, match="FD"):
        peers_table(meas)


def test_fig1_every_method_and_size_legend():
    import matplotlib.pyplot as plt

    from henetlib.engine.efficiency import ACCURACY_ONLY, henet_rows
    from henetlib.output.plots import fig1
    from henetlib.output.prose import fig1_note

    rows = henet_rows(_ours(), _measurements())
    fig = fig1(rows)
    w, h = fig.get_size_inches()
    assert w <= style.MAX_WIDTH and h <= style.MAX_HEIGHT
    texts = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert set(TABLE1) <= texts and set(ACCURACY_ONLY) <= texts  # every Table 1 method is named
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["V = 100 MiB", "V = 200 MiB", "V = 350 MiB"]
    assert "HENet(+Both)" in fig1_note(rows)
    plt.close(fig)
