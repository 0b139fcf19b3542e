"""Tables and figures for the notebooks: ours beside the paper's, with the facts behind ours in a caption."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from .utils import atomic_write_bytes, atomic_write_text, figures_dir


def caption(profile: str, dataset: str, hardware: str, extra: str = "") -> str:
    """The line every table and figure carries: what our numbers come from."""
    line = f"Ours: profile '{profile}', data set {dataset}, measured on {hardware}."
    if profile == "smoke":
        line += " Smoke profile: a few epochs from random weights; a pipeline check, noisy by design."
    elif profile == "gpu":
        line += " GPU profile: ResNet50 from random weights, 128x64, 30 P x K epochs."
    line += " Paper: Market-1501, ImageNet-pretrained ResNet50, 200 epochs."
    return line + (f" {extra}" if extra else "")


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


def forest_plot(board: pd.DataFrame, title: str = ""):
    """Each claim's difference with its 95% interval (colour = verdict), the paper's difference as a cross."""
    import matplotlib.pyplot as plt

    colours = {"reproduced": "tab:green", "contradicted": "tab:red", "unresolved": "tab:gray", "not run": "0.8"}
    b = board.reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7.5, 0.22 * len(b) + 1.2))
    y = np.arange(len(b))[::-1]
    for yi, (_, r) in zip(y, b.iterrows(), strict=True):
        c = colours[r["verdict"]]
        if np.isfinite(r["ours diff"]):
            ax.plot([r["lo"], r["hi"]], [yi, yi], color=c, lw=2)
            ax.plot(r["ours diff"], yi, "o", color=c, ms=4)
        if np.isfinite(r["paper diff"]):
            ax.plot(r["paper diff"], yi, "x", color="k", ms=5)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, [f"{r.claim} {r.metric}: {r.comparison}" for r in b.itertuples()], fontsize=6)
    ax.set_xlabel("difference (points; ES for Table 1)")
    handles = [plt.Line2D([], [], color=c, lw=2, label=v) for v, c in colours.items()]
    handles.append(plt.Line2D([], [], color="k", marker="x", lw=0, label="paper"))
    ax.legend(handles=handles, fontsize=6, loc="lower right")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def save_table(df: pd.DataFrame, name: str, cap: str, floatfmt: str = ".2f", folder: Path | None = None) -> Path:
    """Write ``figures/<name>.md`` and ``.tex`` atomically; returns the Markdown path."""
    folder = folder or figures_dir()
    md = f"{df.to_markdown(index=False, floatfmt=floatfmt)}\n\n{cap}\n"
    tex_body = df.to_latex(index=False, float_format=lambda x: format(x, floatfmt), na_rep="-", escape=True)
    cap_tex = cap.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")
    tex = ("\\begin{table}[t]\n\\centering\n\\small\n" + tex_body + f"\\caption{{{cap_tex}}}\n"
           f"\\label{{tab:{name}}}\n\\end{{table}}\n")
    atomic_write_text(folder / f"{name}.md", md)
    atomic_write_text(folder / f"{name}.tex", tex)
    return folder / f"{name}.md"


def save_figure(fig, name: str, cap: str | None = None, folder: Path | None = None) -> list[Path]:
    """Save ``figures/<name>.pdf`` and ``.png`` atomically, with the caption line under the axes."""
    folder = folder or figures_dir()
    if cap:
        # below the figure's area: the tight bounding box grows to take it, so it never covers an axis
        fig.text(0.01, -0.005, cap, fontsize=6, ha="left", va="top", wrap=True, color="0.3")
    paths = []
    for ext in ("pdf", "png"):
        buf = io.BytesIO()
        # no creation date or software stamp: an unchanged figure stays byte-identical between runs
        meta = {"CreationDate": None, "Producer": None} if ext == "pdf" else {"Software": None}
        fig.savefig(buf, format=ext, dpi=160, bbox_inches="tight", metadata=meta)
        atomic_write_bytes(folder / f"{name}.{ext}", buf.getvalue())
        paths.append(folder / f"{name}.{ext}")
    return paths
