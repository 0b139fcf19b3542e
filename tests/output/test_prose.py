"""Words beside the figures: captions, and sentences computed from the numbers (each checked against the
numbers it was given)."""


import numpy as np
import pandas as pd
import pytest

from henetlib.output import prose
from tests.output.runs import fake_runs


def _bars():
    return pd.DataFrame({"Losses": ["CE only", "CE+OIM", "CE+OIM+Tri+MSE"], "R1": [30.0, 45.0, 44.0],
                         "R1_lo": [26.0, 41.0, 40.0], "R1_hi": [34.0, 49.0, 48.0], "mAP": [20.0, 30.0, 33.0],
                         "R1 (paper)": [88.72, 91.33, 93.67], "mAP (paper)": [69.69, 73.42, 80.60]})


def test_sentences_come_from_the_numbers():
    df = _bars()
    s = prose.compare_rows(df, "Losses", "R1", paper="R1 (paper)")
    assert s.startswith("Best R1: CE+OIM (45.0), 1.0 points ahead of CE+OIM+Tri+MSE (44.0)")
    assert "overlap" in s and "within the noise" in s and "paper's best is CE+OIM+Tri+MSE" in s
    df.loc[1, "R1"] = 60.0
    df.loc[1, ["R1_lo", "R1_hi"]] = [55.0, 65.0]
    assert "do not overlap" in prose.compare_rows(df, "Losses", "R1")
    curves = pd.DataFrame({"m": ["a", "a", "b", "b"], "p": [0.0, 0.5, 0.0, 0.5], "R1": [50.0, 40.0, 50.0, 48.0]})
    c = prose.describe_curves(curves, "p", "R1", "m")
    assert "b keeps the highest R1 (48.0)" in c and "a by -10.0" in c
    ranked = np.array([[0, 1, 2], [2, 1, 0]])
    note = prose.ranked_lists_note(ranked, [7, 8], [7, 9, 8], [0, 0], [1, 1, 1], [0, 1], topk=3)
    assert note.startswith("2 of the 2 queries shown find their identity at rank 1")


def test_training_note():
    runs = fake_runs()
    note = prose.training_note(runs)
    assert note.startswith("1 of 3 runs converged") and "4.0 points (b)" in note
    assert "no regime check" in prose.training_note([runs[2]])


def test_caption_names_profile_data_hardware_and_start():
    cap = prose.caption("smoke", "synthreid-smoke", "a CPU", extra="Seeds 0.", start="16 P x K epochs")
    assert cap.startswith("Ours: profile 'smoke', data set synthreid-smoke, measured on a CPU. Runs: 16 P x K epochs.")
    assert cap.endswith("200 epochs. Seeds 0.")
    assert "a pipeline check" in prose.caption("smoke", "d", "h") and "ResNet50" in prose.caption("gpu", "d", "h")


def test_overlap_rank_agreement_and_readable_names():
    assert prose.overlap((0, 1), (1, 2)) and not prose.overlap((0, 1), (1.5, 2))
    assert prose.rank_agreement(pd.Series([1, 2, 3]), pd.Series([10, 20, 30])) == pytest.approx(1.0)
    assert prose.rank_agreement(pd.Series([1, 2, 3]), pd.Series([30, 20, 10])) == pytest.approx(-1.0)
    assert np.isnan(prose.rank_agreement(pd.Series([1.0]), pd.Series([2.0])))
    assert prose.readable("R1_occluded") == "R1 (occluded queries)" and prose.readable("fit_mAP") == "fit mAP"


def test_bars_and_occlusion_notes_from_the_numbers():
    note = prose.bars_note(_bars(), "Losses")
    assert note.startswith("Best R1: CE+OIM (45.0)") and note.endswith("On mAP the best is CE+OIM+Tri+MSE (33.0).")
    occ = pd.DataFrame({"trained_with": ["none", "none", "RE", "RE"] * 2,
                        "test_occlusion": ["RE"] * 4 + ["RPE(20)"] * 4, "level": [0.0, 1.0] * 4,
                        "R1": [60.0, 30.0, 60.0, 40.0, 60.0, 20.0, 60.0, 35.0]})
    n = prose.occlusion_note(occ)
    assert n.startswith("At level 1, RPE(20) occlusion leaves the lowest mean R1 (27.5; RE: 35.0, RPE(20): 27.5).")
    assert "RE keeps the highest R1 (35.0)" in n
