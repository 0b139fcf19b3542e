"""FractalDB-style images for pretraining: a readable Market-1501 layout, deterministic, attractors that fill
their box."""

import numpy as np
import pytest

from henetlib.data import fractal
from henetlib.data.datasets import market_style

TINY = fractal.FractalProfile("fractal-tiny", categories=6, per_category=3, test_categories=2,
                              gallery_per_category=2, height=32, width=16, points=400, min_fill=0.12)


def test_generated_set_is_a_readable_market_layout(tmp_path):
    ds = market_style(fractal.generate(tmp_path, TINY, verbose=False), TINY.name)
    assert ds.num_train_pids == 6 and len(ds.train) == 18
    assert len(ds.query) == 2 and len(ds.gallery) == 4
    assert {s.camid for s in ds.query} == {0} and {s.camid for s in ds.gallery} == {1}  # cross-camera matches


def test_generation_is_deterministic_and_skips_a_complete_set(tmp_path):
    a = fractal.generate(tmp_path / "a", TINY, verbose=False)
    b = fractal.generate(tmp_path / "b", TINY, verbose=False)
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert files == sorted(p.relative_to(b) for p in b.rglob("*.png"))
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    stamp = (a / "fractaldb.json").stat().st_mtime_ns
    fractal.generate(tmp_path / "a", TINY, verbose=False)  # complete: not written again
    assert (a / "fractaldb.json").stat().st_mtime_ns == stamp


def test_categories_pass_the_filling_rate_filter():
    rng = np.random.default_rng(0)
    maps, cum = fractal._categories(TINY, 5, rng)
    _, fill = fractal._raster(fractal._chaos(maps, cum, TINY.points, np.random.default_rng(1)), 32, 16)
    assert len(maps) == 5 and np.all(cum[:, -1] == pytest.approx(1.0))
    assert np.median(fill) >= TINY.min_fill  # kept attractors fill their box (a re-run draws new points)


def test_filter_rejects_a_degenerate_attractor():
    """A single map that collapses every point onto a line fills almost nothing of its box."""
    maps = np.zeros((1, fractal.MAX_MAPS, 6))
    maps[0, 0] = [0.5, 0.0, 0.5, 0.0, 0.1, 0.1]  # y = x: a line
    maps[0, 1] = [0.5, 0.0, 0.5, 0.0, -0.1, -0.1]
    cum = np.array([[0.5, 1.0] + [1.0] * (fractal.MAX_MAPS - 2)])
    _, fill = fractal._raster(fractal._chaos(maps, cum, 400, np.random.default_rng(0)), 32, 16)
    assert fill[0] < TINY.min_fill


def test_unknown_set_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown FractalDB-style set"):
        fractal.generate(tmp_path, "fractaldb-9")
