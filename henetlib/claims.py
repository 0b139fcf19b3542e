"""The paper's comparative sentences as claims, each tested as contrasts over configurations' per-query scores
(issue #22), with one verdict per claim.

Every :class:`Claim` quotes the paper's sentence with its line numbers (``../shared/paper/HENet-paper.txt``)
and takes its direction from that sentence alone. A claim is made of *rows*, each a linear contrast
``sum_k w_k * score_k`` over configurations (``k``: a table row, a (method, p) point of Fig. 4, a
(trained, test, level) point of Fig. 5), tested on R1 and on mAP:

* ``difference``: A - B;
* ``trend``: the least-squares slope over p, N, the branch count or the occlusion level;
* ``drop``: a difference of drops from the clean score, (clean_B - occluded_B) - (clean_A - occluded_A);
* ``slope difference``: the slope under one test-time occlusion minus the slope under another;
* ``peak``: the score at p = 0.5 minus each neighbouring probability (both must be positive);
* ``equivalence``: A - B inside +-``margin`` by two one-sided tests (*equivalent* / *not equivalent*);
* ``es`` (Table 1's Efficiency Score, eqs. 10-11, a nonlinear function of four rows) and ``efficiency``
  (measured model size V and speed S, section 4.5) are scored by their own rules below.

Each interval carries the query sampling (a crossed bootstrap) and, when a seed-noise estimate exists, the
training noise (:mod:`henetlib.stats`, :mod:`henetlib.noise`); without one it is marked *query-level only*.

Row verdict: *reproduced* when the 95% interval lies on the paper's side of 0 (for an equivalence: inside the
margin); *contradicted* when the evidence against the sentence survives Holm's correction across the claim's
rows (one-sided, family-wise 2.5%); otherwise *unresolved*.

Claim verdict (:func:`claim_verdicts`): *reproduced* only when every row is reproduced (each row is a 2.5%
one-sided test, and a claim of "every row" holds at that level when all of them hold: an intersection-union
test, no correction needed); *contradicted* when at least one row is contradicted after Holm; *not run* when no
row has data; otherwise *unresolved*, with the counts as evidence.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import paper, study
from .regime import regime_of
from .regime import summarise as summarise_regimes
from .stats import (
    LEVEL,
    METRICS,
    Design,
    Interval,
    SeedVariance,
    config_mean,
    contrast_interval,
    draw_design,
    draw_means,
    holm,
    one_sided_p,
    per_query_scores,
    seeds_needed,
    tost,
)

EQUIV_MARGIN = 1.0  # points of R1 / mAP: "similar" (F4c) and "nearly reaches the peak" (T2b); docs/READINGS.md
EFFECT_OF_INTEREST = 1.0  # points: the effect "what it would take" sizes for, where the paper gives only words
SPEED_TOLERANCE = 0.05  # relative: two measured speeds closer than this are a tie (timing noise)
POWER = 0.8  # "what it would take": seeds for 80% power at the 95% level

# ---------------------------------------------------------------------------------------------------------
# Claims as data


@dataclass(frozen=True)
class Row:
    """One contrast: ``sum(w * score[key])``. ``direction`` +1 / -1 is the side of 0 the sentence puts it on
    (0 for an equivalence, tested against ``margin``). ``scale``: the contrast's units per point (a slope over
    a range of x is 1 point per ``1 / range``), so that "what it would take" sizes a 1-point effect."""

    label: str
    weights: tuple[tuple[object, float], ...]
    direction: int = 1
    margin: float | None = None
    scale: float = 1.0


@dataclass(frozen=True)
class Claim:
    id: str
    grid: str  # table1 .. table4, fig4, fig5 (where the runs come from; E* claims use table1's notebook)
    quote: str  # the paper's words, verbatim
    lines: str  # line numbers in HENet-paper.txt
    kind: str
    reading: str  # what we test, and why
    rows: tuple[Row, ...] = field(default_factory=tuple)

    @property
    def text(self) -> str:
        return f"“{self.quote}” (l. {self.lines})"


@dataclass(frozen=True)
class OutOfScope:
    id: str
    quote: str
    lines: str
    reason: str


def _diff(a, b, label: str | None = None, direction: int = 1) -> Row:
    return Row(label or f"{_name(a)} > {_name(b)}", ((a, 1.0), (b, -1.0)), direction)


def _name(key) -> str:
    if isinstance(key, tuple):
        return "@".join(f"{k:g}" if isinstance(k, float) else str(k) for k in key)
    return str(key)


def _slope_weights(xs: Sequence[float]) -> np.ndarray:
    x = np.asarray(xs, dtype=np.float64)
    d = x - x.mean()
    return d / (d**2).sum()


def _trend(keys: Sequence, xs: Sequence[float], label: str, direction: int) -> Row:
    w = _slope_weights(xs)
    return Row(label, tuple(zip(keys, w.tolist(), strict=True)), direction, scale=1.0 / (max(xs) - min(xs)))


_T3 = ["G1", "P4", "R16", "G1+P4", "G1+R16", "P4+R16"]
_T3_PAIRS = {"G1+P4": ("G1", "P4"), "G1+R16": ("G1", "R16"), "P4+R16": ("P4", "R16")}
_T4_SINGLES = ["OIM", "Tri", "MSE"]
_T4_COMBOS = {"OIM+Tri": ("OIM", "Tri"), "OIM+MSE": ("OIM", "MSE"), "Tri+MSE": ("Tri", "MSE"),
              "OIM+Tri+MSE": ("OIM", "Tri", "MSE")}
_T4 = ["CE only", "OIM", "Tri", "MSE", "OIM+Tri", "OIM+MSE", "Tri+MSE"]
_H = ["HENet(Base)", "HENet(+RPE)", "HENet(+Losses)", "HENet(+Both)"]
_FIG4_SINGLE = ["RE", "RPE(10)", "RPE(20)", "RPE(30)", "RPE(40)"]
_FIG5_MODELS = ["none", "RE", "RPE(20)", "RE+RPE(20)"]
_FIG5_TESTS = ["RE", "RPE(20)", "RE+RPE(20)"]
_PEERS_V = ["AlignedReID", "PCB", "HPM", "MGN", "HENet(Base)", "HENet(+Losses)"]


def fig4_labels() -> list[str]:
    from .rpe import ErasingConfig

    return [ErasingConfig(m, 0.5, n).label() for m, n in study.FIG4_METHODS]


def build_claims(fig4_probs: dict[str, tuple[float, ...]], fig5_levels: tuple[float, ...]) -> list[Claim]:
    """Every encoded claim. ``fig4_probs``: per Fig. 4 method, the swept probabilities besides the shared
    p = 0; ``fig5_levels``: the occlusion levels (0 = clean). Rows needing a point outside them are left out
    (their claim is "not run" when none is left)."""
    out: list[Claim] = []

    def add(cid, grid, quote, lines, kind, reading, rows):
        out.append(Claim(cid, grid, quote, lines, kind, reading, tuple(rows)))

    # Table 1's HENet rows (section 4.3)
    add("T1a", "table1", "either extra RPE data augmentation method or hierarchical losses improves the model "
        "performance", "551-552", "difference",
        "Each component over HENet(Base): +RPE > Base and +Losses > Base.",
        [_diff("HENet(+RPE)", "HENet(Base)"), _diff("HENet(+Losses)", "HENet(Base)")])
    add("T1b", "table1", "the network can get the best performance when both the components are applied "
        "simultaneously", "552-554", "difference", "+Both beats each of the other three HENet rows.",
        [_diff("HENet(+Both)", x) for x in _H[:3]])
    add("T1c", "table1", "our method has the highest ES which means that HENet is more suitable for practical "
        "application", "572-573", "es",
        "Testable part: ES(+Both) above the other HENet rows, with ES (eqs. 10-11) computed among the four "
        "HENet rows from our R1/mAP and the paper's FD, V, S (M1, M2 chosen among those four). The paper "
        "column is the same quantity from the paper's R1/mAP, not its published ES (chosen among eight "
        "models: M1 = HPM, M2 = AlignedReID). ES against the other methods needs their accuracy: out of scope.",
        [_diff("HENet(+Both)", x) for x in _H[:3]])
    # Section 4.5: measured V and S of Table 1's models (efficiency.measure_table1)
    quote_vs = ("AlignedReID (Zhang et al., 2017) has the minimum model size and the maximum speed while HPM "
                "(Fu et al., 2018) is in contrast")
    others = [m for m in _PEERS_V if m != "AlignedReID"]
    add("E1a", "table1", quote_vs, "693-695", "efficiency",
        "Model size V (inference parameters, MiB): AlignedReID below, HPM above every other model of Table 1's "
        "efficiency columns (HENet(+RPE) and (+Both) share the graphs of Base and +Losses). Exact counts: no noise.",
        [_diff(x, "AlignedReID", f"V: AlignedReID < {x}") for x in others]
        + [_diff("HPM", x, f"V: HPM > {x}") for x in _PEERS_V if x != "HPM"])
    add("E1b", "table1", quote_vs, "693-695", "efficiency",
        f"Speed S (batch-1 frames per second, measured here): AlignedReID above, HPM below every other model; "
        f"speeds within {SPEED_TOLERANCE:.0%} of each other count as a tie (unresolved).",
        [_diff("AlignedReID", x, f"S: AlignedReID > {x}") for x in others]
        + [_diff(x, "HPM", f"S: HPM < {x}") for x in _PEERS_V if x != "HPM"])
    add("E2", "table1", "our model has an equilibrium size", "696", "efficiency",
        "HENet's V lies strictly between the smallest (AlignedReID) and largest (HPM) model, for both HENet graphs.",
        [_diff(h, "AlignedReID", f"V: {h} > AlignedReID") for h in ("HENet(Base)", "HENet(+Losses)")]
        + [_diff("HPM", h, f"V: {h} < HPM") for h in ("HENet(Base)", "HENet(+Losses)")])
    # Table 2 (top half)
    t2 = ["P(1)", "P(1,2)", "P(1,2,3)", "P(1,2,3,4)"]
    add("T2a", "table2", "the network has a better performance with the increasing of the partial branch "
        "quantity", "586-588", "trend",
        "The least-squares slope of the score over the number of partial branches (1-4), P(1) .. P(1,2,3,4): > 0.",
        [_trend(t2, [1, 2, 3, 4], "slope over branch count 1-4", 1)])
    add("T2b", "table2", "nearly reaches the peak when quantity equals three", "588-589", "equivalence",
        f"P(1,2,3) within ±{EQUIV_MARGIN:g} point of P(1,2,3,4) (the paper's own gaps are 0.40 R1, 0.96 mAP).",
        [Row("P(1,2,3,4) ≈ P(1,2,3)", (("P(1,2,3,4)", 1.0), ("P(1,2,3)", -1.0)), 0, EQUIV_MARGIN)])
    # Table 3
    add("T3a", "table3", "combining any two branches obtains a better performance than each single branch",
        "598-599", "difference",
        "Each pair against its OWN single branches (6 rows). The strict reading, every pair above every single "
        "branch, fails in the paper's own table (G1+R16 88.98 < P4 89.67 R1), so it cannot be what is meant.",
        [_diff(p, s) for p, ss in _T3_PAIRS.items() for s in ss])
    add("T3b", "table3", "When using all of three branches, the model achieves the highest score", "599-600",
        "difference", "G1+P4+R16 beats every other row of Table 3.", [_diff("G1+P4+R16", x) for x in _T3])
    # Table 4
    add("T4a", "table4", "using combined losses has a better performance than only single loss", "645-646",
        "difference",
        "Each combination against its OWN single losses (pairs: 6 rows; all three: 3 rows). The strict reading, "
        "every combination above every single loss, fails in the paper (OIM+MSE 91.65 < Tri 92.62 R1).",
        [_diff(c, s) for c, ss in _T4_COMBOS.items() for s in ss])
    add("T4b", "table4", "we can obtained the best result, i.e. R1=93.67% and mAP=80.60%, when all losses are "
        "applied", "647-648", "difference", "All three losses beat every other row of Table 4.",
        [_diff("OIM+Tri+MSE", x) for x in _T4])
    # Fig. 4 (P(1,4) in the paper; Figs. 4-5 train G1+P4+R16 with all losses here, see study.py)
    labels = fig4_labels()
    add("F4a", "fig4", "the network performance gradually increases along with the probability, which can be "
        "consistently seen in both R1 (upper part) and mAP (bottom part) metrics", "659-662", "trend",
        "Per method, the least-squares slope of the score over every swept probability (the shared no-erasing "
        "run is p = 0): > 0.",
        [_trend([(m, p) for p in (0.0, *fig4_probs[m])], (0.0, *fig4_probs[m]), f"{m}: slope over p", 1)
         for m in labels if fig4_probs.get(m)])
    rpe_n = [m for m in labels if m.startswith("RPE(")]
    ns = [int(m[4:-1]) for m in rpe_n]
    add("F4b", "fig4", "the effectiveness of RPE increases when N is larger", "662-663", "trend",
        "At p = 0.5 (the text's point), the slope of RPE(N)'s score over N = 10, 20, 30, 40: > 0 (the shared "
        "no-erasing baseline cancels, so this is also the slope of RPE's gain).",
        [_trend([(m, 0.5) for m in rpe_n], ns, "RPE(N)@0.5: slope over N", 1)] if all(
            0.5 in fig4_probs.get(m, ()) for m in rpe_n) else [])
    add("F4c", "fig4", "a similar performance against RE when N=40", "664-665", "equivalence",
        f"RPE(40) and RE at p = 0.5 within ±{EQUIV_MARGIN:g} point (two one-sided tests).",
        [Row("RPE(40)@0.5 ≈ RE@0.5", ((("RPE(40)", 0.5), 1.0), (("RE", 0.5), -1.0)), 0, EQUIV_MARGIN)])
    add("F4d", "fig4", "this approach obtains a much better improvement than any single method", "668-669",
        "difference",
        "RE+RPE(20) beats each of the five single methods (RE, RPE(10/20/30/40)) at p = 0.5 (the point the text "
        "gives). 'Much' is not tested: only the direction.",
        [_diff(("RE+RPE(20)", 0.5), (m, 0.5)) for m in _FIG4_SINGLE])
    probs = sorted(fig4_probs.get("RE+RPE(20)", ()))
    below = [p for p in (0.0, *probs) if p < 0.5]
    above = [p for p in probs if p > 0.5]
    peak_rows = []
    if 0.5 in probs and below and above:
        for nb in (max(below), min(above)):
            r = _diff(("RE+RPE(20)", 0.5), ("RE+RPE(20)", nb), f"RE+RPE(20): p=0.5 > p={nb:g}")
            peak_rows.append(r)
    add("F4e", "fig4", "it reaches a relatively peak state when probability equals 0.5", "669-670", "peak",
        "RE+RPE(20) at p = 0.5 beats both neighbouring swept probabilities (both rows must hold).", peak_rows)
    # Fig. 5: keys (trained with, test-time occlusion, level)
    lv = tuple(sorted(fig5_levels))
    occ = [x for x in lv if x > 0]
    if len(lv) >= 2:
        top = lv[-1]

        def slope(model, test):
            return _slope_weights(lv), [(model, test, x) for x in lv]

        def drop_w(model, test, levels):  # clean minus the mean over ``levels``
            w = [((model, test, 0.0), 1.0)] + [((model, test, x), -1.0 / len(levels)) for x in levels]
            return w

        add("F5a", "fig5", "the performance of all models decreases in both metrics with the increasing of the "
            "occlusion level", "675-677", "trend",
            "For each trained model and each test-time occlusion (Fig. 5's three panels), the slope of the "
            "score over the occlusion level: < 0.",
            [_trend([(m, t, x) for x in lv], lv, f"{m} under {t}: slope over level", -1)
             for m in _FIG5_MODELS for t in _FIG5_TESTS])
        rows = []
        for m in _FIG5_MODELS:
            w_rr, k_rr = slope(m, "RE+RPE(20)")
            for t in ("RE", "RPE(20)"):
                w_t, k_t = slope(m, t)
                rows.append(Row(f"{m}: slope under RE+RPE < slope under {t}",
                                tuple(zip(k_rr, w_rr.tolist(), strict=True)) + tuple(zip(k_t, (-w_t).tolist(), strict=True)),
                                -1, scale=1.0 / (lv[-1] - lv[0])))
        add("F5b", "fig5", "the accuracy decreases faster when the test dataset is processed by RE+RPE (right "
            "subgraph)", "677-679", "slope difference",
            "For every trained model, the slope over the level under RE+RPE occlusion is below the slope under "
            "RE and under RPE.", rows)
        rows = []
        for m in ("RPE(20)", "RE"):
            for t in _FIG5_TESTS:
                w = drop_w("none", t, occ) + [(k, -v) for k, v in drop_w(m, t, occ)]
                rows.append(Row(f"drop(none) > drop({m}) under {t}", tuple(w), 1))
        add("F5c", "fig5", "The model trained with RPE (blue solid/dotted lines) or RE (green solid/dotted lines) "
            "has a stronger tolerance relative to the modified dataset than doing noting (cyan solid/dotted "
            "lines)", "679-681", "drop",
            "Tolerance is the drop from the model's own clean score, averaged over the occluded levels: the "
            "no-erasing model's drop exceeds the RPE(20) and the RE model's, under each test-time occlusion.",
            rows)
        add("F5d", "fig5", "the model trained with both RPE and RE (red solid/dotted lines) outperforms others in "
            "a considerable margin", "682-683", "difference",
            "RE+RPE(20)'s score, averaged over the occluded levels, beats each other model's under each "
            "test-time occlusion. 'Considerable' is not tested: only the direction.",
            [Row(f"RE+RPE(20) > {m} under {t}", tuple([(("RE+RPE(20)", t, x), 1.0 / len(occ)) for x in occ]
                                                       + [((m, t, x), -1.0 / len(occ)) for x in occ]), 1)
             for m in _FIG5_MODELS[:3] for t in _FIG5_TESTS])
        rows = []
        for m in _FIG5_MODELS[:3]:
            for t in _FIG5_TESTS:
                w = drop_w(m, t, [top]) + [(k, -v) for k, v in drop_w("RE+RPE(20)", t, [top])]
                rows.append(Row(f"drop({m}) > drop(RE+RPE(20)) at level {top:g} under {t}", tuple(w), 1))
        add("F5e", "fig5", "especially when the occlusion level is large", "683-684", "drop",
            "The RE+RPE(20) model's lead grows with the level: at the largest level, its drop from its own clean "
            "score is below each other model's (a claim about degradation is about the drop, not the raw "
            "score).", rows)
    return out


OUT_OF_SCOPE = [
    OutOfScope("O1", "the proposed HENet obtains 96.0% R-1 for Market1501, 88.9% R-1 for DukeMTMC-ReID, and "
               "67.1% R-1 for CUHK03, which exceeds all other methods", "543-546",
               "Needs the other methods (SVDNet ... MGN) trained on the real data sets; we train HENet only, by "
               "default on SynthReID (real Market-1501/Duke/CUHK03 are not redistributable)."),
    OutOfScope("O2", "our approach outperforms others on mAP: 87.2%, 78.9%, and 66.5% for Market1501, "
               "DukeMTMC-ReID, and CUHK03 respectively", "546-548", "As O1."),
    OutOfScope("O3", "our approach has a higher ES than other epoch-making methods", "753",
               "ES needs each method's R1/mAP on Market-1501 (as O1); the part among HENet's rows is T1c."),
    OutOfScope("O4", "and a relatively faster speed", "696-697",
               "No comparator is named ('relatively faster' than what?); the speed ranking AlignedReID/HPM is E1b."),
    OutOfScope("O5", "the network reaches a relatively good result when N=20", "663-664", "Not comparative."),
    OutOfScope("O6", "choose P(1,4) as our base model because of its satisfying performance and proper feature "
               "dim", "594-595", "A design choice, not a comparison."),
    OutOfScope("O7", "the RPE can greatly improve the robustness of the network, either alone or in conjunction "
               "with RE", "685-686", "The summary of F5c-F5e, which test it."),
]


def _fig4_probs(profile: str) -> dict[str, tuple[float, ...]]:
    return {m: tuple(study.fig4_probs_for(profile, m)) for m in fig4_labels()}


def for_profile(profile: str) -> list[Claim]:
    """The claims with the probabilities and levels ``profile`` sweeps."""
    return build_claims(_fig4_probs(profile),
                        study.FIG5_LEVELS.get(profile, study.FIG5_LEVELS["gpu"]))


CLAIMS: list[Claim] = for_profile("smoke")


def for_grid(grid: str, profile: str = "smoke") -> list[Claim]:
    """The claims one table or figure makes."""
    return [c for c in for_profile(profile) if c.grid == grid]


# ---------------------------------------------------------------------------------------------------------
# The paper's numbers


def paper_value(grid: str, key, metric: str) -> float:
    from . import experiments as ex

    if grid in ("table2", "table3", "table4"):
        return ex.paper_rows(grid).get(key, {}).get(metric, np.nan)
    if grid == "table1":
        row = paper.TABLE1.get(key, {})
        return row.get("r1" if metric == "R1" else metric, np.nan)
    if grid == "fig4" and isinstance(key, tuple):
        return paper.FIG4_P05.get(key[0], {}).get(metric, np.nan) if key[1] == 0.5 else np.nan
    return np.nan


def paper_effect(claim: Claim, row: Row, metric: str) -> float:
    """The paper's own value of the contrast, in points; NaN where it gives the claim in words or as a plot
    only (most of Fig. 4, all of Fig. 5)."""
    if claim.kind == "es":
        return _paper_es(row)
    if claim.kind == "efficiency":
        col = "v" if row.label.startswith("V") else "s"
        return sum(w * paper.TABLE1[k][col] for k, w in row.weights)
    return float(sum(w * paper_value(claim.grid, k, metric) for k, w in row.weights))


def paper_difference(claim: Claim, metric: str, row: int = 0) -> float:
    """The paper's value of one row's contrast (kept for callers of the first API)."""
    return paper_effect(claim, claim.rows[row], metric)


def _es_of(r1: dict, mp: dict) -> dict[str, float]:
    from .efficiency import ModelStats, efficiency_scores

    st = {n: ModelStats(r1[n], mp[n], paper.TABLE1[n]["fd"], paper.TABLE1[n]["v"], paper.TABLE1[n]["s"]) for n in _H}
    return efficiency_scores(st)


def _paper_es(row: Row) -> float:
    es = _es_of({n: paper.TABLE1[n]["r1"] for n in _H}, {n: paper.TABLE1[n]["mAP"] for n in _H})
    return float(sum(w * es[k] for k, w in row.weights))


def published_es_difference(row: Row) -> float:
    """The paper's published ES difference (ES chosen among its eight models): a different quantity, shown
    for reference only."""
    return float(sum(w * paper.TABLE1[k]["es"] for k, w in row.weights))


# ---------------------------------------------------------------------------------------------------------
# Our scores


@dataclass
class StudyScores:
    """Per grid and configuration key, the per-query dict of each seed (None: not run), and each
    configuration's seedless identity (to merge the runs grids share)."""

    seeds: tuple[int, ...]
    per_query: dict[str, dict] = field(default_factory=dict)
    ident: dict[tuple, str] = field(default_factory=dict)
    # per grid and key, the regime of each seed's run (henetlib.regime; None: not run)
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
        out = StudyScores(tuple(self.seeds[i] for i in idx), ident=dict(self.ident))
        for g, d in self.per_query.items():
            out.per_query[g] = {k: [lst[i] for i in idx] for k, lst in d.items() if len(lst) == len(self.seeds)}
        for g, d in self.regime.items():
            out.regime[g] = {k: [lst[i] for i in idx] for k, lst in d.items() if len(lst) == len(self.seeds)}
        return out

    def regimes(self, grid: str, keys) -> list[str]:
        """The regimes of every run behind ``keys`` (all seeds); runs that predate the check: "unknown"."""
        return [r for k in keys for r in self.regime.get(grid, {}).get(k, []) if r is not None]

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
    from . import experiments as ex

    grids = {"table1", "table2", "table3", "table4", "fig4", "fig5"} if grids is None else grids
    out = StudyScores(tuple(ctx.seeds))
    tables = {"table1": study.table1_configs, "table2": study.table2_configs, "table3": study.table3_configs,
              "table4": study.table4_configs, "fig4": study.fig4_configs}
    for grid, fn in tables.items():
        if grid not in grids:
            continue
        rows = fn(ctx.profile, ctx.seeds, **ctx.common)
        cfgs = [r[-1] for r in rows]
        res = ex.sweep(cfgs, progress=progress) if train else [ex.lookup(c, ex.dataset_for(c)) for c in cfgs]
        for r, x in zip(rows, res, strict=True):
            key = (r[0], float(r[1])) if grid == "fig4" else r[0]
            out.per_query.setdefault(grid, {}).setdefault(key, []).append(x.per_query if x else None)
            out.regime.setdefault(grid, {}).setdefault(key, []).append(regime_of(x.regime) if x else None)
            out.ident[(grid, key)] = _seedless(r[-1])
    if "fig5" in grids:
        try:
            df, _ = ex.fig5(ctx, progress=progress) if train else _fig5_cached(ctx)
        except (FileNotFoundError, KeyError, ValueError):  # runs or their occlusion data missing
            return out
        models = {label: _seedless(c) for label, c in study.fig5_configs(ctx.profile, ctx.seeds[0], **ctx.common)}
        trained_regime: dict[str, list] = {}  # Fig. 5's cells inherit the regime of the model they test
        for seed in ctx.seeds:
            for label, c in study.fig5_configs(ctx.profile, seed, **ctx.common):
                r = ex.lookup(c, ex.dataset_for(c))
                trained_regime.setdefault(label, []).append(regime_of(r.regime) if r else None)
        for (trained, test, level), lst in df.attrs["per_query"].items():
            key = (trained, test, float(level))
            out.per_query.setdefault("fig5", {})[key] = [x if x else None for x in lst]
            out.ident[("fig5", key)] = f"{models.get(trained)}|{test if level > 0 else 'clean'}|{float(level):g}"
            out.regime.setdefault("fig5", {})[key] = trained_regime.get(trained, [])
    return out


def _fig5_cached(ctx):
    from . import experiments as ex

    ds = ctx.dataset()
    for seed in ctx.seeds:
        for _, c in study.fig5_configs(ctx.profile, seed, **ctx.common):
            if ex.lookup(c, ds) is None:
                raise FileNotFoundError(c.name())
    return ex.fig5(ctx, progress=False)


def per_query_by_label(ctx, grids: set[str] | None = None, progress: bool = False,
                       train: bool = True) -> dict[str, dict]:
    """{grid: {key: [per-query dict per seed]}} (the first API; :func:`collect` adds identities)."""
    return collect(ctx, grids, train, progress).per_query


# ---------------------------------------------------------------------------------------------------------
# Scoring


@dataclass
class Scorer:
    """Scores rows on one StudyScores with one shared query design (pairing every contrast) and the seed
    variance of each noise group (``None``: query-level only)."""

    data: StudyScores
    seed_vars: dict[tuple[str, str], SeedVariance | None]
    n_boot: int = 1000
    seed: int = 0
    _design: Design | None = None
    _draws: dict = field(default_factory=dict)

    def design(self) -> Design | None:
        if self._design is None:
            q = self.data.n_queries()
            if q is None:
                return None
            self._design = draw_design(len(self.data.seeds), q, self.n_boot, np.random.default_rng(self.seed))
        return self._design

    def draws(self, grid: str, key, metric: str) -> np.ndarray | None:
        k = (grid, key, metric)
        if k not in self._draws:
            s = self.data.scores(grid, key, metric)
            self._draws[k] = None if s is None else draw_means(s, self.design())
        return self._draws[k]

    def seed_var(self, grid: str, metric: str) -> SeedVariance | None:
        return self.seed_vars.get(("occlusion" if grid == "fig5" else "trained", metric))

    def contrast(self, grid: str, row: Row, metric: str) -> Interval | None:
        parts = [(self.data.scores(grid, k, metric), self.draws(grid, k, metric), w) for k, w in row.weights]
        if any(s is None for s, _, _ in parts):
            return None
        est = float(sum(w * config_mean(s) for s, _, w in parts))
        draws = sum(w * d for _, d, w in parts)
        return contrast_interval(est, np.asarray(draws), len(self.data.seeds), sum(w**2 for _, _, w in parts),
                                 self.seed_var(grid, metric))

    def es(self, row: Row) -> Interval | None:
        """ES difference among Table 1's four HENet rows (eqs. 10-11): the four rows share the query draws
        (M2, the lowest R1, is chosen again in each draw), and the training noise enters as a normal
        perturbation of each row's mean whose variance is drawn from its scaled-inverse-chi-square (the
        normal-scale mixture that is a t distribution), so the interval carries the noise model's uncertainty."""
        d = {(n, m): self.draws("table1", n, m) for n in _H for m in METRICS}
        if any(v is None for v in d.values()):
            return None
        means = {(n, m): config_mean(self.data.scores("table1", n, m)) for n in _H for m in METRICS}
        rng = np.random.default_rng(self.seed + 1)
        b = self.design().n_boot
        pert = {}
        basis = "query-level only"
        for m in METRICS:
            sv = self.seed_var("table1", m)
            if sv is None:
                pert[m] = np.zeros((len(_H), b))
                continue
            basis = f"query + seed ({sv.source})"
            var = sv.var * (sv.df / rng.chisquare(sv.df, b) if np.isfinite(sv.df) else 1.0)
            pert[m] = rng.standard_normal((len(_H), b)) * np.sqrt(var / len(self.data.seeds))
        vals = np.empty(b)
        for i in range(b):
            es = _es_of({n: d[(n, "R1")][i] + pert["R1"][j, i] for j, n in enumerate(_H)},
                        {n: d[(n, "mAP")][i] + pert["mAP"][j, i] for j, n in enumerate(_H)})
            vals[i] = sum(w * es[k] for k, w in row.weights)
        es0 = _es_of({n: means[(n, "R1")] for n in _H}, {n: means[(n, "mAP")] for n in _H})
        est = float(sum(w * es0[k] for k, w in row.weights))
        lo, hi = np.percentile(vals, [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2])
        return Interval(est, float(lo), float(hi), len(self.data.seeds), float(np.std(vals, ddof=1)), np.inf,
                        np.nan, np.nan, basis)


def _efficiency_measurements() -> dict | None:
    """The newest Table 1 measurement cached on this machine (``efficiency.measure_table1``, run by notebook
    07), or None. Never measures: timing here would share the CPU with other notebooks."""
    from .utils import results_dir

    files = sorted((results_dir() / "efficiency").glob("*.json"), key=lambda f: f.stat().st_mtime, reverse=True)
    for f in files:
        try:
            d = json.loads(f.read_text())
        except ValueError:
            continue
        if d and all(isinstance(v, dict) and "fps_batch1" in v for v in d.values()):
            return d
    return None


def _efficiency_row(row: Row, meas: dict | None) -> tuple[float, str]:
    """(our value of the contrast, row verdict) for a measured V or S row."""
    if meas is None or any(k not in meas for k, _ in row.weights):
        return np.nan, "not run"
    col = "inference_size_mb" if row.label.startswith("V") else "fps_batch1"
    vals = {k: float(meas[k][col]) for k, _ in row.weights}
    d = float(sum(w * vals[k] for k, w in row.weights))
    if col == "fps_batch1" and abs(d) <= SPEED_TOLERANCE * max(vals.values()):
        return d, "unresolved"
    return d, "reproduced" if d > 0 else "contradicted"


def _seed_vars(ctx, data: StudyScores, noise_model) -> tuple[dict, str]:
    """Per (noise group, metric): the seed variance to use, and a note for captions. Several seeds of our
    own give it directly (pooled over every configuration); else a current noise model; else none."""
    from . import noise

    if len(data.seeds) > 1:
        est = noise.estimate_from_scores(data)
        if est:
            return est, f"training noise from this study's own {len(data.seeds)} seeds"
    if noise_model is None:
        noise_model = noise.status(ctx)
    return noise_model.seed_vars(), noise_model.note


def scoreboard(ctx, n_boot: int = 1000, claims: list[Claim] | None = None, train: bool = True,
               noise_model=None, data: StudyScores | None = None, efficiency: dict | None = None) -> pd.DataFrame:
    """One row per claim row and metric: our contrast with its 95% interval (queries, and training noise where
    known), the paper's, the test, the verdict (Holm within each claim before "contradicted"), and the seeds
    it would take to resolve the paper's effect.

    ``claims``: a subset (by id; resolved again for ``ctx.profile``'s sweep). ``train=False`` scores only what
    is cached or published (missing runs: "not run"). ``noise_model``: a :class:`henetlib.noise.NoiseStatus`
    (default: the committed one for the profile, when current)."""
    wanted = {c.id for c in claims} if claims is not None else None
    cl = [c for c in for_profile(ctx.profile) if wanted is None or c.id in wanted]
    if data is None:
        data = collect(ctx, {c.grid for c in cl if c.kind != "efficiency"}, train=train)
    seed_vars, note = _seed_vars(ctx, data, noise_model)
    sc = Scorer(data, seed_vars, n_boot)
    meas = efficiency if efficiency is not None else _efficiency_measurements()
    recs = []
    for c in cl:
        metrics = ("ES",) if c.kind == "es" else ("V/S",) if c.kind == "efficiency" else METRICS
        block = []
        for metric in metrics:
            for row in c.rows:
                rec = {"claim": c.id, "kind": c.kind, "comparison": row.label, "metric": metric,
                       "paper diff": paper_effect(c, row, metric), "ours diff": np.nan, "lo": np.nan, "hi": np.nan,
                       "se": np.nan, "df": np.nan, "test": "", "p against": np.nan, "verdict": "not run",
                       "basis": "", "seeds needed": np.nan, "text": c.text,
                       "regime": _row_regime(data, c, row)}
                if c.kind == "efficiency":
                    d, v = _efficiency_row(row, meas)
                    rec.update({"ours diff": d, "lo": d, "hi": d, "verdict": v, "test": v,
                                "basis": "measured here" if np.isfinite(d) else ""})
                    if metric == "V/S":
                        rec["metric"] = row.label.split(":")[0]
                    recs.append(rec)
                    continue
                iv = sc.es(row) if c.kind == "es" else sc.contrast(c.grid, row, metric)
                if iv is not None:
                    rec.update(_judge(c, row, metric, iv, sc))
                block.append(rec)
        if not c.rows:  # the profile sweeps no point this claim needs (e.g. no p above 0.5 on test)
            block.append({"claim": c.id, "kind": c.kind, "comparison": "(no point of it is swept here)",
                          "metric": "-", "paper diff": np.nan, "ours diff": np.nan, "lo": np.nan, "hi": np.nan,
                          "se": np.nan, "df": np.nan, "test": "", "p against": np.nan, "verdict": "not run",
                          "basis": "", "seeds needed": np.nan, "text": c.text, "regime": "-"})
        _holm_within(block)
        recs += block
    board = pd.DataFrame(recs)
    board.attrs["noise_note"] = note
    board.attrs["profile"] = ctx.profile
    return board


def _row_regime(data: StudyScores, c: Claim, row: Row) -> str:
    """Whether every run behind a row was in the paper's regime (henetlib.regime): "paper", else a count."""
    if c.kind == "efficiency":
        return "-"  # measured sizes and speeds: no training involved
    regs = data.regimes("table1" if c.kind == "es" else c.grid, [k for k, _ in row.weights])
    if not regs:
        return "-"
    return "paper" if all(r == "paper" for r in regs) else summarise_regimes(regs)


def _judge(c: Claim, row: Row, metric: str, iv: Interval, sc: Scorer) -> dict:
    rec = {"ours diff": iv.mean, "lo": iv.lo, "hi": iv.hi, "se": iv.se, "df": iv.df, "basis": iv.basis}
    paper_d = paper_effect(c, row, metric)
    if row.margin is not None:
        test = tost(iv, row.margin)
        d = np.sign(iv.mean) or 1.0
        rec["p against"] = one_sided_p(iv, d, d * row.margin)[0]  # |difference| beyond the margin
        rec["test"] = test
        rec["verdict"] = {"equivalent": "reproduced", "not equivalent": "contradicted"}.get(test, "unresolved")
        effect = paper_d if np.isfinite(paper_d) else 0.0
        margin = row.margin
    else:
        side = float(row.direction)
        p_for, p_against = one_sided_p(iv, side)
        lo_ok = side * iv.lo > 0 and side * iv.hi > 0
        against = side * iv.lo < 0 and side * iv.hi < 0
        rec["verdict"] = "reproduced" if lo_ok else "contradicted" if against else "unresolved"
        rec["test"] = "> 0" if side > 0 else "< 0"
        rec["p against"] = p_against
        effect = paper_d if np.isfinite(paper_d) and np.sign(paper_d) == side else EFFECT_OF_INTEREST * row.scale
        margin = None
    if rec["verdict"] == "unresolved" and c.kind != "es":
        sv = sc.seed_var(c.grid, metric)
        rec["seeds needed"] = seeds_needed(effect, iv.var_query, sv, sum(w**2 for _, w in row.weights),
                                           margin=margin, power=POWER)
    return rec


def _holm_within(block: list[dict]) -> None:
    """A row is "contradicted" only when its one-sided p against the sentence, Holm-adjusted across the
    claim's rows (both metrics), is below 2.5%; a wrong-side interval that fails Holm is "unresolved"."""
    idx = [i for i, r in enumerate(block) if np.isfinite(r.get("p against", np.nan))]
    if not idx:
        return
    adj = holm([block[i]["p against"] for i in idx])
    for i, a in zip(idx, adj, strict=True):
        block[i]["p against"] = float(a)
        if block[i]["verdict"] == "contradicted" and a >= (1 - LEVEL) / 2:
            block[i]["verdict"] = "unresolved"


def claim_verdict(verdicts: Sequence[str]) -> str:
    """The claim-level rule over its rows' (already Holm-adjusted) verdicts: reproduced only when every row
    is; contradicted when any row is; not run when none has data; else unresolved."""
    v = list(verdicts)
    if not v or all(x == "not run" for x in v):
        return "not run"
    if any(x == "contradicted" for x in v):
        return "contradicted"
    if all(x == "reproduced" for x in v):
        return "reproduced"
    return "unresolved"


def claim_verdicts(board: pd.DataFrame, claims: list[Claim] | None = None) -> pd.DataFrame:
    """One row per claim: the quoted sentence, the kind, the verdict and its evidence (row counts per metric,
    the fewest seeds that would resolve its unresolved rows)."""
    by_id = {c.id: c for c in (claims or for_profile(board.attrs.get("profile", "smoke")))}
    out = []
    for cid, g in board.groupby("claim", sort=False):
        c = by_id.get(cid)
        v = claim_verdict(list(g["verdict"]))
        ev = []
        for m, gm in g.groupby("metric", sort=False):
            counts = gm["verdict"].value_counts()
            ev.append(f"{m}: " + ", ".join(f"{int(counts[k])} {k}" for k in ("reproduced", "contradicted",
                                                                               "unresolved", "not run") if k in counts))
        need = g.loc[g["verdict"] == "unresolved", "seeds needed"]
        if v == "unresolved" and len(need):
            worst = need.max()
            ev.append("seeds to resolve all rows: " + ("more queries needed" if np.isinf(worst) else
                                                        f"{int(worst)}" if np.isfinite(worst) else "no noise model"))
        basis = sorted({b for b in g["basis"] if b})
        regs = set(g["regime"]) - {"-"} if "regime" in g else set()
        reg = "-" if not regs else "paper" if regs == {"paper"} else "NOT the paper's regime"
        out.append({"claim": cid, "sentence": c.text if c else "", "kind": c.kind if c else "", "verdict": v,
                    "evidence": "; ".join(ev), "regime": reg, "reading": c.reading if c else "",
                    "noise": "; ".join(basis) if basis else "-"})
    return pd.DataFrame(out)


def out_of_scope_table() -> pd.DataFrame:
    return pd.DataFrame([{"id": o.id, "sentence": f"“{o.quote}” (l. {o.lines})", "why not tested": o.reason}
                         for o in OUT_OF_SCOPE])


def save(board: pd.DataFrame, name: str, cap: str) -> None:
    """``figures/<name>.md`` and ``.tex``: the claim-level table (sentence, verdict, evidence), then the
    row-level table, then the caption."""
    from .report import claims_table
    from .utils import atomic_write_text, figures_dir

    cl = claim_verdicts(board)
    rows = claims_table(board)
    rows.insert(3, "test", board["test"].values)
    rows["seeds needed"] = [_fmt_seeds(x) for x in board["seeds needed"]]
    if "regime" in board:
        rows["regime"] = board["regime"].values
    md = ("## Claims (one verdict each)\n\n"
          + cl[["claim", "sentence", "verdict", "regime", "evidence"]].to_markdown(index=False)
          + "\n\n## Rows (each contrast and metric)\n\n" + rows.to_markdown(index=False, floatfmt=".2f")
          + f"\n\n{cap}\n")
    if name == "claims":
        md += "\n## Not tested\n\n" + out_of_scope_table().to_markdown(index=False) + "\n"
    folder = figures_dir()
    atomic_write_text(folder / f"{name}.md", md)
    from .report import latex_table

    tex = (latex_table(cl[["claim", "sentence", "verdict", "regime", "evidence"]], cap, f"{name}-claims")
           + latex_table(rows, cap, name))
    if name == "claims":
        tex += latex_table(out_of_scope_table(), "Sentences of the paper not tested here, and why.", "claims-out")
    atomic_write_text(folder / f"{name}.tex", tex)


def _fmt_seeds(x: float) -> str:
    if not np.isfinite(x):
        return "more queries" if np.isinf(x) else "-"
    return f"{int(x)}"


def summary_line(board: pd.DataFrame, profile: str) -> str:
    """The headline: claim-level verdicts, then the row counts, and what noise the intervals carry."""
    cl = claim_verdicts(board)
    counts = cl["verdict"].value_counts()
    parts = [f"{int(counts.get(v, 0))} {v}" for v in ("reproduced", "contradicted", "unresolved", "not run")
             if counts.get(v, 0) or v != "not run"]
    rows = board["verdict"].value_counts()
    rparts = [f"{int(rows.get(v, 0))} {v}" for v in ("reproduced", "contradicted", "unresolved", "not run")
              if rows.get(v, 0)]
    bases = {b for b in board["basis"] if b}
    noise_txt = ("query-level only: no seed-noise estimate" if bases <= {"query-level only", "measured here"}
                 else board.attrs.get("noise_note", "training noise included"))
    off = int((cl["regime"] == "NOT the paper's regime").sum()) if "regime" in cl else 0
    regime_txt = (f"; {off} of {len(cl)} verdicts rest on runs not in the paper's regime (not converged, or from "
                  "scratch)" if off else "")
    return (f"{len(cl)} claims on {profile}: {', '.join(parts)} (rows: {', '.join(rparts)}; 95% intervals, "
            f"{noise_txt}{regime_txt})")


# ---------------------------------------------------------------------------------------------------------
# The two regimes side by side (issue 21): the same claims scored on the runs from random weights and on the
# runs fine-tuned from the SynthReID-pretrained backbone. Nothing is trained here: a regime whose runs are
# neither cached nor published scores "not run".

_CHANGE = {("reproduced", "reproduced"): "holds (reproduced in both)",
           ("contradicted", "contradicted"): "holds (contradicted in both)",
           ("unresolved", "unresolved"): "unresolved in both"}


def _change(a: str, b: str) -> str:
    if "not run" in (a, b):
        return "not comparable (runs missing)"
    if (a, b) in _CHANGE:
        return _CHANGE[(a, b)]
    if "unresolved" in (a, b):
        return f"resolved only {'fine-tuned' if a == 'unresolved' else 'from scratch'}"
    return f"flips: {a} -> {b}"


def compare_regimes(ctx, n_boot: int = 1000, board: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per claim: its verdict from scratch and fine-tuned (each with its runs' regime mark) and what
    changed. ``ctx`` names the profile, data and seeds; ``board``, when given, is the scoreboard of ``ctx``'s
    own regime (not computed again). ``attrs['summary']`` counts flips and holds, ``attrs['comparable']`` the
    claims scored in both regimes; ``attrs['boards']`` keeps both row-level scoreboards."""
    import dataclasses

    from .train import FINETUNE

    if ctx.profile not in FINETUNE:  # test and paper: one regime only
        out = pd.DataFrame(columns=["claim", "sentence", "from scratch", "regime (scratch)", "fine-tuned",
                                    "regime (fine-tuned)", "change"])
        out.attrs.update(comparable=0, boards={},
                         summary=f"profile {ctx.profile!r} has one regime only: nothing to compare")
        return out
    boards, per = {}, {}
    for name, ft in (("from scratch", False), ("fine-tuned", True)):
        own = board is not None and bool(getattr(ctx, "finetune", False)) == ft
        boards[name] = board if own else scoreboard(dataclasses.replace(ctx, finetune=ft), n_boot=n_boot,
                                                    train=False)
        per[name] = claim_verdicts(boards[name]).set_index("claim")
    a, b = per["from scratch"], per["fine-tuned"]
    out = pd.DataFrame({"claim": a.index, "sentence": a["sentence"].values,
                        "from scratch": a["verdict"].values, "regime (scratch)": a["regime"].values,
                        "fine-tuned": b.loc[a.index, "verdict"].values,
                        "regime (fine-tuned)": b.loc[a.index, "regime"].values})
    out["change"] = [_change(x, y) for x, y in zip(out["from scratch"], out["fine-tuned"], strict=True)]
    counts = out["change"].value_counts()
    out.attrs["comparable"] = int(((out["from scratch"] != "not run") & (out["fine-tuned"] != "not run")).sum())
    out.attrs["summary"] = (f"{len(out)} claims on {ctx.profile}, from scratch vs fine-tuned: "
                            + ", ".join(f"{int(n)} {k}" for k, n in counts.items()))
    out.attrs["boards"] = boards
    return out


def save_regimes(table: pd.DataFrame, ctx, name: str = "claims_regimes") -> Path:
    """``figures/<name>.md`` and ``.tex``: the side-by-side table, its summary and both headlines."""
    from .report import save_table

    boards = table.attrs.get("boards", {})
    heads = " ".join(f"{k}: {summary_line(v, ctx.profile)}." for k, v in boards.items())
    cap = (f"The paper's claims on profile '{ctx.profile}' (seeds {', '.join(map(str, ctx.seeds))}), scored on the "
           f"runs from random weights and on the runs fine-tuned from the SynthReID-pretrained backbone "
           f"(train.FINETUNE). {table.attrs.get('summary', '')}. {heads}")
    show = table.drop(columns=["sentence"])
    return save_table(show, name, cap)
