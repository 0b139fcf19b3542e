"""Where a run happens: the device, seeding, a description of the hardware, and the git commit."""

from __future__ import annotations

import os
import platform
import random
import subprocess
from pathlib import Path

import numpy as np
import torch

from henetlib.system.files import REPO_ROOT


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` or ``"auto"`` picks CUDA when present, else CPU; anything else is taken as given."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but CUDA is not available here; use 'cpu' or 'auto'.")
    return dev


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_string(device: str | torch.device | None = None) -> str:
    """One line naming the hardware a number was measured on, for captions and result files."""
    dev = pick_device(device)
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
        return f"{name} (CUDA {torch.version.cuda}), torch {torch.__version__}"
    return f"{cpu_name()}, {os.cpu_count()} logical cores, torch {torch.__version__} (CPU)"


def git_commit() -> str:
    """The short commit of the checkout; ``HENET_GIT_COMMIT`` overrides it where .git is not the real one
    (a copied working tree on a lent GPU machine)."""
    if os.environ.get("HENET_GIT_COMMIT"):
        return os.environ["HENET_GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
