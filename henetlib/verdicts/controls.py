"""Positive controls: effects established on real data by work other than HENet's, which the testbed must show
before its verdicts on the claims they underlie count as evidence (docs/READINGS.md, "Testbed calibration").

A control is a paired contrast between two of the study's own configurations, with the figures its sources
published on Market-1501. The testbed *passes* a control when the control's multi-seed 95% mAP interval lies
on the established side of 0. A claim row that rests on a control the testbed fails is "untestable here",
never "contradicted"; a row that measures the control's own effect is "calibration", not evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from henetlib.engine.config import TrainConfig, make_config
from henetlib.stats import paired_difference
from henetlib.study import grids

N_BOOT = 2000
MIN_SEEDS = 5  # a control is judged on at least this many seeds per configuration


@dataclass(frozen=True)
class Source:
    """One published ablation on Market-1501: R1 / mAP without and with the control's change."""

    cite: str
    setting: str
    without: tuple[float, float]
    with_: tuple[float, float]

    @property
    def gain(self) -> tuple[float, float]:
        return (round(self.with_[0] - self.without[0], 2), round(self.with_[1] - self.without[1], 2))


@dataclass(frozen=True)
class Control:
    id: str
    effect: str  # the established effect, as a sentence
    with_: dict[str, Any]  # TrainConfig overrides of the side that should win
    without: dict[str, Any]  # ... and of the side it should beat
    sources: tuple[Source, ...]
    claims: str  # which claim families rest on it (for the reader)


_RE = dict(grids.ALL_LOSSES, erasing="re", erasing_p=0.5, rpe_n=20)  # Fig. 4's RE run at p = 0.5
_NONE = dict(grids.ALL_LOSSES)  # Fig. 4's p = 0 (= Table 4's all-losses row)
_CE = dict(stripes=(1, 4), recovery=True, oim=False, triplet=False, mse=False)  # Table 4's "CE only"
_TRI = dict(_CE, triplet=True)  # Table 4's "Tri"

CONTROLS: dict[str, Control] = {
    "RE": Control(
        "RE", "Random Erasing at p = 0.5 raises mAP over no erasing", _RE, _NONE,
        (Source("Luo et al. 2019, Bag of Tricks (reid-strong-baseline README, '+REA' step)",
                "ResNet-50, ImageNet, softmax + triplet", (88.7, 75.2), (91.3, 79.3)),
         Source("Person_reID_baseline_pytorch README, ablation (softmax)", "ResNet-50, ImageNet, softmax",
                (88.24, 70.68), (89.13, 73.50))),
        "erasing: T1a's +RPE row, T1b, F4a-F4e, F5c-F5e"),
    "triplet": Control(
        "triplet", "adding the batch-hard triplet loss to CE raises mAP", _TRI, _CE,
        (Source("deep-person-reid BENCHMARK.md", "DenseNet-121, ImageNet, softmax vs softmax + triplet",
                (88.2, 69.2), (90.1, 74.0)),),
        "losses: T1a's +Losses row, T1b, T4a, T4b"),
}

# Which controls each claim's rows rest on (claims absent here have no control: the structure claims T2, T3
# and the efficiency claims E*). T1a's two rows rest on one control each.
CLAIM_CONTROLS: dict[str, tuple[str, ...]] = {
    "T1b": ("RE", "triplet"), "T4a": ("triplet",), "T4b": ("triplet",),
    **{c: ("RE",) for c in ("F4a", "F4b", "F4c", "F4d", "F4e", "F5c", "F5d", "F5e")},
}
# F5a and F5b rest on no control: they are about the test-time occlusion (every model, including the one trained
# without erasing, loses accuracy as the level rises; RE+RPE occlusion hurts fastest), not about what training
# with erasing buys, which is what the RE control calibrates.
ROW_CONTROLS: dict[tuple[str, str], tuple[str, ...]] = {
    ("T1a", "HENet(+RPE) > HENet(Base)"): ("RE",),
    ("T1a", "HENet(+Losses) > HENet(Base)"): ("triplet",),
}


def row_controls(claim_id: str, row_label: str) -> tuple[str, ...]:
    """The controls a claim row rests on (empty: none sourced for it)."""
    return ROW_CONTROLS.get((claim_id, row_label), CLAIM_CONTROLS.get(claim_id, ()))


def is_calibration(claim_id: str, row_label: str) -> bool:
    """Rows that measure a control's own effect (Random Erasing against no erasing) rather than HENet's: F4a's
    RE curve and F5c's RE tolerance rows. They calibrate the testbed; they are not evidence about HENet."""
    return (claim_id == "F4a" and row_label.startswith("RE:")) or (
        claim_id == "F5c" and row_label.startswith("drop(none) > drop(RE)"))


def control_configs(profile: str, seeds: Sequence[int], **common: Any) -> dict[tuple[str, str], list[TrainConfig]]:
    """(control, "with" / "without") -> one configuration per seed, equal to the study grid's own runs (so the
    study and the controls share them)."""
    out = {}
    for cid, ctl in CONTROLS.items():
        for side, kw in (("with", ctl.with_), ("without", ctl.without)):
            out[(cid, side)] = [make_config(profile, seed=s, **{**common, **kw}) for s in seeds]
    return out


def control_interval(with_: Sequence[dict], without: Sequence[dict], pids: Sequence[int],
                     n_boot: int = N_BOOT, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per metric, the seed mean of ``with_ - without`` (per-query dicts, one per seed, the same seeds on
    both sides) with its 95% interval: an identity-clustered query bootstrap shared by every seed and both
    sides, plus the two configurations' own seed variance (two-way residual, S - 1 df). ``passes``: the
    interval lies wholly above 0, judged only with at least :data:`MIN_SEEDS` seeds."""
    if len(with_) != len(without) or not with_:
        raise ValueError(f"a control needs the same seeds on both sides, got {len(with_)} and {len(without)}.")
    out = {}
    for metric in ("R1", "mAP"):
        iv = paired_difference(with_, without, metric, n_boot, seed, clusters=np.asarray(pids))
        out[metric] = {"diff": round(iv.mean, 3), "lo": round(iv.lo, 3), "hi": round(iv.hi, 3),
                       "n_seeds": iv.n_seeds, "basis": iv.basis,
                       "passes": bool(iv.n_seeds >= MIN_SEEDS and iv.lo > 0)}
    return out


def state(passed: dict[str, bool], needs: Sequence[str]) -> str:
    """A row's control state: "passes" (every control it rests on passes), "fails: X" or "no control"."""
    if not needs:
        return "no control"
    failed = [c for c in needs if not passed.get(c, False)]
    return "fails " + ", ".join(failed) if failed else "passes"


def control_states(data) -> dict[str, dict]:
    """Each positive control's interval (:func:`control_interval`) on a study's runs (a
    :class:`henetlib.verdicts.scores.StudyScores`), with ``passes`` and a ``state`` in words; a control whose runs
    are missing reads as not passed."""
    where = {"RE": ("fig4", ("RE", 0.5), ("RE", 0.0)), "triplet": ("table4", "Tri", "CE only")}
    out = {}
    for cid, (grid, a, b) in where.items():
        pa = data.per_query.get(grid, {}).get(a)
        pb = data.per_query.get(grid, {}).get(b)
        if not pa or not pb or not all(pa) or not all(pb) or data.query_pids is None:
            out[cid] = {"passes": False, "state": "not run"}
            continue
        iv = control_interval(pa, pb, data.query_pids)
        m = iv["mAP"]
        st = ("passes" if m["passes"] else f"fewer than {MIN_SEEDS} seeds" if m["n_seeds"] < MIN_SEEDS
              else "fails: the interval lies below 0" if m["hi"] < 0 else "fails: the interval contains 0")
        out[cid] = {"passes": m["passes"], "state": st, **iv}
    return out


def controls_table(board: pd.DataFrame) -> pd.DataFrame:
    """The positive controls as scored on the board's runs: the established effect, its sources' figures, our
    interval and whether the testbed passes (figures/claims.md opens with it)."""
    recs = []
    for cid, ctl in CONTROLS.items():
        st = board.attrs.get("controls", {}).get(cid, {})
        m = st.get("mAP", {})
        ours = (f"{m['diff']:+.2f} [{m['lo']:+.2f}, {m['hi']:+.2f}] ({m['n_seeds']} seeds)" if m else "not run")
        r1 = st.get("R1", {})
        srcs = "; ".join(f"{s.cite}, {s.setting}: {s.without[1]:.1f} -> {s.with_[1]:.1f} mAP ({s.gain[1]:+.1f})"
                         for s in ctl.sources)
        recs.append({"control": cid, "established effect": ctl.effect, "sources (Market-1501)": srcs,
                     "ours, mAP difference [95%]": ours,
                     "ours, R1 difference": f"{r1['diff']:+.2f} [{r1['lo']:+.2f}, {r1['hi']:+.2f}]" if r1 else "-",
                     "testbed": st.get("state", "not scored"), "claims resting on it": ctl.claims})
    return pd.DataFrame(recs)
