"""Every plot of the study, in the print style of :mod:`henetlib.output.style`: bar charts of Tables 2-4,
curves of Figs. 4-5, training curves, the claims' forest plot, Fig. 1 and ranked lists."""

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
from henetlib.output.prose import readable
from henetlib.output.style import (
    MARKERS,
    MAX_HEIGHT,
    PALETTE,
    PAPER_COLOUR,
    VERDICT_STYLE,
    figure,
    series_style,
)


def error_bars(df: pd.DataFrame, m: str) -> np.ndarray:
    """(2, N) distances from the mean to the interval's bounds, for matplotlib's ``yerr``."""
    return np.abs(np.vstack([df[m] - df[f"{m}_lo"], df[f"{m}_hi"] - df[m]]))


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
    summed differ per run, so compare shapes, not heights). Right: its training-fit mAP
    (henetlib.engine.regime) at 80% of the schedule and at the end, joined by a line: the rule calls a run
    converged when the line rises by less than the rule's points. ``results``: henetlib.engine.cache.Result-like
    (``history``, ``regime``, ``name``)."""
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










# label offsets (points) in the paper's panels, so that neighbouring methods' names do not overlap
_LABEL_AT = {"AlignedReID": (5, -9, "left"), "PCB": (6, 2, "left"), "HPM": (7, -3, "left"), "MGN": (-7, 5, "right"),
             "HENet(Base)": (-7, -7, "right"), "HENet(+RPE)": (-7, 3, "right"), "HENet(+Losses)": (7, -8, "left"),
             "HENet(+Both)": (7, 3, "left")}


def _method_style(name: str, i: int) -> tuple[str, str]:
    """(colour, marker): the compared methods each get a colour; the HENet rows share one colour and differ
    by marker, the same in the paper's and our panels."""
    if name in HENET_ROWS:
        return PALETTE[3], MARKERS[HENET_ROWS.index(name)]
    return (PALETTE[0], PALETTE[1], PALETTE[2], PALETTE[4])[i % 4], MARKERS[4 + i % 4]


def fig1(ours, width: float = 7.0, height: float = 5.2):
    """Fig. 1 redrawn: accuracy (R1 top, mAP bottom) against batch-1 speed S, marker area proportional to V,
    with a size legend. Left: the paper's Table 1 (every method). Right: our four HENet rows (our R1/mAP with
    95% intervals from ``ours``, which holds ``henet_rows``'s columns, and our measured V and S)."""
    import matplotlib.pyplot as plt

    fig, axes = style.figure(width, height, 2, 2, sharex="col")
    area = 0.5  # points^2 per MiB, the same in every panel, so sizes compare across panels
    for row, metric in enumerate(("R1", "mAP")):
        ax = axes[row, 0]
        key = "r1" if metric == "R1" else "mAP"
        for i, (name, p) in enumerate(paper.TABLE1.items()):
            c, mk = _method_style(name, i)
            ax.scatter(p["s"], p[key], s=p["v"] * area, color=c, marker=mk, alpha=0.8, edgecolors="k",
                       linewidths=0.4, zorder=3)
            dx, dy, ha = _LABEL_AT.get(name, (5, 3, "left"))
            ax.annotate(name, (p["s"], p[key]), xytext=(dx, dy), textcoords="offset points", fontsize=7, ha=ha,
                        va="center")
        for j, (name, acc) in enumerate(sorted(ACCURACY_ONLY.items(), key=lambda kv: kv[1])):
            v = acc[0 if metric == "R1" else 1]
            ax.axhline(v, color="0.55", lw=0.7, ls=":")
            # close lines (SVDNet and PAN) get their names below and above the line
            ax.annotate(name, (0.01, v), xycoords=("axes fraction", "data"), ha="left", va="top" if j == 0 else "bottom",
                        fontsize=7, color="0.3")
        ax.set_ylabel(f"{metric} on Market-1501 (%)")
        ax = axes[row, 1]
        span = float(ours["S fps"].max())
        for i, (_, d) in enumerate(ours.iterrows()):
            c, mk = _method_style(d["Method"], i)
            lo, hi = float(d.get(f"{metric}_lo", np.nan)), float(d.get(f"{metric}_hi", np.nan))
            yerr = [[d[metric] - lo], [hi - d[metric]]] if np.isfinite([lo, hi]).all() else None
            x = d["S fps"] + 0.02 * span * (i % 2 * 2 - 1)  # Base/+RPE and +Losses/+Both share S: nudge apart
            ax.errorbar(x, d[metric], yerr=yerr, fmt="none", ecolor=c, elinewidth=0.8, capsize=2)
            ax.scatter(x, d[metric], s=d["V MiB"] * area, color=c, marker=mk, alpha=0.8, edgecolors="k",
                       linewidths=0.4, zorder=3)
            # right of the point (the axis starts at 0), the twin rows one below and one above
            ax.annotate(d["Method"], (x, d[metric]), xytext=(8, -8 if i % 2 == 0 else 8), textcoords="offset points",
                        fontsize=7, va="center", ha="left")
        ax.set_ylabel(f"{metric} on our data (%)")
    axes[0, 0].set_title("Paper (Table 1)")
    axes[0, 1].set_title("Ours (our runs, V and S measured here)")
    axes[1, 0].set_xlabel("speed S on a TITAN X (frames/s, batch 1)")
    axes[1, 1].set_xlabel("speed S here (frames/s, batch 1)")
    for ax in axes[:, 0]:
        ax.margins(x=0.22, y=0.12)
    for ax in axes[:, 1]:
        ax.margins(x=0.45, y=0.12)
        ax.set_xlim(left=0)
    sizes = (100, 200, 350)
    handles = [plt.scatter([], [], s=v * area, color="0.75", edgecolors="k", linewidths=0.4) for v in sizes]
    fig.legend(handles, [f"V = {v} MiB" for v in sizes], loc="outside upper center", ncols=len(sizes),
               borderpad=0.6, handletextpad=0.6, columnspacing=2.0)
    return fig








# ---------------------------------------------------------------------------------------------------------
# Ranked-list pictures


def plot_ranked_results(distmat: ArrayLike, query_paths: list, gallery_paths: list, query_pids: ArrayLike,
                        gallery_pids: ArrayLike, query_camids: ArrayLike, gallery_camids: ArrayLike,
                        query_indices: list[int] | None = None, topk: int = 10, ax_size: float = 1.0,
                        ranked: np.ndarray | None = None):
    """A grid: each row one query followed by its top-k gallery images (same-camera matches removed),
    framed green when the identity is right and red when wrong, as torchreid shows them.

    ``ranked`` (Q, >= topk) gives each query's gallery order instead of ``distmat`` (which may then be None).
    """
    import matplotlib.pyplot as plt
    from PIL import Image

    d = _as_tensor(distmat).float().cpu() if distmat is not None else None
    qp, gp = np.asarray(query_pids), np.asarray(gallery_pids)
    qc, gc = np.asarray(query_camids), np.asarray(gallery_camids)
    nq = len(d) if d is not None else len(ranked)
    rows = query_indices if query_indices is not None else list(range(min(5, nq)))
    fig, axes = plt.subplots(len(rows), topk + 1, figsize=((topk + 1) * ax_size * 0.6, len(rows) * ax_size * 1.25),
                             squeeze=False)
    for r, qi in enumerate(rows):
        order = ranked[qi] if ranked is not None else torch.argsort(d[qi]).numpy()
        order = [g for g in order if not (gp[g] == qp[qi] and gc[g] == qc[qi])][:topk]
        cells = [(query_paths[qi], "black", f"query\nid {qp[qi]}")] + [
            (gallery_paths[g], "limegreen" if gp[g] == qp[qi] else "red", f"#{j + 1}") for j, g in enumerate(order)
        ]
        for c, (path, color, title) in enumerate(cells):
            ax = axes[r, c]
            ax.imshow(Image.open(path).convert("RGB"))
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_color(color)
                s.set_linewidth(3)
            ax.set_title(title, fontsize=7)
    fig.tight_layout()
    return fig
