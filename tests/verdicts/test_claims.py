"""The paper's claims as data: each quotes the paper at its lines, the paper's own numbers sit on the claimed
side of every row, and every row names configurations the study trains."""

import re

import numpy as np
import pytest

from henetlib.study import grids, tables
from henetlib.system.files import REPO_ROOT
from henetlib.verdicts import claims, scoreboard

# the paper's extracted text: shared/ beside the checkout, or inside it on a copied working tree
_PAPERS = [root / "shared" / "paper" / "HENet-paper.txt" for root in (REPO_ROOT.parent, REPO_ROOT)]
PAPER = next((p for p in _PAPERS if p.exists()), _PAPERS[0])


def _paper_lines() -> list[str]:
    if not PAPER.exists():
        pytest.skip(f"the paper's text is not at {PAPER}")
    return PAPER.read_text().split("\n")


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def _lines_text(lines: list[str], spec: str) -> str:
    a, _, b = spec.partition("-")
    chunk = lines[int(a) - 1: int(b or a)]
    text = ""
    for line in chunk:  # undo the line-end hyphenation of the extraction
        text = text[:-1] + line if text.endswith("-") else f"{text} {line}"
    return _norm(text)


def test_every_claim_quotes_the_paper_at_its_lines():
    lines = _paper_lines()
    for c in [*claims.CLAIMS, *claims.OUT_OF_SCOPE]:
        assert _norm(c.quote) in _lines_text(lines, c.lines), (c.id, c.lines)


def test_the_paper_puts_every_numeric_row_on_the_claimed_side():
    """Directions come from the sentences; the paper's own numbers must agree with every row where it has them
    (the readings of Tables 3-4 were chosen so: each combination against its own constituents)."""
    seen = 0
    for c in claims.CLAIMS:
        for r in c.rows:
            for m in ("R1", "mAP"):
                e = scoreboard.paper_effect(c, r, m)
                if np.isfinite(e):
                    seen += 1
                    assert r.direction * e > 0, (c.id, r.label, m, e)
    assert seen > 60


def test_strict_readings_would_fail_in_the_paper():
    """Why T3a and T4a compare each combination with its own constituents: the strict reading fails on the
    paper's own numbers."""
    t3 = tables.paper_rows("table3")
    assert t3["G1+R16"]["R1"] < t3["P4"]["R1"]
    t4 = tables.paper_rows("table4")
    assert t4["OIM+MSE"]["R1"] < t4["Tri"]["R1"]


@pytest.mark.parametrize("profile", ["smoke", "gpu"])
def test_claim_rows_name_configurations_the_study_trains(profile):
    keys = {
        "table1": set(grids.TABLE1_ROWS), "table2": set(tables.paper_rows("table2")),
        "table3": set(tables.paper_rows("table3")), "table4": set(tables.paper_rows("table4")),
        "fig4": {(r[0], float(r[1])) for r in grids.fig4_configs(profile)},
        "fig5": {(m, t, float(x)) for m in claims._FIG5_MODELS for t in claims._FIG5_TESTS
                 for x in grids.FIG5_LEVELS[profile]},
    }
    cl = claims.for_profile(profile)
    for c in cl:
        assert c.rows, c.id  # every claim has a testable row on smoke and gpu
        if c.kind != "efficiency":
            for r in c.rows:
                assert {k for k, _ in r.weights} <= keys[c.grid], (c.id, r.label)
    ids = {c.id for c in cl}
    assert {"T1a", "T1b", "E1a", "E1b", "T3a", "T4a", "F4a", "F4b", "F4c", "F4d", "F4e", "F5a", "F5b", "F5c", "F5d",
            "F5e"} <= ids
    assert "F4.1" not in ids  # "RPE(20) > RE" has no sentence behind it


def test_claims_have_unique_ids_and_a_grid_each():
    ids = [c.id for c in claims.CLAIMS]
    assert len(ids) == len(set(ids))
    assert {c.grid for c in claims.CLAIMS} <= {"table1", "table2", "table3", "table4", "fig4", "fig5"}
    assert {c.id for c in claims.for_grid("table4")} == {c.id for c in claims.CLAIMS if c.grid == "table4"}
    assert claims.for_grid("table4") and not set(ids) & {c.id for c in claims.OUT_OF_SCOPE}
