"""The paper's claims as data, each a paired comparison between configurations, and their verdicts.

A claim says that configuration ``better`` beats configuration ``worse`` (Tables 2-4, Figs. 4-5) or that a
score is higher (Table 1's ES). Its verdict comes from the paired bootstrap of our difference
(:func:`henetlib.stats.paired_difference`): *reproduced* when the 95% interval lies on the paper's side of 0,
*contradicted* when it lies on the other side, *unresolved* when it straddles 0. A difference inside the
noise is never reported as agreement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import paper, study
from .stats import METRICS, paired_difference, verdict


@dataclass(frozen=True)
class Claim:
    """``better`` beats ``worse`` in the study ``grid`` (labels as the study's tables name rows)."""

    id: str
    grid: str  # table2, table3, table4, fig4, fig5, table1
    text: str
    better: str
    worse: str


def _c(cid: str, grid: str, text: str, pairs: list[tuple[str, str]]) -> list[Claim]:
    return [Claim(f"{cid}.{i + 1}" if len(pairs) > 1 else cid, grid, text, b, w) for i, (b, w) in enumerate(pairs)]


_T3 = ["G1", "P4", "R16", "G1+P4", "G1+R16", "P4+R16"]
_T4 = ["CE only", "OIM", "Tri", "MSE", "OIM+Tri", "OIM+MSE", "Tri+MSE"]

CLAIMS: list[Claim] = [
    *_c("T2", "table2", "More stripes help (Table 2)",
        [("P(1,2)", "P(1)"), ("P(1,2,3)", "P(1,2)"), ("P(1,2,3,4)", "P(1,2,3)")]),
    *_c("T3a", "table3", "Each pair of branches beats its single branches (Table 3)",
        [("G1+P4", "G1"), ("G1+P4", "P4"), ("G1+R16", "G1"), ("G1+R16", "R16"), ("P4+R16", "P4"),
         ("P4+R16", "R16")]),
    *_c("T3b", "table3", "G1+P4+R16 beats every single branch and pair (Table 3)",
        [("G1+P4+R16", x) for x in _T3]),
    *_c("T4a", "table4", "Each loss helps over CE alone (Table 4)",
        [("OIM", "CE only"), ("Tri", "CE only"), ("MSE", "CE only")]),
    *_c("T4b", "table4", "All three losses together are best (Table 4)", [("OIM+Tri+MSE", x) for x in _T4]),
    *_c("F4", "fig4", "RPE(20) beats RE at p = 0.5, and RE+RPE(20) beats both (Fig. 4)",
        [("RPE(20)", "RE"), ("RE+RPE(20)", "RE"), ("RE+RPE(20)", "RPE(20)")]),
    *_c("F5a", "fig5", "The RE+RPE-trained model degrades least under the heaviest occlusion (Fig. 5)",
        [("RE+RPE(20)", x) for x in ("none", "RE", "RPE(20)")]),
    *_c("F5b", "fig5", "RE+RPE test-time occlusion hurts most (Fig. 5, right panel)",
        [("RE", "RE+RPE(20)"), ("RPE(20)", "RE+RPE(20)")]),
    *_c("T1", "table1", "HENet(+Both) has the best ES of Table 1's HENet rows (ES from our R1/mAP)",
        [("HENet(+Both)", x) for x in ("HENet(Base)", "HENet(+RPE)", "HENet(+Losses)")]),
]


def es_differences(data: dict[str, list], better: str, worse: str, n_boot: int = 1000,
                   seed: int = 0) -> tuple[float, float, float]:
    """ES(better) - ES(worse) among Table 1's four HENet rows (eqs. 10-11), from our R1/mAP and the paper's
    FD, V and S (architecture constants; our V reproduces them within 4%). The four rows are bootstrapped
    jointly on the same queries, so M2 (the lowest R1) is chosen again in every draw."""
    from .efficiency import ModelStats, efficiency_scores
    from .stats import draw_indices, draw_means, per_query_scores

    names = list(data)
    rng = np.random.default_rng(seed)
    scores = {(n, m): [per_query_scores(pq, m) for pq in data[n]] for n in names for m in ("R1", "mAP")}
    first = scores[(names[0], "R1")]
    design = draw_indices(len(first), len(first[0]), n_boot, rng)  # shared by every row: a joint bootstrap

    def es(draw: bool) -> np.ndarray:
        m = {k: draw_means(v, n_boot, rng, *design) if draw else np.array([np.mean([np.nanmean(x) for x in v])])
             for k, v in scores.items()}
        out = np.zeros(n_boot if draw else 1)
        for i in range(len(out)):
            st = {n: ModelStats(m[(n, "R1")][i], m[(n, "mAP")][i], paper.TABLE1[n]["fd"], paper.TABLE1[n]["v"],
                                paper.TABLE1[n]["s"]) for n in names}
            e = efficiency_scores(st)
            out[i] = e[better] - e[worse]
        return out

    lo, hi = np.percentile(es(True), [2.5, 97.5])
    return float(es(False)[0]), float(lo), float(hi)

def paper_value(grid: str, label: str, metric: str) -> float:
    from .experiments import paper_rows

    if grid in ("table2", "table3", "table4"):
        return paper_rows(grid).get(label, {}).get(metric, np.nan)
    if grid == "table1":
        row = paper.TABLE1.get(label, {})
        return row.get("r1" if metric == "R1" else metric, np.nan)
    if grid == "fig4":
        return paper.FIG4_P05.get(label, {}).get(metric, np.nan)
    return np.nan


def paper_difference(claim: Claim, metric: str) -> float:
    """The paper's own difference in points; NaN where the paper gives the claim in words or as a plot only
    (Fig. 4 except one point, Fig. 5)."""
    return paper_value(claim.grid, claim.better, metric) - paper_value(claim.grid, claim.worse, metric)


def paper_side(claim: Claim, metric: str) -> float:
    """+1 or -1: the side of 0 the paper puts the difference on. Every claim is written better > worse, so
    where the paper gives only words (Figs. 4-5) the side is +1."""
    d = paper_difference(claim, metric)
    return 1.0 if np.isnan(d) else float(np.sign(d))


def _results(configs: list, train: bool, progress: bool) -> list:
    """The results of ``configs``: trained where missing when ``train``, else None where missing."""
    from . import experiments as ex

    if train:
        return ex.sweep(configs, progress=progress)
    return [ex.lookup(c, ex.dataset_for(c)) for c in configs]


def per_query_by_label(ctx, grids: set[str] | None = None, progress: bool = False,
                       train: bool = True) -> dict[str, dict[str, list]]:
    """{grid: {label: [per-query dict per seed]}} from the study's cached (or published) results.

    ``train=False`` trains nothing: rows whose runs are missing are left out (their claims: "not run")."""
    from . import experiments as ex

    out: dict[str, dict[str, list]] = {}
    grids = grids or {c.grid for c in CLAIMS}
    for grid in ("table2", "table3", "table4", "table1"):
        if grid in grids:
            rows = getattr(ex, f"{grid}_configs")(ctx.profile, ctx.seeds, **ctx.common)
            res = _results([r[-1] for r in rows], train, progress)
            for r, x in zip(rows, res, strict=True):
                out.setdefault(grid, {}).setdefault(r[0], []).append(x.per_query if x else None)
    if "fig4" in grids:
        rows = [r for r in study.fig4_configs(ctx.profile, ctx.seeds, (0.5,), **ctx.common) if r[1] == 0.5]
        res = _results([r[-1] for r in rows], train, progress)
        for r, x in zip(rows, res, strict=True):
            out.setdefault("fig4", {}).setdefault(r[0], []).append(x.per_query if x else None)
    if "fig5" in grids:
        try:
            df, _ = ex.fig5(ctx, progress=progress) if train else _fig5_cached(ctx)
        except (FileNotFoundError, KeyError, ValueError):  # runs or their occlusion data missing
            return out
        pq = {k: v for k, v in df.attrs["per_query"].items() if all(v)}  # entries without per-query data: not run
        if not pq:
            return out
        levels = sorted({k[2] for k in pq})
        top = levels[-1]
        # F5a: models compared under RE+RPE occlusion at the top level; F5b: test methods per model
        for (trained, test, level), lst in pq.items():
            if level == top and test == "RE+RPE(20)":
                out.setdefault("fig5", {})[trained] = lst
        out.setdefault("fig5_test", {})
        for (trained, test, level), lst in pq.items():
            if level == top and trained == "RE+RPE(20)":
                out["fig5_test"][test] = lst
    return out


def _fig5_cached(ctx):
    from . import experiments as ex

    ds = ctx.dataset()
    for seed in ctx.seeds:
        for _, c in study.fig5_configs(ctx.profile, seed, **ctx.common):
            if ex.lookup(c, ds) is None:
                raise FileNotFoundError(c.name())
    return ex.fig5(ctx, progress=False)


def scoreboard(ctx, n_boot: int = 1000, claims: list[Claim] | None = None, train: bool = True) -> pd.DataFrame:
    """One row per claim and metric: our difference with its 95% paired interval, the paper's, the verdict.

    ``train=False`` scores only what is cached or published (missing runs: verdict "not run")."""
    claims = claims or CLAIMS
    data = per_query_by_label(ctx, {c.grid for c in claims}, train=train)
    rows = []
    for c in claims:
        src = data.get("fig5_test" if c.id.startswith("F5b") else c.grid, {})
        if c.grid == "table1":
            p = paper.TABLE1[c.better]["es"] - paper.TABLE1[c.worse]["es"]
            rec = {"claim": c.id, "text": c.text, "comparison": f"{c.better} > {c.worse}", "metric": "ES",
                   "paper diff": p}
            if len(src) < 4 or any(not x for lst in src.values() for x in lst):
                rec.update({"ours diff": np.nan, "lo": np.nan, "hi": np.nan, "verdict": "not run"})
            else:
                d, lo, hi = es_differences(src, c.better, c.worse, n_boot)
                rec.update({"ours diff": d, "lo": lo, "hi": hi, "verdict": verdict(lo, hi, np.sign(p))})
            rows.append(rec)
            continue
        for metric in METRICS:
            a, b = src.get(c.better), src.get(c.worse)
            rec = {"claim": c.id, "text": c.text, "comparison": f"{c.better} > {c.worse}", "metric": metric,
                   "paper diff": paper_difference(c, metric)}
            if not a or not b or any(x is None or not x for x in (*a, *b)):
                rec.update({"ours diff": np.nan, "lo": np.nan, "hi": np.nan, "verdict": "not run"})
            else:
                d = paired_difference(a, b, metric, n_boot=n_boot)
                rec.update({"ours diff": d.mean, "lo": d.lo, "hi": d.hi,
                            "verdict": verdict(d.lo, d.hi, paper_side(c, metric))})
            rows.append(rec)
    return pd.DataFrame(rows)


def for_grid(grid: str) -> list[Claim]:
    """The claims one table or figure makes."""
    return [c for c in CLAIMS if c.grid == grid]


def save(board: pd.DataFrame, name: str, cap: str) -> None:
    """``figures/<name>.md`` and ``.tex``: the scoreboard as printed."""
    from .report import claims_table, save_table

    save_table(claims_table(board), name, cap)


def summary_line(board: pd.DataFrame, profile: str) -> str:
    counts = board["verdict"].value_counts()
    parts = [f"{int(counts.get(v, 0))} {v}" for v in ("reproduced", "contradicted", "unresolved", "not run")
             if counts.get(v, 0) or v != "not run"]
    return f"{', '.join(parts)} on {profile} (claim x metric rows, 95% paired bootstrap)"
