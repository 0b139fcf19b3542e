"""Our per-query scores for the claims: (seeds x queries) matrices, seed subsets, regimes, and the collection
from the run cache with nothing trained."""

import numpy as np
import pytest

from henetlib.engine import cache
from henetlib.engine.config import make_config
from henetlib.study import tables
from henetlib.verdicts import scores


def _pq(ranks, ap):
    return {"first_rank": list(ranks), "ap": list(ap)}


def _data():
    d = scores.StudyScores((0, 1))
    d.per_query["table3"] = {"G1": [_pq([1, 2, -1], [1.0, 0.5, None]), _pq([2, 1, -1], [0.5, 1.0, None])],
                             "P4": [_pq([1, 1, 1], [1.0, 1.0, 1.0]), None]}
    d.regime["table3"] = {"G1": ["paper", "not converged"], "P4": ["paper", None]}
    return d


def test_scores_stack_seeds_and_queries():
    d = _data()
    r1 = d.scores("table3", "G1", "R1")
    assert r1.shape == (2, 3) and np.array_equal(r1[:, :2], [[100.0, 0.0], [0.0, 100.0]])
    assert np.isnan(r1[:, 2]).all()  # a query without a true match is skipped, not scored 0
    assert d.scores("table3", "G1", "mAP")[0, :2].tolist() == [100.0, 50.0]
    assert d.scores("table3", "P4", "R1") is None  # a seed not run: no matrix, never a partial one
    assert d.scores("table3", "P2", "R1") is None and d.scores("table9", "G1", "R1") is None
    assert d.scores("table3", "G1", "R1") is r1  # computed once
    with pytest.raises(ValueError, match="metric must be one of"):
        _data().scores("table3", "G1", "R5")


def test_subset_regimes_and_query_count():
    d = _data()
    one = d.subset([1])
    assert one.seeds == (1,) and one.per_query["table3"]["G1"] == [d.per_query["table3"]["G1"][1]]
    assert one.regime["table3"]["G1"] == ["not converged"] and one.scores("table3", "P4", "R1") is None
    assert d.regimes("table3", ["G1", "P4"]) == ["paper", "not converged", "paper"]  # runs not run left out
    assert d.n_queries() == 3 and scores.StudyScores((0,)).n_queries() is None


def test_seedless_identity_merges_the_seeds_of_one_configuration():
    a, b = make_config("test", seed=0), make_config("test", seed=1)
    assert scores._seedless(a) == scores._seedless(b)
    assert scores._seedless(a) != scores._seedless(make_config("test", stripes=(1,)))


def test_collect_without_training_leaves_missing_runs_out(isolated_dirs, monkeypatch):
    monkeypatch.setattr(cache, "train", lambda *a, **k: pytest.fail("trained"))
    ctx = tables.StudyContext("test", "cpu")
    d = scores.collect(ctx, {"table3"}, train=False)
    assert set(d.per_query) == {"table3"} and len(d.per_query["table3"]) == 7
    assert all(v == [None] for v in d.per_query["table3"].values()) and d.n_queries() is None
    assert d.ident[("table3", "G1")] == scores._seedless(make_config("test", device="cpu", stripes=(1,),
                                                                     recovery=False, oim=False, triplet=False))


def test_collect_reads_the_runs_of_the_cache(table4_study, isolated_env, monkeypatch):
    monkeypatch.setattr(cache, "train", lambda *a, **k: pytest.fail("trained"))
    with isolated_env(table4_study.root):
        d = scores.per_query_by_label(tables.StudyContext("test", "cpu"), {"table4"}, train=False)
    labels = table4_study.table["Losses"].tolist()
    assert list(d["table4"]) == labels
    assert [d["table4"][k][0] for k in labels] == [r.per_query for r in table4_study.results]
