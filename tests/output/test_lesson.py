"""Notebook 00's step-by-step Algorithm 1 draws exactly what rpe.sample_polygon draws, and its figures."""

import numpy as np
import pytest
import torch

from henetlib.method import rpe
from henetlib.output import lesson, style


@pytest.mark.parametrize("seed", range(5))
def test_steps_match_sample_polygon(seed):
    draw = rpe.sample_polygon(96, 48, n=20, generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed)
    rect = lesson.step_rectangle(96, 48, generator=g)
    pts = lesson.step_points(rect, 20, g)
    assert rect.rect == pytest.approx(draw.rect)
    np.testing.assert_allclose(pts, draw.points)
    # the printed variables obey lines 6-8 and 10-11
    assert rect.S_e == pytest.approx(rect.s_e * 96 * 48)
    assert rect.W_e * rect.H_e == pytest.approx(rect.S_e)
    assert rect.H_e / rect.W_e == pytest.approx(rect.r_e)
    assert rect.W_e / 2 <= rect.P_c[0] <= 48 - rect.W_e / 2
    assert len(rect.table()) == 11


def test_grey_fill_changes_only_the_polygon():
    img = torch.zeros(3, 64, 32, dtype=torch.uint8)  # black everywhere: a `where(out == 0)` fill would grey it all
    g = torch.Generator().manual_seed(0)
    rect = lesson.step_rectangle(64, 32, generator=g)
    pts = lesson.step_points(rect, 10, g)
    out, mask = lesson.step_fill(img, pts, 128)
    changed = (out != img).any(dim=0).numpy()
    assert changed.any() and np.array_equal(changed, mask)
    assert int(out[:, torch.from_numpy(mask)].unique().item()) == 128


def test_fig3_grey_only_inside_erased_regions():
    img = torch.zeros(3, 64, 32, dtype=torch.uint8)
    fig, shares = lesson.erase_examples([img, img], (10,), grey=128, seed=0)
    assert list(shares.columns) == ["RE", "RPE n=10"]
    assert ((shares > 0) & (shares < 0.6)).all().all()  # the erased area only, never the whole (black) image
    w, h = fig.get_size_inches()
    assert w <= style.MAX_WIDTH and h <= style.MAX_HEIGHT


def test_area_table_intervals():
    t = lesson.area_table(64, 32, [3, 40], draws=60, seed=0, n_boot=200)
    for name in ("image", "rectangle"):
        y = t[f"erased share of {name}"]
        assert (t[f"{name}_lo"] >= 0).all() and (t[f"{name}_lo"] <= y).all() and (y <= t[f"{name}_hi"]).all()
    assert t["erased share of rectangle"].iloc[1] > t["erased share of rectangle"].iloc[0] + 0.3
    assert "n = 3" in lesson.area_note(t)


def test_animation_plays_without_a_kernel():
    img = torch.randint(0, 255, (3, 32, 16), dtype=torch.uint8)
    html = lesson.to_html(lesson.animate_n(img, range(3, 6)))
    assert "<script" in html and html.count("data:image/png;base64") == 3
    assert "font-awesome" not in html and "fa fa-" not in html and "play_animation(); }, 300)" in html
    html_p = lesson.to_html(lesson.animate_p([img, img], (0.0, 1.0)))
    assert html_p.count("data:image/png;base64") == 2
