"""Efficiency (Table 1): the ES column from the paper's own numbers, the reference models, FD, V and S measured
here (speeds over interleaved repeats, with intervals), our graphs' V beside Table 1's, and our HENet rows beside
the paper's."""

import json
import math

import numpy as np
import pytest
import torch

from henetlib.engine import efficiency
from henetlib.engine.efficiency import (
    Measurement,
    ModelStats,
    efficiency_scores,
    graphs_differing_from_paper,
    mean_interval,
    measure,
    measure_many,
    measure_table1,
    peer_size_check,
    reference_models,
    speed_difference,
    time_interleaved,
)
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
    assert len(m.fps_batch1_repeats) == 2 and m.fps_batch1 == pytest.approx(np.mean(m.fps_batch1_repeats))
    assert m.fps_batch1_lo <= m.fps_batch1 <= m.fps_batch1_hi


def tiny(width: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, width, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())


def test_measure_many_interleaves_and_gives_intervals():
    meas = measure_many({"a": tiny(4), "b": tiny(8)}, (32, 16), "cpu", batch=2, repeats=4, warmup=1, inner=2)
    for name, width in (("a", 4), ("b", 8)):
        m = meas[name]
        assert m.feature_dim == width and len(m.fps_batch1_repeats) == 4
        assert (m.fps_batch1, m.fps_batch1_lo, m.fps_batch1_hi) == pytest.approx(mean_interval(m.fps_batch1_repeats))
        assert Measurement(**json.loads(json.dumps(m.as_dict()))) == m  # the cache's round trip


def test_time_interleaved_order_and_counts():
    """Each round times every call once, in an order that rotates by one; warm-up calls come first."""
    log = []
    calls = {k: (lambda k=k: log.append(k)) for k in "ABC"}
    fps = time_interleaved(calls, torch.device("cpu"), repeats=3, inner=2, warmup=1)
    assert log == list("ABC") + list("AABBCC") + list("BBCCAA") + list("CCAABB")
    assert all(len(v) == 3 and min(v) > 0 for v in fps.values())
    with pytest.raises(ValueError, match="at least 1"):
        time_interleaved(calls, torch.device("cpu"), repeats=0, inner=1)


def test_measure_table1_repeats_and_shared_rows(isolated_dirs, monkeypatch):
    """Table 1's measurement on stand-in graphs: every row has its repeats, +RPE/+Both are Base/+Losses, and a
    second call reads the cache."""
    graphs = {"AlignedReID": 2, "PCB": 3, "HPM": 4, "MGN": 5, "HENet(Base)": 6, "HENet(+Losses)": 7}
    monkeypatch.setattr(efficiency, "table1_graphs", lambda n: {k: tiny(w) for k, w in graphs.items()})
    meas = measure_table1("cpu", (32, 16), batch=2, repeats=3, progress=False)
    assert set(meas) == set(graphs) | {"HENet(+RPE)", "HENet(+Both)"}
    assert all(len(m.fps_batch1_repeats) == 3 for m in meas.values())
    assert meas["HENet(+Both)"] == meas["HENet(+Losses)"] and meas["HENet(+RPE)"] == meas["HENet(Base)"]
    monkeypatch.setattr(efficiency, "measure_many", None)  # a measurement now would fail: the cache answers
    assert measure_table1("cpu", (32, 16), batch=2, repeats=3, progress=False) == meas


def test_mean_interval_known_answer():
    m, lo, hi = mean_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)  # t(0.975, 4) * sd / sqrt(n)
    assert (m, lo, hi) == pytest.approx((3.0, 3.0 - half, 3.0 + half))
    assert mean_interval([7.0]) == (7.0, -math.inf, math.inf)
    with pytest.raises(ValueError):
        mean_interval([])


def test_speed_difference_clear_difference_excludes_zero():
    rng = np.random.default_rng(0)
    a, b = 100 + rng.normal(0, 3, 10), 80 + rng.normal(0, 3, 10)
    for paired in (True, False):
        d, lo, hi = speed_difference(a, b, paired=paired)
        assert d == pytest.approx(np.mean(a) - np.mean(b)) and 0 < lo < d < hi


def test_speed_difference_same_distribution_includes_zero():
    a = [10.0, 11.0, 9.5, 10.4, 10.8, 9.9]
    d, lo, hi = speed_difference(a, a[::-1])  # each difference has its negative: mean exactly 0
    assert d == pytest.approx(0) and lo < 0 < hi
    rng = np.random.default_rng(1)
    d, lo, hi = speed_difference(rng.normal(50, 5, 10), rng.normal(50, 5, 10))
    assert lo < 0 < hi
    assert speed_difference(a, a) == (0.0, 0.0, 0.0)  # a row against itself (+RPE vs Base): undecided


def test_speed_difference_pairing_cancels_a_shared_load_drift():
    """A load ramp that slows both models alike in each round: paired, A's 5% lead is clear; unpaired, the
    drift swamps it."""
    load = np.linspace(1.0, 0.4, 10)
    a, b = 10.5 * load, 10.0 * load
    assert speed_difference(a, b)[1] > 0
    _, lo, hi = speed_difference(a, b, paired=False)
    assert lo < 0 < hi


def test_speed_difference_coverage_and_errors():
    """Over many draws of a known difference (2 fps), the 95% intervals hold it about 95% of the time."""
    rng = np.random.default_rng(2)
    hits = [lo <= 2.0 <= hi for lo, hi in
            (speed_difference(rng.normal(12, 1, 5), rng.normal(10, 1, 5))[1:] for _ in range(2000))]
    assert 0.93 < np.mean(hits) < 0.97
    assert speed_difference([3.0], [2.0]) == (1.0, -math.inf, math.inf)  # one repeat decides nothing
    with pytest.raises(ValueError, match="equal length"):
        speed_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least one"):
        speed_difference([], [])


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


def test_peer_size_check_table():
    """Every Table 1 row within 15% of the paper's V except HPM, whose published design our graph follows; the
    scoreboard's set of rows to label is {HPM}."""
    rows = peer_size_check()
    assert [r["model"] for r in rows] == list(TABLE1)
    by = {r["model"]: r for r in rows}
    for name, r in by.items():
        assert r["tolerance"] == 0.15 and r["our_v"] == pytest.approx(r["ratio"] * r["paper_v"])
        assert r["status"] == ("differs" if name == "HPM" else "matches"), (name, r["ratio"])
        assert r["our_v"] <= r["our_v_all"] and r["reason"] and r["counts"]
    assert by["HPM"]["our_v"] == pytest.approx(119.71, abs=0.01)
    assert by["HPM"]["reading_v"] == pytest.approx(354.89, abs=0.01)
    assert by["HENet(+Both)"]["graph"] == "HENet(+Losses)" and by["HENet(+Both)"]["our_v"] == by["HENet(+Losses)"]["our_v"]
    assert set(graphs_differing_from_paper(rows)) == {"HPM"}
    assert graphs_differing_from_paper([{**by["PCB"], "status": "differs"}]) == {"PCB": by["PCB"]["reason"]}
    tight = peer_size_check(tolerance=0.01)  # the status follows the tolerance given
    assert {r["model"] for r in tight if r["status"] == "matches"} == {"PCB", "HENet(+Losses)", "HENet(+Both)"}


@pytest.mark.gpu
def test_cuda_graph_measure_matches_eager():
    from henetlib.method.model import HENet

    model = HENet(8, (1, 4), True, backbone="resnet18-half", input_size=(128, 64))
    m = measure(model, (128, 64), torch.device("cuda"), batch=8, repeats=2, warmup=2, inner=2, cuda_graphs=True)
    assert m.cuda_graphs and m.fps_batch1 > 0 and m.feature_dim == model.feature_dim
