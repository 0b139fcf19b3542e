"""Tables formatted for a reader: ours beside the paper's, mean ± half-width cells, the protocol, Fig. 4 and
Fig. 5 layouts, and the claims table."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def side_by_side(ours: pd.DataFrame, paper: dict, key: str, cols: list[str]) -> pd.DataFrame:
    """Join our summary (indexed by ``key``) with the paper's numbers for ``cols``. Whether a difference
    between rows agrees with the paper is the claims scoreboard's job (henetlib.verdicts.scoreboard), not a mark here."""
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
