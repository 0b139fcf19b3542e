"""Tables formatted for a reader: mean ± half-width cells at the paper's precision, the paper beside ours,
column orders, Fig. 4's shared p = 0 row, Fig. 5's clean column, the claims table's marks, and internal names
turned into words at render time."""

import numpy as np
import pandas as pd

from henetlib.output import formats


def test_fig4_table_shares_p0_row():
    df = pd.DataFrame({"method": ["RE", "RE", "RPE(20)", "RPE(20)"], "p": [0.0, 0.5, 0.0, 0.5],
                       "R1": [60.0, 50.0, 60.0, 55.0], "R1_lo": [55.0] * 4, "R1_hi": [65.0] * 4,
                       "mAP": [40.0] * 4, "R1_occluded": [1.0] * 4, "seeds": [1] * 4})
    t = formats.fig4_table(df)
    assert t["method"].tolist() == ["none (p = 0)", "RE", "RPE(20)"]
    assert "seeds" not in t and "R1 (occluded queries)" in t


def test_with_intervals_prints_mean_and_half_width_at_one_precision():
    df = pd.DataFrame({"Losses": ["a", "b"], "R1": [56.61, 40.0], "R1_lo": [54.5, np.nan], "R1_hi": [58.7, np.nan],
                       "R1_sd": [1.0, 1.0], "mAP": [30.0, 31.0]})
    out = formats.with_intervals(df)
    # two decimals, like the paper's numbers printed beside ours (and the claims' differences)
    assert out["R1"].tolist() == ["56.61 ± 2.10", "40.00"] and list(out.columns) == ["Losses", "R1", "mAP"]
    assert df["R1"].tolist() == [56.61, 40.0]  # a copy: the data stays numbers


def test_side_by_side_drop_constant_and_protocol_order():
    ours = pd.DataFrame({"Structure": ["P(1)", "P(9)"], "R1": [50.0, 51.0], "seeds": [1, 1]})
    t = formats.side_by_side(ours, {"P(1)": {"R1": 87.92}}, "Structure", ["R1"])
    assert t["R1 (paper)"].tolist()[0] == 87.92 and np.isnan(t["R1 (paper)"].tolist()[1])
    assert "seeds" not in formats.drop_constant(t) and "seeds" in formats.drop_constant(t.assign(seeds=[1, 2]))
    prot = pd.DataFrame({"mINP": [1.0], "R10": [2.0], "extra": [0], "R1": [3.0], "protocol": ["raw"], "mAP": [4.0],
                         "R5": [5.0]})
    assert list(formats.protocols_table(prot).columns) == ["protocol", "R1", "R5", "R10", "mAP", "mINP", "extra"]


def test_fig5_table_has_one_clean_column():
    df = pd.DataFrame({"trained_with": ["none"] * 4, "test_occlusion": ["RE", "RPE(20)"] * 2,
                       "level": [0.0, 0.0, 0.5, 0.5], "R1": [70.0, 70.0, 40.0, 30.0], "mAP": [50.0, 50.0, 20.0, 10.0]})
    t = formats.fig5_table(df)
    assert t.columns.tolist() == ["trained with", "level", "R1 clean", "R1 under RE", "R1 under RPE(20)", "mAP clean",
                                  "mAP under RE", "mAP under RPE(20)"]
    assert t.iloc[0].tolist() == ["none", 0.5, 70.0, 40.0, 30.0, 50.0, 20.0, 10.0]


def test_claims_table_marks_and_text_only_paper():
    board = pd.DataFrame({"claim": ["T3a", "F4c"], "comparison": ["x", "y"], "metric": ["R1", "mAP"],
                          "ours diff": [1.234, np.nan], "lo": [0.0, np.nan], "hi": [2.0, np.nan],
                          "paper diff": [2.5, np.nan], "verdict": ["reproduced", "not run"]})
    t = formats.claims_table(board)
    assert t["ours (95% CI)"].tolist() == ["+1.23 ± 1.00", "-"]
    assert t["paper"].tolist() == ["+2.50", "text only"]
    assert t["verdict"].tolist() == ["✓ reproduced", "– not run"]


def test_regime_codes_read_as_how_a_run_was_trained():
    # "paper" beside a synthetic run would read as the paper's number
    assert formats.regime_label("paper") == "converged, pretrained"
    assert formats.regime_label("not converged/paper") == "not converged / converged, pretrained"
    assert formats.regime_label("1 of 2 runs in the paper regime (1 not converged)") == (
        "1 of 2 runs converged, pretrained (1 not converged)")
    assert formats.regime_label("converged, pretrained") == "converged, pretrained"  # idempotent
    assert formats.regime_label(None) is None  # a missing cell stays missing


def test_internal_names_become_words():
    assert formats.reader_text("Model: G1+P4+R16 | CE+OIM+Tri+MSE | none | s0, R1 81.4%.") == (
        "Model: G1+P4+R16 trained with CE+OIM+Tri+MSE, no erasing, seed 0, R1 81.4%.")
    assert formats.reader_text("G1+P4 | CE | RE+RPE(20)@0.5 | s3") == "G1+P4 trained with CE, RE+RPE(20) at p = 0.5, seed 3"
    assert formats.reader_text("fine-tuned backbone (train.FINETUNE). Next.") == "fine-tuned backbone. Next."


def test_for_reader_renames_es_maps_codes_and_puts_the_paper_beside_ours():
    df = pd.DataFrame({"Method": ["HENet(Base)", "HENet(+RPE)", "HENet(+Losses)", "HENet(+Both)"],
                       "R1": [75.1, 70.8, 79.5, 74.2], "mAP": [65.0, 59.9, 69.4, 65.0],
                       "regime": ["paper", "paper", "not converged", "paper"],
                       "R1 (paper)": [92.9, 93.6, 95.6, 96.0], "mAP (paper)": [79.6, 81.2, 86.8, 87.2],
                       "ES (ours)": [1.69, 1.09, 1.49, 1.0], "ES (paper)": [0.79, 0.88, 0.97, 1.0]})
    out = formats.for_reader(df)
    # ES is relative to the models it is computed among: the header says how many (4 here, 8 in Table 1)
    assert out.columns.tolist() == ["Method", "R1", "R1 (paper)", "mAP", "mAP (paper)", "regime",
                                    "ES among 4 (ours)", "ES among 4 (paper)"]
    assert out["regime"].tolist()[2:] == ["not converged", "converged, pretrained"]
    assert formats.for_reader(out).equals(out)  # idempotent: the writers may apply it twice
    assert df["regime"].iloc[0] == "paper"  # a copy
    prot = formats.for_reader(pd.DataFrame({"protocol": ["flip-l2", "raw"], "R1": [1.0, 2.0]}))
    assert prot["protocol"].tolist() == ["flip + L2", "raw"]
