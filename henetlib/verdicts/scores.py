"""Our per-query scores for the claims: every configuration's per-query results per seed, collected once from
the run cache (training what is missing, or not), with each run's regime. Below both
:mod:`henetlib.verdicts.scoreboard` (which scores them) and :mod:`henetlib.verdicts.noise` (which estimates the
seed noise from them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from henetlib.engine import cache
from henetlib.engine.regime import regime_of
from henetlib.stats import per_query_scores
from henetlib.study import grids as study_grids
from henetlib.study import tables as study_tables

# ---------------------------------------------------------------------------------------------------------
# Our scores


@dataclass
class StudyScores:
    """Per grid and configuration key, the per-query dict of each seed (None: not run), and each
    configuration's seedless identity (to merge the runs grids share)."""

    seeds: tuple[int, ...]
    per_query: dict[str, dict] = field(default_factory=dict)
    ident: dict[tuple, str] = field(default_factory=dict)
    # each query's identity, in query order: the bootstrap resamples identities (their queries are correlated)
    query_pids: np.ndarray | None = None
    # per grid and key, the regime of each seed's run (henetlib.engine.regime; None: not run)
    regime: dict[str, dict] = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False)

    def scores(self, grid: str, key, metric: str) -> np.ndarray | None:
        """(S, Q) per-query scores, or None when any seed is missing."""
        ck = (grid, key, metric)
        if ck not in self._cache:
            lst = self.per_query.get(grid, {}).get(key)
            ok = lst and len(lst) == len(self.seeds) and all(x for x in lst)
            self._cache[ck] = np.stack([per_query_scores(pq, metric) for pq in lst]) if ok else None
        return self._cache[ck]

    def subset(self, idx: Sequence[int]) -> StudyScores:
        """The same runs restricted to the seeds at positions ``idx``."""
        out = StudyScores(tuple(self.seeds[i] for i in idx), ident=dict(self.ident), query_pids=self.query_pids)
        for g, d in self.per_query.items():
            out.per_query[g] = {k: [lst[i] for i in idx] for k, lst in d.items() if len(lst) == len(self.seeds)}
        for g, d in self.regime.items():
            out.regime[g] = {k: [lst[i] for i in idx] for k, lst in d.items() if len(lst) == len(self.seeds)}
        return out

    def regimes(self, grid: str, keys) -> list[str]:
        """The regimes of every run behind ``keys`` (all seeds); runs that predate the check: "unknown"."""
        return [r for k in keys for r in self.regime.get(grid, {}).get(k, []) if r is not None]

    def kind(self, grid: str, key) -> str:
        """The noise kind of a configuration: "occlusion" (a Fig. 5 cell), "erasing" (trained with RE, RPE
        or both) or "none" (trained without erasing). Erasing runs vary more from seed to seed."""
        if grid == "fig5":
            return "occlusion"
        ident = self.ident.get((grid, key))
        try:
            erasing = json.loads(ident).get("erasing", "none") if ident else "none"
        except ValueError:
            erasing = "none"
        return "none" if erasing == "none" else "erasing"

    def n_queries(self) -> int | None:
        for g in self.per_query.values():
            for lst in g.values():
                if lst and all(lst):
                    return len(lst[0]["first_rank"])
        return None


def _seedless(cfg) -> str:
    d = dict(cfg.identity())
    d.pop("seed", None)
    return json.dumps(d, sort_keys=True, default=str)


def collect(ctx, grids: set[str] | None = None, train: bool = True, progress: bool = False) -> StudyScores:
    """Every claim's per-query results for ``ctx`` (its profile and seeds). ``train=False`` trains nothing:
    rows whose runs are missing are left out (their rows: "not run")."""

    grids = {"table1", "table2", "table3", "table4", "fig4", "fig5"} if grids is None else grids
    out = StudyScores(tuple(ctx.seeds), query_pids=study_tables.query_pids(ctx))
    tables = {"table1": study_grids.table1_configs, "table2": study_grids.table2_configs, "table3": study_grids.table3_configs,
              "table4": study_grids.table4_configs, "fig4": study_grids.fig4_configs}
    for grid, fn in tables.items():
        if grid not in grids:
            continue
        rows = fn(ctx.profile, ctx.seeds, **ctx.common)
        cfgs = [r[-1] for r in rows]
        res = cache.sweep(cfgs, progress=progress) if train else [cache.lookup(c, cache.dataset_for(c)) for c in cfgs]
        for r, x in zip(rows, res, strict=True):
            key = (r[0], float(r[1])) if grid == "fig4" else r[0]
            out.per_query.setdefault(grid, {}).setdefault(key, []).append(x.per_query if x else None)
            out.regime.setdefault(grid, {}).setdefault(key, []).append(regime_of(x.regime) if x else None)
            out.ident[(grid, key)] = _seedless(r[-1])
    if "fig5" in grids:
        try:
            df, _ = study_tables.fig5(ctx, progress=progress) if train else _fig5_cached(ctx)
        except (FileNotFoundError, KeyError, ValueError):  # runs or their occlusion data missing
            return out
        models = {label: _seedless(c) for label, c in study_grids.fig5_configs(ctx.profile, ctx.seeds[0], **ctx.common)}
        trained_regime: dict[str, list] = {}  # Fig. 5's cells inherit the regime of the model they test
        for seed in ctx.seeds:
            for label, c in study_grids.fig5_configs(ctx.profile, seed, **ctx.common):
                r = cache.lookup(c, cache.dataset_for(c))
                trained_regime.setdefault(label, []).append(regime_of(r.regime) if r else None)
        for (trained, test, level), lst in df.attrs["per_query"].items():
            key = (trained, test, float(level))
            out.per_query.setdefault("fig5", {})[key] = [x if x else None for x in lst]
            out.ident[("fig5", key)] = f"{models.get(trained)}|{test if level > 0 else 'clean'}|{float(level):g}"
            out.regime.setdefault("fig5", {})[key] = trained_regime.get(trained, [])
    return out


def _fig5_cached(ctx):

    ds = ctx.dataset()
    for seed in ctx.seeds:
        for _, c in study_grids.fig5_configs(ctx.profile, seed, **ctx.common):
            if cache.lookup(c, ds) is None:
                raise FileNotFoundError(c.name())
    return study_tables.fig5(ctx, progress=False)


def per_query_by_label(ctx, grids: set[str] | None = None, progress: bool = False,
                       train: bool = True) -> dict[str, dict]:
    """{grid: {key: [per-query dict per seed]}} (the first API; :func:`collect` adds identities)."""
    return collect(ctx, grids, train, progress).per_query
