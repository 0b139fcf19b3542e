import warnings

import pytest
import torch

from henetlib.system.caches import CACHES


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

    CACHES.clear()
    yield tmp_path
    CACHES.clear()
