"""Class activation maps per branch (Fig. 2 of the study): one map per branch in [0, 1], and the CAM figure."""

import numpy as np
import pytest
import torch

from henetlib.method.losses import HENetLoss, LossConfig
from henetlib.method.model import HENet
from henetlib.output import style
from henetlib.output.cam import branch_cams


def _tiny_trained():
    torch.manual_seed(0)
    m = HENet(4, (1, 4), True, backbone="resnet18", input_size=(64, 32)).train()
    crit = HENetLoss(4, (1, 4), LossConfig(oim=False))
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    x = torch.randn(8, 3, 64, 32)
    x[:4, :, :32] += 2.0  # identities 0/1 differ in the upper half, 2/3 in the lower half
    x[4:, :, 32:] += 2.0
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    for _ in range(15):
        loss = crit(m(x), y, x).total
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m.eval(), x, y


def test_one_map_per_branch_in_range_and_distinct():
    m, x, y = _tiny_trained()
    maps = branch_cams(m, x[:3], y[:3])
    assert list(maps) == ["G1", "P4", "R16"]
    for v in maps.values():
        assert v.shape == (3, 64, 32)
        assert v.min() >= 0.0 and v.max() <= 1.0
    assert not np.allclose(maps["G1"], maps["P4"], atol=1e-3)
    assert not np.allclose(maps["P4"], maps["R16"], atol=1e-3)


def test_untrained_warns_and_bad_method():
    m = HENet(3, (1, 2), False, backbone="resnet18", input_size=(64, 32))
    with pytest.warns(UserWarning, match="untrained"):
        maps = branch_cams(m, torch.randn(1, 3, 64, 32), [0], trained=False)
    assert set(maps) == {"G1", "P2"}
    with pytest.raises(ValueError, match="CAM method"):
        branch_cams(m, torch.randn(1, 3, 64, 32), [0], method="magic")


def _cam_data(n=5):
    rng = np.random.default_rng(0)
    maps = {k: {b: rng.uniform(0, 1, (n, 16, 8)).astype(np.float32) for b in ("G1", "P4")} for k in ("clean", "occluded")}
    return {"clean": rng.uniform(0, 1, (n, 16, 8, 3)), "occluded": rng.uniform(0, 1, (n, 16, 8, 3)),
            "branches": ["G1", "P4"], "pids": list(range(n)), "maps": maps}


def test_cam_figure_side_by_side_with_colorbar_and_parts():
    import matplotlib.pyplot as plt

    from henetlib.output.cam import cam_figure, cam_note, cam_summary

    parts = cam_figure(_cam_data(5), images_per_part=4)
    assert isinstance(parts, list) and len(parts) == 2
    fig = parts[0]
    w, h = fig.get_size_inches()
    assert w <= style.MAX_WIDTH and h <= style.MAX_HEIGHT
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["clean image", "G1", "P4", "occluded image", "G1", "P4"]  # clean and occluded on one row
    cbar = [ax for ax in fig.axes if ax.get_ylabel() == "class activation (0-1)"]
    assert cbar
    overlays = [im for ax in fig.axes for im in ax.images if im.get_alpha()]
    assert overlays and all(im.get_cmap().name == "inferno" for im in overlays)
    s = cam_summary(_cam_data(2))
    assert set(s["branch"]) == {"G1", "P4"} and s["share above"].between(0, 1).all()
    assert "points" in cam_note(s)
    plt.close("all")
