"""Training noise for one-seed studies: a seed-noise model estimated once from multi-seed runs.

A one-seed interval covers the query sampling only. Training the whole study again with a second seed does not
fit the 10-minute budget, so the seed-to-seed variance is estimated once, from a multi-seed run of the study,
and stored with its provenance in ``published/noise/<profile>.json``; every default interval then adds it
(:func:`henetlib.stats.contrast_interval`).

**The model.** For configurations c = 1..C run with the same seeds s = 1..S, the score (R1 or mAP, the mean
over the query set) is ``x[c, s] = mu[c] + g[s] + e[c, s]``: ``g[s]`` is what a seed does to every
configuration alike (the same initial weights and batch order), which cancels in any contrast whose weights sum
to zero; ``e`` is the training noise a contrast sees, with variance sigma2. sigma2 is the two-way residual mean
square, with ``df = (C - 1)(S - 1)`` degrees of freedom; a contrast ``sum w_c x_c`` over S seeds then has seed
variance ``sigma2 * sum(w^2) / S``. The variance estimate is uncertain: intervals use a t quantile with
Welch-Satterthwaite df, and the scaled-chi-square interval of sigma2 is stored for reference. Two groups are
estimated separately: ``trained`` (Tables 1-4, Fig. 4: one configuration, one training run) and
``occlusion`` (Fig. 5's cells: one trained model scored under test-time occlusion, whose random masks add
their own noise).

**Assumption checked.** One sigma2 for all configurations of a group: :func:`equal_variance_check` runs the
Brown-Forsythe test (Levene's test about the median) on the residuals grouped by configuration, and Bartlett's
test beside it; both are stored with the estimate.

**Stale.** The estimate belongs to a profile's settings, its data set and the code that trains: a changed
code version marks it *stale* (still used, and every caption says so); changed profile settings, overrides or
data set make it *not applicable* (not used: verdicts are query-level only, and say so).

**Check mode.** :func:`check` trains a second seed of a few configurations chosen in advance (those that
appear in most claims, :func:`check_configs`) and compares their seed-to-seed differences with the model:
``sum_c (d_c - mean d)^2 / (2 sigma2 (C - 1))`` follows F(C - 1, df) when the model holds; p < 0.05 flags
drift.

Commands: ``python -m henetlib noise estimate --profile smoke --seeds 0,1,2,3,4`` (trains what is missing) and
``python -m henetlib noise check --profile smoke``.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

import numpy as np
from scipy import stats as sps

from henetlib.engine import cache
from henetlib.stats import METRICS, SeedVariance, per_query_scores
from henetlib.study import grids as study_grids
from henetlib.study.noise_model import (
    GROUPS,
    NoiseModel,
    NoiseStatus,
    _overrides,
    _profile_settings,
    kind_of,
    status,
)
from henetlib.system.runtime import git_commit
from henetlib.verdicts.claims import for_profile
from henetlib.verdicts.scores import collect

CHECK_SEED = 1
N_CHECK = 4
DRIFT_P = 0.05


# ---------------------------------------------------------------------------------------------------------
# Estimation


def residual_variance(x: np.ndarray) -> tuple[float, int, np.ndarray]:
    """(sigma2, df, residuals) of ``x`` (C, S): the two-way configuration x seed residual mean square."""
    x = np.asarray(x, dtype=np.float64)
    c, s = x.shape
    r = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()
    df = (c - 1) * (s - 1)
    return (float((r**2).sum() / df) if df > 0 else np.nan), df, r


def equal_variance_check(x: np.ndarray) -> dict[str, Any]:
    """Is the seed variance the same for every configuration? ``x`` (C, S): per configuration, its score per
    seed. Brown-Forsythe (Levene about the median) and Bartlett on the two-way residuals grouped by
    configuration (the shared seed effect removed first). ``equal`` is False when Brown-Forsythe's p < 0.05.
    The residuals of one configuration sum to zero, so the tests are approximate; with S >= 5 they are usable."""
    _, _, r = residual_variance(x)
    groups = [row for row in r]
    bf = sps.levene(*groups, center="median")
    bt = sps.bartlett(*groups)
    sd = r.std(axis=1, ddof=1) * np.sqrt(r.shape[1] / max(r.shape[1] - 1, 1))
    return {"test": "Brown-Forsythe", "statistic": float(bf.statistic), "p": float(bf.pvalue),
            "bartlett_statistic": float(bt.statistic), "bartlett_p": float(bt.pvalue),
            "equal": bool(bf.pvalue >= 0.05), "configs": int(r.shape[0]), "seeds": int(r.shape[1]),
            "sd_min": float(sd.min()), "sd_max": float(sd.max())}


def per_seed_matrix(data, group: str, metric: str) -> tuple[np.ndarray, list[str]]:
    """(C, S) mean scores of every distinct configuration of ``group`` in a StudyScores, and their names;
    configurations several grids share (Table 4's all-losses row is Fig. 4's p = 0 point ...) count once."""
    rows, names, seen = [], [], set()
    grids = ("fig5",) if group == "occlusion" else ("table1", "table2", "table3", "table4", "fig4")
    for grid in grids:
        for key in data.per_query.get(grid, {}):
            if grid == "fig5" and key[2] == 0:  # clean cells are the trained models' own scores
                continue
            if data.kind(grid, key) != group:
                continue
            ident = data.ident.get((grid, key), f"{grid}|{key}")
            if ident in seen:
                continue
            s = data.scores(grid, key, metric)
            if s is None:
                continue
            seen.add(ident)
            rows.append(np.nanmean(s, axis=1))
            names.append(f"{grid}:{key}")
    return (np.stack(rows) if rows else np.zeros((0, len(data.seeds)))), names


def estimate_from_scores(data) -> dict[tuple[str, str], SeedVariance]:
    """{(group, metric): SeedVariance} from a multi-seed StudyScores (empty with one seed)."""
    out = {}
    if len(data.seeds) < 2:
        return out
    for g in GROUPS:
        for m in METRICS:
            x, _ = per_seed_matrix(data, g, m)
            if x.shape[0] >= 2:
                var, df, _ = residual_variance(x)
                out[(g, m)] = SeedVariance(var, float(df), f"{len(data.seeds)} seeds x {x.shape[0]} configurations")
    return out


def estimate(ctx, train: bool = True, progress: bool = True, data=None) -> NoiseModel:
    """The noise model of ``ctx``'s profile from its seeds (at least 2; 5 or more for a usable check of the
    equal-variance assumption). Trains what is missing when ``train``."""
    if len(ctx.seeds) < 2:
        raise ValueError(f"a noise model needs at least two seeds, got {ctx.seeds}.")
    data = data or collect(ctx, train=train, progress=progress)
    est: dict[str, dict[str, dict[str, float]]] = {}
    eqv: dict[str, dict[str, dict[str, Any]]] = {}
    for g in GROUPS:
        for m in METRICS:
            x, names = per_seed_matrix(data, g, m)
            if x.shape[0] < 2:
                continue
            var, df, _ = residual_variance(x)
            within = run_variance(x)
            sv = SeedVariance(var, float(df))
            lo, hi = sv.interval()
            est.setdefault(g, {})[m] = {"var": var, "df": float(df), "sd": float(np.sqrt(var)), "var_ci95": [lo, hi],
                                        "var_within": within, "configs": int(x.shape[0])}
            eqv.setdefault(g, {})[m] = equal_variance_check(x) if x.shape[1] >= 3 else {"test": "too few seeds"}
    ds = ctx.dataset()
    return NoiseModel(ctx.profile, _profile_settings(ctx.profile), _overrides(ctx), cache.code_version(), ds.name,
                      ds.fingerprint(), list(ctx.seeds), git_commit(), time.strftime("%Y-%m-%dT%H:%M:%S"),
                      est, eqv, [c.name() for c in check_configs(ctx)])


# ---------------------------------------------------------------------------------------------------------
# Check mode


def check_configs(ctx, n: int = N_CHECK) -> list:
    """The ``n`` trained configurations (seed 0) that appear in the most claims of the profile, chosen from
    the claim list alone (never from results): the runs a second seed checks first."""
    tables = {"table1": study_rows(ctx, "table1"), "table2": study_rows(ctx, "table2"),
              "table3": study_rows(ctx, "table3"), "table4": study_rows(ctx, "table4"),
              "fig4": study_rows(ctx, "fig4")}
    counts: dict[str, int] = {}
    cfg_of: dict[str, Any] = {}
    for c in for_profile(ctx.profile):
        if c.grid not in tables or c.kind == "efficiency":
            continue
        used = set()
        for row in c.rows:
            for k, _ in row.weights:
                cfg = tables[c.grid].get(k)
                if cfg is not None:
                    used.add(json.dumps(cfg.identity(), sort_keys=True, default=str))
                    cfg_of[json.dumps(cfg.identity(), sort_keys=True, default=str)] = cfg
        for u in used:
            counts[u] = counts.get(u, 0) + 1
    order = sorted(counts, key=lambda u: (-counts[u], u))
    return [cfg_of[u] for u in order[:n]]


def study_rows(ctx, grid: str) -> dict:
    """{key: seed-0 config} of one grid, keys as the claims name them."""

    fn = {"table1": study_grids.table1_configs, "table2": study_grids.table2_configs, "table3": study_grids.table3_configs,
          "table4": study_grids.table4_configs, "fig4": study_grids.fig4_configs}[grid]
    rows = fn(ctx.profile, (0,), **ctx.common)
    return {((r[0], float(r[1])) if grid == "fig4" else r[0]): r[-1] for r in rows}


def check(ctx, train: bool = True, seed: int = CHECK_SEED, st: NoiseStatus | None = None,
          progress: bool = False) -> dict[str, Any]:
    """Second-seed runs of :func:`check_configs` against the noise model's prediction, per metric: the
    observed and predicted seed-to-seed SD, the F statistic and its p; ``drift`` when p < 0.05 (the runs
    vary more than the model says) for either metric."""
    st = st or status(ctx)
    out: dict[str, Any] = {"profile": ctx.profile, "note": st.note, "drift": False, "metrics": {}}
    if not st.usable:
        out["skipped"] = "no applicable noise model"
        return out
    base = check_configs(ctx)
    pairs = [(c, replace(c, seed=seed)) for c in base]
    res = []
    for a, b in pairs:
        ds = cache.dataset_for(a)
        ra = cache.lookup(a, ds) if not train else cache.run(a, progress=progress)
        rb = cache.lookup(b, ds) if not train else cache.run(b, progress=progress)
        if ra is None or rb is None or not ra.per_query or not rb.per_query:
            out["skipped"] = f"missing runs ({a.name()} or its seed {seed})"
            return out
        res.append((ra, rb))
    out["configs"] = [a.name() for a, _ in pairs]
    for m in METRICS:
        svs = [st.model.seed_variance(kind_of(a), m) for a, _ in pairs]
        if any(sv is None for sv in svs):
            out["skipped"] = f"the noise model has no {m} estimate for every check configuration's kind"
            return out
        d = np.array([np.nanmean(per_query_scores(rb.per_query, m)) - np.nanmean(per_query_scores(ra.per_query, m))
                      for ra, rb in res])
        # each configuration's difference in units of its own kind's sd, then the test of one pooled model
        scale = np.sqrt(np.array([sv.var for sv in svs]) / np.mean([sv.var for sv in svs]))
        pooled = SeedVariance(float(np.mean([sv.var for sv in svs])), float(min(sv.df for sv in svs)), svs[0].source)
        out["metrics"][m] = drift_test(d / scale, pooled)
        out["drift"] = out["drift"] or out["metrics"][m]["drift"]
    return out


def drift_test(d: np.ndarray, sv: SeedVariance) -> dict[str, Any]:
    """``d``: per configuration, seed b minus seed a. Centred (the seed effect shared by every configuration
    cancels), ``sum (d - mean d)^2 / (2 sigma2)`` is chi2(C - 1) under the model, and divided by C - 1 it is
    F(C - 1, df) when sigma2 is itself estimated with df degrees of freedom."""
    c = len(d)
    ss = float(((d - d.mean()) ** 2).sum())
    f = ss / (2 * sv.var * (c - 1))
    p = float(sps.f.sf(f, c - 1, sv.df)) if np.isfinite(sv.df) else float(sps.chi2.sf(f * (c - 1), c - 1))
    return {"observed_sd": float(np.sqrt(ss / (2 * (c - 1)))), "predicted_sd": float(np.sqrt(sv.var)), "F": f,
            "p": p, "drift": bool(p < DRIFT_P), "configs": c}


def compare_verdicts(default, reference) -> dict[str, Any]:
    """How the default scoreboard (seed 0 + noise model) agrees with a reference one (many seeds), row by
    row (claim, comparison, metric): counts of equal verdicts, of resolved defaults the reference leaves
    unresolved, of *opposite* verdicts (reproduced vs contradicted: the failure the design must avoid), and
    how often the default interval covers the reference's estimate."""
    keys = ["claim", "comparison", "metric"]
    m = default.merge(reference, on=keys, suffixes=("", "_ref"))
    m = m[(m["verdict"] != "not run") & (m["verdict_ref"] != "not run")]
    pair = set(zip(m["verdict"], m["verdict_ref"], strict=True))
    opposite = {("reproduced", "contradicted"), ("contradicted", "reproduced")}
    flips = [(a, b) for a, b in zip(m["verdict"], m["verdict_ref"], strict=True) if (a, b) in opposite]
    covered = (m["lo"] <= m["ours diff_ref"]) & (m["ours diff_ref"] <= m["hi"])
    table = {f"{a} -> {b}": int(((m["verdict"] == a) & (m["verdict_ref"] == b)).sum()) for a, b in sorted(pair)}
    return {"rows": int(len(m)), "agree": int((m["verdict"] == m["verdict_ref"]).sum()), "opposite": len(flips),
            "resolved_default_unresolved_ref": int(((m["verdict"] != "unresolved")
                                                    & (m["verdict_ref"] == "unresolved")).sum()),
            "coverage": float(covered.mean()) if len(m) else float("nan"), "transitions": table}


def run_variance(x: np.ndarray) -> float:
    """ONE run's seed-to-seed variance from ``x`` (C, S), per configuration its score per seed: the mean of the
    configurations' sample variances (df = C (S - 1)). The seed effect shared by all configurations is
    included, as it is in a single new run (unlike :func:`residual_variance`, which a contrast needs)."""
    return float(np.var(np.asarray(x, dtype=np.float64), axis=1, ddof=1).mean())


def held_out_check(data, level: float = 0.95) -> dict[str, dict[str, dict[str, float]]]:
    """How well one configuration's seed variance predicts a new run, per noise kind and metric: seed
    ``data.seeds[0]`` against the mean of the other seeds, ``z = (x0 - mean(rest)) / sqrt(v (1 + 1/(S - 1)))``
    with ``v`` pooled from the held-out seeds only (df = C (S - 2)). When the variance is right, the mean of z^2 is
    about 1 and |z| <= t(df) in about ``level`` of the configurations."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for kind in GROUPS:
        for m in METRICS:
            x, _ = per_seed_matrix(data, kind, m)
            c, s = x.shape
            if c < 2 or s < 3:
                continue
            rest = x[:, 1:]
            v = run_variance(rest)
            df = c * (s - 2)
            z = (x[:, 0] - rest.mean(axis=1)) / np.sqrt(v * (1 + 1 / (s - 1)))
            t = float(sps.t.ppf(1 - (1 - level) / 2, df))
            out.setdefault(kind, {})[m] = {"configs": c, "mean_z2": float(np.mean(z**2)),
                                           "covered": float(np.mean(np.abs(z) <= t)), "sd": float(np.sqrt(v))}
    return out
