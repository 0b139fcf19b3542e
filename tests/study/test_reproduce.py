"""make reproduce's notebook driver: parameters checked before any kernel starts, with the CLI's one-line
message, and the index page that links every report and figure offline. (tests/test_reproduce.py checks the
training shards and the regime folders.)"""

import json

import papermill as pm
import pytest

from henetlib.study.reproduce import run_notebooks, write_index
from henetlib.system.files import REPO_ROOT


@pytest.mark.parametrize("params,message", [
    ({"profile": "huge"}, "unknown profile 'huge'"),
    ({"profile": "test", "seeds": ["a"]}, "seeds must be a non-empty list of integers"),
    ({"profile": "test", "dataset": "mars", "data_root": "/nowhere"}, "unknown data set 'mars'"),
])
def test_bad_notebook_parameters_fail_with_the_clis_message(isolated_dirs, params, message):
    """make reproduce checks the parameters before any kernel starts; papermill run directly shows the same
    one-line message as the notebook's error."""
    nb = REPO_ROOT / "notebooks" / "01_structure_analysis.ipynb"
    with pytest.raises(ValueError, match=message):
        run_notebooks([nb], device="cpu", reports_dir=isolated_dirs / "reports", jobs=1,
                      **{k: v for k, v in params.items() if k == "profile"},
                      extra={k: v for k, v in params.items() if k != "profile"})
    if params["profile"] != "huge":
        return  # one kernel start is enough to show papermill's side
    with pytest.raises(pm.PapermillExecutionError) as e:
        pm.execute_notebook(str(nb), str(isolated_dirs / "out.ipynb"), parameters=params, cwd=str(nb.parent),
                            progress_bar=False, kernel_name="python3")
    assert message in e.value.evalue and e.value.ename in ("ValueError", "DataError")


def test_index_page_links_offline(tmp_path):
    figs, reps = tmp_path / "figures", tmp_path / "reports"
    figs.mkdir()
    reps.mkdir()
    (reps / "00_x.html").write_text("<html></html>")
    (figs / "claims.md").write_text("| claim | verdict |\n|:--|:--|\n| T2.1 | ✓ reproduced |\n| T2.2 | ? unresolved |\n"
                                    "| T2.3 | ✓ reproduced |\n\ncaption\n")
    # the counts notebook 08 writes beside the scoreboard (the index reads them, and folds claims.md)
    counts = {"reproduced": 2, "contradicted": 0, "unresolved": 1, "not run": 0}
    (figs / "claims_summary.json").write_text(json.dumps({
        "claims": {"total": 3, **counts}, "rows": {"total": 3, **counts}, "profile": "test",
        "regime": "from random weights", "seeds": [0]}))
    (figs / "fig1.png").write_bytes(b"png")
    (figs / "fig1.pdf").write_bytes(b"pdf")
    (figs / "fig1.caption.txt").write_text("Fig one & more.")
    page = write_index(reps, ["00_x", "01_y"], {"00_x": 3.0}, {"profile": "test"}, figures=figs).read_text()
    assert 'href="00_x.html"' in page and "not rendered" in page
    assert "<b>2</b> reproduced" in page and "<b>1</b> unresolved" in page
    assert 'src="../figures/fig1.png"' in page and 'href="../figures/fig1.pdf"' in page and "Fig one &amp; more." in page
    assert "http://" not in page and "https://" not in page
