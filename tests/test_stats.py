import numpy as np
import pytest

from henetlib.stats import interval, paired_difference, per_query_scores, verdict


def _pq(hits: np.ndarray, ap: np.ndarray | None = None) -> dict:
    ranks = np.where(hits, 1, 5)
    return {"first_rank": ranks.tolist(), "ap": (ap if ap is not None else hits * 1.0).tolist()}


def test_query_bootstrap_matches_the_binomial_interval():
    """R1 of 10,000 queries with p = 0.5: the 95% interval is about +-1.96 * sqrt(.25 / n) = +-0.98 points."""
    rng = np.random.default_rng(0)
    hits = rng.random(10_000) < 0.5
    iv = interval([_pq(hits)], "R1", n_boot=2000)
    assert abs(iv.mean - 100 * hits.mean()) < 1e-9
    assert abs(iv.half_width - 0.98) < 0.12
    assert iv.lo < iv.mean < iv.hi


def test_seed_bootstrap_widens_the_interval():
    rng = np.random.default_rng(1)
    seeds = [_pq(rng.random(2000) < p) for p in (0.3, 0.5, 0.7)]  # seeds that disagree a lot
    one = interval(seeds[1:2], "R1")
    three = interval(seeds, "R1")
    assert three.half_width > 3 * one.half_width


def test_skipped_queries_are_ignored():
    pq = {"first_rank": [1, -1, 2, 1], "ap": [1.0, None, 0.5, 1.0]}
    r1, ap = per_query_scores(pq, "R1"), per_query_scores(pq, "mAP")
    assert np.isnan(r1[1]) and np.nanmean(r1) == pytest.approx(200 / 3)
    assert np.nanmean(ap) == pytest.approx(250 / 3)


def test_paired_difference_known_answers():
    rng = np.random.default_rng(2)
    base = rng.random(3000) < 0.6
    same = paired_difference([_pq(base)], [_pq(base)], "R1")
    assert same.mean == 0 and same.lo == 0 and same.hi == 0  # paired: shared noise cancels exactly
    better = base.copy()
    better[np.flatnonzero(~base)[:150]] = True  # +5 points on the same queries
    d = paired_difference([_pq(better)], [_pq(base)], "R1")
    assert d.mean == pytest.approx(5.0) and 4.0 < d.lo < d.hi < 6.0
    unpaired_width = 2 * 1.96 * np.sqrt(2 * 0.24 / 3000) * 100
    assert d.hi - d.lo < unpaired_width / 2  # pairing removes most of the query noise
    with pytest.raises(ValueError, match="same number of seeds"):
        paired_difference([_pq(base)], [_pq(base), _pq(base)], "R1")


@pytest.mark.parametrize("lo,hi,paper,expected", [
    (0.5, 2.0, 1.3, "reproduced"), (-2.0, -0.5, 1.3, "contradicted"), (-0.5, 2.0, 1.3, "unresolved"),
    (-2.0, -0.5, -0.4, "reproduced"), (0.5, 2.0, -0.4, "contradicted"), (0.5, 2.0, 0.0, "unresolved"),
    (0.5, 2.0, float("nan"), "unresolved"),
])
def test_verdict_rules(lo, hi, paper, expected):
    assert verdict(lo, hi, paper) == expected
