"""Efficiency (Table 1): the ES column from the paper's own numbers, the reference models, FD, V and S measured
here, and our HENet rows beside the paper's."""

import pytest
import torch

from henetlib.engine.efficiency import ModelStats, efficiency_scores, measure, reference_models
from henetlib.paper import TABLE1
from tests.engine.efficiency_rows import measurements, ours


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


def test_henet_rows_es_from_our_numbers_matches_paper_when_fed_the_papers():
    from henetlib.engine.efficiency import henet_rows, paper_stats

    rows = henet_rows(ours(), measurements())
    # fed the paper's own numbers, our ES among the four rows equals the paper's recomputed among them
    assert rows["ES (ours)"].to_numpy() == pytest.approx(rows["ES (paper)"].to_numpy())
    es4 = efficiency_scores(paper_stats(("HENet(Base)", "HENet(+RPE)", "HENet(+Losses)", "HENet(+Both)")))
    assert rows.set_index("Method")["ES (paper)"].to_dict() == pytest.approx(es4)


def test_peers_table_and_fd_check():
    from henetlib.engine.efficiency import peers_table

    meas = measurements()
    df = peers_table(meas)
    assert df["ES (ours)"].round(2).tolist() == df["ES (paper)"].tolist()  # paper's V and S in: paper's ES out
    meas["PCB"].feature_dim = 1
    with pytest.raises(ValueError, match="FD"):
        peers_table(meas)


@pytest.mark.gpu
def test_cuda_graph_measure_matches_eager():
    from henetlib.method.model import HENet

    model = HENet(8, (1, 4), True, backbone="resnet18-half", input_size=(128, 64))
    m = measure(model, (128, 64), torch.device("cuda"), batch=8, repeats=2, warmup=2, inner=2, cuda_graphs=True)
    assert m.cuda_graphs and m.fps_batch1 > 0 and m.feature_dim == model.feature_dim
