"""The notebooks as git stores them (henetlib/nbstrip.py): a notebook opened and run in JupyterLab (outputs,
execution counts, the full language_info its autosave writes) comes back to the committed file byte for byte,
through the git clean filter (.gitattributes, configured by make env) and through make lab's pre-save hook,
so `git status` stays clean."""

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from henetlib import nbstrip

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
IN_GIT = shutil.which("git") is not None and (ROOT / ".git").exists()
git_only = pytest.mark.skipif(not IN_GIT, reason="not a git clone (an unpacked archive has no filters)")

# what JupyterLab 4's autosave writes into a notebook's metadata about two minutes after it opens
LANGUAGE_INFO = {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                 "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                 "pygments_lexer": "ipython3", "version": "3.11.9"}


def _git(*args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, check=True).stdout


def _committed(nb: Path) -> bytes:
    """The notebook as committed: the index's copy (what `git status` compares with) in a clone, else the
    file."""
    return _git("cat-file", "blob", f":{nb.relative_to(ROOT).as_posix()}") if IN_GIT else nb.read_bytes()


def _run_in_jupyterlab(committed: bytes) -> dict:
    """The committed notebook after a run in JupyterLab: every code cell executed, with a count, a stream, a
    result and a figure, and its timing; the full language_info."""
    nb = json.loads(committed)
    ran = copy.deepcopy(nb)
    ran["metadata"]["language_info"] = LANGUAGE_INFO
    code = [c for c in ran["cells"] if c["cell_type"] == "code"]
    for n, cell in enumerate(code, 1):
        cell["execution_count"] = n
        cell["outputs"] = [
            {"name": "stdout", "output_type": "stream", "text": ["Tables and figures go to figures/interactive/\n"]},
            {"data": {"text/plain": ["PosixPath('/work/figures/x.md')"]}, "execution_count": n, "metadata": {},
             "output_type": "execute_result"},
            {"data": {"image/png": "iVBORw0KGgo=\n", "text/plain": ["<Figure size 700x200 with 2 Axes>"]},
             "metadata": {}, "output_type": "display_data"},
        ]
        cell["metadata"]["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00.000Z"}
    assert code and ran != nb
    return ran


def _as_jupyterlab_writes(nb: dict) -> bytes:
    return (json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _clean_command() -> str:
    try:
        return _git("config", "--get", "filter.nbstripout.clean").decode().strip()
    except subprocess.CalledProcessError:
        pytest.fail("the notebooks' git filter is not configured in this clone: run `make env`")


@git_only
def test_every_notebook_goes_through_the_filter():
    for nb in NOTEBOOKS:
        rel = nb.relative_to(ROOT).as_posix()
        assert _git("check-attr", "filter", "--", rel).decode().strip() == f"{rel}: filter: nbstripout", rel
    assert _clean_command().endswith("-m henetlib.nbstrip")


@git_only
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_run_in_jupyterlab_cleans_to_the_committed_file(nb):
    """The clean filter, run as git runs it (from the clone's top folder), turns the run notebook back into
    the committed one."""
    rel = nb.relative_to(ROOT).as_posix()
    committed = _committed(nb)
    ran = _as_jupyterlab_writes(_run_in_jupyterlab(committed))
    cleaned = subprocess.run(_clean_command(), shell=True, cwd=ROOT, input=ran, capture_output=True)
    assert cleaned.returncode == 0, cleaned.stderr.decode()
    assert cleaned.stdout.decode() == committed.decode(), (
        f"{rel}: its committed (staged) copy is not in the filter's stripped form (with the filter configured, "
        f"`git add {rel}` stores that form)")


def test_make_lab_saves_a_study_notebook_stripped_and_a_users_own_as_it_is(tmp_path):
    """Jupyter's own file manager with make lab's pre-save hook writes the committed bytes: the file's size
    does not change, so `git status` does not list it (git takes a new size for a change without filtering)."""
    from jupyter_server.services.contents.filemanager import FileContentsManager

    manager = FileContentsManager(root_dir=str(tmp_path), pre_save_hook="henetlib.nbstrip.pre_save_hook")
    nb = NOTEBOOKS[1]
    committed = _committed(nb)
    for name in (nb.name, "my_scratch.ipynb"):
        manager.save({"type": "notebook", "format": "json", "content": _run_in_jupyterlab(committed)}, name)
    assert (tmp_path / nb.name).read_bytes() == committed
    assert json.loads((tmp_path / "my_scratch.ipynb").read_bytes())["cells"] == _run_in_jupyterlab(committed)["cells"]


def test_strip_keeps_the_cell_ids_and_the_kernel():
    import nbformat

    nb = nbformat.from_dict(_run_in_jupyterlab(NOTEBOOKS[1].read_bytes()))
    ids = [c["id"] for c in nb.cells]
    out = nbstrip.strip(nb)
    assert [c["id"] for c in out.cells] == ids and "kernelspec" in out.metadata
    assert "language_info" not in out.metadata
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in out.cells if c.cell_type == "code")
