"""Words beside the figures: captions that open with what is plotted and what to see and close with what
ours rest on (runs, seeds, regimes, queries), the provenance in one methods note beside the figures
(``METHODS_NOTE.md``), sentences computed from the numbers, and readable column names."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from henetlib import paper
from henetlib.output.formats import REGIME_LABELS, reader_text
from henetlib.system.files import atomic_write_text, figures_dir

# ---------------------------------------------------------------------------------------------------------
# Captions: what is plotted first, what ours rest on last, the provenance in the methods note

METHODS_NOTE = "METHODS_NOTE.md"

# What each figure or table shows and what to look at: the opening of its caption (:func:`with_lead`, keyed
# by the name it is saved under). The numbers' provenance is not repeated here: see the methods note.
LEADS = {
    "fig_table2_structure": (
        "Table 2 as dots: R1 and mAP of each stripe structure, ours (blue, 95% interval) and the paper's (grey "
        "diamonds) in panels of equal width in points, so a gap between rows reads the same in both; the dotted "
        "line marks P(1). Look at whether partial branches raise our scores as they raise the paper's, by 1-4 points."),
    "fig_table3_branches": (
        "Table 3 as dots: R1 and mAP of each combination of the global (G1), four-stripe (P4) and recovery (R16) "
        "branches, ours (blue, 95% interval) and the paper's (grey diamonds) on panels of equal width in points; "
        "the dotted line marks the first row. Look at whether adding a branch helps ours as it helps the paper's."),
    "fig_table4_losses": (
        "Table 4 as dots: R1 and mAP of G1+P4+R16 trained with cross-entropy (CE) plus each combination of OIM, "
        "triplet (Tri) and reconstruction (MSE) losses, ours (blue, 95% interval) and the paper's (grey "
        "diamonds) on panels of equal width in points; the dotted line marks CE alone. Look at whether the added losses raise ours as the "
        "paper's rise, by up to 5 points."),
    "fig_training_curves": (
        "Did Table 4's eight runs converge? Left: each run's mean training loss per P x K epoch (log scale; the "
        "summed losses differ per run, so compare shapes, not heights). Right: each run's training-fit mAP at "
        "80% of its schedule and at the end; a run counts as converged when it rose by less than 2 points."),
    "fig1_efficiency": (
        "Accuracy against speed, marker area proportional to model size V: R1 (top) and mAP (bottom) against "
        "batch-1 speed S (log scale). Left: the paper's Table 1; right: our four HENet rows with 95% intervals. "
        "The HENet rows are told apart by marker (legend below); a hollow marker over a filled one is two rows "
        "at the same V and S. Look at where the HENet rows sit against the other methods, and whether ours keep "
        "the paper's order."),
    "fig4_rpe_probability": (
        "Fig. 4 in small multiples: R1 (top) and mAP (bottom) of G1+P4+R16 against the erasing probability p, "
        "one panel per erasing method (95% intervals); the dotted line is the shared run without erasing (p = 0); "
        "a hollow marker is a run not converged or not pretrained. The paper's one number, RE+RPE(20) at "
        "p = 0.5, has a panel and an axis of its own. Look at whether any method gains with p, as the paper's "
        "text says they do."),
    "fig5_occlusion": (
        "Fig. 5: R1 (top) and mAP (bottom) of four models, trained without erasing or with RE, RPE(20) or "
        "RE+RPE(20), as the test images are occluded with rising probability (the level), one column per kind "
        "of test occlusion; 95% intervals, drawn side by side. Look at which training keeps the most at the "
        "heaviest level."),
    "fig_ranked_lists": (
        "Ranked lists of the all-losses model: each row is a query and its 10 nearest gallery images "
        "(same-camera matches removed, as the protocol does), framed blue (solid) when the identity is right and "
        "orange (dashed) when it is wrong."),
    "fig2_cam": (
        "Class activation maps of each branch (G1, P4, R16) of the all-losses model on training images, clean "
        "(left) and with RPE occlusion (right); bright is high activation. Look at whether the branches attend "
        "to different body parts, and where the attention goes under occlusion."),
    "claims_forest": (
        "Every tested claim row: our difference with its 95% interval (colour, marker and line style by "
        "verdict) and the paper's difference (black +), in points (ES for Table 1). A row is reproduced when "
        "its interval lies on the paper's side of 0."),
    "table1_henet_rows": (
        "Table 1's four HENet rows trained here: our R1 and mAP beside the paper's, V and S measured here, and ES "
        "computed among these four rows only, from our numbers and from the paper's."),
    "table1_efficiency": (
        "Table 1's efficiency columns for the eight methods with a size and a speed: the paper's V, S and ES "
        "beside ours; ES among these eight."),
    "table2_structure": "Table 2 (stripe structures): R1, R5, R10 and mAP, ours beside the paper's.",
    "table3_branches": "Table 3 (branch ablation): R1, R5, R10 and mAP, ours beside the paper's.",
    "table4_losses": "Table 4 (loss ablation on G1+P4+R16): R1, R5, R10 and mAP, ours beside the paper's.",
    "table4_protocols": (
        "The all-losses model under each test-time protocol: \"flip + L2\" (the default) averages the features of "
        "the image and its mirror and L2-normalises them; \"raw\" takes the concatenated features as they are."),
    "fig4_rpe_probability_table": (
        "Fig. 4 as numbers: R1 and mAP per erasing method and probability p, on all queries and on the queries "
        "that carry an occluder; the run without erasing (p = 0) is shared and printed once."),
    "fig5_occlusion_table": (
        "Fig. 5 as numbers: per trained model and occlusion level, R1 and mAP on the clean test images and under "
        "each kind of test occlusion."),
    "claims": "Every claim of the paper that we test, with its verdict, then each contrast row behind it.",
    **{f"{g}_claims": f"The paper's claims about {t}, each with its verdict, then each contrast row behind it."
       for g, t in (("table1", "Table 1"), ("table2", "Table 2"), ("table3", "Table 3"), ("table4", "Table 4"),
                    ("fig4", "Fig. 4"), ("fig5", "Fig. 5"))},
}


def with_lead(name: str, cap: str) -> str:
    """``cap`` opened by :data:`LEADS`' sentence for ``name`` (what is plotted, what to see), with internal
    names in words (:func:`henetlib.output.formats.reader_text`). Idempotent; a name without a lead keeps its
    caption."""
    cap = str(reader_text(cap))
    lead = LEADS.get(name)
    return cap if not lead or cap.startswith(lead) else f"{lead} {cap}"


def query_counts(results: Sequence) -> list[tuple[int, int]]:
    """(scored, total) queries of each result with per-query data: a query without a true match under
    another camera has ``first_rank`` -1 and ``ap`` None, and is skipped by R1 and mAP."""
    out = []
    for r in results:
        pq = getattr(r, "per_query", None) or {}
        ranks, aps = pq.get("first_rank"), pq.get("ap")
        if ranks is None and aps is None:
            continue
        total = len(ranks if ranks is not None else aps)
        if aps is not None:
            scored = sum(a is not None for a in aps)
        else:
            scored = sum(int(x) >= 0 for x in ranks)
        out.append((scored, total))
    return out


def _span(values: Sequence[int]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


def query_count_clause(results: Sequence) -> str:
    """"R1 and mAP over 413 of 414 queries (1 without a cross-camera match)", from the runs' per-query data
    (ranges when the runs differ); "" when no run has per-query data."""
    counts = query_counts(results)
    if not counts:
        return ""
    scored, total = [s for s, _ in counts], [t for _, t in counts]
    skipped = [t - s for s, t in counts]
    return (f"R1 and mAP over {_span(scored)} of {_span(total)} queries ({_span(skipped)} without a cross-camera "
            "match)")


def regime_clause(results: Sequence) -> str:
    """"17 of 18 converged from a pretrained backbone, as the paper trains; 1 not converged", from each run's
    regime check."""
    codes = [(getattr(r, "regime", None) or {}).get("regime", "unknown") for r in results]
    if not codes:
        return ""
    n, ok = len(codes), codes.count("paper")
    out = f"{'all' if ok == n else f'{ok} of {n}'} converged from a pretrained backbone, as the paper trains"
    others = {c: codes.count(c) for c in sorted(set(codes)) if c != "paper"}
    return out + "".join(f"; {k} {REGIME_LABELS.get(c, c)}" for c, k in others.items())


def rests_on(results: Sequence, profile: str, seeds: Sequence[int], noise: str = "queries",
             here: str | None = None) -> str:
    """The clause that closes a caption: how many runs of which profile and seeds, their regimes, the queries
    scored, what the intervals carry (``noise``), whether the runs were trained elsewhere (published, or on
    hardware other than ``here``), and where the rest is: the methods note."""
    seeds = list(seeds)
    who = f"profile {profile}, seed{'s' if len(seeds) != 1 else ''} {', '.join(map(str, seeds))}"
    parts = []
    if results:
        n = len(results)
        runs = f"{n} run{'s' if n != 1 else ''} of {who}: {regime_clause(results)}"
        pub = sum(bool(getattr(r, "published", False)) for r in results)
        hw = sorted({getattr(r, "hardware", "") for r in results if not getattr(r, "published", False)} - {""})
        if pub:
            runs += f"; {pub} of {n} rendered from published results"
        if here and hw and hw != [here]:
            runs += f"; trained on {'; '.join(hw)}"
        parts.append("Ours rest on " + runs)
        q = query_count_clause(results)
        if q:
            parts.append(q)
    else:
        parts.append(f"Ours: {who}")
    parts.append(f"± and error bars: 95% intervals over {noise}")
    return "; ".join(parts) + f". Hardware, schedule and rules: {METHODS_NOTE}."


def figure_caption(extra: str, rests: str) -> str:
    """A caption's own part (``extra``, internal names in words), then :func:`rests_on`'s clause. The lead
    (what is plotted) is added where the caption is saved (:func:`with_lead`)."""
    extra = str(reader_text(extra or "")).strip()
    return f"{extra} {rests}".strip() if extra else rests


def caption(profile: str, dataset: str, hardware: str, extra: str = "", start: str | None = None) -> str:
    """What our numbers come from (the methods note's first paragraph; captions point to it rather than
    repeat it). ``start``: how the runs start and how long they train (``StudyContext.start``); without it,
    the profile's default regime."""
    line = f"Ours: profile '{profile}', data set {dataset}, measured on {hardware}."
    if start:
        line += f" Runs: {start}."
    elif profile == "smoke":
        line += " Smoke profile: a few epochs from random weights; a pipeline check, noisy by design."
    elif profile == "gpu":
        line += " GPU profile: ResNet50 from random weights, 128x64, 30 P x K epochs."
    line += " Paper: Market-1501, ImageNet-pretrained ResNet50, 200 epochs."
    return line + (f" {extra}" if extra else "")


def methods_note(provenance: str, intervals: str = "", rule: str = "", published: str = "") -> str:
    """``METHODS_NOTE.md``: the provenance every caption points to, once (Markdown)."""
    parts = ["# How our numbers were made", "", "Every caption in this folder ends with what its numbers rest on "
             "(runs, seeds, regimes, queries) and points here for the rest.", "", provenance]
    if published:
        parts += ["", published]
    if intervals:
        parts += ["", f"**Intervals.** {intervals}"]
    parts += ["", "**Queries.** R1 and mAP average over the queries that have a true match under another camera; "
              "a query without one is skipped (each caption says how many were scored and how many skipped)."]
    if rule:
        parts += ["", f"**Regime check.** {rule}. A run in the paper's training regime is labelled "
                  f"\"{REGIME_LABELS['paper']}\"; it is a statement about how the run was trained, not a number "
                  "of the paper's."]
    return "\n".join(parts) + "\n"


def write_methods_note(text: str, folder: Path | None = None) -> Path:
    """Write ``<figures>/METHODS_NOTE.md`` (only when its text changed, so an unchanged note keeps its date)."""
    path = Path(folder or figures_dir()) / METHODS_NOTE
    try:
        if path.read_text(encoding="utf-8") == text:
            return path
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return path


def show_caption(cap: str, note: str = "") -> None:
    """Under a figure in a notebook: what to look at (``note``, bold) and the caption, as Markdown."""
    from IPython.display import Markdown, display

    text = (f"**What to look at.** {note}\n\n" if note else "") + f"*{_md_escape(cap)}*"
    display(Markdown(text))


def _md_escape(s: str) -> str:
    return re.sub(r"([*_`\[\]<>|])", r"\\\1", s)


def _fmt(v: float, digits: int = 1) -> str:
    return f"{v:.{digits}f}"


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Do two intervals share any point?"""
    return bool(a[0] <= b[1] and b[0] <= a[1])


def compare_rows(df: pd.DataFrame, label: str, metric: str, paper: str | None = None,
                 higher_is_better: bool = True, unit: str = " points", digits: int = 1) -> str:
    """One or two sentences from the numbers: which row is best on ``metric``, by how much it leads the
    runner-up, whether their 95% intervals overlap (``<metric>_lo``/``_hi``), and whether the paper's best
    row (column ``paper``) is the same."""
    d = df.dropna(subset=[metric]).reset_index(drop=True)
    if d.empty:
        return f"No {metric} values to compare."
    order = d[metric].sort_values(ascending=not higher_is_better).index.tolist()
    best = d.loc[order[0]]
    out = f"Best {metric}: {best[label]} ({_fmt(best[metric], digits)})"
    if len(order) > 1:
        second = d.loc[order[1]]
        gap = abs(best[metric] - second[metric])
        out += f", {_fmt(gap, digits)}{unit} ahead of {second[label]} ({_fmt(second[metric], digits)})"
        lo, hi = f"{metric}_lo", f"{metric}_hi"
        if lo in d and hi in d and np.isfinite([best[lo], best[hi], second[lo], second[hi]]).all():
            same = overlap((best[lo], best[hi]), (second[lo], second[hi]))
            out += ("; their 95% intervals overlap, so this lead is within the noise" if same
                    else "; their 95% intervals do not overlap")
    out += "."
    if paper and paper in d and d[paper].notna().any():
        pbest = d.loc[d[paper].idxmax() if higher_is_better else d[paper].idxmin()]
        agree = rank_agreement(d[metric], d[paper])
        out += (f" The paper's best is {pbest[label]}" + (" too" if pbest[label] == best[label] else "")
                + (f"; our order agrees with the paper's at Spearman {agree:+.2f}." if np.isfinite(agree) else "."))
    return out


def describe_curves(df: pd.DataFrame, x: str, y: str, group: str, where: str = "") -> str:
    """Which series ends highest and lowest at the largest ``x``, and how far each fell from the smallest
    ``x`` (for Figs. 4-5: what degrades least)."""
    d = df.dropna(subset=[y])
    if d.empty:
        return f"No {y} values to compare."
    xmax, xmin = d[x].max(), d[x].min()
    end = d[d[x] == xmax].set_index(group)[y]
    start = d[d[x] == xmin].set_index(group)[y]
    hi, lo = end.idxmax(), end.idxmin()
    out = f"{where}{'at' if where else 'At'} {x} = {xmax:g}, {hi} keeps the highest {y} ({_fmt(end[hi])}) and {lo} the lowest ({_fmt(end[lo])})."
    if xmax != xmin and len(start):
        change = (end - start.reindex(end.index)).dropna()
        if len(change) > 1:
            out += (f" Relative to {x} = {xmin:g}, {change.idxmax()} changes by {change.max():+.1f} points and "
                    f"{change.idxmin()} by {change.min():+.1f}.")
    return out


def bars_note(df: pd.DataFrame, label: str) -> str:
    """What to look at in a Table 2-4 bar chart: the best row on R1 against the runner-up and the paper, and
    the best on mAP."""
    note = compare_rows(df, label, "R1", paper="R1 (paper)" if "R1 (paper)" in df else None)
    if "mAP" in df:
        b = df.loc[df["mAP"].idxmax()]
        note += f" On mAP the best is {b[label]} ({_fmt(b['mAP'])})."
    return note


def ranked_lists_note(ranked: np.ndarray, qpids, gpids, qcams, gcams, rows: Sequence[int], topk: int = 10) -> str:
    """What to look at in the ranked lists: how many shown queries hit at rank 1, and the share of correct
    images in their top ``topk`` (same-camera true matches removed, as drawn)."""
    qp, gp, qc, gc = map(np.asarray, (qpids, gpids, qcams, gcams))
    hits1, right = 0, []
    for qi in rows:
        order = [g for g in ranked[qi] if not (gp[g] == qp[qi] and gc[g] == qc[qi])][:topk]
        ok = [gp[g] == qp[qi] for g in order]
        hits1 += bool(ok and ok[0])
        right.append(np.mean(ok) if ok else 0.0)
    return (f"{hits1} of the {len(rows)} queries shown find their identity at rank 1; on average "
            f"{100 * np.mean(right):.0f}% of their top {topk} are the right identity (blue frames).")


# ---------------------------------------------------------------------------------------------------------
# Tables as data


def rank_agreement(ours: pd.Series, theirs: pd.Series) -> float:
    """Spearman correlation between our ordering of the rows and the paper's (1: same order)."""
    a, b = pd.Series(ours).rank().to_numpy(), pd.Series(theirs).rank().to_numpy()
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def training_note(results: Sequence, labels: Sequence[str] | None = None) -> str:
    """One sentence: how many runs converged by the regime rule, and the largest late gain."""
    labels = list(labels) if labels is not None else [r.name for r in results]
    gains = [((r.regime or {}).get("fit_gain_last"), lab) for r, lab in zip(results, labels, strict=True)]
    known = [(g, lab) for g, lab in gains if g is not None]
    conv = sum(bool((r.regime or {}).get("converged")) for r in results)
    if not known:
        return "These runs carry no regime check (trained before it existed, or with evaluation off)."
    g, lab = max(known)
    return (f"{conv} of {len(results)} runs converged by the rule; the largest rise of training-fit mAP over the "
            f"last 20% of the epochs is {g:.1f} points ({lab}).")


def occlusion_note(df: pd.DataFrame, metric: str = "R1") -> str:
    """What to look at in Fig. 5: which test occlusion hurts most at the heaviest level (mean over the
    trained models), and which trained model keeps the most under it."""
    top = df[df["level"] == df["level"].max()]
    by_test = top.groupby("test_occlusion", sort=False)[metric].mean()
    worst = by_test.idxmin()
    note = (f"At level {df['level'].max():g}, {worst} occlusion leaves the lowest mean {metric} "
            f"({by_test.min():.1f}; {', '.join(f'{k}: {v:.1f}' for k, v in by_test.items())}). ")
    return note + describe_curves(df[df["test_occlusion"] == worst], "level", metric, "trained_with",
                                  where=f"Under {worst}: ")


COLUMN_NAMES = {"R1_occluded": "R1 (occluded queries)", "mAP_occluded": "mAP (occluded queries)",
                "R1_clean": "R1 (clean queries)", "mAP_clean": "mAP (clean queries)", "trained_with": "trained with",
                "test_occlusion": "test occlusion", "V MiB": "V (MiB)", "S fps": "S (fps)",
                "img/s @batch": "img/s (batch)", "ours (95% CI)": "ours (95% CI)", "fit mAP": "training-fit mAP",
                "fit_mAP": "training-fit mAP"}


def readable(col: str) -> str:
    """A column name a reader can read: the mapped name, else underscores as spaces."""
    return COLUMN_NAMES.get(col, col.replace("_", " "))


def fig1_note(ours) -> str:
    """What to look at in Fig. 1, from the numbers: the paper's fastest and most accurate methods, and where
    our best HENet row sits."""

    t = paper.TABLE1
    best = max(t, key=lambda k: t[k]["r1"])
    other = max((k for k in t if not k.startswith("HENet")), key=lambda k: t[k]["r1"])
    ob = ours.loc[ours["R1"].idxmax()]
    return (f"In the paper, {best} has the highest R1 ({t[best]['r1']:.1f}), {t[best]['r1'] - t[other]['r1']:+.1f} "
            f"over {other}, the best other method, at {t[best]['s'] / t[other]['s']:.2f}x its speed and "
            f"{t[best]['v'] / t[other]['v']:.2f}x its size. Of ours, {ob['Method']} has the highest R1 "
            f"({ob['R1']:.1f}) at {ob['S fps']:.1f} fps and {ob['V MiB']:.0f} MiB.")
