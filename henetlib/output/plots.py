"""Every plot of the study, in the print style of :mod:`henetlib.output.style`: dot charts of Tables 2-4, Fig. 4
in small multiples, Fig. 5's curves, training curves, the claims' forest plot, Fig. 1 and ranked lists."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from henetlib import paper
from henetlib.engine.efficiency import ACCURACY_ONLY, HENET_ROWS
from henetlib.engine.evaluation import ArrayLike, _as_tensor
from henetlib.output import style
from henetlib.output.formats import REGIME_LABELS
from henetlib.output.prose import readable
from henetlib.output.style import (
    MARKERS,
    MATCH_STYLE,
    MAX_HEIGHT,
    OURS_COLOUR,
    PALETTE,
    PAPER_COLOUR,
    VERDICT_STYLE,
    figure,
    series_style,
)

IN_REGIME = "paper"  # henetlib.engine.regime's code for a converged run from a pretrained backbone


def error_bars(df: pd.DataFrame, m: str) -> np.ndarray:
    """(2, N) distances from the mean to the interval's bounds, for matplotlib's ``yerr``."""
    return np.abs(np.vstack([df[m] - df[f"{m}_lo"], df[f"{m}_hi"] - df[m]]))


def _plain_ticks(axis, lo: float, hi: float, nbins: int = 5) -> None:
    """Ticks at round numbers between ``lo`` and ``hi``, labelled as plain numbers ("150", not "1.5x10^2")
    and without minor labels: what a log axis needs to read like a linear one."""
    from matplotlib.ticker import MaxNLocator, NullFormatter

    ticks = [t for t in MaxNLocator(nbins=nbins).tick_values(lo, hi) if lo <= t <= hi]
    axis.set_ticks(ticks, [f"{t:g}" for t in ticks])
    axis.set_minor_formatter(NullFormatter())


def _off_regime(d: pd.DataFrame) -> np.ndarray:
    """Rows whose runs are not all in the paper's training regime (converged, pretrained): drawn hollow."""
    if "regime" not in d:
        return np.zeros(len(d), dtype=bool)
    return np.array([str(r) not in (IN_REGIME, REGIME_LABELS[IN_REGIME]) for r in d["regime"]])


# ---------------------------------------------------------------------------------------------------------
# Tables 2-4: dot charts zoomed to the data


def bar_chart(df: pd.DataFrame, label: str, metrics: Sequence[str] = ("R1", "mAP"), paper: bool = True,
              width: str | float = "two", height: float | None = None):
    """A table's rows as a dot chart: per metric, our means with 95% error bars in one panel and the paper's
    numbers in the next, rows on a shared vertical axis. Dots, not bars: the axes are zoomed to the data, where
    the claims' 1-4 point differences show (a bar would have to start at 0, which hides them). Every panel
    spans the same number of points, so a gap between rows reads the same in ours and in the paper's. A dotted
    line marks the first row (the table's baseline) in each panel."""
    import matplotlib.pyplot as plt

    has_paper = paper and all(f"{m} (paper)" in df and df[f"{m} (paper)"].notna().any() for m in metrics)
    panels = [(m, src) for m in metrics for src in (("ours", "paper") if has_paper else ("ours",))]
    n = len(df)
    fig, axes = figure(width, height or (0.95 + 0.17 * n), 1, len(panels), sharey=True)
    axes = np.atleast_1d(axes)
    y = np.arange(n)[::-1]

    def extent(m: str, src: str) -> tuple[float, float]:
        if src == "paper":
            v = df[f"{m} (paper)"].to_numpy(float)
            return float(np.nanmin(v)), float(np.nanmax(v))
        lo = df[f"{m}_lo"] if f"{m}_lo" in df else df[m]
        hi = df[f"{m}_hi"] if f"{m}_hi" in df else df[m]
        return float(np.nanmin(lo)), float(np.nanmax(hi))

    spans = [extent(m, s) for m, s in panels]
    span = max(max(b - a for a, b in spans) * 1.15, 2.0)  # one scale for every panel; at least 2 points
    for ax, (m, src), (a, b) in zip(axes, panels, spans, strict=True):
        mid = (a + b) / 2
        ax.set_xlim(mid - span / 2, mid + span / 2)
        if src == "ours":
            xerr = error_bars(df, m) if f"{m}_lo" in df else None
            ax.errorbar(df[m], y, xerr=xerr, fmt="o", color=OURS_COLOUR, ms=4, elinewidth=0.9, capsize=2,
                        label="ours (95% interval)")
            ref = float(df[m].iloc[0])
        else:
            ax.plot(df[f"{m} (paper)"], y, "D", color=PAPER_COLOUR, mfc="white", ms=4, mew=1.0, linestyle="none",
                    label="paper (Market-1501)")
            ref = float(df[f"{m} (paper)"].iloc[0])
        if np.isfinite(ref):
            ax.axvline(ref, color="0.6", lw=0.6, ls=":", zorder=0)
        ax.set_xlabel(f"{m} (%)")
        ax.set_title("ours" if src == "ours" else "paper (Market-1501)")
        ax.grid(axis="y", color="0.92", lw=0.5)
        ax.tick_params(axis="y", length=0)
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    axes[0].set_yticks(y, [str(v) for v in df[label]])
    axes[0].set_ylim(-0.6, n - 0.4)
    handles = [plt.Line2D([], [], color=OURS_COLOUR, marker="o", ms=4, label="ours (95% interval)")]
    if has_paper:
        handles.append(plt.Line2D([], [], color=PAPER_COLOUR, marker="D", mfc="white", ms=4, ls="none",
                                  label="paper (Market-1501)"))
    handles.append(plt.Line2D([], [], color="0.6", ls=":", lw=0.8, label=f"first row ({df[label].iloc[0]})"))
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles))
    return fig


# ---------------------------------------------------------------------------------------------------------
# Figs. 4-5


def _hollow_handle(off: bool):
    import matplotlib.pyplot as plt

    return plt.Line2D([], [], color="0.3", marker="o", mfc="white" if off else "0.3", ls="none", ms=4,
                      label=("not converged or not pretrained" if off else REGIME_LABELS[IN_REGIME]))


def curves(df: pd.DataFrame, x: str, group: str, metrics: Sequence[str] = ("R1", "mAP"), panel: str | None = None,
           xlabel: str | None = None, paper: dict[str, list[tuple[float, float, str]]] | None = None,
           height: float | None = None):
    """Metric against ``x`` with 95% error bars (``<m>_lo``/``_hi``), rows of panels for ``metrics``.

    Without ``panel`` (Fig. 4): small multiples, one panel per ``group``, on one y scale per metric; the shared
    ``x`` = 0 run is a dotted line in every panel; points whose runs are not in the paper's training regime
    (the ``regime`` column) are hollow; ``paper`` (per metric, points (x, y, label) the paper gives) gets a
    panel and a y axis of its own at the right, so our axis fits our data.

    With ``panel`` (Fig. 5's test occlusion): one column per value of ``panel``, one line per ``group``
    (colour, marker and line style all differ), error bars drawn side by side rather than as bands that would
    merge."""
    if panel is None:
        return _small_multiples(df, x, group, metrics, xlabel, paper, height)
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys(df[panel]))
    groups = list(dict.fromkeys(df[group]))
    nr, nc = len(metrics), len(panels)
    fig, axes = figure("two", height or (2.1 * nr + 0.6), nr, nc, squeeze=False, sharex=True, sharey="row")
    xs = np.sort(df[x].unique())
    step = float(np.min(np.diff(xs))) if len(xs) > 1 else 1.0
    off = _off_regime(df)
    for r, m in enumerate(metrics):
        for c, pv in enumerate(panels):
            ax = axes[r, c]
            for i, gname in enumerate(groups):
                sel = (df[panel] == pv) & (df[group] == gname)
                g, hollow = df[sel].sort_values(x), off[sel.to_numpy()]
                st = series_style(i)
                dx = (i - (len(groups) - 1) / 2) * 0.09 * step  # side by side: no bar hides another
                yerr = error_bars(g, m) if f"{m}_lo" in g else None
                ax.errorbar(g[x] + dx, g[m], yerr=yerr, color=st["color"], marker=st["marker"], ls=st["linestyle"],
                            elinewidth=0.7, capsize=1.5, ms=4, mfc=st["color"], label=str(gname))
                if hollow.any():
                    ax.plot(g[x][hollow] + dx, g[m][hollow], st["marker"], color=st["color"], mfc="white", ms=4)
            if r == 0:
                ax.set_title(f"test occlusion: {pv}" if panel == "test_occlusion" else f"{readable(panel)}: {pv}")
            if c == 0:
                ax.set_ylabel(f"{m} (%)")
            if r == nr - 1:
                ax.set_xlabel(xlabel or x)
            ax.set_xticks(xs, [f"{v:g}" for v in xs])
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if off.any():
        handles.append(_hollow_handle(True))
        labels.append(handles[-1].get_label())
    fig.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 5), title=readable(group))
    plt.setp(fig.legends[0].get_title(), fontsize=8)
    return fig


def _small_multiples(df: pd.DataFrame, x: str, group: str, metrics: Sequence[str], xlabel: str | None,
                     paper: dict[str, list[tuple[float, float, str]]] | None, height: float | None):
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(df[group]))
    ng, nr = len(groups), len(metrics)
    has_paper = bool(paper) and any(paper.get(m) for m in metrics)
    ratios = [1.0] * ng + ([0.55] if has_paper else [])
    fig, axes = figure("two", height or (1.55 * nr + 0.75), nr, len(ratios), squeeze=False,
                       gridspec_kw={"width_ratios": ratios})
    xs = np.sort(df[x].unique())
    pad = 0.12 * (xs[-1] - xs[0] if len(xs) > 1 else 1.0)
    off = _off_regime(df)
    zero = df[x] == xs[0]
    for r, m in enumerate(metrics):
        lo = df[f"{m}_lo"] if f"{m}_lo" in df else df[m]
        hi = df[f"{m}_hi"] if f"{m}_hi" in df else df[m]
        ymin, ymax = float(np.nanmin(lo)), float(np.nanmax(hi))
        margin = 0.06 * (ymax - ymin or 1.0)
        span = ymax - ymin + 2 * margin
        base = float(df.loc[zero, m].mean()) if zero.any() else np.nan
        for c, gname in enumerate(groups):
            ax = axes[r, c]
            if c:
                ax.sharey(axes[r, 0])
                ax.tick_params(labelleft=False)
            sel = (df[group] == gname).to_numpy()
            g, hollow = df[sel].sort_values(x), off[sel]
            st = series_style(c)
            if np.isfinite(base):
                ax.axhline(base, color="0.55", lw=0.7, ls=":", zorder=0)
            yerr = error_bars(g, m) if f"{m}_lo" in g else None
            ax.errorbar(g[x], g[m], yerr=yerr, color=st["color"], ls="-", lw=1.0, marker=st["marker"], ms=4,
                        elinewidth=0.8, capsize=1.5)
            if hollow.any():
                ax.plot(g[x][hollow], g[m][hollow], st["marker"], color=st["color"], mfc="white", ms=4, mew=1.0,
                        zorder=4)
            ax.set_xlim(xs[0] - pad, xs[-1] + pad)
            ax.set_xticks(xs, [f"{v:g}" for v in xs], fontsize=7)
            if r == 0:
                ax.set_title(str(gname), fontsize=8)
            if c == 0:
                ax.set_ylabel(f"{m} (%)")
        axes[r, 0].set_ylim(ymin - margin, ymax + margin)
        if has_paper:
            ax = axes[r, -1]
            pts = paper.get(m, [])
            for px, py, _ in pts:
                ax.plot([px], [py], "*", color="k", ms=8, ls="none")
            vals = [py for _, py, _ in pts]
            if vals:  # the same number of points as our panels, around the paper's value, and never past 100%
                top = min((min(vals) + max(vals)) / 2 + span / 2, max(100.0, max(vals) + margin))
                ax.set_ylim(top - span, top)
            ax.set_xlim(xs[0] - pad, xs[-1] + pad)
            pxs = sorted({px for px, _, _ in pts})
            ax.set_xticks(pxs, [f"{v:g}" for v in pxs], fontsize=7)
            ax.yaxis.tick_right()
            ax.spines["right"].set_visible(True)
            ax.spines["left"].set_visible(False)
            if r == 0:
                ax.set_title("paper", fontsize=8)
    fig.supxlabel(xlabel or x, fontsize=8)
    handles = [plt.Line2D([], [], color="0.3", marker="o", ms=4, label="ours (95% interval)"),
               plt.Line2D([], [], color="0.55", ls=":", lw=0.8, label=f"{x} = {xs[0]:g}: the shared run, no erasing")]
    if off.any():
        handles.append(_hollow_handle(True))
    if has_paper:
        labels = sorted({lab for m in metrics for _, _, lab in paper.get(m, [])})
        handles.append(plt.Line2D([], [], color="k", marker="*", ms=8, ls="none", label="; ".join(labels)))
    fig.legend(handles=handles, loc="outside upper center", ncols=min(len(handles), 2))
    return fig


# ---------------------------------------------------------------------------------------------------------
# Training curves and the claims' forest plot


def training_curves(results: Sequence, labels: Sequence[str] | None = None):
    """Did the runs converge? Left: each run's mean training loss per P x K epoch (log scale with plain
    labels, integer epochs; the losses summed differ per run, so compare shapes, not heights). Right: its
    training-fit mAP (henetlib.engine.regime) at 80% of the schedule and at the end, joined by a line: the
    rule calls a run converged when the line rises by less than the rule's points. ``results``:
    henetlib.engine.cache.Result-like (``history``, ``regime``, ``name``)."""
    from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter, ScalarFormatter

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
    ax_l.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax_l.yaxis.set_major_formatter(ScalarFormatter())
    ax_l.yaxis.set_minor_formatter(NullFormatter())
    ax_l.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_l.set_xlabel("P x K epoch")
    ax_l.set_ylabel("training loss (mean per step)")
    ax_f.set_xticks([0, 1], ["at 80%", "at the end"])
    ax_f.set_xlim(-0.3, 1.3)
    ax_f.set_ylabel("training-fit mAP (%)")
    handles, labs = ax_l.get_legend_handles_labels()
    fig.legend(handles, labs, loc="outside upper center", ncols=min(len(labs), 4))
    return fig


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
# Fig. 1


def _method_style(name: str, i: int) -> tuple[str, str, bool]:
    """(colour, marker, filled): the compared methods each get a colour; the HENet rows share one colour and
    differ by marker, the same in the paper's and our panels. +RPE and +Both change training only, so they sit
    at Base's and +Losses' V and S: they are hollow and drawn on top, and both markers of a pair stay visible."""
    if name in HENET_ROWS:
        k = HENET_ROWS.index(name)
        return PALETTE[3], MARKERS[k], "RPE" not in name and "Both" not in name
    return (PALETTE[0], PALETTE[1], PALETTE[2], PALETTE[4])[i % 4], MARKERS[4 + i % 4], True


def _log_limits(values: Sequence[float], pad: float = 0.14) -> tuple[float, float]:
    """Limits around ``values`` on a log axis, ``pad`` of their log range (at least 6%) on each side: fitted to
    the data, not forced to 0 (a speed axis has no use for 0)."""
    lo, hi = math.log(min(values)), math.log(max(values))
    m = max(pad * (hi - lo), 0.06)
    return math.exp(lo - m), math.exp(hi + m)


def _place_labels(fig, ax, items: list[tuple[float, float, str | None, float]], obstacles: Sequence = ()) -> list:
    """Annotate each (x, y, text, marker radius in points) at the nearby spot, of 16 candidates around its
    marker, that overlaps no label placed before, no marker and nothing in ``obstacles`` (display boxes), and
    stays inside the axes; a label pushed to the outer ring gets a leader line. An item whose text is None is
    a marker to keep clear of, unlabelled. Offsets are computed from the drawn data, so no label sits on
    another point whatever the numbers."""
    from matplotlib.transforms import Bbox

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    to_px = fig.dpi / 72.0
    centres = [ax.transData.transform((x, y)) for x, y, _, _ in items]
    markers = [Bbox.from_bounds(cx - rad * to_px, cy - rad * to_px, 2 * rad * to_px, 2 * rad * to_px)
               for (cx, cy), (_, _, _, rad) in zip(centres, items, strict=True)]
    frame = ax.get_window_extent(renderer)
    placed: list = list(obstacles)
    anns = []
    for k, (x, y, text, rad) in enumerate(items):
        if text is None:
            continue
        best = None
        for ring, dist in enumerate((rad + 3, rad + 16)):
            for ang in range(0, 360, 45):
                dx, dy = dist * math.cos(math.radians(ang)), dist * math.sin(math.radians(ang))
                ha = "left" if dx > 1 else "right" if dx < -1 else "center"
                va = "bottom" if dy > 1 else "top" if dy < -1 else "center"
                ann = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=7, ha=ha,
                                  va=va)
                box = ann.get_window_extent(renderer)
                ann.remove()
                cost = sum(_area(box, b) for b in placed)
                cost += sum(_area(box, b) for j, b in enumerate(markers) if j != k)
                cost += 50 * (box.width * box.height - _area(box, frame))  # outside the axes
                # a label nearer another marker than its own would name the wrong point
                own = _gap(box, markers[k])
                cost += 200 * any(_gap(box, b) < own + 4 * to_px for j, b in enumerate(markers) if j != k)
                cost += ring * 5 + (ang % 180 != 0) * 0.5  # prefer close, and beside over above/below
                if best is None or cost < best[0]:
                    best = (cost, dx, dy, ha, va, ring, box)
        _, dx, dy, ha, va, ring, box = best
        arrow = {"arrowstyle": "-", "color": "0.4", "lw": 0.5, "shrinkA": 0, "shrinkB": rad} if ring else None
        ann = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=7, ha=ha, va=va,
                          arrowprops=arrow)
        ann.set_in_layout(False)  # labels never move the axes: their offsets were computed for this layout
        placed.append(box)
        anns.append(ann)
    return anns


def _gap(a, b) -> float:
    """Display distance between two boxes (0 when they touch or overlap)."""
    return math.hypot(max(a.x0 - b.x1, 0.0, b.x0 - a.x1), max(a.y0 - b.y1, 0.0, b.y0 - a.y1))


def _area(a, b) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(w, 0.0) * max(h, 0.0)


def fig1(ours, width: float = 7.0, height: float = 5.2):
    """Fig. 1 redrawn: accuracy (R1 top, mAP bottom) against batch-1 speed S on a log axis with plain labels,
    marker area proportional to V, with a size legend. Left: the paper's Table 1 (every method). Right: our
    four HENet rows (our R1/mAP with 95% intervals from ``ours``, which holds ``henet_rows``'s columns, and
    our measured V and S). Rows that share V and S are drawn where they are (hollow over filled), labels are
    placed clear of every marker and label, and each axis is fitted to its data."""
    import matplotlib.pyplot as plt
    from matplotlib.transforms import ScaledTranslation

    fig, axes = style.figure(width, height, 2, 2, sharex="col")
    area = 0.5  # points^2 per MiB, the same in every panel, so sizes compare across panels

    def dot(ax, x, y, v, c, mk, filled, z):
        ax.scatter(x, y, s=v * area, marker=mk, zorder=z, linewidths=0.6 if filled else 1.3,
                   facecolors=c if filled else "none", edgecolors="k" if filled else c, alpha=0.85 if filled else 1)

    ps = [p["s"] for p in paper.TABLE1.values()]
    ss = list(ours["S fps"])
    to_label = []  # labelled last, once the layout (legend included) is final: offsets are in its points
    for row, metric in enumerate(("R1", "mAP")):
        ax = axes[row, 0]
        key = "r1" if metric == "R1" else "mAP"
        items = []
        for i, (name, p) in enumerate(paper.TABLE1.items()):
            c, mk, filled = _method_style(name, i)
            dot(ax, p["s"], p[key], p["v"], c, mk, filled, 3 if filled else 4)
            # the HENet rows are named by the shape legend: two of them sit on the other two
            items.append((p["s"], p[key], None if name in HENET_ROWS else name, math.sqrt(p["v"] * area / math.pi)))
        lines = []
        for j, (name, acc) in enumerate(sorted(ACCURACY_ONLY.items(), key=lambda kv: kv[1])):
            v = acc[0 if metric == "R1" else 1]
            ax.axhline(v, color="0.55", lw=0.7, ls=":")
            # close lines (SVDNet and PAN) get their names below and above the line
            lines.append(ax.annotate(name, (0.01, v), xycoords=("axes fraction", "data"), ha="left",
                                     va="top" if j == 0 else "bottom", fontsize=7, color="0.3"))
        ax.set_ylabel(f"{metric} on Market-1501 (%)")
        vals = [p[key] for p in paper.TABLE1.values()] + [a[0 if metric == "R1" else 1] for a in ACCURACY_ONLY.values()]
        ax.set_ylim(min(vals) - 0.06 * (max(vals) - min(vals)), max(vals) + 0.1 * (max(vals) - min(vals)))
        ax.set_xscale("log")
        ax.set_xlim(*_log_limits(ps, 0.2))
        _plain_ticks(ax.xaxis, *ax.get_xlim())
        to_label.append((ax, items, lines))

        ax = axes[row, 1]
        his, los = [], []
        for i, (_, d) in enumerate(ours.iterrows()):
            c, mk, filled = _method_style(d["Method"], i)
            lo, hi = float(d.get(f"{metric}_lo", np.nan)), float(d.get(f"{metric}_hi", np.nan))
            if np.isfinite([lo, hi]).all():
                # twin rows share S: their bars stand 2.5 pt either side of the point, inside its marker
                shift = ScaledTranslation((-2.5 if filled else 2.5) / 72, 0, fig.dpi_scale_trans)
                bars = ax.errorbar(d["S fps"], d[metric], yerr=[[d[metric] - lo], [hi - d[metric]]], fmt="none",
                                   ecolor=c, elinewidth=0.8, capsize=2, transform=ax.transData + shift)
                for coll in bars[2]:  # the hollow row's bar dashed, as its marker is hollow
                    coll.set_linestyle("-" if filled else (0, (3, 1.5)))
                his.append(hi), los.append(lo)
            dot(ax, d["S fps"], d[metric], d["V MiB"], c, mk, filled, 3 if filled else 4)
        ys = list(ours[metric]) + his + los
        pad = 0.1 * (max(ys) - min(ys) or 1.0)
        ax.set_ylim(min(ys) - pad, max(ys) + pad)
        ax.set_xscale("log")
        ax.set_xlim(*_log_limits(ss, 0.45))
        _plain_ticks(ax.xaxis, *ax.get_xlim())
        ax.set_ylabel(f"{metric} on our data (%)")
    axes[0, 0].set_title("Paper (Table 1)")
    axes[0, 1].set_title("Ours (our runs, V and S measured here)")
    axes[1, 0].set_xlabel("speed S on a TITAN X (frames/s, batch 1, log scale)")
    axes[1, 1].set_xlabel("speed S here (frames/s, batch 1, log scale)")
    sizes = (100, 200, 350)
    # legend handles drawn nowhere (plt.scatter would add empty artists to the last axes); a marker's size is
    # its diameter, the square root of the scatter's area
    handles = [plt.Line2D([], [], marker="o", ms=math.sqrt(v * area), ls="none", mfc="0.75", mec="k", mew=0.4)
               for v in sizes]
    fig.legend(handles, [f"V = {v} MiB" for v in sizes], loc="outside upper center", ncols=len(sizes),
               borderpad=0.6, handletextpad=0.6, columnspacing=2.0)
    # the HENet rows by shape, the same in both panels; hollow ones share V and S with the filled one before
    rows = []
    for name in HENET_ROWS:
        c, mk, filled = _method_style(name, 0)
        rows.append(plt.Line2D([], [], marker=mk, ms=7, ls="none", mfc=c if filled else "none",
                               mec="k" if filled else c, mew=0.6 if filled else 1.3, label=name))
    fig.legend(handles=rows, loc="outside lower center", ncols=len(rows), title=(
        "HENet rows (hollow: same V and S as the filled row before it, training differs)"), title_fontsize=8)
    fig.canvas.draw()
    for ax, items, lines in to_label:
        _place_labels(fig, ax, items, [t.get_window_extent() for t in lines])
    return fig


# ---------------------------------------------------------------------------------------------------------
# Ranked-list pictures


def plot_ranked_results(distmat: ArrayLike, query_paths: list, gallery_paths: list, query_pids: ArrayLike,
                        gallery_pids: ArrayLike, query_camids: ArrayLike, gallery_camids: ArrayLike,
                        query_indices: list[int] | None = None, topk: int = 10, ax_size: float = 1.0,
                        ranked: np.ndarray | None = None):
    """A grid: each row one query followed by its top-k gallery images (same-camera matches removed),
    framed blue (solid) when the identity is right and orange (dashed) when wrong (:data:`style.MATCH_STYLE`:
    a pair colour-blind readers tell apart, and the line style for greyscale), with a key above.

    ``ranked`` (Q, >= topk) gives each query's gallery order instead of ``distmat`` (which may then be None).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from PIL import Image

    d = _as_tensor(distmat).float().cpu() if distmat is not None else None
    qp, gp = np.asarray(query_pids), np.asarray(gallery_pids)
    qc, gc = np.asarray(query_camids), np.asarray(gallery_camids)
    nq = len(d) if d is not None else len(ranked)
    rows = query_indices if query_indices is not None else list(range(min(5, nq)))
    height = len(rows) * ax_size * 1.25 + 0.35
    fig, axes = plt.subplots(len(rows), topk + 1, figsize=((topk + 1) * ax_size * 0.6, height), squeeze=False)
    query_style = ("black", "-")
    for r, qi in enumerate(rows):
        order = ranked[qi] if ranked is not None else torch.argsort(d[qi]).numpy()
        order = [g for g in order if not (gp[g] == qp[qi] and gc[g] == qc[qi])][:topk]
        cells = [(query_paths[qi], query_style, f"query\nid {qp[qi]}")] + [
            (gallery_paths[g], MATCH_STYLE["right" if gp[g] == qp[qi] else "wrong"], f"#{j + 1}")
            for j, g in enumerate(order)
        ]
        for c, (path, (color, ls), title) in enumerate(cells):
            ax = axes[r, c]
            ax.imshow(Image.open(path).convert("RGB"))
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(True)
                s.set_color(color)
                s.set_linewidth(3)
                s.set_linestyle(ls)
            ax.set_title(title, fontsize=7)
    key = [Patch(facecolor="none", edgecolor=MATCH_STYLE[k][0], linestyle=MATCH_STYLE[k][1], linewidth=2,
                 label=text) for k, text in (("right", "right identity"), ("wrong", "wrong identity"))]
    fig.legend(handles=key, loc="upper center", ncols=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / height))
    return fig
