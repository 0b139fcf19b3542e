"""Project folders (each overridable by an environment variable), atomic writes, damaged files moved aside,
a lock for one run at a time, and a stable hash."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]


def _dir(env: str, default: str) -> Path:
    """A project folder, overridable by an environment variable (the tests point them at temp folders)."""
    return Path(os.environ.get(env) or REPO_ROOT / default)


def results_dir() -> Path:
    return _dir("HENET_RESULTS_DIR", "results")


def figures_dir() -> Path:
    return _dir("HENET_FIGURES_DIR", "figures")


def data_dir() -> Path:
    return _dir("HENET_DATA_DIR", "data")


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (setting it, even for an instant,
    would race other threads creating files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: read by setting it, and put it straight back
    os.umask(mask)
    return mask


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; the file gets the mode open() would give it
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    _atomic_write(Path(path), lambda f: f.write(text.encode("utf-8")))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    _atomic_write(Path(path), lambda f: torch.save(obj, f))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    _atomic_write(Path(path), lambda f: f.write(data))


def quarantine(path: str | Path, why: str) -> Path:
    """Move a damaged file to ``<its folder>/broken-<time>/`` with a one-line warning naming it; returns the
    new path. Nothing is deleted, so a damaged result can still be inspected."""
    path = Path(path)
    dest = path.parent / f"broken-{time.strftime('%Y%m%d-%H%M%S')}"
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / path.name
    os.replace(path, target)
    warnings.warn(f"{path} cannot be read ({why}); moved to {target}, the run will be redone.", stacklevel=2)
    return target


class RunLock:
    """An exclusive lock on one run's folder (``fcntl.flock`` on ``.lock``): two processes never train the
    same run at once. The kernel drops the lock when its process dies, so a killed run leaves no stale lock."""

    def __init__(self, folder: str | Path, name: str = ".lock"):
        self.path = Path(folder) / name
        self.fd: int | None = None

    def acquire(self, blocking: bool = True) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def stable_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]
