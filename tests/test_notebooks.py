"""Every study notebook, executed by papermill on the tiny `test` profile (what `make reproduce` runs)."""

from pathlib import Path

import nbformat
import pytest

from henetlib.study.reproduce import run_notebooks

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
    "08_claims": ["claims.md", "claims.tex", "claims_forest.png", "claims_forest.pdf"],
}


def test_every_notebook_has_a_parameters_cell():
    assert [nb.stem for nb in NOTEBOOKS] == sorted(EXPECTED)
    for nb in NOTEBOOKS:
        cells = nbformat.read(nb, as_version=4).cells
        params = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
        assert params, nb.name
        # typed, so `papermill --help-notebook` shows types; a comment per parameter
        for line in params[0].source.splitlines():
            assert ": " in line.split("=")[0] and "#" in line, (nb.name, line)


@pytest.mark.slow
def test_notebooks_execute_on_test_profile(isolated_dirs):
    extra = {"seeds": [0], "input_height": 128, "input_width": 64, "batch": 2, "repeats": 1, "draws": 20,
             "num_images": 2, "interactive": False}
    ok = run_notebooks(NOTEBOOKS, profile="test", device="cpu", extra=extra, reports_dir=isolated_dirs / "reports")
    assert ok
    figs = isolated_dirs / "figures"
    for nb, files in EXPECTED.items():
        assert (isolated_dirs / "reports" / f"{nb}.html").exists(), nb
        for f in files:
            assert (figs / f).stat().st_size > 0, f
    table = (figs / "table2_structure.md").read_text()
    assert "R1 (paper)" in table and "87.92" in table and "profile 'test'" in table and " ± " in table
    board = (figs / "claims.md").read_text()
    assert "reproduced" in board or "unresolved" in board or "contradicted" in board
