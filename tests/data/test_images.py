"""Reading one image: RGB channel order, grayscale and RGBA converted, and every failure a DataError that names
the file."""

import cv2
import numpy as np
import pytest
import torch

from henetlib.data.images import DataError, read_image
from tests.data.layouts import write_image


def test_corrupt_image_reported_with_path(tmp_path):
    f = tmp_path / "0001_c1s1_000001_00.jpg"
    f.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="0001_c1s1_000001_00.jpg"):
        read_image(f)


def test_reads_rgb_in_channel_order(tmp_path):
    f = tmp_path / "a.png"
    write_image(f, color=(200, 100, 50), size=(6, 4))
    x = read_image(f)
    assert x.dtype == torch.uint8 and x.shape == (3, 6, 4) and x.is_contiguous()
    assert x[:, 0, 0].tolist() == [200, 100, 50]  # R, G, B: OpenCV's BGR is turned around


def test_grayscale_and_rgba_become_three_channels(tmp_path):
    grey = np.full((5, 3), 77, dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    rgba = np.zeros((5, 3, 4), dtype=np.uint8)
    rgba[..., :3] = (30, 20, 10)  # BGR
    rgba[..., 3] = 128
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    g, a = read_image(tmp_path / "g.png"), read_image(tmp_path / "a.png")
    assert g.shape == a.shape == (3, 5, 3)
    assert (g == 77).all() and a[:, 2, 1].tolist() == [10, 20, 30]


def test_missing_and_empty_files_name_the_problem(tmp_path):
    with pytest.raises(DataError, match=r"cannot read image .*nowhere\.jpg"):
        read_image(tmp_path / "nowhere.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"cannot decode image .*empty\.jpg: the file is empty"):
        read_image(tmp_path / "empty.jpg")
    assert issubclass(DataError, ValueError)  # the CLI reports it as one line (exit 2)
