"""The two regimes side by side: the paper's claims scored on the runs from random weights and on the runs
fine-tuned from the SynthReID-pretrained backbone, one row per claim with what changed between them.

Nothing is trained here: a regime whose runs are neither cached nor published scores "not run". Each regime is
scored by :func:`henetlib.verdicts.scoreboard.scoreboard`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from henetlib.engine.config import FINETUNE
from henetlib.output.export import save_table
from henetlib.verdicts import scoreboard

_CHANGE = {("reproduced", "reproduced"): "holds (reproduced in both)",
           ("contradicted", "contradicted"): "holds (contradicted in both)",
           ("unresolved", "unresolved"): "unresolved in both"}


def _change(a: str, b: str) -> str:
    if "not run" in (a, b):
        return "not comparable (runs missing)"
    if a == b == "untestable here":
        return "untestable in both (a positive control fails)"
    if "untestable here" in (a, b):
        return f"testable only {'fine-tuned' if a == 'untestable here' else 'from scratch'}"
    if (a, b) in _CHANGE:
        return _CHANGE[(a, b)]
    if "unresolved" in (a, b):
        return f"resolved only {'fine-tuned' if a == 'unresolved' else 'from scratch'}"
    return f"flips: {a} -> {b}"


def compare_regimes(ctx, n_boot: int = 1000, board: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per claim: its verdict from scratch and fine-tuned (each with its runs' regime mark) and what
    changed. ``ctx`` names the profile, data and seeds; ``board``, when given, is the scoreboard of ``ctx``'s
    own regime (not computed again). ``attrs['summary']`` counts flips and holds, ``attrs['comparable']`` the
    claims scored in both regimes; ``attrs['boards']`` keeps both row-level scoreboards."""
    if ctx.profile not in FINETUNE:  # test and paper: one regime only
        out = pd.DataFrame(columns=["claim", "sentence", "from scratch", "regime (scratch)", "fine-tuned",
                                    "regime (fine-tuned)", "change"])
        out.attrs.update(comparable=0, boards={},
                         summary=f"profile {ctx.profile!r} has one regime only: nothing to compare")
        return out
    boards, per = {}, {}
    for name, ft in (("from scratch", False), ("fine-tuned", True)):
        own = board is not None and bool(getattr(ctx, "finetune", False)) == ft
        boards[name] = board if own else scoreboard.scoreboard(dataclasses.replace(ctx, finetune=ft),
                                                               n_boot=n_boot, train=False)
        per[name] = scoreboard.claim_verdicts(boards[name]).set_index("claim")
    a, b = per["from scratch"], per["fine-tuned"]
    out = pd.DataFrame({"claim": a.index, "sentence": a["sentence"].values,
                        "from scratch": a["verdict"].values, "regime (scratch)": a["regime"].values,
                        "fine-tuned": b.loc[a.index, "verdict"].values,
                        "regime (fine-tuned)": b.loc[a.index, "regime"].values})
    out["change"] = [_change(x, y) for x, y in zip(out["from scratch"], out["fine-tuned"], strict=True)]
    counts = out["change"].value_counts()
    out.attrs["comparable"] = int(((out["from scratch"] != "not run") & (out["fine-tuned"] != "not run")).sum())
    out.attrs["summary"] = (f"{len(out)} claims on {ctx.profile}, from scratch vs fine-tuned: "
                            + ", ".join(f"{int(n)} {k}" for k, n in counts.items()))
    out.attrs["boards"] = boards
    return out


def save_regimes(table: pd.DataFrame, ctx, name: str = "claims_regimes") -> Path:
    """``figures/<name>.md`` and ``.tex``: the side-by-side table, its summary and both headlines."""
    boards = table.attrs.get("boards", {})
    heads = " ".join(f"{k}: {scoreboard.summary_line(v, ctx.profile)}." for k, v in boards.items())
    cap = (f"The paper's claims on profile '{ctx.profile}' (seeds {', '.join(map(str, ctx.seeds))}), scored on the "
           f"runs from random weights and on the runs fine-tuned from the SynthReID-pretrained backbone "
           f"(the profile's fine-tuning schedule). {table.attrs.get('summary', '')}. {heads}")
    show = table.drop(columns=["sentence"])
    return save_table(show, name, cap)
