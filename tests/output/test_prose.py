"""Words beside the figures: captions that open with what is plotted and close with what ours rest on (queries
scored and skipped included), the methods note they point to, and sentences computed from the numbers (each
checked against the numbers it was given)."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from henetlib.output import prose
from tests.output.runs import fake_runs


def _bars():
    return pd.DataFrame({"Losses": ["CE only", "CE+OIM", "CE+OIM+Tri+MSE"], "R1": [30.0, 45.0, 44.0],
                         "R1_lo": [26.0, 41.0, 40.0], "R1_hi": [34.0, 49.0, 48.0], "mAP": [20.0, 30.0, 33.0],
                         "R1 (paper)": [88.72, 91.33, 93.67], "mAP (paper)": [69.69, 73.42, 80.60]})


def _run(ranks, regime="paper", published=False, hardware="cpu here"):
    aps = [None if r < 0 else 1.0 / (r + 1) for r in ranks]
    return SimpleNamespace(per_query={"first_rank": ranks, "ap": aps}, regime={"regime": regime},
                           published=published, hardware=hardware)


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
    assert note.startswith("2 of the 2 queries shown find their identity at rank 1") and "blue frames" in note


def test_training_note():
    runs = fake_runs()
    note = prose.training_note(runs)
    assert note.startswith("1 of 3 runs converged") and "4.0 points (b)" in note
    assert "no regime check" in prose.training_note([runs[2]])


def test_provenance_names_profile_data_hardware_and_start():
    cap = prose.caption("smoke", "synthreid-smoke", "a CPU", extra="Seeds 0.", start="16 P x K epochs")
    assert cap.startswith("Ours: profile 'smoke', data set synthreid-smoke, measured on a CPU. Runs: 16 P x K epochs.")
    assert cap.endswith("200 epochs. Seeds 0.")
    assert "a pipeline check" in prose.caption("smoke", "d", "h") and "ResNet50" in prose.caption("gpu", "d", "h")


def test_query_count_clause_counts_scored_and_skipped_queries():
    # a query without a cross-camera match: first_rank -1, ap None; R1 and mAP skip it
    runs = [_run([0, 3, -1, 1]), _run([2, 0, -1, 0])]
    assert prose.query_counts(runs) == [(3, 4), (3, 4)]
    assert prose.query_count_clause(runs) == "R1 and mAP over 3 of 4 queries (1 without a cross-camera match)"
    assert prose.query_count_clause([_run([0, 1]), _run([-1, -1])]) == (
        "R1 and mAP over 0-2 of 2 queries (0-2 without a cross-camera match)")
    assert prose.query_count_clause([SimpleNamespace(per_query={})]) == ""
    only_ranks = SimpleNamespace(per_query={"first_rank": [0, -1, 5]})
    assert prose.query_counts([only_ranks]) == [(2, 3)]


def test_a_caption_opens_with_what_is_plotted_and_closes_with_what_ours_rest_on():
    runs = [_run([0, -1]), _run([1, -1], regime="not converged"), _run([0, -1], published=True)]
    rests = prose.rests_on(runs, "smoke", [0], "queries only", here="cpu here")
    assert rests.startswith("Ours rest on 3 runs of profile smoke, seed 0: 2 of 3 converged from a pretrained "
                            "backbone, as the paper trains; 1 not converged; 1 of 3 rendered from published results")
    assert "R1 and mAP over 1 of 2 queries (1 without a cross-camera match)" in rests
    assert rests.endswith(f"95% intervals over queries only. Hardware, schedule and rules: {prose.METHODS_NOTE}.")
    assert "trained on elsewhere" in prose.rests_on([_run([0], hardware="elsewhere")], "smoke", [0], here="cpu here")
    cap = prose.figure_caption("Model: G1+P4+R16 | CE | none | s0.", rests)
    assert cap.startswith("Model: G1+P4+R16 trained with CE, no erasing, seed 0.") and cap.endswith(rests)
    assert not cap.startswith("Ours:")
    # the lead (what is plotted, what to see) comes first, once, and each figure's is its own
    led = prose.with_lead("fig_table2_structure", cap)
    assert led.startswith(prose.LEADS["fig_table2_structure"]) and led.endswith(cap)
    assert prose.with_lead("fig_table2_structure", led) == led
    assert prose.with_lead("no_such_figure", cap) == cap
    assert prose.LEADS["fig_table2_structure"] != prose.LEADS["fig_table3_branches"]
    assert prose.LEADS["fig_training_curves"] != prose.LEADS["table4_losses"]


def test_methods_note_is_written_once_beside_the_figures(tmp_path):
    text = prose.methods_note(prose.caption("smoke", "d", "a CPU", start="16 P x K epochs"),
                              intervals="± is half the 95% interval.", rule="converged: ...",
                              published="Published runs: H100.")
    assert text.startswith("# How our numbers were made") and "a CPU" in text and "H100" in text
    assert "converged, pretrained" in text  # what the regime label means, once
    path = prose.write_methods_note(text, tmp_path)
    assert path == tmp_path / prose.METHODS_NOTE and path.read_text() == text
    mtime = path.stat().st_mtime_ns
    prose.write_methods_note(text, tmp_path)
    assert path.stat().st_mtime_ns == mtime  # unchanged: not rewritten


def test_overlap_rank_agreement_and_readable_names():
    assert prose.overlap((0, 1), (1, 2)) and not prose.overlap((0, 1), (1.5, 2))
    assert prose.rank_agreement(pd.Series([1, 2, 3]), pd.Series([10, 20, 30])) == pytest.approx(1.0)
    assert prose.rank_agreement(pd.Series([1, 2, 3]), pd.Series([30, 20, 10])) == pytest.approx(-1.0)
    assert np.isnan(prose.rank_agreement(pd.Series([1.0]), pd.Series([2.0])))
    assert prose.readable("R1_occluded") == "R1 (occluded queries)" and prose.readable("fit mAP") == "training-fit mAP"
    assert prose.readable("some_column") == "some column"


def test_bars_and_occlusion_notes_from_the_numbers():
    note = prose.bars_note(_bars(), "Losses")
    assert note.startswith("Best R1: CE+OIM (45.0)") and note.endswith("On mAP the best is CE+OIM+Tri+MSE (33.0).")
    occ = pd.DataFrame({"trained_with": ["none", "none", "RE", "RE"] * 2,
                        "test_occlusion": ["RE"] * 4 + ["RPE(20)"] * 4, "level": [0.0, 1.0] * 4,
                        "R1": [60.0, 30.0, 60.0, 40.0, 60.0, 20.0, 60.0, 35.0]})
    n = prose.occlusion_note(occ)
    assert n.startswith("At level 1, RPE(20) occlusion leaves the lowest mean R1 (27.5; RE: 35.0, RPE(20): 27.5).")
    assert "RE keeps the highest R1 (35.0)" in n
