"""Tables formatted for a reader: ours beside the paper's, mean ± half-width cells, the protocol, Fig. 4 and
Fig. 5 layouts, the claims table, and :func:`for_reader`, which turns the study's internal names (run names,
regime codes, protocol keys, relative ES columns) into words at render time."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

DIGITS = 2  # every R1/mAP-kind number (ours, the paper's, a difference, a half-width): as the paper prints them


def side_by_side(ours: pd.DataFrame, paper: dict, key: str, cols: list[str]) -> pd.DataFrame:
    """Join our summary (indexed by ``key``) with the paper's numbers for ``cols``. Whether a difference
    between rows agrees with the paper is the claims scoreboard's job (henetlib.verdicts.scoreboard), not a mark here."""
    df = ours.copy()
    for c in cols:
        df[f"{c} (paper)"] = df[key].map(lambda k, c=c: paper.get(k, {}).get(c, np.nan))
    return df


def with_intervals(df: pd.DataFrame, metrics=("R1", "mAP")) -> pd.DataFrame:
    """A copy for printing: each metric as "56.61 ± 2.10" (mean ± half the 95% interval, to :data:`DIGITS`
    decimals like the paper's numbers beside it); drops the bound and spread columns."""
    out = df.copy()
    for m in metrics:
        if f"{m}_lo" in out:
            half = (out[f"{m}_hi"] - out[f"{m}_lo"]) / 2
            out[m] = [f"{v:.{DIGITS}f} ± {h:.{DIGITS}f}" if np.isfinite(h) else f"{v:.{DIGITS}f}"
                      for v, h in zip(out[m], half, strict=True)]
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
                 "untestable here": "⊘ untestable here", "calibration": "◇ calibration", "not run": "– not run"}


def claims_table(board: pd.DataFrame) -> pd.DataFrame:
    """The scoreboard for printing: our difference ± half its interval, the paper's, the verdict."""
    half = (board["hi"] - board["lo"]) / 2
    ours = [f"{d:+.{DIGITS}f} ± {h:.{DIGITS}f}" if np.isfinite(d) else "-"
            for d, h in zip(board["ours diff"], half, strict=True)]
    paper_d = [f"{p:+.{DIGITS}f}" if np.isfinite(p) else "text only" for p in board["paper diff"]]
    return pd.DataFrame({"claim": board["claim"], "comparison": board["comparison"], "metric": board["metric"],
                         "ours (95% CI)": ours, "paper": paper_d,
                         "verdict": [VERDICT_MARKS.get(v, v) for v in board["verdict"]]})  # a new kind as it is


# ---------------------------------------------------------------------------------------------------------
# Internal names -> a reader's words, at render time (the result cache and the scoreboard keep their codes)

# henetlib.engine.regime's codes. Its "paper" means the paper's *training* regime (converged, fine-tuned from a
# pretrained backbone); printed bare beside our synthetic runs it reads as "the paper's number"
REGIME_LABELS = {"paper": "converged, pretrained", "from scratch": "converged, from scratch",
                 "not converged": "not converged", "unknown": "not checked", "-": "-",
                 "NOT the paper's regime": "some runs not converged or from scratch"}
PROTOCOL_LABELS = {"flip-l2": "flip + L2", "raw": "raw"}  # the caption says what each does
ERASING_WORDS = {"none": "no erasing"}
_RUN_NAME = re.compile(r"\b([GPR][\w+(),]*) \| (CE[\w+]*) \| (\S+) \| s(\d+)\b")
_CODE_REF = re.compile(r"\s*\((?:train|engine|henetlib|grids|config)\.[\w.]+\)")
_IN_REGIME = re.compile(r"\bin the paper regime\b")


def regime_label(text: object) -> object:
    """A regime cell in words: "paper" -> "converged, pretrained"; "not converged/paper" -> both in words;
    "1 of 2 runs in the paper regime (1 not converged)" -> "1 of 2 runs converged, pretrained (...)".
    Anything else (and a label already in words) comes back as it was."""
    if not isinstance(text, str):
        return text
    if text in REGIME_LABELS:
        return REGIME_LABELS[text]
    if "/" in text and all(p in REGIME_LABELS for p in text.split("/")):
        return " / ".join(REGIME_LABELS[p] for p in text.split("/"))
    return _IN_REGIME.sub("converged, pretrained", text)


def _run_words(m: re.Match) -> str:
    layout, losses, erasing, seed = m.groups()
    er = ERASING_WORDS.get(erasing, erasing.replace("@", " at p = "))
    return f"{layout} trained with {losses}, {er}, seed {seed}"


def reader_text(text: object) -> object:
    """Internal names in a cell or caption -> words: a run name "G1+P4+R16 | CE+OIM+Tri+MSE | none | s0" ->
    "G1+P4+R16 trained with CE+OIM+Tri+MSE, no erasing, seed 0"; a code reference such as
    "(train.FINETUNE)" dropped. Idempotent."""
    if not isinstance(text, str):
        return text
    return _CODE_REF.sub("", _RUN_NAME.sub(_run_words, text))


def for_reader(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of a table as a reader should see it (idempotent): regime codes in words (every column whose
    name starts with "regime"), test protocols named for what they do, run names in words, and every ES
    column named for the set it is relative to, and each paper's column ("R1 (paper)") moved beside ours
    ("R1"). ES (eqs. 10-11) divides by the scores of reference models
    picked among the models compared, so it changes with that set: the study's ES columns are computed among
    a table's own rows, and the header says how many ("ES among 8 (paper)" is the paper's Table 1; "ES among
    4 (paper)" the paper's numbers of the four HENet rows only, hence the different values)."""
    out = df.copy()
    for c in out.columns:
        if str(c).startswith("regime"):
            out[c] = out[c].map(regime_label)
        elif str(c) == "protocol":
            out[c] = out[c].map(lambda v: PROTOCOL_LABELS.get(v, v))
        elif out[c].dtype == object:
            out[c] = out[c].map(reader_text)
    order = [c for c in out.columns if not _beside(c, out.columns)]
    for c in [c for c in out.columns if _beside(c, out.columns)]:  # the paper's value right after ours
        order.insert(order.index(str(c)[: -len(" (paper)")]) + 1, c)
    return out[order].rename(columns={c: re.sub(r"^ES \(", f"ES among {len(out)} (", str(c)) for c in order})


def _beside(col: object, cols: pd.Index) -> bool:
    """Is ``col`` the paper's value of a column of ours ("R1 (paper)" beside "R1")?"""
    return str(col).endswith(" (paper)") and str(col)[: -len(" (paper)")] in cols
