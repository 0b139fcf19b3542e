"""Verdict stability: how often each claim's verdict holds when the seeds of the study are resampled.

Above :mod:`henetlib.verdicts.scoreboard`, which it calls once per resample.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from henetlib.verdicts.claims import for_profile
from henetlib.verdicts.scoreboard import claim_verdicts, scoreboard
from henetlib.verdicts.scores import StudyScores


def stability(ctx, board: pd.DataFrame, data: StudyScores, n: int = 50, n_boot: int = 300, seed: int = 0,
              efficiency: dict | None = None) -> dict[str, float]:
    """How often each claim's verdict holds when the seeds are resampled: the share of ``n`` bootstrap
    resamples of the seeds (with replacement, the whole scoreboard recomputed on each, controls included) that
    give the claim the same verdict as all seeds do. Stored in ``board.attrs["stability"]`` (claim -> share);
    NaN with fewer than two seeds."""
    full = claim_verdicts(board).set_index("claim")["verdict"]
    s = len(data.seeds)
    if s < 2:
        out = {cid: np.nan for cid in full.index}
        board.attrs["stability"] = out
        return out
    rng = np.random.default_rng(seed)
    ids = [c for c in for_profile(ctx.profile) if c.id in set(full.index)]
    hits = {cid: 0 for cid in full.index}
    for _ in range(n):
        idx = rng.integers(0, s, s)
        sub = data.subset(list(idx))
        b = scoreboard(ctx, n_boot=n_boot, claims=ids, train=False, data=sub, efficiency=efficiency,
                       gate=bool(board.attrs.get("controls")))
        v = claim_verdicts(b).set_index("claim")["verdict"]
        for cid in hits:
            hits[cid] += int(v.get(cid) == full[cid])
    out = {cid: hits[cid] / n for cid in hits}
    board.attrs["stability"] = out
    return out
