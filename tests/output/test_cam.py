"""Class activation maps per branch (Fig. 2 of the study): each branch's map at its own layer4's grid, flagged
when it cannot be read, and the CAM figure, summary and note."""

import numpy as np
import pytest
import torch

from henetlib.method.losses import HENetLoss, LossConfig
from henetlib.method.model import HENet
from henetlib.output import style
from henetlib.output.cam import (
    BranchScores,
    branch_cams,
    cache_name,
    cam_caption,
    cam_figure,
    cam_note,
    cam_summary,
    map_status,
    normalise,
)


def _tiny_trained():
    torch.manual_seed(0)
    m = HENet(4, (1, 4), True, backbone="resnet18-quarter", input_size=(64, 32)).train()
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


def test_each_branch_at_its_own_layer4_grid():
    m, x, y = _tiny_trained()
    layers = {b: BranchScores(m, b).target_layer() for b in m.branch_names()}
    assert len({id(v) for v in layers.values()}) == 3  # three own layer4 copies, none shared
    encoder = {id(mod) for mod in m.encoder.modules()}
    assert not any(id(mod) in encoder for v in layers.values() for mod in v.modules())
    maps = branch_cams(m, x[:3], y[:3])
    assert list(maps) == ["G1", "P4", "R16"]
    # stride 32 in G1 and R16, last stride 1 in P4: the maps are the blocks' grids, not resized to 64x32
    assert {b: v.shape for b, v in maps.items()} == {"G1": (3, 2, 1), "P4": (3, 4, 2), "R16": (3, 2, 1)}
    assert not np.allclose(maps["G1"], maps["R16"], atol=1e-4)
    assert branch_cams(m, x[:2], y[:2], method="gradcam++")["P4"].shape == (2, 4, 2)


def test_maps_differ_exactly_where_the_branches_differ():
    torch.manual_seed(0)
    m = HENet(3, (1,), True, backbone="resnet18-quarter", input_size=(64, 32)).eval()
    g1, r16 = m.branches[0], m.recovery_branch
    r16.body.load_state_dict(g1.body.state_dict())  # R16 made the same function as G1
    r16.reduce.load_state_dict(g1.reduce_global.state_dict())
    r16.fc.load_state_dict(g1.fc_global.state_dict())
    x, y = torch.randn(4, 3, 64, 32), [0, 1, 2, 0]
    with pytest.warns(UserWarning, match="untrained"):
        same = branch_cams(m, x, y, trained=False)
    np.testing.assert_allclose(same["G1"], same["R16"], rtol=1e-5, atol=1e-9)
    with torch.no_grad():
        r16.body[-1][-1].conv2.weight.mul_(torch.linspace(0.2, 2.0, r16.body[-1][-1].conv2.weight.shape[0])
                                           .view(-1, 1, 1, 1))
    with pytest.warns(UserWarning, match="untrained"):
        other = branch_cams(m, x, y, trained=False)
    np.testing.assert_allclose(other["G1"], same["G1"])
    assert not np.allclose(normalise(other["G1"])[0], normalise(other["R16"])[0], atol=1e-3)


def test_normalise_keeps_differences_min_max_erased_and_flags_the_rest():
    # two 2x1 maps favouring the same half: per-map min-max made both [0, 1]; they must stay apart
    g1, r16 = np.array([[[0.10], [0.20]]]), np.array([[[0.19], [0.20]]])
    np.testing.assert_allclose(normalise(g1)[0], [[[0.5], [1.0]]])
    np.testing.assert_allclose(normalise(r16)[0], [[[0.95], [1.0]]])
    # a constant map is not a blank that looks like a finding: drawn flat and flagged
    maps, status = normalise(np.stack([np.full((2, 1), 0.3), np.full((2, 1), -0.2), [[-0.1], [0.4]]]))
    assert status.tolist() == ["flat", "none", "ok"]
    np.testing.assert_allclose(maps[0], 1.0)
    np.testing.assert_allclose(maps[1], 0.0)
    np.testing.assert_allclose(maps[2], [[0.0], [1.0]])
    assert map_status(np.array([[[0.0], [0.0]]])).tolist() == ["none"]


def _cam_data(n=5, grid=(4, 2), size=(16, 8)):
    rng = np.random.default_rng(0)
    maps = {k: {b: rng.normal(0.1, 0.1, (n, *grid)).astype(np.float32) for b in ("G1", "P4")}
            for k in ("clean", "occluded")}
    maps["occluded"]["G1"][0] = -1.0  # no positive cell
    maps["occluded"]["G1"][1] = 0.5  # flat
    return {"clean": rng.uniform(0, 1, (n, *size, 3)), "occluded": rng.uniform(0, 1, (n, *size, 3)),
            "branches": ["G1", "P4"], "pids": list(range(n)), "maps": maps}


def test_cam_figure_side_by_side_with_colorbar_grids_flags_and_parts():
    import matplotlib.pyplot as plt

    parts = cam_figure(_cam_data(5), images_per_part=4)
    assert isinstance(parts, list) and len(parts) == 2
    fig = parts[0]
    w, h = fig.get_size_inches()
    assert w <= style.MAX_WIDTH and h <= style.MAX_HEIGHT
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["clean\nimage", "G1\n4x2 cells", "P4\n4x2 cells", "occluded\nimage", "G1\n4x2 cells",
                      "P4\n4x2 cells"]  # clean and occluded on one row, each map's grid said
    assert [ax for ax in fig.axes if ax.get_ylabel() == "share of the map's largest cell"]
    overlays = [im for ax in fig.axes for im in ax.images if im.get_alpha()]
    assert overlays and all(im.get_cmap().name == "inferno" and im.get_interpolation() == "nearest"
                            for im in overlays)
    marks = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert marks.count("no cell > 0") == 1 and marks.count("flat") == 1
    assert "4x2" in cam_caption(_cam_data(2)) and "layer4" in cam_caption(_cam_data(2))
    plt.close("all")


def test_summary_and_note_say_what_the_grid_allows():
    s = cam_summary(_cam_data(3))
    occ_g1 = s[(s.image == "occluded") & (s.branch == "G1")].iloc[0]
    assert (occ_g1["no cell > 0"], occ_g1["flat"], occ_g1["grid"], occ_g1["cell (px)"]) == (1, 1, "4x2", "4x4")
    assert s["vertical centre"].between(0, 1).all() and s.attrs["comparable"]
    note = cam_note(s)
    assert "Vertical centre" in note and "1 blank, 1 flat" in note and "not a measured property" in note
    coarse = cam_summary(_cam_data(3, grid=(2, 1)))  # G1 and R16 at 64x32: two cells
    assert not coarse.attrs["comparable"]
    note = cam_note(coarse)
    assert "cannot show whether the branches attend to different regions" in note
    assert "Vertical centre" not in note and "changes most" not in note


def test_maps_cached_by_the_former_code_are_refused():
    data = _cam_data(2, grid=(16, 8))  # resized to the image: the former min-max maps
    with pytest.raises(ValueError, match="Delete cams-"):
        cam_summary(data)
    assert cache_name("gradcam", 4) != "cams-gradcam-4.npz"  # the former file name is never read as this format


def test_untrained_warns_and_bad_method():
    m = HENet(3, (1, 2), False, backbone="resnet18", input_size=(64, 32))
    with pytest.warns(UserWarning, match="untrained"):
        maps = branch_cams(m, torch.randn(1, 3, 64, 32), [0], trained=False)
    assert set(maps) == {"G1", "P2"}
    with pytest.raises(ValueError, match="CAM method"):
        branch_cams(m, torch.randn(1, 3, 64, 32), [0], method="magic")
