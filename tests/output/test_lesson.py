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


def test_fig3_erases_the_same_rectangle_with_both_methods():
    img = torch.zeros(3, 64, 32, dtype=torch.uint8)  # black: a `where(out == 0)` fill would grey it all
    fig, shares = lesson.erase_examples([img, img], (10, 40), grey=128, seed=0)
    assert list(shares["method"].unique()) == ["RE", "RPE n=10", "RPE n=40"]
    assert ((shares["share of image"] > 0) & (shares["share of image"] < 0.6)).all()
    for i, rows in shares.groupby("image"):
        share = rows.set_index("method")["share of image"]
        # the polygons lie inside RE's rectangle: never more than it, and more points never less
        assert share["RPE n=10"] <= share["RPE n=40"] <= share["RE"] + 0.02
        rect = lesson.Walkthrough(64, 32, i).rectangle()  # row i's rectangle, outlined in every erased panel
        outlined = [p for ax in fig.axes for p in ax.patches]
        assert any(np.allclose(p.get_xy(), (rect.rect[0] - 0.5, rect.rect[1] - 0.5)) for p in outlined)
    w, h = fig.get_size_inches()
    assert w == style.ONE_COLUMN and h <= style.MAX_HEIGHT
    area = lesson.area_table(64, 32, [10, 40], draws=20, seed=0, n_boot=50)
    note = lesson.fig3_note(shares, area)
    mean = shares.groupby("method")["share of rectangle"].mean()
    assert f"{100 * mean['RPE n=40']:.0f}% of the rectangle at n = 40" in note  # from the lesson's own numbers
    assert f"{100 * area['erased share of rectangle'].iloc[1]:.0f}% at n = 40" in note


def test_walkthrough_replays_each_step_from_the_seed():
    walk = lesson.Walkthrough(96, 48, 3)
    first = walk.points(20)
    walk.points(40)  # another n in between changes nothing: no generator carries over
    np.testing.assert_array_equal(walk.points(20), first)
    draw = rpe.sample_polygon(96, 48, n=20, generator=torch.Generator().manual_seed(3))
    np.testing.assert_array_equal(first, draw.points)
    assert "the same 20 points" in walk.library_check(20)
    img = torch.zeros(3, 96, 48, dtype=torch.uint8)
    a, mask = walk.fill(img, 20)
    assert torch.equal(a, walk.fill(img, 20)[0]) and mask.any()
    with pytest.raises(ValueError, match="rerun the setup cell"):
        walk.fill(torch.zeros(3, 64, 32, dtype=torch.uint8), 20)


def test_listing_steps_and_print_size():
    full = lesson.listing()
    assert full.splitlines()[0].endswith("Algorithm 1: Random Polygon Erasing Procedure")
    assert "16             while cnt ≤ p do" in full and full.splitlines()[-1] == "27 end"
    assert lesson.listing(21) == "21 mask ← MinPolygon([(p_i,x, p_i,y)]);"
    assert lesson.listing(16, 17).splitlines() == ["16 while cnt ≤ p do", "17     p_cnt,x ← Rand(w_min, w_max);"]
    assert len(lesson.listing(*lesson.STEP_LINES[1]).splitlines()) == 11
    assert "def step_fill" in lesson.step_code(4) and "def polygon_mask" in lesson.step_code(4)
    img = torch.randint(0, 255, (3, 96, 48), dtype=torch.uint8)
    walk = lesson.Walkthrough(96, 48, 0)
    view = lesson.step_view(img, walk, 2, 20)
    assert "Algorithm 1, lines 16-20" in view and "def step_points" in view and "data:image/png;base64" in view
    fig = lesson.draw_steps(img, walk.rectangle(), walk.points(20), walk.fill(img, 20)[0])
    # one column wide: LaTeX's `figure` prints it at its own size, not enlarged to \linewidth
    assert fig.get_size_inches()[0] == style.ONE_COLUMN
    assert [ax.get_title() for ax in fig.axes] == ["1. rectangle\nlines 5-15", "2. points\nlines 16-20",
                                                   "3. hull\nline 21", "4. fill\nline 22"]


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
