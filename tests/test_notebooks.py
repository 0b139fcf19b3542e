"""Every study notebook, executed by papermill on the tiny `test` profile (what `make reproduce` runs), and
the shape of a notebook: a typed parameters cell, one setup call, calls into henetlib, no private names."""

import ast
import json
import logging
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from henetlib.study.reproduce import KERNEL, KERNEL_DISPLAY_NAME, run_notebooks

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXPECTED = {
    "00_rpe_explained": ["fig3_rpe.pdf", "fig3_rpe.png", "rpe_area_vs_n.png"],
    "01_structure_analysis": ["table2_structure.md", "table2_structure.tex", "fig_table2_structure.pdf"],
    "02_branch_ablation": ["table3_branches.md", "table3_branches.tex", "fig_table3_branches.png"],
    "03_loss_ablation": ["table4_losses.md", "table4_losses.tex", "fig_table4_losses.png", "fig_ranked_lists.png",
                         "table4_protocols.md", "table4_claims.md", "fig_training_curves.png"],
    "04_rpe_probability_sweep": ["fig4_rpe_probability.pdf", "fig4_rpe_probability_table.md", "fig4_claims.md"],
    "05_occlusion_robustness": ["fig5_occlusion.pdf", "fig5_occlusion_table.md", "fig5_claims.md"],
    "06_cam_heatmaps": ["fig2_cam.pdf", "fig2_cam.png"],
    "07_efficiency_score": ["table1_efficiency.md", "table1_efficiency.tex", "fig1_efficiency.pdf",
                            "table1_henet_rows.md", "table1_claims.md"],
    "08_claims": ["claims.md", "claims.tex", "claims_forest.png", "claims_forest.pdf", "claims_summary.json"],
}
# notebook -> the grid whose claims it scores (figures/<grid>_claims.md)
CLAIMS_OF = {"01_structure_analysis": "table2", "02_branch_ablation": "table3", "03_loss_ablation": "table4",
             "04_rpe_probability_sweep": "fig4", "05_occlusion_robustness": "fig5", "07_efficiency_score": "table1"}
VERDICTS = {"reproduced", "contradicted", "unresolved", "untestable here", "not run"}


def _code(nb: Path) -> list[str]:
    return [c.source for c in nbformat.read(nb, as_version=4).cells if c.cell_type == "code"]


def test_every_notebook_has_a_parameters_cell():
    assert [nb.stem for nb in NOTEBOOKS] == sorted(EXPECTED)
    for nb in NOTEBOOKS:
        cells = nbformat.read(nb, as_version=4).cells
        params = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1, nb.name
        # typed, so `papermill --help-notebook` shows types; a comment per parameter
        for line in params[0].source.splitlines():
            assert ": " in line.split("=")[0] and "#" in line, (nb.name, line)


def test_every_notebook_runs_on_the_study_kernel():
    """The kernel make env installs into .venv, by its own name: a Jupyter outside .venv maps "python3" to its
    own Python, without henetlib. Papermill (make reproduce) asks for the same one."""
    spec = {"name": KERNEL, "display_name": KERNEL_DISPLAY_NAME, "language": "python"}
    for nb in NOTEBOOKS:
        assert json.loads(nb.read_text())["metadata"]["kernelspec"] == spec, nb.name


# what every study notebook takes (make reproduce passes them all; a user's data and weights among them)
COMMON = ["profile", "device", "data_root", "dataset", "pretrained", "seeds", "regime", "overrides"]


def test_papermill_sees_every_parameter():
    """`papermill --help-notebook` lists each parameter with its type (a line it cannot parse, such as a second
    '=' in the comment or an `X | None` annotation, is dropped from the help and warned about at every run)."""
    for nb in NOTEBOOKS:
        cell = next(c for c in nbformat.read(nb, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
        names = [t.target.id for t in ast.parse(cell.source).body if isinstance(t, ast.AnnAssign)]
        inferred = {p["name"]: p for p in pm.inspect_notebook(str(nb)).values()}
        assert list(inferred) == names, nb.name
        assert names[:len(COMMON)] == COMMON, nb.name
        assert all(p["inferred_type_name"] not in ("None", "") and "|" not in p["inferred_type_name"]
                   for p in inferred.values()), nb.name


def test_notebooks_are_thin():
    """One setup call (henetlib.notebook.setup) right after the parameters, nothing private called, no
    function or class defined in a notebook; 01 and 02 are the same notebook for two tables."""
    for nb in NOTEBOOKS:
        code = _code(nb)
        setup_cells = [src for src in code if "setup(" in src]
        assert len(setup_cells) == 1 and code.index(setup_cells[0]) == 1, nb.name
        assert "from henetlib.notebook import" in setup_cells[0], nb.name
        for src in code:
            tree = ast.parse(src)
            for node in ast.walk(tree):
                name = (node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name)
                        else None)
                assert not (name or "").startswith("_"), (nb.name, name)
                if isinstance(node, ast.ImportFrom):
                    assert not any(a.name.startswith("_") for a in node.names), (nb.name, src)
                assert not isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Lambda)), (nb.name, src)
    one, two = (_code(nb)[1:] for nb in NOTEBOOKS[1:3])
    assert [s.replace("table3", "table2") for s in two] == one and len(one) == 3


def _md_tables(text: str) -> dict[str, list[dict]]:
    """The pipe tables of a Markdown file, by the heading above each (rows as {column: cell})."""
    out, heading, rows, cols = {}, "", [], None
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cols is None:
                cols = cells
            elif not set("".join(cells)) <= set(":- ") and len(cells) == len(cols):
                rows.append(dict(zip(cols, cells, strict=True)))
            continue
        if cols is not None:
            out[heading] = rows
            rows, cols = [], None
        if line.startswith("#"):
            heading = line.lstrip("# ").strip()
    return out


def _check_board(path: Path, ids: list[str]) -> tuple[dict, dict]:
    """The claim ids and verdicts of a saved scoreboard; returns its claim-level and row-level counts."""
    tables = _md_tables(path.read_text())
    claims, rows = tables["Claims (one verdict each)"], tables["Rows (each contrast and metric)"]
    assert [r["claim"] for r in claims] == ids, path.name
    assert {r["claim"] for r in rows} == set(ids), path.name
    assert {r["verdict"] for r in claims} <= VERDICTS, path.name
    row_verdicts = [r["verdict"].split(" ", 1)[1] for r in rows]  # "✓ reproduced" ...
    assert set(row_verdicts) <= VERDICTS | {"calibration"}, path.name
    distinct = [v for v, r in zip(row_verdicts, rows, strict=True) if not r.get("duplicate of")]
    count = lambda vs, kinds: {v: vs.count(v) for v in kinds} | {"total": len(vs)}  # noqa: E731
    return (count([r["verdict"] for r in claims], VERDICTS),
            count(distinct, (*VERDICTS, "calibration")))


@pytest.mark.slow
def test_notebooks_execute_on_test_profile(isolated_dirs, caplog):
    from henetlib.verdicts.claims import for_grid, for_profile

    extra = {"seeds": [0], "input_height": 128, "input_width": 64, "batch": 2, "repeats": 1, "draws": 20,
             "num_images": 2, "interactive": False}
    reports = isolated_dirs / "reports"
    ok = run_notebooks(NOTEBOOKS, profile="test", device="cpu", extra=extra, reports_dir=reports)
    assert ok
    figs = isolated_dirs / "figures"
    for nb, files in EXPECTED.items():
        assert (reports / f"{nb}.html").exists(), nb
        for f in files:
            assert (figs / f).stat().st_size > 0, f
    table = (figs / "table2_structure.md").read_text()
    assert "R1 (paper)" in table and "87.92" in table and "profile test" in table and " ± " in table
    # every scoreboard holds the claims of its grid, each with a known verdict
    for grid in CLAIMS_OF.values():
        _check_board(figs / f"{grid}_claims.md", [c.id for c in for_grid(grid, "test")])
    claim_counts, row_counts = _check_board(figs / "claims.md", [c.id for c in for_profile("test")])
    # the summary that reports/index.html and the README headline read says what the board says
    summary = json.loads((figs / "claims_summary.json").read_text())
    assert summary["claims"] == claim_counts and summary["rows"] == row_counts
    assert summary["profile"] == "test" and summary["seeds"] == [0] and summary["regime"] == "from scratch"
    page = (reports / "index.html").read_text()
    assert f"Verdicts of {claim_counts['total']} claims: <b>{claim_counts['reproduced']}</b> reproduced" in page

    # a second run with nothing changed executes no notebook
    stamps = {nb.stem: (reports / f"{nb.stem}.ipynb").stat().st_mtime_ns for nb in NOTEBOOKS}
    with caplog.at_level(logging.INFO, logger="henetlib.study.reproduce"):
        assert run_notebooks(NOTEBOOKS, profile="test", device="cpu", extra=extra, reports_dir=reports)
    assert caplog.text.count("unchanged, not re-run") == len(NOTEBOOKS)
    assert stamps == {nb.stem: (reports / f"{nb.stem}.ipynb").stat().st_mtime_ns for nb in NOTEBOOKS}
