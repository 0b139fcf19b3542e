"""The two regimes side by side: what changed between the claims scored from random weights and fine-tuned,
and nothing trained to find out."""

import numpy as np
import pandas as pd

from henetlib.study import tables
from henetlib.verdicts import regimes, scoreboard


def _board(verdicts: dict[str, str], regime: str = "-"):
    rows = [{"claim": cid, "kind": "difference", "metric": "R1", "verdict": v, "seeds needed": np.nan, "basis": "",
             "regime": regime, "comparison": "a vs b", "text": ""} for cid, v in verdicts.items()]
    b = pd.DataFrame(rows)
    b.attrs["profile"] = "smoke"
    return b


def test_compare_regimes_names_flips_and_holds(monkeypatch):
    scratch = _board({"T2-1": "contradicted", "T2-2": "reproduced", "T3-1": "unresolved", "T4-1": "contradicted"})
    tuned = _board({"T2-1": "reproduced", "T2-2": "reproduced", "T3-1": "contradicted", "T4-1": "not run"}, "paper")
    seen = []

    def fake(ctx, n_boot=1000, train=True, **kw):
        seen.append((ctx.finetune, train))
        return tuned if ctx.finetune else scratch

    monkeypatch.setattr(scoreboard, "scoreboard", fake)
    ctx = tables.StudyContext("smoke", "cpu", finetune=False)
    both = regimes.compare_regimes(ctx, n_boot=10)
    assert seen == [(False, False), (True, False)]  # nothing is trained
    change = dict(zip(both["claim"], both["change"], strict=True))
    assert change == {"T2-1": "flips: contradicted -> reproduced", "T2-2": "holds (reproduced in both)",
                      "T3-1": "resolved only fine-tuned", "T4-1": "not comparable (runs missing)"}
    assert both.attrs["comparable"] == 3
    assert set(both["regime (fine-tuned)"]) == {"paper"}
    # the own regime's board is reused, not scored again
    seen.clear()
    regimes.compare_regimes(tables.StudyContext("smoke", "cpu", finetune=True), board=tuned)
    assert seen == [(False, False)]


def test_compare_regimes_on_a_profile_with_one_regime():
    both = regimes.compare_regimes(tables.StudyContext("test", "cpu"))
    assert both.attrs["comparable"] == 0 and "one regime" in both.attrs["summary"]




def test_save_regimes_writes_the_table_and_both_headlines(isolated_dirs, monkeypatch):
    scratch = _board({"T2-1": "contradicted"})
    tuned = _board({"T2-1": "reproduced"}, "paper")
    monkeypatch.setattr(scoreboard, "scoreboard", lambda ctx, **kw: tuned if ctx.finetune else scratch)
    ctx = tables.StudyContext("smoke", "cpu", finetune=False)
    both = regimes.compare_regimes(ctx, n_boot=10)
    md = regimes.save_regimes(both, ctx).read_text()
    assert md == (isolated_dirs / "figures" / "claims_regimes.md").read_text()
    assert md.startswith("| claim ") and "sentence" not in md.split("\n")[0]
    assert "| T2-1 " in md and "flips: contradicted -> reproduced" in md
    assert "from scratch: 1 claims on smoke: 0 reproduced, 1 contradicted" in md  # each regime's headline
    assert "fine-tuned: 1 claims on smoke: 1 reproduced, 0 contradicted" in md
