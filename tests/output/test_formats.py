"""Tables formatted for a reader: mean ± half-width cells, the paper beside ours, column orders, Fig. 4's shared
p = 0 row, Fig. 5's clean column, and the claims table's marks."""

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


def test_with_intervals_prints_mean_and_half_width():
    df = pd.DataFrame({"Losses": ["a", "b"], "R1": [56.61, 40.0], "R1_lo": [54.5, np.nan], "R1_hi": [58.7, np.nan],
                       "R1_sd": [1.0, 1.0], "mAP": [30.0, 31.0]})
    out = formats.with_intervals(df)
    assert out["R1"].tolist() == ["56.6 ± 2.1", "40.0"] and list(out.columns) == ["Losses", "R1", "mAP"]
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
