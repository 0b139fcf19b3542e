"""Fixtures every test folder shares. The folders mirror henetlib's wings: tests/<wing>/test_<module>.py tests
henetlib/<wing>/<module>.py; top-level modules (stats, paper, cli, the package's lazy API) are tested here."""

import contextlib
import warnings

import pytest
import torch

from henetlib.system.caches import CACHES


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` check CUDA paths: skipped, with the reason, where CUDA is absent (``pytest -m gpu``
    runs only them on the lent GPU)."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (run on the lent GPU: pytest -m gpu tests)")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed_and_quiet():
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="HENet: no pretrained weights")
        yield


DIRS = (("HENET_RESULTS_DIR", "results"), ("HENET_FIGURES_DIR", "figures"), ("HENET_DATA_DIR", "data"),
        ("HENET_PUBLISHED_DIR", "published"))


def _point_dirs(monkeypatch: pytest.MonkeyPatch, root) -> None:
    for env, sub in DIRS:
        monkeypatch.setenv(env, str(root / sub))


@pytest.fixture
def isolated_dirs(tmp_path, monkeypatch):
    """Results, figures and generated data go to a temp folder, never into the repository."""
    _point_dirs(monkeypatch, tmp_path)
    CACHES.clear()
    yield tmp_path
    CACHES.clear()


@pytest.fixture(scope="session")
def isolated_env():
    """``with isolated_env(folder):`` what ``isolated_dirs`` does, for module-scoped fixtures that train once
    and share the result between tests (the folder outlives the block)."""

    @contextlib.contextmanager
    def isolated(root):
        with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="HENet: no pretrained weights")
            _point_dirs(mp, root)
            CACHES.clear()
            try:
                yield root
            finally:
                CACHES.clear()

    return isolated


@pytest.fixture(scope="session")
def table4_study(tmp_path_factory, isolated_env):
    """Table 4 of the test profile (8 tiny runs, among them the all-losses model), trained once per session in
    its own folder: ``with isolated_env(table4_study.root):`` reads (and scores) them without training."""
    from types import SimpleNamespace

    from henetlib.study import tables

    root = tmp_path_factory.mktemp("table4-study")
    with isolated_env(root):
        ctx = tables.StudyContext("test", "cpu")
        df, results = tables.table4(ctx, progress=False)
        caption = ctx.caption(results)
    return SimpleNamespace(root=root, table=df, results=results, caption=caption)
