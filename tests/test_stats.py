"""Intervals and verdicts (stats.py): bootstrap designs against known answers, seed variance, paired
differences, Holm, TOST, seeds needed, and the verdict rules."""

import numpy as np
import pytest

from henetlib import stats
from henetlib.stats import (
    SeedVariance,
    contrast,
    contrast_interval,
    crossed_bootstrap_variance,
    draw_design,
    draw_means,
    holm,
    interval,
    one_sided_p,
    own_seed_variance,
    paired_difference,
    per_query_scores,
    satterthwaite_df,
    seeds_needed,
    tost,
    verdict,
)


def _pq(hits: np.ndarray, ap: np.ndarray | None = None) -> dict:
    ranks = np.where(hits, 1, 5)
    return {"first_rank": ranks.tolist(), "ap": (ap if ap is not None else hits * 1.0).tolist()}


def _crossed(s: int, q: int, sa: float, sb: float, se: float, rng) -> np.ndarray:
    """y[s, q] = a_s + b_q + e_sq: seed, query and interaction variance sa^2, sb^2, se^2 (a crossed design)."""
    return (rng.normal(0, sa, (s, 1)) + rng.normal(0, sb, (1, q)) + rng.normal(0, se, (s, q)))


def _nested_means(y: np.ndarray, n_boot: int, rng) -> np.ndarray:
    """The old design: a fresh query resample for every seed slot (queries treated as nested in seeds)."""
    s, q = y.shape
    seeds = rng.integers(0, s, (n_boot, s))
    out = np.zeros(n_boot)
    for j in range(s):
        idx = rng.integers(0, q, (n_boot, q))
        out += np.take_along_axis(y[seeds[:, j]], idx, axis=1).mean(axis=1)
    return out / s


def test_query_bootstrap_matches_the_binomial_interval():
    """R1 of 10,000 queries with p = 0.5: the 95% interval is about +-1.96 * sqrt(.25 / n) = +-0.98 points."""
    rng = np.random.default_rng(0)
    hits = rng.random(10_000) < 0.5
    iv = interval([_pq(hits)], "R1", n_boot=2000)
    assert abs(iv.mean - 100 * hits.mean()) < 1e-9
    assert abs(iv.half_width - 0.98) < 0.12
    assert iv.lo < iv.mean < iv.hi and iv.basis == "query-level only"


def test_count_design_equals_explicit_resampling():
    """The matrix-product means are the means of the explicitly resampled (query, seed) cells."""
    rng = np.random.default_rng(3)
    y = rng.normal(size=(3, 40))
    y[1, 5] = np.nan  # a skipped query
    d = draw_design(3, 40, 50, rng, resample_seeds=True)
    got = draw_means(y, d)
    for b in range(5):
        qi = np.repeat(np.arange(40), d.query_counts[b].astype(int))
        si = np.repeat(np.arange(3), d.seed_counts[b].astype(int))
        want = np.mean([np.nanmean(y[s, qi]) for s in si])
        assert got[b] == pytest.approx(want)


def test_crossed_bootstrap_has_the_crossed_design_variance_and_nested_does_not():
    """Known answer: seeds and queries crossed, y = a_s + b_q + e. The crossed bootstrap's variance of the grand
    mean equals its exact closed form and, in expectation, the design variance sa^2/S + sb^2/Q + se^2/(SQ);
    the nested design (a query resample per seed slot) shrinks the query part by 1/S."""
    rng = np.random.default_rng(0)
    s, q, sa, sb, se = 8, 300, 0.5, 10.0, 2.0
    y = _crossed(s, q, sa, sb, se, rng)
    crossed = draw_means(y, draw_design(s, q, 4000, rng, resample_seeds=True))
    exact = crossed_bootstrap_variance(y)
    assert np.var(crossed) == pytest.approx(exact, rel=0.1)
    design_var = sa**2 / s + sb**2 / q + se**2 / (s * q)
    # expectation of the exact form over many data sets (cheap: closed form) against the design variance
    mean_exact = np.mean([crossed_bootstrap_variance(_crossed(s, q, sa, sb, se, rng)) for _ in range(300)])
    assert mean_exact == pytest.approx(design_var, rel=0.1)
    nested = _nested_means(y, 2000, rng)
    assert np.var(nested) < 0.5 * design_var  # the old design: far too narrow


def test_one_seed_interval_with_a_noise_model_covers_at_the_nominal_rate():
    """Known answer: two configurations differ by 2 points; each run adds seed noise sd 1.5 and the 60 queries
    add their own. A one-seed interval with the seed variance estimated on 20 df covers the truth ~95% of the
    time; without it (query-level only) it covers far less."""
    rng = np.random.default_rng(5)
    q, sd_seed, true = 60, 1.5, 2.0
    cover, cover_q = 0, 0
    n = 300
    for _ in range(n):
        est = SeedVariance(sd_seed**2 * rng.chisquare(20) / 20, 20.0, "model")
        base = rng.normal(50, 5, q)
        a = (base + true + rng.normal(0, sd_seed) + rng.normal(0, 1.0, q))[None, :]
        b = (base + rng.normal(0, sd_seed) + rng.normal(0, 1.0, q))[None, :]
        d = draw_design(1, q, 300, rng)
        iv = contrast({"a": a, "b": b}, {"a": 1.0, "b": -1.0}, d, est)
        cover += iv.lo <= true <= iv.hi
        iq = contrast({"a": a, "b": b}, {"a": 1.0, "b": -1.0}, d, None)
        cover_q += iq.lo <= true <= iq.hi
    assert 0.9 <= cover / n <= 0.99
    assert cover_q / n < 0.75
    assert iv.basis.startswith("query + seed") and np.isfinite(iv.df) and iv.df >= 20


def test_own_seed_variance_removes_the_shared_seed_effect():
    rng = np.random.default_rng(1)
    c, s = 30, 6
    x = rng.normal(0, 5, (c, 1)) + rng.normal(0, 10, (1, s)) + rng.normal(0, 1.0, (c, s))
    sv = own_seed_variance(x)
    assert sv.df == (c - 1) * (s - 1) and sv.var == pytest.approx(1.0, rel=0.2)
    assert own_seed_variance(x[:, :1]) is None


def test_several_own_seeds_give_a_t_interval():
    rng = np.random.default_rng(1)
    seeds = [_pq(rng.random(2000) < p) for p in (0.3, 0.5, 0.7)]  # seeds that disagree a lot
    one = interval(seeds[1:2], "R1")
    three = interval(seeds, "R1")
    assert three.half_width > 3 * one.half_width and three.df == pytest.approx(2, rel=0.05)


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
    noisy = paired_difference([_pq(better)], [_pq(base)], "R1", seed_var=SeedVariance(4.0, np.inf))
    assert noisy.se == pytest.approx(np.sqrt(d.var_query + 8.0), rel=1e-6)  # var_seed = 4 * (1 + 1) / 1
    with pytest.raises(ValueError, match="same number of seeds"):
        paired_difference([_pq(base)], [_pq(base), _pq(base)], "R1")


def test_satterthwaite_and_holm_known_values():
    assert satterthwaite_df([(1.0, np.inf), (1.0, 10.0)]) == pytest.approx(40.0)  # (1+1)^2 / (1/10)
    assert satterthwaite_df([(2.0, 5.0)]) == pytest.approx(5.0)
    assert holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])


def test_tost_verdicts():
    assert tost(contrast_interval(0.1, np.linspace(-0.5, 0.7, 200), 1, 2, None), 1.0) == "equivalent"
    assert tost(contrast_interval(2.0, np.linspace(1.5, 2.5, 200), 1, 2, None), 1.0) == "not equivalent"
    assert tost(contrast_interval(0.8, np.linspace(0.3, 1.3, 200), 1, 2, None), 1.0) == "unresolved"
    assert tost(contrast_interval(-2.0, np.linspace(-2.5, -1.5, 200), 1, 2, None), 1.0) == "not equivalent"


def test_one_sided_p_matches_the_interval():
    x = contrast_interval(1.0, np.zeros(10), 1, 2.0, SeedVariance(0.5, np.inf))  # se = 1, normal
    p_for, p_against = one_sided_p(x, +1)
    assert p_for == pytest.approx(0.1587, abs=1e-3) and p_against == pytest.approx(0.8413, abs=1e-3)


def test_seeds_needed_known_answer():
    """No query noise, sigma2 = 1, a difference (sum w^2 = 2), effect 1, known variance (normal quantiles):
    S >= 2 (1.96 + 0.84)^2 = 15.7, so 16 seeds."""
    sv = SeedVariance(1.0, np.inf)
    assert seeds_needed(1.0, 0.0, sv, 2.0) == 16
    assert seeds_needed(2.0, 0.0, sv, 2.0) == 4
    assert seeds_needed(1.0, 1.0, sv, 2.0) == np.inf  # query noise alone is too large
    assert np.isnan(seeds_needed(1.0, 0.0, None, 2.0))
    # equivalence: margin 1, true difference 0: gap 1, same quantiles -> 16
    assert seeds_needed(0.0, 0.0, sv, 2.0, margin=1.0) == 16
    # an estimated variance (df 10) needs more seeds than a known one
    assert seeds_needed(1.0, 0.0, SeedVariance(1.0, 10.0), 2.0) > 16


@pytest.mark.parametrize("lo,hi,paper,expected", [
    (0.5, 2.0, 1.3, "reproduced"), (-2.0, -0.5, 1.3, "contradicted"), (-0.5, 2.0, 1.3, "unresolved"),
    (-2.0, -0.5, -0.4, "reproduced"), (0.5, 2.0, -0.4, "contradicted"), (0.5, 2.0, 0.0, "unresolved"),
    (0.5, 2.0, float("nan"), "unresolved"),
])
def test_verdict_rules(lo, hi, paper, expected):
    assert verdict(lo, hi, paper) == expected


def test_the_identity_clustered_bootstrap_resamples_identities():
    """Scores constant within each of 50 identities of 4 queries: resampling queries understates the variance
    of the mean by the cluster size (4); resampling identities gets the between-identity variance / 50."""
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(50), 4)
    u = rng.normal(0, 10, 50)
    y = u[ids][None, :]  # one seed, 200 queries
    plain = stats.draw_means(y, stats.draw_design(1, 200, 4000, np.random.default_rng(1)))
    clustered = stats.draw_means(y, stats.draw_design(1, 200, 4000, np.random.default_rng(1), clusters=ids))
    expected = np.var(u) / 50
    assert np.var(clustered) == pytest.approx(expected, rel=0.1)
    assert np.var(clustered) / np.var(plain) == pytest.approx(4.0, rel=0.15)
    design = stats.draw_design(1, 200, 10, np.random.default_rng(2), clusters=ids)
    # every query of an identity is drawn as often as its identity
    assert (design.query_counts.reshape(10, 50, 4).std(axis=2) == 0).all()
    with pytest.raises(ValueError, match="one identity per query"):
        stats.draw_design(1, 200, 10, np.random.default_rng(2), clusters=ids[:10])
