"""Writing a generated data set (SynthReID, FractalDB) so that an interrupted run leaves no half-written set.

The set is written into a hidden folder beside its destination and renamed into place at the end; a run
that dies leaves only the hidden folder, which the next run clears. Torch-free: the generators' worker
processes import it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REID_FOLDERS = ("bounding_box_train", "bounding_box_test", "query")


def staging_folder(root: str | Path, name: str, folders: tuple[str, ...] = REID_FOLDERS) -> Path:
    """A fresh hidden folder in ``root`` for the set ``name`` (this process's own), with ``folders`` made."""
    tmp = Path(root) / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for folder in folders:
        (tmp / folder).mkdir(parents=True)
    return tmp


def swap_in(tmp: Path, dest: Path) -> None:
    """Put the finished ``tmp`` at ``dest``, replacing an older set there (a folder or a link) by a rename."""
    if dest.is_symlink():
        dest.unlink()
    elif dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
