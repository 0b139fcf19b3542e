import pytest
import torch

from henetlib.efficiency import ModelStats, efficiency_scores, measure, reference_models
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
