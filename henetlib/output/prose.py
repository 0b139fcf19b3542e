"""Words beside the figures: captions (what is plotted; the provenance in one methods note), and sentences
computed from the numbers that say what a figure or table shows, with readable column names."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from henetlib import paper

# ---------------------------------------------------------------------------------------------------------
# Captions and sentences about what a figure shows


def caption(profile: str, dataset: str, hardware: str, extra: str = "", start: str | None = None) -> str:
    """The line every table and figure carries: what our numbers come from. ``start``: how the runs start
    and how long they train (``StudyContext.start``); without it, the profile's default regime."""
    line = f"Ours: profile '{profile}', data set {dataset}, measured on {hardware}."
    if start:
        line += f" Runs: {start}."
    elif profile == "smoke":
        line += " Smoke profile: a few epochs from random weights; a pipeline check, noisy by design."
    elif profile == "gpu":
        line += " GPU profile: ResNet50 from random weights, 128x64, 30 P x K epochs."
    line += " Paper: Market-1501, ImageNet-pretrained ResNet50, 200 epochs."
    return line + (f" {extra}" if extra else "")


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
            f"{100 * np.mean(right):.0f}% of their top {topk} are the right identity (green frames).")


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
                "img/s @batch": "img/s (batch)", "ours (95% CI)": "ours (95% CI)"}


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
