"""make reproduce's driver: the training shards, the regimes' own folders, which notebooks run again, the
README's headline and the index page's verdict counts (nothing trained, no notebook executed)."""

import json
import logging
import os
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import papermill as pm
import pytest

from henetlib.study import reproduce
from henetlib.study.reproduce import run_notebooks
from henetlib.system.files import REPO_ROOT


class _Proc:
    def __init__(self, cmd, code=0, **kw):
        self.cmd, self.code, self.env = cmd, code, kw.get("env")

    def wait(self):
        return self.code


def test_train_shards_commands(monkeypatch):
    made = []

    def popen(cmd, **kw):
        made.append(_Proc(cmd, **kw))
        return made[-1]

    monkeypatch.setattr("subprocess.Popen", popen)
    reproduce._train_shards({"profile": "smoke", "device": "cpu", "seeds": [0, 1], "regime": "finetune"}, 2)
    reproduce._train_shards({"profile": "smoke", "device": "cpu", "regime": "scratch"}, 2)
    assert made[-1].cmd[-3:] == ["--from-scratch", "--shard", "2/2"]
    made[2:] = []
    assert [p.cmd[-1] for p in made] == ["1/2", "2/2"]
    assert made[0].cmd[3:] == ["study", "--profile", "smoke", "--device", "cpu", "--seeds", "0,1", "--finetune",
                               "--shard", "1/2"]
    assert all(p.env["OMP_NUM_THREADS"] == str(max(1, (os.cpu_count() or 2) // 2)) for p in made)


def test_train_shards_failure_names_the_command(monkeypatch):
    monkeypatch.setattr("subprocess.Popen", lambda cmd, **kw: _Proc(cmd, code=1 if cmd[-1] == "2/2" else 0))
    with pytest.raises(RuntimeError, match=r"exit codes \[0, 1\].*--shard 1/2"):
        reproduce._train_shards({"profile": "smoke", "device": "cpu"}, 2)


def test_figures_in_restores_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HENET_FIGURES_DIR", str(tmp_path / "a"))
    with reproduce._figures_in(tmp_path / "a" / "finetune"):
        assert os.environ["HENET_FIGURES_DIR"] == str(tmp_path / "a" / "finetune")
    assert os.environ["HENET_FIGURES_DIR"] == str(tmp_path / "a")
    monkeypatch.delenv("HENET_FIGURES_DIR")
    with reproduce._figures_in(tmp_path / "b"):
        pass
    assert "HENET_FIGURES_DIR" not in os.environ


def test_reproduce_refuses_finetune_on_a_profile_without_it(capsys):
    from henetlib.cli import main

    with pytest.raises(ValueError, match="no pretrained regime"):
        main(["reproduce", "--profile", "test", "--finetune", "--notebooks", "08"])
    with pytest.raises(SystemExit):
        main(["reproduce", "--profile", "smoke", "--finetune", "--from-scratch", "--notebooks", "08"])
    assert "not allowed with" in capsys.readouterr().err


def test_regime_folders():
    from henetlib.study.grids import regime_name

    assert regime_name("smoke", True) == "default" and regime_name("smoke", False) == "from-scratch"
    assert regime_name("gpu", False) == "default" and regime_name("gpu", True) == "fine-tuned"


# ---------------------------------------------------------------------------------------------------------
# A notebook whose inputs did not change is not executed again


class _InlinePool:
    """ProcessPoolExecutor's part that _run uses, run in this process (so _execute can be replaced)."""

    def __init__(self, *args, **kwargs):
        pass

    def submit(self, fn, *args):
        from concurrent.futures import Future

        f = Future()
        f.set_result(fn(*args))
        return f

    def shutdown(self, **kwargs):
        pass


@pytest.fixture
def fake_render(isolated_dirs, monkeypatch):
    """Two notebooks, no training, and an _execute that writes what papermill would and counts its calls."""
    nbs = isolated_dirs / "notebooks"
    nbs.mkdir()
    for stem in ("00_a", "01_b"):
        (nbs / f"{stem}.ipynb").write_text(f'{{"cells": [], "name": "{stem}"}}')
    calls = []
    fail: set[str] = set()

    def execute(nb, out, params):
        from henetlib.system.files import figures_dir

        stem = Path(nb).stem
        calls.append(stem)
        Path(out).write_text("{}")
        if stem in fail:
            return stem, 0.1, "cell 2: ValueError: no", []
        Path(out).with_suffix(".html").write_text("<html></html>")
        figures_dir().mkdir(parents=True, exist_ok=True)
        (figures_dir() / f"fig_{stem}.png").write_bytes(b"png")
        return stem, 0.1, None, [f"fig_{stem}.png"]

    monkeypatch.setattr(reproduce, "_execute", execute)
    monkeypatch.setattr(reproduce, "ProcessPoolExecutor", _InlinePool)
    monkeypatch.setattr(reproduce, "prefill", lambda stems, params, jobs: {})
    reports = isolated_dirs / "reports"

    def render(extra=None, force=False):
        del calls[:]
        ok = reproduce.run_notebooks(sorted(nbs.glob("*.ipynb")), profile="test", device="cpu",
                                     extra={"seeds": [0], **(extra or {})}, reports_dir=reports, force=force)
        return ok, sorted(calls)

    render.notebooks, render.reports, render.fail = nbs, reports, fail
    return render


def test_unchanged_notebooks_are_not_run_again(fake_render, caplog):
    assert fake_render() == (True, ["00_a", "01_b"])
    with caplog.at_level(logging.INFO, logger="henetlib.study.reproduce"):
        assert fake_render() == (True, [])  # nothing changed: nothing executed
    assert "[00_a] unchanged, not re-run" in caplog.text and "[01_b] unchanged, not re-run" in caplog.text
    rec = json.loads((fake_render.reports / "01_b.inputs.json").read_text())
    assert rec["outputs"] == ["fig_01_b.png"] and rec["inputs"]["parameters"]["seeds"] == [0]
    page = (fake_render.reports / "index.html").read_text()
    assert page.count("unchanged, not re-run") == 2


def test_a_changed_input_runs_the_notebook_again(fake_render, isolated_dirs):
    fake_render()
    assert fake_render(extra={"seeds": [1]}) == (True, ["00_a", "01_b"])  # a parameter changed
    assert fake_render(extra={"seeds": [1]}) == (True, [])
    (fake_render.notebooks / "01_b.ipynb").write_text('{"cells": [1]}')  # the notebook changed
    assert fake_render(extra={"seeds": [1]}) == (True, ["01_b"])
    (isolated_dirs / "figures" / "fig_00_a.png").unlink()  # an output is gone
    assert fake_render(extra={"seeds": [1]}) == (True, ["00_a"])
    (fake_render.reports / "01_b.html").unlink()  # the HTML export is gone
    assert fake_render(extra={"seeds": [1]}) == (True, ["01_b"])
    assert fake_render(extra={"seeds": [1]}, force=True) == (True, ["00_a", "01_b"])  # --force


def test_a_code_change_runs_every_notebook_again(fake_render, monkeypatch):
    fake_render()
    monkeypatch.setattr(reproduce, "code_hash", lambda: "another library")
    assert fake_render() == (True, ["00_a", "01_b"])


def test_a_failed_notebook_is_run_again(fake_render):
    fake_render()
    (fake_render.notebooks / "01_b.ipynb").write_text('{"cells": [2]}')
    fake_render.fail.add("01_b")
    assert fake_render() == (False, ["01_b"])
    assert not (fake_render.reports / "01_b.inputs.json").exists()  # no record of a failed run
    fake_render.fail.clear()
    assert fake_render() == (True, ["01_b"])
    assert fake_render() == (True, [])


def test_results_read_follow_the_result_files(isolated_dirs):
    from henetlib.system.files import results_dir

    run = SimpleNamespace(folder=results_dir() / "k1")
    run.folder.mkdir(parents=True)
    (run.folder / "result.json").write_text('{"metrics": 1}')
    grids = {"table2": [run]}
    before = reproduce.results_read("01_structure_analysis", grids)
    assert reproduce.results_read("00_rpe_explained", grids) == {}  # reads no run
    assert reproduce.results_read("01_structure_analysis", grids) == before
    (run.folder / "ranked.npz").write_bytes(b"a derived cache")  # computed from the model: not an input
    assert reproduce.results_read("01_structure_analysis", grids) == before
    (run.folder / "result.json").write_text('{"metrics": 22}')  # retrained
    assert reproduce.results_read("01_structure_analysis", grids) != before
    # 08 also reads every cached run (the other regime's) and notebook 07's efficiency measurements
    claims = reproduce.results_read("08_claims", grids)
    (results_dir() / "efficiency").mkdir()
    (results_dir() / "efficiency" / "m.json").write_text("{}")
    assert reproduce.results_read("08_claims", grids) != claims
    assert reproduce.results_read("07_efficiency_score", {"table1": [run]})["runs"]


# ---------------------------------------------------------------------------------------------------------
# The README's headline and the index page, from figures/claims_summary.json


def test_only_the_default_study_rewrites_the_readme(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(reproduce, "_run", lambda nbs, params, reports, jobs, t0, force, readme: seen.append(readme))
    reproduce.run_notebooks([], profile="test", extra={"regime": "scratch"}, reports_dir=tmp_path)
    reproduce.run_notebooks([], profile="smoke", extra={"regime": "scratch"}, reports_dir=tmp_path)  # from scratch
    reproduce.run_notebooks([], profile="smoke", data_root=tmp_path, extra={"regime": "finetune"}, reports_dir=tmp_path)
    reproduce.run_notebooks([], profile="smoke", extra={"overrides": {"epochs": 2}}, reports_dir=tmp_path)
    reproduce.run_notebooks([], profile="smoke", extra={"regime": "finetune"}, reports_dir=tmp_path)
    reproduce.run_notebooks([], profile="smoke", extra={"regime": "finetune"}, reports_dir=tmp_path, readme=tmp_path / "R")
    assert seen == [None, None, None, None, reproduce.README, tmp_path / "R"]


def test_reports_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HENET_REPORTS_DIR", str(tmp_path / "r"))
    assert reproduce.default_reports_dir() == tmp_path / "r"
    monkeypatch.delenv("HENET_REPORTS_DIR")
    assert reproduce.default_reports_dir() == reproduce.REPORTS_DIR


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
                            progress_bar=False, kernel_name=reproduce._kernel())
    assert message in e.value.evalue and e.value.ename in ("ValueError", "DataError")


def test_notebook_kernels_are_the_study_kernel_writing_the_study_figures(monkeypatch, tmp_path):
    """Each notebook runs on the henet-study kernel (the notebooks' kernelspec), and its kernel inherits the
    folder this study reads: its tables land in figures/, where a JupyterLab kernel's would land in
    figures/interactive/ (tests/output/test_export.py)."""
    from jupyter_client.kernelspec import KernelSpecManager

    from henetlib.output import export
    from henetlib.system import files

    monkeypatch.setattr(files, "REPO_ROOT", tmp_path)  # figures_dir() is tmp_path/figures: no variable set
    monkeypatch.setenv("HENET_FIGURES_DIR", "")
    monkeypatch.delenv("HENET_FIGURES_DIR")
    monkeypatch.setattr(export, "_chosen", None)
    saved = []

    def kernel(nb, out, kernel_name, **kw):  # what the notebook's setup call and a save do in its kernel
        export.choose_figures_dir()
        saved.append((kernel_name, export.save_table(pd.DataFrame({"a": [1.0]}), "t", "c")))
        Path(out).write_bytes(Path(nb).read_bytes())

    monkeypatch.setattr(pm, "execute_notebook", kernel)
    nb = REPO_ROOT / "notebooks" / "01_structure_analysis.ipynb"
    _, _, err, written = reproduce._execute(str(nb), str(tmp_path / "01.ipynb"), {})
    assert err is None and saved == [("henet-study", tmp_path / "figures" / "t.md")]
    assert set(written) == {"t.md", "t.tex"}
    assert KernelSpecManager().get_kernel_spec(reproduce.KERNEL).display_name == reproduce.KERNEL_DISPLAY_NAME
