"""Tables and figures for the notebooks and for a paper: ours beside the paper's, one figure style, LaTeX that
compiles, captions beside the figures (never inside them), and sentences that say what a figure shows.

Figures: :func:`figure` makes a figure at a print width (:data:`ONE_COLUMN` 3.3 in or :data:`TWO_COLUMN` 7 in)
in the style :data:`RC` (8-9 pt text, TrueType fonts in PDFs, a colour-blind-safe palette whose series also
differ by marker and line style). :func:`save_figure` writes ``<name>.pdf`` (one page per part of a figure that
is too tall for a page), ``<name>.png`` at 300 dpi, ``<name>.caption.txt`` and ``<name>.tex`` (a figure
environment with the caption). Tables: :func:`save_table` writes Markdown and a booktabs ``.tex`` that
pdflatex compiles with the packages of :data:`LATEX_PACKAGES`: escaped text, true minus signs, columns of one
number format right-aligned so their decimals line up, two-line headers, ``table*`` when wide, column groups
when wider than a page, ``longtable`` when long.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .utils import atomic_write_bytes, atomic_write_text, figures_dir

# ---------------------------------------------------------------------------------------------------------
# Figure style

ONE_COLUMN = 3.3  # inches: one column of a two-column paper
TWO_COLUMN = 7.0  # inches: the full text width
MAX_WIDTH, MAX_HEIGHT = 7.2, 9.0  # no figure may be larger (a page's text block with its caption)
DPI = 300
# Okabe & Ito (2008), the palette most colour-vision deficiencies still tell apart; black last
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 2)), (0, (8, 2)))
PAPER_COLOUR = "0.35"  # the paper's numbers: grey, hatched or crossed, never a series colour
RC = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8,
    "figure.titlesize": 9,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.2,
    "lines.markersize": 4,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "pdf.fonttype": 42,  # TrueType, not Type 3: publishers' PDF checks reject Type 3
    "ps.fonttype": 42,
    "savefig.dpi": DPI,
    "figure.dpi": 100,
    "image.cmap": "viridis",
}


def use_style() -> None:
    """Apply :data:`RC` and the palette (colour, marker and line style change together) to matplotlib."""
    import matplotlib as mpl
    from cycler import cycler

    mpl.rcParams.update(RC)
    mpl.rcParams["axes.prop_cycle"] = (cycler(color=list(PALETTE)) + cycler(marker=list(MARKERS))
                                       + cycler(linestyle=list(LINESTYLES)))


def series_style(i: int) -> dict:
    """Colour, marker and line style of series ``i``: each series differs in all three."""
    return {"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[i % len(MARKERS)],
            "linestyle": LINESTYLES[i % len(LINESTYLES)]}


def figure(width: str | float = "two", height: float = 2.6, nrows: int = 1, ncols: int = 1, **kwargs):
    """``plt.subplots`` at a print width ("one": 3.3 in, "two": 7 in, or inches), in the project's style,
    with constrained layout, so the saved file is exactly this size and its text prints at 8-9 pt."""
    import matplotlib.pyplot as plt

    use_style()
    w = {"one": ONE_COLUMN, "two": TWO_COLUMN}.get(width, width) if isinstance(width, str) else float(width)
    if w > MAX_WIDTH or height > MAX_HEIGHT:
        raise ValueError(f"a {w:.1f} x {height:.1f} in figure does not fit a page ({MAX_WIDTH} x {MAX_HEIGHT} in).")
    kwargs.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, figsize=(w, height), **kwargs)


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


def mark_order(df: pd.DataFrame, ours: str, theirs: str) -> pd.Series:
    """Per row: does the row sit on the same side of the median in both columns? (✓ / ✗)."""
    o = df[ours] >= df[ours].median()
    t = df[theirs] >= df[theirs].median()
    return (o == t).map({True: "✓", False: "✗"})


def side_by_side(ours: pd.DataFrame, paper: dict, key: str, cols: list[str]) -> pd.DataFrame:
    """Join our summary (indexed by ``key``) with the paper's numbers for ``cols``. Whether a difference
    between rows agrees with the paper is the claims scoreboard's job (henetlib.claims), not a mark here."""
    df = ours.copy()
    for c in cols:
        df[f"{c} (paper)"] = df[key].map(lambda k, c=c: paper.get(k, {}).get(c, np.nan))
    return df


def with_intervals(df: pd.DataFrame, metrics=("R1", "mAP")) -> pd.DataFrame:
    """A copy for printing: each metric as "56.6 ± 2.1" (mean ± half the 95% interval); drops the bound
    and spread columns."""
    out = df.copy()
    for m in metrics:
        if f"{m}_lo" in out:
            half = (out[f"{m}_hi"] - out[f"{m}_lo"]) / 2
            out[m] = [f"{v:.1f} ± {h:.1f}" if np.isfinite(h) else f"{v:.1f}" for v, h in zip(out[m], half, strict=True)]
    drop = [c for c in out.columns if c.endswith(("_lo", "_hi", "_sd"))]
    return out.drop(columns=drop)


def error_bars(df: pd.DataFrame, m: str) -> np.ndarray:
    """(2, N) distances from the mean to the interval's bounds, for matplotlib's ``yerr``."""
    return np.abs(np.vstack([df[m] - df[f"{m}_lo"], df[f"{m}_hi"] - df[m]]))


def drop_constant(df: pd.DataFrame, cols: Sequence[str] = ("seeds",)) -> pd.DataFrame:
    """Drop bookkeeping columns that hold one value for every row (the caption states it)."""
    return df.drop(columns=[c for c in cols if c in df and df[c].nunique(dropna=False) <= 1])


def protocols_table(prot: pd.DataFrame) -> pd.DataFrame:
    """Per test protocol: R1, R5, R10, mAP, mINP in that order (ranks ascending), whatever order they came in."""
    first = [c for c in ("protocol", "R1", "R5", "R10", "mAP", "mINP") if c in prot]
    return prot[first + [c for c in prot.columns if c not in first]]


def fig4_table(df: pd.DataFrame) -> pd.DataFrame:
    """Fig. 4's rows for printing: the p = 0 run is one shared model (no erasing), so it appears once, as
    "none", instead of once per method."""
    t = drop_constant(with_intervals(df, ("R1", "mAP")))
    zero = t["p"] == 0
    if zero.sum() > 1:
        first = t[zero].iloc[[0]].assign(method="none (p = 0)")
        t = pd.concat([first, t[~zero]], ignore_index=True)
    return t.rename(columns={"R1_occluded": "R1 (occluded queries)", "mAP_occluded": "mAP (occluded queries)"})


def fig5_table(df: pd.DataFrame, metrics: Sequence[str] | str = ("R1", "mAP")) -> pd.DataFrame:
    """Fig. 5 for printing: one row per training erasing and level, per metric one column per test occlusion.
    Level 0 is the clean test set, the same for every test occlusion: one "clean" column, not three repeated
    rows."""
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    t = with_intervals(df, metrics)
    tests = list(dict.fromkeys(df["test_occlusion"]))
    out = None
    for m in metrics:
        wide = t.pivot_table(index=["trained_with", "level"], columns="test_occlusion", values=m, aggfunc="first",
                             sort=False).reset_index()
        wide.columns.name = None
        clean = wide[wide["level"] == 0].set_index("trained_with")
        rest = wide[wide["level"] > 0].reset_index(drop=True)
        part = pd.DataFrame({"trained with": rest["trained_with"], "level": rest["level"],
                             f"{m} clean": rest["trained_with"].map(clean[tests[0]]) if len(clean) else "",
                             **{f"{m} under {t_}": rest[t_] for t_ in tests if t_ in rest}})
        out = part if out is None else out.merge(part, on=["trained with", "level"], sort=False)
    return out


VERDICT_MARKS = {"reproduced": "✓ reproduced", "contradicted": "✗ contradicted", "unresolved": "? unresolved",
                 "not run": "– not run"}


def claims_table(board: pd.DataFrame) -> pd.DataFrame:
    """The scoreboard for printing: our difference ± half its interval, the paper's, the verdict."""
    half = (board["hi"] - board["lo"]) / 2
    ours = [f"{d:+.2f} ± {h:.2f}" if np.isfinite(d) else "-" for d, h in zip(board["ours diff"], half, strict=True)]
    fmt = ".2f"
    paper_d = [format(p, "+" + fmt) if np.isfinite(p) else "text only" for p in board["paper diff"]]
    return pd.DataFrame({"claim": board["claim"], "comparison": board["comparison"], "metric": board["metric"],
                         "ours (95% CI)": ours, "paper": paper_d,
                         "verdict": board["verdict"].map(VERDICT_MARKS)})


# ---------------------------------------------------------------------------------------------------------
# Figures the notebooks share

VERDICT_STYLE = {  # colour, marker, filled, line style: tell verdicts apart without colour too
    "reproduced": (PALETTE[2], "o", True, "-"),
    "contradicted": (PALETTE[3], "X", True, "--"),
    "unresolved": ("0.45", "o", False, ":"),
    "not run": ("0.6", "_", False, ""),
}


def bar_chart(df: pd.DataFrame, label: str, metrics: Sequence[str] = ("R1", "mAP"), paper: bool = True,
              width: str | float = "two", height: float = 2.7):
    """Ours (with 95% error bars) beside the paper's bars, one panel per metric. The legend sits above the
    panels, so it covers no bar."""
    fig, axes = figure(width, height, 1, len(metrics))
    axes = np.atleast_1d(axes)
    x = np.arange(len(df))
    has_paper = paper and all(f"{m} (paper)" in df for m in metrics)
    w = 0.4 if has_paper else 0.7
    for ax, m in zip(axes, metrics, strict=True):
        yerr = error_bars(df, m) if f"{m}_lo" in df else None
        ax.bar(x - (w / 2 if has_paper else 0), df[m], width=w, yerr=yerr, capsize=2, color=PALETTE[0],
               error_kw={"elinewidth": 0.8, "capthick": 0.8}, label="ours (95% CI)")
        if has_paper:
            ax.bar(x + w / 2, df[f"{m} (paper)"], width=w, color="white", edgecolor=PAPER_COLOUR, hatch="////",
                   linewidth=0.6, label="paper (Market-1501)")
        ax.set_xticks(x, df[label], rotation=35, ha="right", rotation_mode="anchor")
        ax.set_ylabel(f"{m} (%)")
        ax.set_ylim(0, 100)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=len(labels))
    return fig


def curves(df: pd.DataFrame, x: str, group: str, metrics: Sequence[str] = ("R1", "mAP"), panel: str | None = None,
           xlabel: str | None = None, paper: dict[str, list[tuple[float, float, str]]] | None = None,
           height: float | None = None):
    """Metric against ``x``, one line per ``group`` (colour, marker and line style all differ) with its 95%
    band (``<m>_lo``/``_hi``); rows are metrics, columns the values of ``panel`` (Fig. 5's test occlusion).
    ``paper``: per metric, points (x, y, label) the paper gives, drawn as black stars."""
    panels = list(dict.fromkeys(df[panel])) if panel else [None]
    groups = list(dict.fromkeys(df[group]))
    nr, nc = (len(metrics), len(panels)) if panel else (1, len(metrics))
    fig, axes = figure("two", height or (2.3 * nr + 0.5), nr, nc, squeeze=False, sharex=True,
                       sharey="row" if panel else False)
    for r, m in enumerate(metrics):
        for c, pv in enumerate(panels):
            ax = axes[r, c] if panel else axes[0, r]
            d = df if pv is None else df[df[panel] == pv]
            for i, gname in enumerate(groups):
                g = d[d[group] == gname].sort_values(x)
                st = series_style(i)
                ax.plot(g[x], g[m], label=str(gname), **st)
                if f"{m}_lo" in g:
                    ax.fill_between(g[x], g[f"{m}_lo"].clip(lower=0), g[f"{m}_hi"], color=st["color"], alpha=0.12,
                                    lw=0)
            for px, py, plabel in (paper or {}).get(m, []):
                ax.plot([px], [py], "*", color="k", ms=8, linestyle="none", label=plabel)
            if pv is not None and r == 0:
                ax.set_title(f"test occlusion: {pv}" if panel == "test_occlusion" else f"{panel}: {pv}")
            if c == 0 or not panel:
                ax.set_ylabel(f"{m} (%)")
            if r == nr - 1 or not panel:
                ax.set_xlabel(xlabel or x)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 4),
               title=readable(group) if not paper else None)
    return fig


def training_curves(results: Sequence, labels: Sequence[str] | None = None):
    """Did the runs converge? Left: each run's mean training loss per P x K epoch (log scale; the losses
    summed differ per run, so compare shapes, not heights). Right: its training-fit mAP (henetlib.regime) at
    80% of the schedule and at the end, joined by a line: the rule calls a run converged when the line rises
    by less than the rule's points. ``results``: runner.Result-like (``history``, ``regime``, ``name``)."""
    labels = list(labels) if labels is not None else [r.name for r in results]
    fig, (ax_l, ax_f) = figure("two", 2.6, 1, 2)
    for i, (r, lab) in enumerate(zip(results, labels, strict=True)):
        st = series_style(i)
        h = r.history or []
        ax_l.plot([e["epoch"] + 1 for e in h], [e["loss"] for e in h], label=lab, markersize=3, **st)
        reg = r.regime or {}
        chk, fin = (reg.get("train_fit_check") or {}).get("mAP"), (reg.get("train_fit") or {}).get("mAP")
        if chk is not None and fin is not None:
            ax_f.plot([0, 1], [chk, fin], color=st["color"], marker=st["marker"], linestyle=st["linestyle"])
    ax_l.set_yscale("log")
    ax_l.set_xlabel("P x K epoch")
    ax_l.set_ylabel("training loss (mean per step)")
    ax_f.set_xticks([0, 1], ["at 80%", "at the end"])
    ax_f.set_xlim(-0.3, 1.3)
    ax_f.set_ylabel("training-fit mAP (%)")
    handles, labs = ax_l.get_legend_handles_labels()
    fig.legend(handles, labs, loc="outside upper center", ncols=min(len(labs), 4))
    return fig


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


def forest_plot(board: pd.DataFrame, title: str = "", rows_per_part: int = 60):
    """Each claim's difference with its 95% interval, the paper's difference as a black cross. Verdicts differ
    in colour, marker and line style. A board longer than ``rows_per_part`` splits into parts that each fit a
    page (a list of figures; :func:`save_figure` writes them as pages of one PDF). ``title`` is not drawn:
    titles belong in the caption."""
    import matplotlib.pyplot as plt

    b = board.reset_index(drop=True)
    nparts = max(1, math.ceil(len(b) / rows_per_part))
    size = math.ceil(len(b) / nparts)
    figs = []
    for part in range(nparts):
        chunk = b.iloc[part * size:(part + 1) * size].reset_index(drop=True)
        fig, ax = figure("two", min(MAX_HEIGHT, 0.13 * len(chunk) + 0.9))
        y = np.arange(len(chunk))[::-1]
        for yi, (_, r) in zip(y, chunk.iterrows(), strict=True):
            c, mk, filled, ls = VERDICT_STYLE.get(r["verdict"], VERDICT_STYLE["unresolved"])
            if np.isfinite(r["ours diff"]):
                ax.plot([r["lo"], r["hi"]], [yi, yi], color=c, lw=1.4, ls=ls, marker="")
                ax.plot(r["ours diff"], yi, mk, color=c, ms=4, mfc=c if filled else "white", mew=0.9)
            if np.isfinite(r["paper diff"]):
                ax.plot(r["paper diff"], yi, "+", color="k", ms=5, mew=1.0)
        ax.axvline(0, color="k", lw=0.6)
        ax.set_yticks(y, [f"{r.claim} {r.metric}: {r.comparison}" for r in chunk.itertuples()], fontsize=7)
        ax.set_ylim(-0.7, len(chunk) - 0.3)
        ax.set_xlabel("difference (points; ES for Table 1)")
        present = set(b["verdict"])
        handles = [plt.Line2D([], [], color=c, ls=ls or "none", marker=mk or None, mfc=c if f else "white",
                              label=v) for v, (c, mk, f, ls) in VERDICT_STYLE.items() if v in present]
        handles.append(plt.Line2D([], [], color="k", marker="+", lw=0, label="paper"))
        fig.legend(handles=handles, loc="outside upper center", ncols=len(handles))
        figs.append(fig)
    return figs[0] if nparts == 1 else figs


# ---------------------------------------------------------------------------------------------------------
# LaTeX

LATEX_PACKAGES = ("booktabs", "longtable", "array", "amsmath", "amssymb", "graphicx", "xcolor", "siunitx",
                  "caption")
TEXT_WIDTH_PT = 483.0  # what a table may take: the driver's text (letter paper, 2 cm margins) less a margin
COLUMN_WIDTH_PT = 240.0  # one column of a two-column paper: narrower tables stay in a one-column float
LONG_ROWS = 30  # more rows than this: longtable, which breaks across pages

_UNICODE = {"±": r"$\pm$", "−": r"$-$", "–": "--", "—": "---", "✓": r"$\checkmark$", "✗": r"$\times$",
            "×": r"$\times$", "≥": r"$\geq$", "≤": r"$\leq$", "→": r"$\rightarrow$", "…": r"\dots{}",
            "·": r"$\cdot$", "°": r"$^\circ$", "ρ": r"$\rho$", "λ": r"$\lambda$", "≈": r"$\approx$"}
_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
            ">": r"\textgreater{}", "|": r"\textbar{}"}
_NUMBER = re.compile(r"^\s*([+\-−]?\d+(?:\.\d+)?)(?:\s*±\s*(\d+(?:\.\d+)?))?\s*$")


def latex_escape(text: object) -> str:
    """Plain text -> LaTeX that pdflatex typesets as written (T1, utf8): specials escaped, Unicode marks and
    symbols mapped to amssymb/math commands, so no character stops the compile or prints wrong."""
    out = []
    for ch in str(text):
        if ch in _SPECIAL:
            out.append(_SPECIAL[ch])
        elif ch in _UNICODE:
            out.append(_UNICODE[ch])
        elif ord(ch) < 128 or ch in "äöüÄÖÜßéèàçñ":
            out.append(ch)
        else:
            out.append("?")  # anything else would stop pdflatex: never silently, so keep it visible
    return "".join(out)


def latex_number(text: str) -> str | None:
    """'-0.97 ± 4.98' -> '$-0.97 \\pm 4.98$' (a true minus); None when ``text`` is not a number."""
    m = _NUMBER.match(str(text))
    if not m:
        return None
    v = m.group(1).replace("−", "-")
    return f"${v}" + (rf" \pm {m.group(2)}" if m.group(2) else "") + "$"


def latex_cell(v: object, floatfmt: str = ".2f") -> str:
    """One cell: numbers in one format with a true minus, '--' where missing, text escaped."""
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "--"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"${int(v)}$"
    if isinstance(v, (float, np.floating)):
        return f"${format(float(v), floatfmt)}$"
    return latex_number(str(v)) or latex_escape(v)


COLUMN_NAMES = {"R1_occluded": "R1 (occluded queries)", "mAP_occluded": "mAP (occluded queries)",
                "R1_clean": "R1 (clean queries)", "mAP_clean": "mAP (clean queries)", "trained_with": "trained with",
                "test_occlusion": "test occlusion", "V MiB": "V (MiB)", "S fps": "S (fps)",
                "img/s @batch": "img/s (batch)", "ours (95% CI)": "ours (95% CI)"}


def readable(col: str) -> str:
    """A column name a reader can read: the mapped name, else underscores as spaces."""
    return COLUMN_NAMES.get(col, col.replace("_", " "))


def _header(col: str) -> str:
    """A header cell; "X (y)" becomes two lines, which keeps numeric columns narrow."""
    m = re.match(r"^(.*?)\s+(\(.*\))$", col)
    if not m:
        return latex_escape(col)
    return (r"\begin{tabular}[b]{@{}c@{}}" + latex_escape(m.group(1)) + r"\\" + latex_escape(m.group(2))
            + r"\end{tabular}")


def _column(series: pd.Series, floatfmt: str) -> tuple[list[str], str, float]:
    """(cells, alignment, estimated width in pt at \\small) of one column."""
    integral = pd.api.types.is_float_dtype(series) and bool(
        np.all([(not np.isfinite(x)) or float(x).is_integer() for x in series]))
    cells = []
    for v in series:
        if integral and isinstance(v, (float, np.floating)) and np.isfinite(v):
            cells.append(f"${int(v)}$")
        else:
            cells.append(latex_cell(v, floatfmt))
    numeric = all(c == "--" or c.startswith("$") and c.endswith("$") and not c.startswith(r"$\checkmark")
                  for c in cells)
    plain = [re.sub(r"\\[a-zA-Z]+|[${}]", "", c) for c in cells]
    chars = max((len(p) for p in plain), default=1)
    if not numeric and chars > 34:
        return cells, r">{\raggedright\arraybackslash}p{%.0fpt}" % (34 * 4.6), 34 * 4.6 + 12
    return cells, "r" if numeric else "l", chars * 4.6 + 12


def _header_width(col: str) -> float:
    m = re.match(r"^(.*?)\s+(\(.*\))$", col)
    parts = [m.group(1), m.group(2)] if m else [col]
    return max(len(p) for p in parts) * 4.6 + 12


def _blank_repeats(cells: list[str]) -> list[str]:
    """A first column that repeats its value on consecutive rows prints it once (booktabs grouping)."""
    return [c if i == 0 or c != cells[i - 1] else "" for i, c in enumerate(cells)]


def latex_table(df: pd.DataFrame, cap: str, label: str, floatfmt: str = ".2f") -> str:
    """A booktabs table that compiles with :data:`LATEX_PACKAGES`: ``table`` when it fits a column,
    ``table*`` when it needs the text width, column groups (key column repeated) when wider than the text,
    ``longtable`` when longer than :data:`LONG_ROWS` rows."""
    df = df.rename(columns={c: readable(str(c)) for c in df.columns})
    cols = []
    for i, c in enumerate(df.columns):
        cells, align, w = _column(df[c], floatfmt)
        if i == 0:
            cells = _blank_repeats(cells)
        cols.append((c, cells, align, max(w, _header_width(c))))
    # a little too wide: narrower column gaps (3 pt a side instead of 6) before splitting into groups
    tight = TEXT_WIDTH_PT < sum(c[3] for c in cols) <= TEXT_WIDTH_PT + 6 * len(cols)
    if tight:
        cols = [(c, cells, align, w - 6) for c, cells, align, w in cols]
    # groups of columns that each fit the text width; every group repeats the first (key) column
    groups, cur, width = [], [0], cols[0][3]
    for i in range(1, len(cols)):
        if width + cols[i][3] > TEXT_WIDTH_PT and len(cur) > 1:
            groups.append(cur)
            cur, width = [0], cols[0][3]
        cur.append(i)
        width += cols[i][3]
    groups.append(cur)
    widest = max(sum(cols[i][3] for i in g) for g in groups)
    cap_tex, lab = latex_escape(cap), f"tab:{label}"
    nrows = len(df)

    def tabular_rows(g: list[int]) -> tuple[str, str, str]:
        spec = "".join(cols[i][2] for i in g)
        head = " & ".join(_header(cols[i][0]) for i in g) + r" \\"
        body = "\n".join(" & ".join(cols[i][1][r] for i in g) + r" \\" for r in range(nrows))
        return spec, head, body

    # printed lines: a wrapped (p) column takes about one line per 34 characters; a float taller than a page
    # cannot break, so a table that long becomes a longtable too
    wrapped = [i for i, c in enumerate(cols) if c[2].startswith(">")]
    lines = sum(max([1] + [math.ceil(len(re.sub(r"\\[a-zA-Z]+|[${}]", "", cols[i][1][r])) / 34) for i in wrapped])
                for r in range(nrows))
    if nrows > LONG_ROWS or lines > LONG_ROWS + 10:
        parts = []
        for k, g in enumerate(groups):
            spec, head, body = tabular_rows(g)
            more = f" (columns, part {k + 1} of {len(groups)})" if len(groups) > 1 else ""
            parts.append(
                "{\\small\n" + ("\\setlength{\\tabcolsep}{3pt}\n" if tight else "") + "\\begin{longtable}{" + spec + "}\n"
                f"\\caption{{{cap_tex}{more}}}\\label{{{lab}{'' if k == 0 else f'-{k + 1}'}}}\\\\\n"
                f"\\toprule\n{head}\n\\midrule\n\\endfirsthead\n"
                f"\\multicolumn{{{len(g)}}}{{l}}{{\\footnotesize continued from the previous page}}\\\\\n"
                f"\\toprule\n{head}\n\\midrule\n\\endhead\n\\bottomrule\n\\endlastfoot\n{body}\n"
                "\\end{longtable}\n}\n")
        return "".join(parts)
    env = "table" if widest <= COLUMN_WIDTH_PT else "table*"
    blocks = []
    for g in groups:
        spec, head, body = tabular_rows(g)
        blocks.append(f"\\begin{{tabular}}{{{spec}}}\n\\toprule\n{head}\n\\midrule\n{body}\n\\bottomrule\n"
                      "\\end{tabular}\n")
    gap = "\\setlength{\\tabcolsep}{3pt}\n" if tight else ""
    return (f"\\begin{{{env}}}[tbp]\n\\centering\n\\small\n{gap}" + "\\par\\medskip\n".join(blocks)
            + f"\\caption{{{cap_tex}}}\n\\label{{{lab}}}\n\\end{{{env}}}\n")


def save_table(df: pd.DataFrame, name: str, cap: str, floatfmt: str = ".2f", folder: Path | None = None) -> Path:
    """Write ``figures/<name>.md`` and ``.tex`` atomically, with readable column names; returns the Markdown
    path. The ``.tex`` is :func:`latex_table`'s."""
    folder = folder or figures_dir()
    if (folder / f"{name}.caption.txt").exists():
        raise ValueError(f"{name} is a figure's name; a table of the same name would overwrite its .tex.")
    df = df.rename(columns={c: readable(str(c)) for c in df.columns})
    md = f"{df.to_markdown(index=False, floatfmt=floatfmt)}\n\n{cap}\n"
    atomic_write_text(folder / f"{name}.md", md)
    atomic_write_text(folder / f"{name}.tex", latex_table(df, cap, name, floatfmt))
    return folder / f"{name}.md"


def figure_tex(name: str, cap: str, width_in: float, parts: int = 1) -> str:
    """The ``.tex`` of a saved figure: ``figure`` (one column) or ``figure*`` (two), ``\\includegraphics``
    of ``<name>.pdf`` (one float per page of a figure in parts), and the caption."""
    env = "figure" if width_in <= ONE_COLUMN + 0.2 else "figure*"
    size = "" if env == "figure" else "[width=\\linewidth]"
    out = []
    for k in range(parts):
        opts = size if parts == 1 else (f"[page={k + 1},width=\\linewidth]" if size else f"[page={k + 1}]")
        more = f" (part {k + 1} of {parts})" if parts > 1 else ""
        lab = f"fig:{name}" + (f"-{k + 1}" if k else "")
        out.append(f"\\begin{{{env}}}[tbp]\n\\centering\n\\includegraphics{opts}{{{name}}}\n"
                   f"\\caption{{{latex_escape(cap)}{more}}}\n\\label{{{lab}}}\n\\end{{{env}}}\n")
    return "".join(out)


def save_figure(fig, name: str, cap: str | None = None, folder: Path | None = None) -> list[Path]:
    """Save ``figures/<name>.pdf`` and ``.png`` (300 dpi) at the figure's own size, and the caption beside it
    in ``<name>.caption.txt`` and ``<name>.tex``; nothing is drawn into the image.

    ``fig`` may be a list of figures (a figure in page-sized parts): the PDF gets one page per part, the PNG
    is part 1 and ``<name>-2.png`` ... the others. A figure larger than 7.2 x 9 in is refused.
    """
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    folder = folder or figures_dir()
    if (folder / f"{name}.md").exists():
        raise ValueError(f"{name} is a table's name; a figure of the same name would overwrite its .tex "
                         "(name figures fig_...).")
    figs = list(fig) if isinstance(fig, (list, tuple)) else [fig]
    for f in figs:
        w, h = f.get_size_inches()
        if w > MAX_WIDTH + 1e-6 or h > MAX_HEIGHT + 1e-6:
            raise ValueError(f"{name}: {w:.2f} x {h:.2f} in is larger than a page allows ({MAX_WIDTH} x {MAX_HEIGHT} "
                             "in); split it into parts.")
    with plt.rc_context({"pdf.fonttype": 42, "ps.fonttype": 42}):
        buf = io.BytesIO()
        # no creation date or software stamp: an unchanged figure stays byte-identical between runs
        with PdfPages(buf, metadata={"CreationDate": None, "Producer": None}) as pdf:
            for f in figs:
                pdf.savefig(f)
        atomic_write_bytes(folder / f"{name}.pdf", buf.getvalue())
        paths = [folder / f"{name}.pdf"]
        for k, f in enumerate(figs):
            png = folder / (f"{name}.png" if k == 0 else f"{name}-{k + 1}.png")
            buf = io.BytesIO()
            f.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
            atomic_write_bytes(png, buf.getvalue())
            paths.append(png)
    for stale in folder.glob(f"{name}-[0-9]*.png"):  # parts of an earlier, longer version
        if stale not in paths:
            stale.unlink()
    if cap:
        atomic_write_text(folder / f"{name}.caption.txt", cap + "\n")
        atomic_write_text(folder / f"{name}.tex", figure_tex(name, cap, float(figs[0].get_size_inches()[0]),
                                                             len(figs)))
    else:
        warnings.warn(f"{name}: saved without a caption; a paper figure needs one.", stacklevel=2)
    return paths


def latex_driver(names: Sequence[str], graphics_dir: str | Path = ".") -> str:
    """A plain article that ``\\input``s ``<name>.tex`` for every name: what the test compiles, and a
    starting point for a paper (T1, utf8, 2 cm margins, only :data:`LATEX_PACKAGES`)."""
    gdir = str(graphics_dir).rstrip("/") + "/"
    body = "\n\\clearpage\n".join(f"\\input{{{n}}}" for n in names)
    return ("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage[utf8]{inputenc}\n"
            # 2 cm margins by hand: geometry is not among the packages a paper's class may allow
            "\\setlength{\\textwidth}{\\dimexpr\\paperwidth-4cm}\\setlength{\\textheight}{\\dimexpr\\paperheight-4cm}\n"
            "\\setlength{\\oddsidemargin}{\\dimexpr2cm-1in}\\setlength{\\evensidemargin}{\\oddsidemargin}\n"
            "\\setlength{\\topmargin}{\\dimexpr2cm-1in-\\headheight-\\headsep}\n"
            + "".join(f"\\usepackage{{{p}}}\n" for p in LATEX_PACKAGES)
            + f"\\graphicspath{{{{{gdir}}}}}\n\\begin{{document}}\n{body}\n\\end{{document}}\n")


use_style()  # every figure drawn after importing this module uses the project style


def check_latex(folder: Path | None = None, names: Sequence[str] | None = None, tolerance_pt: float = 3.0,
                workdir: Path | None = None) -> dict:
    """Compile every ``<folder>/*.tex`` (or ``names``) with pdflatex from :func:`latex_driver`. Returns
    {"ok": compiled, no error and no box wider than the text by more than ``tolerance_pt``, "overfull": [pt],
    "log": the log's tail}. Raises FileNotFoundError without pdflatex."""
    import shutil
    import subprocess
    import tempfile

    if shutil.which("pdflatex") is None:
        raise FileNotFoundError("pdflatex is not installed (apt-get install texlive-latex-recommended texlive-science).")
    folder = Path(folder or figures_dir()).resolve()
    names = list(names) if names is not None else sorted(p.stem for p in folder.glob("*.tex"))
    work = Path(workdir or tempfile.mkdtemp(prefix="henet-latex-"))
    for n in names:  # \input finds the snippets and \includegraphics the PDFs through these paths
        shutil.copy(folder / f"{n}.tex", work / f"{n}.tex")
    (work / "driver.tex").write_text(latex_driver(names, folder), encoding="utf-8")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "driver.tex"], cwd=work,
                          capture_output=True, text=True, timeout=300)
    log = (work / "driver.log").read_text(errors="replace") if (work / "driver.log").exists() else proc.stdout
    over = [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]
    ok = proc.returncode == 0 and all(x <= tolerance_pt for x in over) and "Missing character" not in log
    return {"ok": ok, "overfull": over, "log": log[-3000:], "pdf": work / "driver.pdf"}
