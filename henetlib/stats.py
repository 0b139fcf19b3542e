"""Intervals for R1 and mAP, and verdicts on contrasts between configurations.

Each cached result keeps, per query, the rank of its first true match and its AP (``Result.per_query``), so
every interval here is recomputed without training. Two sources of noise enter an interval:

* **query sampling.** A bootstrap over queries. The queries are the same for every seed and every
  configuration (a *crossed* design, not queries nested in seeds), so one query resample per draw is shared
  by every seed slot and every configuration. That pairs configurations (the query noise they share cancels
  in a difference) and keeps the query part of the variance at its full size (a fresh resample per seed slot
  would shrink it by about 1/S).
* **training noise** (seed to seed). With one seed it is invisible in the data; it comes from a noise model
  estimated once from multi-seed runs (:mod:`henetlib.verdicts.noise`), with its own uncertainty (a variance estimate
  with ``df`` degrees of freedom). With a few seeds of our own, a percentile bootstrap over seeds is too
  coarse (three seeds give 10 distinct multisets), so the seed part is a variance with S - 1 degrees of
  freedom instead.

The interval of a linear contrast ``c = sum_k w_k * score_k`` (a difference, a slope, a difference of drops) is
``c +- t(df) * sqrt(var_query + var_seed)``: ``var_query`` from the query bootstrap, ``var_seed =
sigma2 * sum(w^2) / S`` from the seed variance ``sigma2``, and ``df`` by Welch-Satterthwaite (the query part
counts as exactly known: thousands of draws over hundreds of queries). With no seed variance at all the
interval is the query bootstrap's percentile interval, and it is labelled *query-level only*.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

METRICS = ("R1", "mAP")
LEVEL = 0.95


def per_query_scores(per_query: dict, metric: str) -> np.ndarray:
    """(Q,) per-query scores in % (R1: 100 if the first true match is at rank 1; mAP: 100 x AP); NaN for
    queries the protocol skips (no true match)."""
    ranks = np.asarray(per_query["first_rank"], dtype=np.int64)
    if metric == "R1":
        return np.where(ranks > 0, 100.0 * (ranks == 1), np.nan)
    if metric == "mAP":
        return 100.0 * np.array([np.nan if a is None else a for a in per_query["ap"]], dtype=np.float64)
    raise ValueError(f"metric must be one of {METRICS}, got {metric!r}.")


def scored_queries(per_query: dict) -> tuple[int, int]:
    """(queries scored, queries in all): a query without a cross-camera true match is skipped by the protocol
    (first rank -1, AP None)."""
    ranks = per_query.get("first_rank", [])
    return sum(r > 0 for r in ranks), len(ranks)


def query_count_clause(per_query: dict | list[dict]) -> str:
    """"R1 and mAP over 413 of 414 queries (1 without a cross-camera match)" for one run or several runs on the
    same queries."""
    pqs = per_query if isinstance(per_query, list) else [per_query]
    counts = {scored_queries(pq) for pq in pqs if pq}
    if not counts:
        return "no per-query scores"
    scored, total = min(counts)
    skipped = total - scored
    return (f"R1 and mAP over {scored} of {total} queries"
            + (f" ({skipped} without a cross-camera match)" if skipped else " (every query has a cross-camera match)"))


@dataclass(frozen=True)
class SeedVariance:
    """Seed-to-seed variance ``var`` (points^2) of one configuration's score, estimated with ``df`` degrees of
    freedom; ``source`` says where it comes from (a noise model, or the context's own seeds)."""

    var: float
    df: float
    source: str = ""

    def interval(self, level: float = LEVEL) -> tuple[float, float]:
        """The scaled-chi-square interval of the variance itself: df * var / chi2(df)."""
        if not np.isfinite(self.df) or self.df <= 0:
            return (np.nan, np.nan)
        a = (1 - level) / 2
        return (self.df * self.var / sps.chi2.ppf(1 - a, self.df), self.df * self.var / sps.chi2.ppf(a, self.df))


@dataclass
class Interval:
    mean: float
    lo: float
    hi: float
    n_seeds: int
    se: float = np.nan
    df: float = np.inf
    var_query: float = np.nan
    var_seed: float = 0.0
    basis: str = "query-level only"  # or "query + seed (<source>)"

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2

    def __str__(self) -> str:
        return f"{self.mean:.1f} ± {self.half_width:.1f}"


# ---------------------------------------------------------------------------------------------------------
# The bootstrap design: counts, so that a resampled mean over NaN-holed scores is one matrix product.


@dataclass
class Design:
    """One crossed bootstrap design: ``query_counts`` (B, Q), how often each query is drawn in each draw,
    shared by every seed slot and every configuration; ``seed_counts`` (B, S) the same for seeds, or None
    when seeds are not resampled (each draw averages the seeds as they are)."""

    query_counts: np.ndarray
    seed_counts: np.ndarray | None = None

    @property
    def n_boot(self) -> int:
        return self.query_counts.shape[0]


def _counts(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    idx = rng.integers(0, n, (n_boot, n)) + n * np.arange(n_boot)[:, None]
    return np.bincount(idx.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def draw_design(n_seeds: int, n_queries: int, n_boot: int, rng: np.random.Generator,
                resample_seeds: bool = False, clusters: Sequence | np.ndarray | None = None) -> Design:
    """A crossed design: one query resample per draw for all seeds (and, with ``resample_seeds``, one seed
    resample per draw). Reusing one design for several configurations pairs them.

    ``clusters`` (Q,): each query's identity. Queries of one identity share its appearance, so their scores are
    correlated; the draw then resamples identities with replacement and takes every query of each drawn
    identity (a cluster bootstrap), which keeps that correlation in the variance. Resampling single queries
    understates the variance of a difference when queries are clustered."""
    seeds = _counts(n_seeds, n_boot, rng) if resample_seeds and n_seeds > 1 else None
    if clusters is None:
        return Design(_counts(n_queries, n_boot, rng), seeds)
    labels = np.asarray(clusters)
    if labels.shape != (n_queries,):
        raise ValueError(f"clusters must give one identity per query ({n_queries}), got shape {labels.shape}.")
    _, which = np.unique(labels, return_inverse=True)
    per_cluster = _counts(int(which.max()) + 1, n_boot, rng)  # (B, C): how often each identity is drawn
    return Design(per_cluster[:, which], seeds)


def draw_means(scores: np.ndarray | Sequence[np.ndarray], design: Design) -> np.ndarray:
    """(B,) bootstrap means of one configuration. ``scores``: (S, Q) per seed and query (NaN = skipped).

    Per draw: the mean over the drawn queries of each seed (NaN queries left out), then the mean over the seed
    slots, weighted by how often each seed is drawn."""
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    valid = np.isfinite(s)
    n = design.query_counts
    per_seed = (n @ np.where(valid, s, 0.0).T) / np.maximum(n @ valid.T.astype(np.float64), 1e-12)  # (B, S)
    if design.seed_counts is None:
        return per_seed.mean(axis=1)
    return (per_seed * design.seed_counts).sum(axis=1) / design.seed_counts.sum(axis=1)


def config_mean(scores: np.ndarray | Sequence[np.ndarray]) -> float:
    """Mean over seeds of the per-seed mean over valid queries."""
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    return float(np.mean(np.nanmean(s, axis=1)))


def crossed_bootstrap_variance(y: np.ndarray) -> float:
    """The exact variance, over the resampling, of the crossed bootstrap's grand mean of ``y`` (S, Q): with the
    two-way decomposition y = m + r_s + c_q + e_sq (sample effects), it is
    ``mean(r^2)/S + mean(c^2)/Q + mean(e^2)/(S Q)`` (seed and query counts are independent multinomials).
    Used to check :func:`draw_means`; it shows the crossed bootstrap counts the interaction about three
    times (Owen 2007), which errs on the wide side."""
    y = np.asarray(y, dtype=np.float64)
    s, q = y.shape
    m = y.mean()
    r = y.mean(axis=1) - m
    c = y.mean(axis=0) - m
    e = y - m - r[:, None] - c[None, :]
    return float((r**2).mean() / s + (c**2).mean() / q + (e**2).mean() / (s * q))


# ---------------------------------------------------------------------------------------------------------
# Linear contrasts with training noise


def satterthwaite_df(parts: Sequence[tuple[float, float]]) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of variance estimates ``(var, df)``; parts with
    infinite df count as known exactly."""
    total = sum(v for v, _ in parts)
    denom = sum(v**2 / d for v, d in parts if np.isfinite(d) and d > 0 and v > 0)
    if total <= 0 or denom == 0:
        return np.inf
    return float(total**2 / denom)


def contrast_interval(estimate: float, draws: np.ndarray, n_seeds: int, sum_w2: float,
                      seed_var: SeedVariance | None, level: float = LEVEL) -> Interval:
    """The interval of a linear contrast from its query-bootstrap ``draws`` (seeds averaged, queries shared)
    and, when given, the seed variance of one configuration: var_seed = sigma2 * sum(w^2) / S (training of
    different configurations is independent given the seed's shared part, which cancels in a contrast whose
    weights sum to zero)."""
    var_q = float(np.var(draws, ddof=1)) if len(draws) > 1 else 0.0
    if seed_var is None or not np.isfinite(seed_var.var):
        a = (1 - level) / 2
        lo, hi = np.percentile(draws, [100 * a, 100 * (1 - a)])
        return Interval(estimate, float(lo), float(hi), n_seeds, np.sqrt(var_q), np.inf, var_q, 0.0,
                        "query-level only")
    var_s = seed_var.var * sum_w2 / n_seeds
    se = float(np.sqrt(var_q + var_s))
    df = satterthwaite_df([(var_q, np.inf), (var_s, seed_var.df)])
    t = float(sps.t.ppf(1 - (1 - level) / 2, df)) if np.isfinite(df) else float(sps.norm.ppf(1 - (1 - level) / 2))
    return Interval(estimate, estimate - t * se, estimate + t * se, n_seeds, se, df, var_q, var_s,
                    f"query + seed ({seed_var.source})")


def pooled_seed_variance(parts: Sequence[tuple[SeedVariance, float]]) -> SeedVariance | None:
    """One seed variance for a contrast whose configurations belong to kinds with their own (runs with erasing
    vary more than runs without): ``parts`` pairs each kind's variance with the sum of the squared weights of its
    configurations; the result, used with ``sum_w2 = 1``, is ``sum_kind sigma2_kind * sum(w^2)`` with
    Welch-Satterthwaite df over the parts (the same df :func:`contrast_interval` then gets with the query part).
    None without parts."""
    if not parts:
        return None
    var = float(sum(sv.var * w2 for sv, w2 in parts))
    df = satterthwaite_df([(sv.var * w2, sv.df) for sv, w2 in parts])
    return SeedVariance(var, df, "; ".join(dict.fromkeys(sv.source for sv, _ in parts)))


def own_seed_variance(per_seed: np.ndarray, source: str = "own seeds") -> SeedVariance | None:
    """The seed variance from ``per_seed`` (C, S) per-seed scores of C configurations run with the same S
    seeds: the residual of a two-way (configuration x seed) layout, df = (C-1)(S-1), so a seed effect shared
    by all configurations (same initial weights, same batches) is not counted; with one configuration, the
    plain variance over seeds (df = S-1). None with one seed."""
    x = np.atleast_2d(np.asarray(per_seed, dtype=np.float64))
    c, s = x.shape
    if s < 2:
        return None
    if c == 1:
        return SeedVariance(float(np.var(x[0], ddof=1)), s - 1.0, source)
    r = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()
    df = (c - 1) * (s - 1)
    return SeedVariance(float((r**2).sum() / df), float(df), source)


def contrast(scores: Mapping, weights: Mapping, design: Design, seed_var: SeedVariance | None = None,
             level: float = LEVEL) -> Interval:
    """``sum_k weights[k] * mean score of k`` with its interval; ``scores[k]`` is (S, Q), the same seeds and
    queries for every k."""
    keys = list(weights)
    est = sum(weights[k] * config_mean(scores[k]) for k in keys)
    draws = sum(weights[k] * draw_means(scores[k], design) for k in keys)
    n_seeds = np.atleast_2d(scores[keys[0]]).shape[0]
    return contrast_interval(float(est), np.asarray(draws), n_seeds, float(sum(w**2 for w in weights.values())),
                             seed_var, level)


def interval(per_queries: Sequence[dict], metric: str, n_boot: int = 1000, seed: int = 0,
             seed_var: SeedVariance | None = None, clusters: Sequence | np.ndarray | None = None) -> Interval:
    """Mean over seeds of ``metric`` with its 95% interval: queries (bootstrap) and training noise.

    The seed part is ``seed_var`` (a noise model's variance of one configuration's score) when given, else
    the variance over this row's own seeds (df = S - 1) when there are several; with one seed and no
    ``seed_var`` the interval is the query bootstrap's (query-level only)."""
    if not per_queries or any(not pq for pq in per_queries):
        raise ValueError("interval needs every result's per-query vectors (results trained before they "
                         "were stored have none: retrain them).")
    s = np.stack([per_query_scores(pq, metric) for pq in per_queries])
    design = draw_design(*s.shape, n_boot, np.random.default_rng(seed), clusters=clusters)
    if seed_var is None and s.shape[0] > 1:
        seed_var = own_seed_variance(np.nanmean(s, axis=1)[None, :])
    return contrast({0: s}, {0: 1.0}, design, seed_var)


def paired_difference(a: Sequence[dict], b: Sequence[dict], metric: str, n_boot: int = 1000,
                      seed: int = 0, seed_var: SeedVariance | None = None,
                      clusters: Sequence | np.ndarray | None = None) -> Interval:
    """``a`` minus ``b`` (means over seeds) with a paired 95% interval: both sides see the same resampled
    queries. ``seed_var`` is one configuration's seed variance (a noise model's); without it, several seeds
    of our own give it (two-way residual, df = S - 1), and one seed gives a query-level interval."""
    if len(a) != len(b) or not a:
        raise ValueError(f"paired_difference needs the same number of seeds on both sides, got {len(a)} and {len(b)}.")
    sa = np.stack([per_query_scores(pq, metric) for pq in a])
    sb = np.stack([per_query_scores(pq, metric) for pq in b])
    if sa.shape != sb.shape:
        raise ValueError("paired_difference needs results on the same queries.")
    design = draw_design(*sa.shape, n_boot, np.random.default_rng(seed), clusters=clusters)
    if seed_var is None and sa.shape[0] > 1:
        seed_var = own_seed_variance(np.stack([np.nanmean(sa, axis=1), np.nanmean(sb, axis=1)]))
    return contrast({"a": sa, "b": sb}, {"a": 1.0, "b": -1.0}, design, seed_var)


# ---------------------------------------------------------------------------------------------------------
# Verdicts


def verdict(lo: float, hi: float, paper_difference: float) -> str:
    """reproduced: the interval lies on the paper's side of 0; contradicted: on the other side; unresolved:
    it contains 0 (or the paper shows no difference to side with)."""
    if paper_difference == 0 or np.isnan(paper_difference) or np.isnan(lo) or np.isnan(hi):
        return "unresolved"
    sign = np.sign(paper_difference)
    if sign * lo > 0 and sign * hi > 0:
        return "reproduced"
    if sign * lo < 0 and sign * hi < 0:
        return "contradicted"
    return "unresolved"


def _cdf(x: float, df: float) -> float:
    return float(sps.t.cdf(x, df) if np.isfinite(df) else sps.norm.cdf(x))


def one_sided_p(iv: Interval, direction: float, shift: float = 0.0) -> tuple[float, float]:
    """(p for, p against): one-sided p-values of ``direction * (contrast - shift) > 0`` and ``< 0``, from the
    interval's estimate, standard error and df (a t statistic). A query-level-only interval uses its
    bootstrap standard error with a normal reference."""
    if not np.isfinite(iv.se) or iv.se <= 0:
        d = direction * (iv.mean - shift)
        return (0.0, 1.0) if d > 0 else (1.0, 0.0) if d < 0 else (1.0, 1.0)
    t = direction * (iv.mean - shift) / iv.se
    return 1.0 - _cdf(t, iv.df), _cdf(t, iv.df)


def holm(pvals: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control, any dependence)."""
    p = np.asarray(pvals, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj


def tost(iv: Interval, margin: float, level: float = LEVEL) -> str:
    """Equivalence by two one-sided tests at (1 - level)/2 each, i.e. the ``level`` interval inside
    (-margin, margin): "equivalent"; the interval wholly beyond the margin (|difference| > margin with the
    same confidence): "not equivalent"; else "unresolved"."""
    if not np.isfinite(iv.lo) or not np.isfinite(iv.hi):
        return "unresolved"
    if -margin < iv.lo and iv.hi < margin:
        return "equivalent"
    if iv.lo > margin or iv.hi < -margin:
        return "not equivalent"
    return "unresolved"


def seeds_needed(effect: float, var_query: float, seed_var: SeedVariance | None, sum_w2: float,
                 margin: float | None = None, power: float = 0.8, level: float = LEVEL,
                 max_seeds: int = 1000) -> float:
    """The number of seeds S at which a contrast of true size ``effect`` would be resolved at ``level`` with
    probability ``power``: the smallest S with ``|effect| >= (t_{1-a/2} + t_power) * se(S)``, where
    ``se(S)^2 = var_query + sigma2 * sum_w2 / S`` (the query part is kept as measured: more seeds do not
    shrink the query sample) and t uses the Satterthwaite df. For an equivalence (``margin``), the true
    difference is taken as ``effect`` (0 if NaN) and the test needs ``margin - |effect| >= (t + t_power) se``.

    Returns inf when even infinitely many seeds would not do (the query noise alone is too large: more
    queries are needed), NaN without a seed variance or an effect."""
    if seed_var is None or not np.isfinite(seed_var.var):
        return np.nan
    if margin is not None:
        gap = margin - abs(0.0 if not np.isfinite(effect) else effect)
        a = 1 - level  # one-sided at (1 - level) / 2 on each side of the margin
    else:
        gap = abs(effect)
        a = 1 - level
    if not np.isfinite(gap) or gap <= 0:
        return np.inf if np.isfinite(gap) else np.nan

    def enough(s: int) -> bool:
        var_s = seed_var.var * sum_w2 / s
        df = satterthwaite_df([(var_query, np.inf), (var_s, seed_var.df)])
        q = (lambda p: sps.t.ppf(p, df)) if np.isfinite(df) else sps.norm.ppf
        return gap >= (q(1 - a / 2) + q(power)) * np.sqrt(var_query + var_s)

    if not enough(max_seeds):
        return np.inf
    lo, hi = 1, max_seeds
    while lo < hi:  # se(S) falls with S: the smallest S that is enough
        mid = (lo + hi) // 2
        if enough(mid):
            hi = mid
        else:
            lo = mid + 1
    return float(lo)
