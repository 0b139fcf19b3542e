"""Where a run happens: the device asked for (CUDA refused where there is none), seeding, the hardware line
of captions and results, and the git commit."""

import random

import numpy as np
import pytest
import torch

from henetlib.system import runtime


def test_pick_device():
    assert runtime.pick_device("cpu") == torch.device("cpu")
    assert runtime.pick_device(torch.device("cpu")) == torch.device("cpu")
    auto = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert runtime.pick_device(None) == runtime.pick_device("auto") == auto
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'cuda:0' was asked for but CUDA is not available here"):
            runtime.pick_device("cuda:0")


def test_seed_everything_seeds_every_generator():
    draws = []
    for _ in range(2):
        runtime.seed_everything(5)
        draws.append((random.random(), np.random.rand(), torch.rand(1).item()))
    assert draws[0] == draws[1]
    runtime.seed_everything(6)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) != draws[0]


def test_hardware_string_names_the_cpu_and_torch():
    s = runtime.hardware_string("cpu")
    assert s.startswith(runtime.cpu_name()) and f"torch {torch.__version__} (CPU)" in s and "logical cores" in s
    assert runtime.cpu_name()


def test_git_commit_can_be_given(monkeypatch):
    monkeypatch.setenv("HENET_GIT_COMMIT", "abc1234")
    assert runtime.git_commit() == "abc1234"
    monkeypatch.delenv("HENET_GIT_COMMIT")
    commit = runtime.git_commit()
    assert commit == "unknown" or (4 <= len(commit) <= 40 and set(commit) <= set("0123456789abcdef"))
