"""The paper's comparative sentences as claims, each tested as contrasts over configurations' per-query scores,
with one verdict per claim.

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
training noise (:mod:`henetlib.stats`, :mod:`henetlib.verdicts.noise`); without one it is marked *query-level
only*.

Row verdict: *reproduced* when the 95% interval lies on the paper's side of 0 (for an equivalence: inside the
margin); *contradicted* when the evidence against the sentence survives Holm's correction across the claim's
rows (one-sided, family-wise 2.5%); otherwise *unresolved*.

Claim verdict (:func:`claim_verdicts`): *reproduced* only when every row is reproduced (each row is a 2.5%
one-sided test, and a claim of "every row" holds at that level when all of them hold: an intersection-union
test, no correction needed); *contradicted* when at least one row is contradicted after Holm; *not run* when no
row has data; otherwise *unresolved*, with the counts as evidence.

The same claims scored in both training regimes, side by side, are :mod:`henetlib.verdicts.regimes`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from henetlib import paper
from henetlib.engine.efficiency import ModelStats, efficiency_scores
from henetlib.engine.regime import summarise as summarise_regimes
from henetlib.output.formats import claims_table
from henetlib.output.latex import latex_table
from henetlib.stats import (
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
    seeds_needed,
    tost,
)
from henetlib.study import noise_model as study_noise_model
from henetlib.study import tables
from henetlib.system.files import atomic_write_text, figures_dir, results_dir
from henetlib.verdicts import noise
from henetlib.verdicts.claims import (
    _H,
    OUT_OF_SCOPE,
    SPEED_TOLERANCE,
    Claim,
    Row,
    for_profile,
)
from henetlib.verdicts.scores import StudyScores, collect

EFFECT_OF_INTEREST = 1.0  # points: the effect "what it would take" sizes for, where the paper gives only words
POWER = 0.8  # "what it would take": seeds for 80% power at the 95% level

# ---------------------------------------------------------------------------------------------------------
# The paper's numbers


def paper_value(grid: str, key, metric: str) -> float:
    if grid in ("table2", "table3", "table4"):
        return tables.paper_rows(grid).get(key, {}).get(metric, np.nan)
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
    """The paper's value of the contrast of ``claim``'s row number ``row`` (the first by default)."""
    return paper_effect(claim, claim.rows[row], metric)


def _es_of(r1: dict, mp: dict) -> dict[str, float]:
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
    """The newest Table 1 measurement cached on this machine (:func:`henetlib.engine.efficiency.measure_table1`,
    run by notebook 07), or None. Never measures: timing here would share the CPU with other notebooks."""
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
    if len(data.seeds) > 1:
        est = noise.estimate_from_scores(data)
        if est:
            return est, f"training noise from this study's own {len(data.seeds)} seeds"
    if noise_model is None:
        noise_model = study_noise_model.status(ctx)
    return noise_model.seed_vars(), noise_model.note


def scoreboard(ctx, n_boot: int = 1000, claims: list[Claim] | None = None, train: bool = True,
               noise_model=None, data: StudyScores | None = None, efficiency: dict | None = None) -> pd.DataFrame:
    """One row per claim row and metric: our contrast with its 95% interval (queries, and training noise where
    known), the paper's, the test, the verdict (Holm within each claim before "contradicted"), and the seeds
    it would take to resolve the paper's effect.

    ``claims``: a subset (by id; resolved again for ``ctx.profile``'s sweep). ``train=False`` scores only what
    is cached or published (missing runs: "not run"). ``noise_model``: a
    :class:`henetlib.study.noise_model.NoiseStatus` (default: the committed one for the profile, when current)."""
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
    """Whether every run behind a row was in the paper's regime (henetlib.engine.regime): "paper", else a count."""
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


def rows_table(board: pd.DataFrame) -> pd.DataFrame:
    """Every row of the scoreboard for reading: :func:`claims_table`'s columns with the test, the noise each
    interval carries and the seeds that would resolve it (notebook 08)."""
    rows = claims_table(board)
    rows.insert(3, "test", board["test"].values)
    rows["noise"] = board["basis"].values
    rows["seeds needed"] = [_fmt_seeds(x) for x in board["seeds needed"]]
    return rows
