"""The efficiency claims' rows (section 4.5): measured model sizes V and speeds S, scored without training.

Below :mod:`henetlib.verdicts.scoreboard`, which puts these rows beside the trained claims.
"""

from __future__ import annotations

import json

import numpy as np

from henetlib.engine.efficiency import (
    LATEST,
    graphs_differing_from_paper,
    published_measurement,
    speed_difference,
)
from henetlib.system.files import results_dir
from henetlib.verdicts.claims import Row


def efficiency_measurements(profile: str | None = None) -> dict | None:
    """The Table 1 measurement the efficiency rows are scored on: the one published with ``profile``'s study
    (the same on every clone), else the one notebook 07 last showed on this machine; None when neither exists.
    Never measures: timing here would share the CPU with other notebooks."""
    pub = published_measurement(profile) if profile else None
    if pub is not None:
        return pub["measurements"]
    f = results_dir() / "efficiency" / LATEST
    if f.exists():
        try:
            return json.loads(f.read_text())["measurements"]
        except (ValueError, KeyError):
            return None
    return None


def efficiency_row(row: Row, meas: dict | None) -> dict:
    """Our value of a measured V or S row, its interval and verdict. V is an exact count; S is decided only when
    the interval over interleaved repeated timings excludes 0 (:func:`henetlib.engine.efficiency.speed_difference`).
    A row involving a model whose graph does not reproduce the paper's V (:func:`graphs_differing_from_paper`)
    tests our graph, not the paper's count: "untestable here", with the reason."""
    out = {"ours diff": np.nan, "lo": np.nan, "hi": np.nan, "verdict": "not run", "why": "", "basis": ""}
    if meas is None or any(k not in meas for k, _ in row.weights):
        return out
    is_v = row.label.startswith("V")
    (pos, _), (neg, _) = sorted(row.weights, key=lambda kw: -kw[1])
    if is_v:
        d = float(meas[pos]["inference_size_mb"] - meas[neg]["inference_size_mb"])
        lo = hi = d
        out["basis"] = "measured here (exact parameter count)"
    else:
        a, b = meas[pos].get("fps_batch1_repeats") or [], meas[neg].get("fps_batch1_repeats") or []
        if len(a) < 2 or len(a) != len(b):
            d = float(meas[pos]["fps_batch1"] - meas[neg]["fps_batch1"])
            out.update({"ours diff": d, "verdict": "unresolved", "why": "one timing: no interval",
                        "basis": "measured here, once"})
            return out
        d, lo, hi = speed_difference(a, b)
        out["basis"] = f"measured here, {len(a)} interleaved repeats"
    out.update({"ours diff": d, "lo": lo, "hi": hi})
    out["verdict"] = "reproduced" if lo > 0 else "contradicted" if hi < 0 else "unresolved"
    differs = {m: r for m, r in graphs_differing_from_paper().items() if m in (pos, neg)}
    if differs:
        out["measured"] = out["verdict"]
        out["verdict"] = "untestable here"
        out["why"] = "our graph differs from the paper's count: " + ", ".join(differs)
    return out
