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
    """Join our summary (indexed by ``key``) with the paper's numbers for ``cols``; adds the ✓/✗ marks."""
    df = ours.copy()
    for c in cols:
        df[f"{c} (paper)"] = df[key].map(lambda k, c=c: paper.get(k, {}).get(c, np.nan))
    for c in cols:
        if df[f"{c} (paper)"].notna().sum() >= 2:
            df[f"{c} order"] = mark_order(df, c, f"{c} (paper)")
    return df


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
