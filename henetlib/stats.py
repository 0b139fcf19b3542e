"""Intervals for R1 and mAP, and verdicts on differences (issue: every claim gets a verdict).

Each cached result keeps, per query, the rank of its first true match and its AP
(``Result.per_query``), so every interval here is recomputed without training:

* one seed: a bootstrap over queries (resample queries with replacement);
* several seeds: a two-level bootstrap, seeds with replacement and then queries within each, so the interval
  includes both the training noise between seeds and the sampling noise of the query set;
* a difference between two configurations is *paired*: both sides are evaluated on the same resampled
  queries (and the same resampled seed indices), which removes the query-set noise they share.

All intervals are percentile intervals at 95% from ``n_boot`` draws (1,000 by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

METRICS = ("R1", "mAP")
VERDICTS = ("reproduced", "contradicted", "unresolved")


def per_query_scores(per_query: dict, metric: str) -> np.ndarray:
    """(Q,) per-query scores in % (R1: 100 if the first true match is at rank 1; mAP: 100 x AP); NaN for
    queries the protocol skips (no true match)."""
    ranks = np.asarray(per_query["first_rank"], dtype=np.int64)
    if metric == "R1":
        return np.where(ranks > 0, 100.0 * (ranks == 1), np.nan)
    if metric == "mAP":
        return 100.0 * np.array([np.nan if a is None else a for a in per_query["ap"]], dtype=np.float64)
    raise ValueError(f"metric must be one of {METRICS}, got {metric!r}.")


@dataclass
class Interval:
    mean: float
    lo: float
    hi: float
    n_seeds: int

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2

    def __str__(self) -> str:
        return f"{self.mean:.1f} ± {self.half_width:.1f}"


def draw_indices(n_seeds: int, n_queries: int, n_boot: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray]]:
    """One bootstrap design: (n_boot, S) resampled seed slots (all 0 for one seed) and, per slot, (n_boot, Q)
    resampled queries. Reusing one design for several configurations pairs them."""
    seed_idx = (rng.integers(0, n_seeds, (n_boot, n_seeds)) if n_seeds > 1
                else np.zeros((n_boot, 1), dtype=np.int64))
    return seed_idx, [rng.integers(0, n_queries, (n_boot, n_queries)) for _ in range(n_seeds)]


def draw_means(scores: Sequence[np.ndarray], n_boot: int, rng: np.random.Generator,
               seed_idx: np.ndarray | None = None, query_idx: list[np.ndarray] | None = None) -> np.ndarray:
    """(n_boot,) bootstrap means. ``scores``: one (Q,) array per seed (NaN = skipped query, same Q in all).
    Without a design (:func:`draw_indices`) a fresh one is drawn from ``rng``."""
    s = np.stack(scores)  # (S, Q)
    if seed_idx is None or query_idx is None:
        seed_idx, query_idx = draw_indices(*s.shape, n_boot, rng)
    out = np.zeros(n_boot)
    for j in range(seed_idx.shape[1]):
        rows = s[seed_idx[:, j]]  # (B, Q): the seed drawn in slot j
        picked = np.take_along_axis(rows, query_idx[j], axis=1)
        out += np.nanmean(picked, axis=1)
    return out / seed_idx.shape[1]


def interval(per_queries: Sequence[dict], metric: str, n_boot: int = 1000, seed: int = 0) -> Interval:
    """Mean over seeds of ``metric`` with its 95% bootstrap interval (queries, and seeds when several)."""
    if not per_queries or any(not pq for pq in per_queries):
        raise ValueError("interval needs every result's per-query vectors (results trained before they "
                         "were stored have none: retrain them).")
    scores = [per_query_scores(pq, metric) for pq in per_queries]
    rng = np.random.default_rng(seed)
    draws = draw_means(scores, n_boot, rng)
    mean = float(np.mean([np.nanmean(x) for x in scores]))
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return Interval(mean, float(lo), float(hi), len(scores))


def paired_difference(a: Sequence[dict], b: Sequence[dict], metric: str, n_boot: int = 1000,
                      seed: int = 0) -> Interval:
    """``a`` minus ``b`` (means over seeds) with a paired 95% bootstrap interval: both sides see the same
    resampled queries, and seed slot j of ``a`` is paired with seed slot j of ``b``."""
    if len(a) != len(b) or not a:
        raise ValueError(f"paired_difference needs the same number of seeds on both sides, got {len(a)} and {len(b)}.")
    sa = [per_query_scores(pq, metric) for pq in a]
    sb = [per_query_scores(pq, metric) for pq in b]
    if sa[0].shape != sb[0].shape:
        raise ValueError("paired_difference needs results on the same queries.")
    rng = np.random.default_rng(seed)
    design = draw_indices(len(sa), len(sa[0]), n_boot, rng)
    draws = draw_means(sa, n_boot, rng, *design) - draw_means(sb, n_boot, rng, *design)
    mean = float(np.mean([np.nanmean(x) for x in sa]) - np.mean([np.nanmean(x) for x in sb]))
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return Interval(mean, float(lo), float(hi), len(sa))


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
