"""Table 1 data for the efficiency and Fig. 1 tests: measurements equal to the paper's, and four HENet rows.
Not a test module."""

import pandas as pd

from henetlib.engine.efficiency import Measurement
from henetlib.paper import TABLE1


def measurements():
    """Measurements that are the paper's own FD, V and S (so our ES must come out as the paper's)."""
    return {k: Measurement(v["fd"], 1, 1, v["v"], v["v"], v["s"], 2 * v["s"], 8, "cpu", "test cpu", "float32", False)
            for k, v in TABLE1.items()}


def ours():
    """Our four HENet rows, R1/mAP near the paper's."""
    return pd.DataFrame({"Method": ["HENet(Base)", "HENet(+RPE)", "HENet(+Losses)", "HENet(+Both)"],
                         "FD": [2048, 2048, 2560, 2560], "R1": [92.9, 93.6, 95.6, 96.0],
                         "R1_lo": [91.0, 92.0, 94.0, 95.0], "R1_hi": [94.0, 95.0, 97.0, 97.0],
                         "mAP": [79.6, 81.2, 86.8, 87.2]})
