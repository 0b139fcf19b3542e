import warnings

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_quiet():
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="HENet: no pretrained weights")
        yield


@pytest.fixture
def isolated_dirs(tmp_path, monkeypatch):
    """Results, figures and generated data go to a temp folder, never into the repository."""
    for env, sub in (("HENET_RESULTS_DIR", "results"), ("HENET_FIGURES_DIR", "figures"), ("HENET_DATA_DIR", "data"),
                     ("HENET_PUBLISHED_DIR", "published")):
        monkeypatch.setenv(env, str(tmp_path / sub))
    from henetlib import regime, runner, train

    caches = (runner._DATASETS, runner._PUBLISHED, train._EVALUATORS, train._STORES, regime._FIT_STORES)
    for c in caches:
        c.clear()
    yield tmp_path
    for c in caches:
        c.clear()
