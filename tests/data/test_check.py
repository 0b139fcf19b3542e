"""Bad data fails before training (docs/RELIABILITY.md): every image of a real data set decoded once, every name
parsed, one error that lists the bad files, or a data set without them (``--skip-bad-images``), and a data set
whose queries cannot be scored refused from the names alone."""

import shutil

import cv2
import pytest

from henetlib.data import check
from henetlib.data.datasets import ReIDDataset, build_dataset, market_style
from henetlib.data.images import DataError, read_image
from henetlib.engine import cache
from henetlib.engine.config import make_config
from tests.data.layouts import MARKET_NAMES, make_market, write_image


@pytest.fixture
def market(isolated_dirs):
    """A Market-1501-layout copy of SynthReID tiny with one corrupt, one empty and one misnamed file, and two
    images that must load: one grayscale, one RGBA."""
    src = build_dataset("synthreid", synth_size="tiny", verbose=False).root
    root = isolated_dirs / "market"
    for split in ("bounding_box_train", "query", "bounding_box_test"):
        shutil.copytree(src / split, root / split)
    test = root / "bounding_box_test"
    files = sorted(test.glob("*.jpg"))
    files[0].write_bytes(files[0].read_bytes()[:100])  # truncated
    files[1].write_bytes(b"")  # empty
    (test / "holiday_photo.jpg").write_bytes(files[2].read_bytes())  # not the layout's name
    img = cv2.imread(str(files[3]))
    cv2.imwrite(str(files[3].with_suffix(".png")), cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(files[4].with_suffix(".png")), cv2.cvtColor(img, cv2.COLOR_BGR2BGRA))
    files[3].unlink(), files[4].unlink()
    return root, [files[0], files[1], test / "holiday_photo.jpg"]


def test_bad_images_fail_before_training(market, monkeypatch):
    root, bad = market
    monkeypatch.setattr(cache, "train", lambda *a, **k: pytest.fail("training started on a broken data set"))
    cfg = make_config("test", device="cpu", dataset="market1501", data_root=str(root))
    with pytest.raises(DataError) as e:
        cache.run(cfg, progress=False)
    msg = str(e.value)
    assert "3 file(s)" in msg and "--skip-bad-images" in msg
    assert all(str(b) in msg for b in bad)
    assert "truncated" in msg or "cannot decode" in msg


def test_skip_bad_images_is_recorded_and_grey_and_rgba_load(market):
    root, bad = market
    ds = build_dataset("market1501", root, skip_bad_images=True, verbose=False)
    assert sorted(ds.skipped) == sorted(map(str, bad))
    pngs = [s.path for s in ds.gallery if s.path.endswith(".png")]
    assert len(pngs) == 2  # grayscale and RGBA images are converted, not rejected
    assert all(read_image(p).shape[0] == 3 for p in pngs)
    res = cache.run(make_config("test", device="cpu", dataset="market1501", data_root=str(root), skip_bad_images=True),
                 progress=False)
    assert sorted(res.skipped_images) == sorted(map(str, bad))


def test_check_verdict_is_cached(market, monkeypatch):
    root, _ = market
    build_dataset("market1501", root, skip_bad_images=True, verbose=False)

    monkeypatch.setattr(check, "_problem", lambda p: pytest.fail("decoded again"))
    assert len(build_dataset("market1501", root, skip_bad_images=True, verbose=False).skipped) == 3


def test_a_data_set_whose_queries_cannot_be_scored_is_refused_before_decoding(tmp_path, monkeypatch):
    names = {**MARKET_NAMES, "bounding_box_test": ["0001_c1s1_000151_01.jpg", "0003_c2s1_000301_02.jpg",
                                                   "0009_c3s1_000001_00.jpg"]}  # matches only from the same camera
    root = make_market(tmp_path / "samecam", names)
    decoded = []
    monkeypatch.setattr(check, "scan", lambda ds, **kw: decoded.append(ds) or {})
    with pytest.raises(DataError, match="none of the 2 queries .* another camera"):
        build_dataset("market1501", root, verbose=False)
    assert not decoded  # refused from the names alone, before any image is decoded
    ds = market_style(make_market(tmp_path / "ok", MARKET_NAMES))
    assert check.cross_camera_queries(ds) == 2


def test_tiny_images_are_reported_and_more_than_ten_counted(tmp_path):
    names = {**MARKET_NAMES, "bounding_box_train": MARKET_NAMES["bounding_box_train"] + [
        f"0009_c1s1_{i:06d}_00.jpg" for i in range(12)]}
    root = make_market(tmp_path / "m", names)
    write_image(root / "bounding_box_train" / "0009_c1s1_000000_00.jpg", size=(1, 1))
    for i in range(1, 12):
        (root / "bounding_box_train" / f"0009_c1s1_{i:06d}_00.jpg").write_bytes(b"")
    with pytest.raises(DataError) as e:
        build_dataset("market1501", root, verbose=False)
    msg = str(e.value)
    assert "12 file(s)" in msg and "image is only (1, 1) pixels" in msg
    assert msg.count("0009_c1s1_") == check.SHOWN and "... and 2 more" in msg


def test_a_damaged_check_cache_is_checked_again(tmp_path, monkeypatch):
    monkeypatch.setenv("HENET_DATA_DIR", str(tmp_path / "data"))
    ds = market_style(make_market(tmp_path / "m", MARKET_NAMES))
    assert check.scan(ds, progress=False) == {}
    (f,) = (tmp_path / "data" / ".checks").glob("*.json")
    f.write_text("{cut sh")
    (tmp_path / "m" / "query" / MARKET_NAMES["query"][0]).write_bytes(b"")  # same name; size and time change
    bad = check.scan(market_style(tmp_path / "m"), progress=False)
    assert list(bad) == [str(tmp_path / "m" / "query" / MARKET_NAMES["query"][0])]


def test_missing_query_or_gallery_is_refused(tmp_path):
    ds = market_style(make_market(tmp_path / "m", MARKET_NAMES))
    with pytest.raises(DataError, match="0 query and 3 gallery images: both folders are needed"):
        check.check_protocol(ReIDDataset(ds.name, ds.root, ds.train, [], ds.gallery))
