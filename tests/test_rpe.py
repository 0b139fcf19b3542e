import numpy as np
import pytest
import torch

from henetlib.method.rpe import (
    ErasingConfig,
    RandomPolygonErasing,
    REandRPE,
    erase_batch,
    polygon_mask,
    polygon_masks,
    random_erasing_batch,
    random_polygon_erasing_batch,
    sample_polygon,
)

H, W = 96, 48


def _is_convex(mask: np.ndarray) -> bool:
    """Every row and every column of a convex region is one contiguous run."""
    for lines in (mask, mask.T):
        for line in lines:
            idx = np.flatnonzero(line)
            if len(idx) and idx[-1] - idx[0] + 1 != len(idx):
                return False
    return True


def test_probability_of_application():
    g = torch.Generator().manual_seed(0)
    t = RandomPolygonErasing(p=0.3, generator=g)
    img = torch.zeros(3, H, W)
    hits = sum(bool((t(img) != 0).any()) for _ in range(600))
    assert 0.24 < hits / 600 < 0.36


def test_p0_is_identity_and_input_untouched():
    img = torch.rand(3, H, W)
    before = img.clone()
    assert torch.equal(RandomPolygonErasing(p=0.0)(img), img)
    out = RandomPolygonErasing(p=1.0)(img)
    assert torch.equal(img, before) and out.shape == img.shape and out.dtype == img.dtype


def test_uint8_and_constant_fill():
    img = torch.full((3, H, W), 7, dtype=torch.uint8)
    out = RandomPolygonErasing(p=1.0, value=(1, 2, 3), generator=torch.Generator().manual_seed(3))(img)
    assert out.dtype == torch.uint8
    changed = (out != 7).any(0)
    assert changed.any()
    assert torch.equal(out[:, changed][:, 0], torch.tensor([1, 2, 3], dtype=torch.uint8))


def test_region_inside_rectangle_convex_and_bounded():
    g = torch.Generator().manual_seed(1)
    for _ in range(100):
        draw = sample_polygon(H, W, generator=g)
        x0, y0, x1, y1 = draw.rect
        assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H
        assert (x1 - x0) * (y1 - y0) <= 0.45 * H * W + 1e-6
        m = polygon_mask(draw.points, H, W)
        ys, xs = np.nonzero(m)
        if len(xs):
            assert xs.min() >= np.floor(x0) and xs.max() <= np.ceil(x1)
            assert ys.min() >= np.floor(y0) and ys.max() <= np.ceil(y1)
        assert _is_convex(m)
        assert m.sum() <= 0.45 * H * W


def _mean_area(n, seed=0, draws=300):
    g = torch.Generator().manual_seed(seed)
    t = RandomPolygonErasing(p=1.0, n=n, value=1.0, generator=g)
    img = torch.zeros(1, H, W)
    return np.mean([(t(img) != 0).float().mean().item() for _ in range(draws)])


def test_mean_area_grows_with_n():
    areas = [_mean_area(n) for n in (3, 10, 40)]
    assert areas[0] < areas[1] < areas[2], areas


def test_deterministic_under_seed():
    img = torch.rand(3, H, W)
    a = RandomPolygonErasing(p=1.0, generator=torch.Generator().manual_seed(5))(img)
    b = RandomPolygonErasing(p=1.0, generator=torch.Generator().manual_seed(5))(img)
    assert torch.equal(a, b)
    x = torch.rand(8, 3, H, W)
    assert torch.equal(random_polygon_erasing_batch(x, generator=torch.Generator().manual_seed(2)),
                       random_polygon_erasing_batch(x, generator=torch.Generator().manual_seed(2)))


@pytest.mark.parametrize("kwargs,name", [
    ({"p": -0.1}, "p"), ({"p": 1.5}, "p"), ({"sl": 0.5, "sh": 0.4}, "sl"), ({"sh": 1.5}, "sh"),
    ({"r": 0.0}, "r"), ({"r": 1.2}, "r"), ({"n": 2}, "n"), ({"value": "noise"}, "value"),
])
def test_invalid_arguments(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}"):
        RandomPolygonErasing(**kwargs)
    with pytest.raises(ValueError, match=rf"^{name}"):
        random_polygon_erasing_batch(torch.zeros(1, 3, H, W), **kwargs)


def test_batch_masks_match_opencv_masks():
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(20, 12, 2, generator=g) * torch.tensor([W, H])
    mb = polygon_masks(pts, H, W)
    for i in range(20):
        mc = polygon_mask(pts[i].numpy(), H, W)
        assert np.abs(mc.astype(int) - mb[i].numpy().astype(int)).sum() <= 0.1 * mc.sum() + 2 * (H + W) * 0.1


def test_batch_independent_and_matches_per_image_statistics():
    x = torch.zeros(400, 1, H, W)
    out, mask = random_polygon_erasing_batch(x, p=0.5, value=1.0, generator=torch.Generator().manual_seed(0),
                                             return_mask=True)
    applied = mask.flatten(1).any(1)
    assert 0.42 < applied.float().mean() < 0.58
    # independent draws: no two erased images share a mask
    erased = mask[applied].flatten(1)
    assert len(torch.unique(erased, dim=0)) == len(erased)
    batch_area = mask[applied].float().mean().item()
    per_image = _mean_area(20, seed=1, draws=300)
    assert abs(batch_area - per_image) / per_image < 0.15, (batch_area, per_image)
    for m in mask[applied][:50]:
        assert _is_convex(m.numpy())


def test_random_erasing_batch_is_rectangles():
    _, mask = random_erasing_batch(torch.zeros(50, 3, H, W), p=1.0, return_mask=True,
                                   generator=torch.Generator().manual_seed(0))
    for m in mask:
        ys, xs = torch.nonzero(m, as_tuple=True)
        assert len(ys) > 0
        assert m[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].all()


def test_re_plus_rpe_and_erase_batch():
    img = torch.zeros(3, H, W)
    out = REandRPE(p_re=1.0, p_rpe=1.0, generator=None)(img)
    assert (out != 0).any()
    x = torch.zeros(16, 3, H, W)
    for mode in ("none", "re", "rpe", "re+rpe"):
        y, m = erase_batch(x, ErasingConfig(mode, p=1.0), torch.Generator().manual_seed(0), return_mask=True)
        assert y.shape == x.shape
        assert bool(m.any()) == (mode != "none")
    with pytest.raises(ValueError, match="mode"):
        ErasingConfig("polygon")


def test_random_fill_is_rand_0_255_through_the_normalisation():
    from henetlib.method.rpe import IMAGENET_MEAN, IMAGENET_STD, random_fill

    v = random_fill((3, 200_000), torch.float32, "cpu", "random", torch.Generator().manual_seed(0))
    raw = v * torch.tensor(IMAGENET_STD)[:, None] + torch.tensor(IMAGENET_MEAN)[:, None]
    levels = raw * 255
    assert torch.allclose(levels, levels.round(), atol=1e-3)  # integer levels
    assert levels.min() > -0.01 and levels.max() < 255.01 and abs(levels.mean() - 127.5) < 1.0
    n = random_fill((3, 200_000), torch.float32, "cpu", "normal", torch.Generator().manual_seed(0))
    assert abs(n.mean()) < 0.01 and abs(n.std() - 1) < 0.01


def test_re_and_rpe_differ_only_in_shape():
    """Zhong's RE: uniform aspect ratio, RPE's fill; the torchvision option keeps log-uniform + N(0, 1)."""
    from henetlib.method.rpe import RandomRectangleErasing, random_erasing

    x = torch.zeros(64, 3, 96, 96)
    g = torch.Generator().manual_seed(0)
    _, m = random_erasing_batch(x, p=1.0, sl=0.1, sh=0.1, r=0.3, generator=g, return_mask=True)
    hs, ws = m.any(2).sum(1).float(), m.any(1).sum(1).float()
    ratio = hs / ws
    # uniform in [0.3, 3.33] has mean ~1.82; log-uniform has mean ~1.26
    assert ratio.mean() > 1.5
    out = random_erasing_batch(x, p=1.0, generator=torch.Generator().manual_seed(1))
    assert out.max() > 2.0  # Rand(0, 255) normalised reaches (1 - 0.406) / 0.225 = 2.64
    assert isinstance(random_erasing(0.5), RandomRectangleErasing)
    assert type(random_erasing(0.5, impl="torchvision")).__name__ == "RandomErasing"
    with pytest.raises(ValueError, match="impl"):
        random_erasing(0.5, impl="other")
