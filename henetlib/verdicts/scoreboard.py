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

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from henetlib import paper
from henetlib.engine.regime import summarise as summarise_regimes
from henetlib.output.formats import VERDICT_MARKS, claims_table, for_reader
from henetlib.output.latex import latex_table
from henetlib.output.prose import with_lead
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
    pooled_seed_variance,
    seeds_needed,
)
from henetlib.study import noise_model as study_noise_model
from henetlib.study import tables
from henetlib.system.files import atomic_write_text, figures_dir
from henetlib.verdicts import noise
from henetlib.verdicts.claims import (
    OUT_OF_SCOPE,
    Claim,
    Row,
    for_profile,
)
from henetlib.verdicts.controls import control_states, controls_table, is_calibration, row_controls
from henetlib.verdicts.controls import state as control_state
from henetlib.verdicts.measured import efficiency_measurements, efficiency_row
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
    if claim.kind == "efficiency":
        col = "v" if row.label.startswith("V") else "s"
        return sum(w * paper.TABLE1[k][col] for k, w in row.weights)
    return float(sum(w * paper_value(claim.grid, k, metric) for k, w in row.weights))


def paper_difference(claim: Claim, metric: str, row: int = 0) -> float:
    """The paper's value of the contrast of ``claim``'s row number ``row`` (the first by default)."""
    return paper_effect(claim, claim.rows[row], metric)


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
            self._design = draw_design(len(self.data.seeds), q, self.n_boot, np.random.default_rng(self.seed),
                                       clusters=self.data.query_pids)
        return self._design

    def draws(self, grid: str, key, metric: str) -> np.ndarray | None:
        k = (grid, key, metric)
        if k not in self._draws:
            s = self.data.scores(grid, key, metric)
            self._draws[k] = None if s is None else draw_means(s, self.design())
        return self._draws[k]

    def seed_var(self, grid: str, row: Row, metric: str) -> SeedVariance | None:
        """The row's seed variance (used with sum(w^2) = 1): each noise kind's variance weighted by the squared
        weights of the row's configurations of that kind (:func:`henetlib.stats.pooled_seed_variance`); None
        when any kind has no estimate (the row is then query-level only)."""
        w2: dict[str, float] = {}
        for k, w in row.weights:
            kind = self.data.kind(grid, k)
            w2[kind] = w2.get(kind, 0.0) + w**2
        parts = [(self.seed_vars.get((kind, metric)), s) for kind, s in w2.items()]
        return None if any(sv is None for sv, _ in parts) else pooled_seed_variance(parts)

    def contrast(self, grid: str, row: Row, metric: str) -> Interval | None:
        parts = [(self.data.scores(grid, k, metric), self.draws(grid, k, metric), w) for k, w in row.weights]
        if any(s is None for s, _, _ in parts):
            return None
        est = float(sum(w * config_mean(s) for s, _, w in parts))
        draws = sum(w * d for _, d, w in parts)
        return contrast_interval(est, np.asarray(draws), len(self.data.seeds), 1.0, self.seed_var(grid, row, metric))


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
               noise_model=None, data: StudyScores | None = None, efficiency: dict | None = None,
               gate: bool = True) -> pd.DataFrame:
    """One row per claim row and metric: our contrast with its 95% interval (queries, and training noise where
    known), the paper's, the test, the verdict (Holm within each claim before "contradicted"), why an
    unresolved row is unresolved, and the control it rests on.

    ``claims``: a subset (by id; resolved again for ``ctx.profile``'s sweep). ``train=False`` scores only what
    is cached or published (missing runs: "not run"). ``noise_model``: a
    :class:`henetlib.study.noise_model.NoiseStatus` (default: the committed one for the profile, when current).
    ``gate``: a row resting on a positive control the testbed does not pass reads "untestable here" (its
    measured verdict stays in ``measured``); rows measuring a control's own effect read "calibration"."""
    wanted = {c.id for c in claims} if claims is not None else None
    cl = [c for c in for_profile(ctx.profile) if wanted is None or c.id in wanted]
    if data is None:
        data = collect(ctx, {c.grid for c in cl if c.kind != "efficiency"}, train=train)
    seed_vars, note = _seed_vars(ctx, data, noise_model)
    sc = Scorer(data, seed_vars, n_boot)
    meas = efficiency if efficiency is not None else efficiency_measurements(ctx.profile)
    ctl = {}
    if gate:
        missing = {"table4", "fig4"} - set(data.per_query)
        # the controls' runs when this board's claims do not need them: looked up, never trained for it
        ctl = control_states(data if not missing or not hasattr(ctx, "dataset") else
                             _merged(data, collect(ctx, missing, train=False)))
    recs = []
    seen: dict[tuple, str] = {}
    for c in cl:
        metrics = ("V/S",) if c.kind == "efficiency" else METRICS
        block = []
        for metric in metrics:
            for row in c.rows:
                rec = {"claim": c.id, "kind": c.kind, "comparison": row.label, "metric": metric,
                       "paper diff": paper_effect(c, row, metric), "ours diff": np.nan, "lo": np.nan, "hi": np.nan,
                       "se": np.nan, "df": np.nan, "test": row.test or _test_name(c.kind, row.direction),
                       "p against": np.nan, "verdict": "not run", "why": "", "basis": "", "seeds needed": np.nan,
                       "text": c.text, "regime": _row_regime(data, c, row), "control": "", "duplicate of": ""}
                if c.kind == "efficiency":
                    rec.update(efficiency_row(row, meas))
                    rec["test"] = ("exact count: difference > 0" if row.label.startswith("V")
                                   else "interval over repeated timings > 0")
                    if metric == "V/S":
                        rec["metric"] = row.label.split(":")[0]
                    recs.append(rec)
                    continue
                sig = _signature(data, c.grid, row, metric)
                if sig in seen:
                    rec["duplicate of"] = seen[sig]
                else:
                    seen[sig] = c.id
                iv = sc.contrast(c.grid, row, metric)
                if iv is not None:
                    rec.update(_judge(c, row, metric, iv, sc))
                block.append(rec)
        if not c.rows:  # the profile sweeps no point this claim needs (e.g. no p above 0.5 on test)
            block.append({"claim": c.id, "kind": c.kind, "comparison": "(no point of it is swept here)",
                          "metric": "-", "paper diff": np.nan, "ours diff": np.nan, "lo": np.nan, "hi": np.nan,
                          "se": np.nan, "df": np.nan, "test": "", "p against": np.nan, "verdict": "not run",
                          "why": "", "basis": "", "seeds needed": np.nan, "text": c.text, "regime": "-",
                          "control": "", "duplicate of": ""})
        _holm_within(block)
        for rec in block:
            _why_unresolved(rec)
            if gate:
                _apply_controls(rec, ctl)
        recs += block
    board = pd.DataFrame(recs)
    board.attrs["noise_note"] = note
    board.attrs["profile"] = ctx.profile
    board.attrs["controls"] = ctl
    board.attrs["seeds"] = list(data.seeds)
    return board


def _merged(a: StudyScores, b: StudyScores) -> StudyScores:
    out = StudyScores(a.seeds, dict(a.per_query), dict(a.ident), a.query_pids, dict(a.regime))
    for g, d in b.per_query.items():
        out.per_query.setdefault(g, d)
    out.ident.update({k: v for k, v in b.ident.items() if k not in out.ident})
    return out


def _apply_controls(rec: dict, ctl: dict[str, dict]) -> None:
    if rec["verdict"] == "not run":
        return
    if is_calibration(rec["claim"], rec["comparison"]):
        rec["control"] = "calibration (RE)"
        rec["measured"] = rec["verdict"]
        rec["verdict"] = "calibration"
        return
    needs = row_controls(rec["claim"], rec["comparison"])
    rec["control"] = control_state({c: ctl.get(c, {}).get("passes", False) for c in needs}, needs)
    rec["measured"] = rec["verdict"]
    if rec["control"].startswith("fails"):
        rec["verdict"] = "untestable here"
        rec["why"] = f"the testbed fails control {rec['control'][6:]}"


def _signature(data: StudyScores, grid: str, row: Row, metric: str) -> tuple:
    """What a row measures, by the configurations behind it (not their names): rows of different claims
    comparing the same runs the same way count once."""
    return (metric, row.direction, tuple(sorted((data.ident.get((grid, k), f"{grid}|{k}"), round(w, 9))
                                                for k, w in row.weights)))


def _test_name(kind: str, direction: int) -> str:
    side = ">" if direction > 0 else "<"
    what = {"difference": "difference", "trend": "slope", "drop": "difference of drops",
            "slope difference": "difference of slopes", "peak": "difference from the neighbour"}.get(kind, kind)
    return f"one-sided: {what} {side} 0"


def _row_regime(data: StudyScores, c: Claim, row: Row) -> str:
    """Whether every run behind a row was in the paper's regime (henetlib.engine.regime): "paper", else a count."""
    if c.kind == "efficiency":
        return "-"  # measured sizes and speeds: no training involved
    regs = data.regimes(c.grid, [k for k, _ in row.weights])
    if not regs:
        return "-"
    return "paper" if all(r == "paper" for r in regs) else summarise_regimes(regs)


def _judge(c: Claim, row: Row, metric: str, iv: Interval, sc: Scorer) -> dict:
    rec = {"ours diff": iv.mean, "lo": iv.lo, "hi": iv.hi, "se": iv.se, "df": iv.df, "basis": iv.basis}
    paper_d = paper_effect(c, row, metric)
    side = float(row.direction)
    _, p_against = one_sided_p(iv, side)
    rec["verdict"] = ("reproduced" if side * iv.lo > 0 and side * iv.hi > 0
                      else "contradicted" if side * iv.lo < 0 and side * iv.hi < 0 else "unresolved")
    rec["p against"] = p_against
    rec["_against"] = rec["verdict"] == "contradicted"  # before Holm
    effect = paper_d if np.isfinite(paper_d) and np.sign(paper_d) == side else EFFECT_OF_INTEREST * row.scale
    rec["_effect"] = effect
    rec["_side"] = side
    sv = sc.seed_var(c.grid, row, metric) if rec["verdict"] == "unresolved" else None
    if sv is not None:
        rec["seeds needed"] = seeds_needed(effect, iv.var_query, sv, 1.0, power=POWER)
    return rec


def _why_unresolved(rec: dict) -> None:
    """Why an unresolved row is unresolved, from its interval and variance components: the evidence is
    against the sentence but does not survive Holm; our effect is significantly smaller than the paper's
    (the interval excludes it); or the seeds it would take to resolve the paper's effect (a 1-point effect
    where the paper gives none) at this query count."""
    against, effect, side = rec.pop("_against", False), rec.pop("_effect", np.nan), rec.pop("_side", 1.0)
    if rec["verdict"] != "unresolved":
        return
    paper_d = rec["paper diff"]
    if against:
        rec["why"] = "against the sentence, not significant after Holm"
    elif np.isfinite(paper_d) and np.sign(paper_d) == side and side * rec["hi"] < side * paper_d:
        rec["why"] = "effect smaller than the paper's"
    elif np.isfinite(rec["seeds needed"]):
        rec["why"] = f"needs {int(rec['seeds needed'])} seeds at this query count"
    elif np.isinf(rec["seeds needed"]):
        rec["why"] = ("needs more queries" + (f" (a {abs(effect):.2g}-point effect is below what this test set "
                                              "resolves, however many seeds)" if np.isfinite(effect) else ""))
    else:
        rec["why"] = "no seed-noise estimate"


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
    """The claim-level rule over its rows' (already Holm-adjusted) verdicts. Calibration rows are not evidence
    and are left out. Reproduced only when every row is; contradicted when any testable row is; "untestable
    here" when no row is testable (each rests on a control the testbed fails); not run when none has data;
    else unresolved."""
    v = [x for x in verdicts if x != "calibration"]
    if not v or all(x == "not run" for x in v):
        return "not run"
    if any(x == "contradicted" for x in v):
        return "contradicted"
    if all(x == "reproduced" for x in v):
        return "reproduced"
    if all(x in ("untestable here", "not run") for x in v):
        return "untestable here"
    return "unresolved"


VERDICTS = ("reproduced", "contradicted", "unresolved", "untestable here", "not run")


def claim_verdicts(board: pd.DataFrame, claims: list[Claim] | None = None) -> pd.DataFrame:
    """One row per claim: the quoted sentence, the kind, the verdict and its evidence (row counts per metric,
    why its unresolved rows are unresolved), the controls it rests on, and how often the verdict holds when the
    seeds are resampled (``stability``, when :func:`stability` has been run on the board)."""
    by_id = {c.id: c for c in (claims or for_profile(board.attrs.get("profile", "smoke")))}
    stab = board.attrs.get("stability", {})
    out = []
    for cid, g in board.groupby("claim", sort=False):
        c = by_id.get(cid)
        v = claim_verdict(list(g["verdict"]))
        ev = []
        for m, gm in g.groupby("metric", sort=False):
            counts = gm["verdict"].value_counts()
            ev.append(f"{m}: " + ", ".join(f"{int(counts[k])} {k}" for k in (*VERDICTS, "calibration")
                                            if k in counts))
        whys = (g.loc[g["verdict"] == "unresolved", "why"].str.replace(r" \(.*", "", regex=True)
                .str.replace(r"needs \d+ seeds", "needs more seeds", regex=True).value_counts()
                if "why" in g else pd.Series(dtype=int))
        if v == "unresolved" and len(whys):
            ev.append("unresolved rows: " + ", ".join(f"{int(n)} {w}" for w, n in whys.items()))
        basis = sorted({b for b in g["basis"] if b})
        regs = set(g["regime"]) - {"-"} if "regime" in g else set()
        reg = "-" if not regs else "paper" if regs == {"paper"} else "NOT the paper's regime"
        ctl = sorted({x for x in g.get("control", pd.Series(dtype=str)) if x}) if "control" in g else []
        out.append({"claim": cid, "sentence": c.text if c else "", "kind": c.kind if c else "", "verdict": v,
                    "stability": stab.get(cid, np.nan), "control": "; ".join(ctl) or "-",
                    "evidence": "; ".join(ev), "regime": reg, "reading": c.reading if c else "",
                    "noise": "; ".join(basis) if basis else "-"})
    return pd.DataFrame(out)


STABLE = 0.9  # a verdict is "stable" when at least this share of seed resamples gives it


def out_of_scope_table() -> pd.DataFrame:
    return pd.DataFrame([{"id": o.id, "sentence": f"“{o.quote}” (l. {o.lines})", "why not tested": o.reason}
                         for o in OUT_OF_SCOPE])


def _claims_view(board: pd.DataFrame) -> pd.DataFrame:
    cl = claim_verdicts(board)
    cl["stability"] = [f"{x:.0%}" if np.isfinite(x) else "-" for x in cl["stability"]]
    return cl[["claim", "sentence", "verdict", "stability", "control", "regime", "evidence"]]


def save(board: pd.DataFrame, name: str, cap: str) -> None:
    """``figures/<name>.md`` and ``.tex``: the positive controls, the claim-level table (sentence, verdict,
    stability, evidence), then the row-level table, then the caption (opened by what the tables show), every
    table in a reader's words (regime labels, run names)."""
    cap = with_lead(name, cap)
    cl = for_reader(_claims_view(board))
    rows = for_reader(rows_table(board))
    ctl = controls_table(board) if board.attrs.get("controls") else None
    md = ""
    if ctl is not None:
        md += ("## Positive controls (is the testbed able to show established effects?)\n\n"
               + ctl.to_markdown(index=False) + "\n\n")
    md += ("## Claims (one verdict each)\n\n" + cl.to_markdown(index=False)
           + "\n\n## Rows (each contrast and metric)\n\n" + rows.to_markdown(index=False, floatfmt=".2f")
           + f"\n\n{cap}\n")
    if name == "claims":
        md += "\n## Not tested\n\n" + out_of_scope_table().to_markdown(index=False) + "\n"
    folder = figures_dir()
    atomic_write_text(folder / f"{name}.md", md)
    tex = ""
    if ctl is not None:
        tex += latex_table(ctl, "Positive controls: effects established on Market-1501 by other work, and whether "
                           "this testbed shows them.", f"{name}-controls")
    tex += latex_table(cl, cap, f"{name}-claims") + latex_table(rows, cap, name)
    if name == "claims":
        tex += latex_table(out_of_scope_table(), "Sentences of the paper not tested here, and why.", "claims-out")
    atomic_write_text(folder / f"{name}.tex", tex)


def _fmt_seeds(x: float) -> str:
    if not np.isfinite(x):
        return "more queries" if np.isinf(x) else "-"
    return f"{int(x)}"


def row_counts(board: pd.DataFrame) -> pd.Series:
    """Row verdict counts, each distinct comparison once (rows repeating another claim's runs and weights are
    left out)."""
    dup = board["duplicate of"].fillna("") != "" if "duplicate of" in board else pd.Series(False, index=board.index)
    return board.loc[~dup, "verdict"].value_counts()


def summary_line(board: pd.DataFrame, profile: str) -> str:
    """The headline: claim-level verdicts (with how many are stable under seed resampling), then the row counts
    (each distinct comparison once), what noise the intervals carry, and the controls."""
    cl = claim_verdicts(board)
    counts = cl["verdict"].value_counts()
    parts = [f"{int(counts.get(v, 0))} {v}" for v in VERDICTS if counts.get(v, 0) or v in VERDICTS[:3]]
    rows = row_counts(board)
    rparts = [f"{int(rows.get(v, 0))} {v}" for v in (*VERDICTS, "calibration") if rows.get(v, 0)]
    bases = {b for b in board["basis"] if b}
    noise_txt = ("query-level only: no seed-noise estimate" if bases <= {"query-level only", "measured here"}
                 else board.attrs.get("noise_note", "training noise included"))
    off = int((cl["regime"] == "NOT the paper's regime").sum()) if "regime" in cl else 0
    regime_txt = (f"; {off} of {len(cl)} verdicts rest on runs not in the paper's regime (not converged, or from "
                  "scratch)" if off else "")
    stab = cl["stability"].dropna()
    stab_txt = f"; {int((stab >= STABLE).sum())} of {len(stab)} verdicts stable (>= {STABLE:.0%} of seed resamples)" if len(stab) else ""
    ctl = board.attrs.get("controls", {})
    ctl_txt = ("; controls: " + ", ".join(f"{k} {v.get('state', '?')}" for k, v in ctl.items())) if ctl else ""
    return (f"{len(cl)} claims on {profile}: {', '.join(parts)} (rows: {', '.join(rparts)}; 95% intervals, "
            f"{noise_txt}{regime_txt}{stab_txt}{ctl_txt})")


def rows_table(board: pd.DataFrame) -> pd.DataFrame:
    """Every row of the scoreboard for reading: :func:`claims_table`'s columns with the test, why an unresolved
    row is unresolved, the control it rests on, the noise its interval carries, the seeds that would resolve it
    and the claim it repeats (notebook 08)."""
    rows = claims_table(board)
    rows["verdict"] = [VERDICT_MARKS.get(v, v) for v in board["verdict"]]
    rows.insert(3, "test", board["test"].values)
    for col in ("why", "control", "duplicate of"):
        if col in board:
            rows[col] = board[col].fillna("").values
    rows["noise"] = board["basis"].values
    rows["seeds needed"] = [_fmt_seeds(x) for x in board["seeds needed"]]
    if "regime" in board:
        rows["regime"] = board["regime"].values
    return rows
