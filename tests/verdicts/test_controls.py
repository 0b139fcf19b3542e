"""Positive controls: their runs are the study's own, their interval passes only on the established side with
enough seeds, and a row's state follows the controls it rests on."""

import json

import numpy as np

from henetlib.study import grids
from henetlib.verdicts import controls

Q = 160
_U = np.random.default_rng(1).permutation((np.arange(Q) + 0.5) / Q)


def _pq(mean: float, rng) -> dict:
    ap = np.clip(mean / 100 + rng.normal(0, 0.05, Q), 0, 1)
    return {"first_rank": np.where(_U < ap, 1, 2).tolist(), "ap": ap.tolist()}


def test_control_runs_are_the_study_grids_own():
    ids = {json.dumps(c.identity(), sort_keys=True, default=str)
           for _, c in grids.study_configs("smoke", (0, 1), finetune=True)}
    for (cid, side), cfgs in controls.control_configs("smoke", (0, 1), finetune=True).items():
        assert all(json.dumps(c.identity(), sort_keys=True, default=str) in ids for c in cfgs), (cid, side)


def test_a_control_passes_only_above_zero_with_five_seeds():
    rng = np.random.default_rng(0)
    pids = np.arange(Q) // 4
    better = [_pq(60, rng) for _ in range(5)]
    worse = [_pq(55, rng) for _ in range(5)]
    iv = controls.control_interval(better, worse, pids, n_boot=500)
    assert iv["mAP"]["passes"] and iv["mAP"]["lo"] > 0 and iv["mAP"]["n_seeds"] == 5
    assert not controls.control_interval(worse, better, pids, n_boot=500)["mAP"]["passes"]  # the wrong side
    assert not controls.control_interval(better[:3], worse[:3], pids, n_boot=500)["mAP"]["passes"]  # 3 seeds


def test_row_states_and_calibration_rows():
    assert controls.row_controls("F4d", "anything") == ("RE",)
    assert controls.row_controls("T1a", "HENet(+Losses) > HENet(Base)") == ("triplet",)
    assert controls.row_controls("T3a", "G1+P4 > G1") == ()
    assert controls.state({"RE": False, "triplet": True}, ("RE", "triplet")) == "fails RE"
    assert controls.state({"triplet": True}, ("triplet",)) == "passes"
    assert controls.state({}, ()) == "no control"
    assert controls.is_calibration("F4a", "RE: slope over p") and not controls.is_calibration("F4a", "RPE(20): slope over p")
    assert all(s.gain[1] > 0 for c in controls.CONTROLS.values() for s in c.sources)  # the sources' own direction
