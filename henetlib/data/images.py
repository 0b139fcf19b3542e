"""Reading one image file, and the error every data problem raises.

The lowest layer of the data code: :mod:`henetlib.data.datasets` (data sets, samplers, loaders) and
:mod:`henetlib.data.check` (checking a real data set before training) both build on it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch


class DataError(ValueError):
    """A data set folder or file that cannot be used; the message names it and says what is expected."""


def read_image(path: str | Path) -> torch.Tensor:
    """uint8 CHW RGB tensor; a corrupt or unreadable file is reported with its path."""
    try:
        data = np.frombuffer(Path(path).read_bytes(), dtype=np.uint8)
    except OSError as e:
        raise DataError(f"cannot read image {path}: {e}") from e
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if len(data) else None
    if img is None:
        raise DataError(f"cannot decode image {path}: the file is empty, truncated or not an image.")
    return torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1)))
