import numpy as np
import pytest
import torch
from PIL import Image

from henetlib.data import check
from henetlib.data.datasets import (
    DeviceStore,
    RandomIdentitySampler,
    Sample,
    build_dataset,
    build_test_loader,
    cuhk03_np,
    market_style,
)
from henetlib.data.images import DataError, read_image
from henetlib.data.synth import PROFILES, SynthProfile, generate

TINY = SynthProfile("tiny", train_ids=12, test_ids=10, train_images_per_id=(4, 6), gallery_images_per_id=(3, 4),
                    unlabeled_train=6, distractors=5, seed=3)


def _img(path, color=(10, 20, 30), size=(16, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size[1], size[0]), color).save(path)


def make_market(root, names):
    for split, files in names.items():
        for f in files:
            _img(root / split / f)
    return root


MARKET_NAMES = {
    "bounding_box_train": ["0002_c1s1_000451_03.jpg", "0002_c2s1_000551_01.jpg", "0007_c3s3_015618_01.jpg",
                           "0000_c1s1_000001_00.jpg"],
    "query": ["0001_c1s1_001051_00.jpg", "0003_c2s1_000001_00.jpg"],
    "bounding_box_test": ["0001_c2s1_000151_01.jpg", "0000_c3s1_000001_00.jpg", "-1_c1s1_000401_03.jpg",
                          "0003_c5s1_000301_02.jpg"],
}


def test_market_parser(tmp_path):
    ds = market_style(make_market(tmp_path / "m", MARKET_NAMES))
    assert sorted((s.pid, s.camid) for s in ds.train) == [(-1, 0), (0, 0), (0, 1), (1, 2)]  # relabelled
    assert ds.num_train_pids == 2
    assert {(s.pid, s.camid) for s in ds.gallery} == {(1, 1), (0, 2), (3, 4)}  # junk dropped, 0000 kept
    assert "train" in ds.summary() and "gallery" in ds.summary()


def test_duke_and_cuhk03_names(tmp_path):
    duke = {"bounding_box_train": ["0001_c2_f0046182.jpg", "0001_c5_f0051341.jpg"],
            "query": ["0005_c2_f0046985.jpg"], "bounding_box_test": ["0005_c5_f0051781.jpg"]}
    ds = build_dataset("dukemtmc", make_market(tmp_path / "duke", duke), verbose=False)
    assert [s.camid for s in ds.train] == [1, 4]
    cuhk = {"bounding_box_train": ["0001_c1_1.png", "0001_c2_6.png"], "query": ["0700_c1_1.png"],
            "bounding_box_test": ["0700_c2_7.png"]}
    make_market(tmp_path / "cuhk" / "detected", cuhk)
    ds = cuhk03_np(tmp_path / "cuhk", "detected")
    assert ds.name == "cuhk03-np-detected" and ds.query[0].pid == 700


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        market_style(tmp_path / "nowhere")
    (tmp_path / "half" / "query").mkdir(parents=True)
    with pytest.raises(DataError, match="missing bounding_box_train, bounding_box_test"):
        market_style(tmp_path / "half")
    root = make_market(tmp_path / "bad", MARKET_NAMES)
    _img(root / "query" / "person.jpg")
    assert any(p.endswith("person.jpg") for p in market_style(root).unparsed)  # collected, not dropped
    with pytest.raises(DataError, match="person.jpg"):
        build_dataset("market1501", root, verbose=False)  # and reported by the check, before training
    empty = make_market(tmp_path / "empty", {k: v for k, v in MARKET_NAMES.items() if k != "query"})
    (empty / "query").mkdir()
    with pytest.raises(DataError, match="no images"):
        market_style(empty)
    with pytest.raises(DataError, match="needs a root"):
        build_dataset("market1501", None)


def test_corrupt_image_reported_with_path(tmp_path):
    f = tmp_path / "0001_c1s1_000001_00.jpg"
    f.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="0001_c1s1_000001_00.jpg"):
        read_image(f)


def _samples(n_ids=10, per=(3, 7), unlabeled=5):
    rng = np.random.default_rng(0)
    out = []
    for pid in range(n_ids):
        out += [Sample(f"{pid}_{i}", pid, i % 3) for i in range(int(rng.integers(*per)))]
    return out + [Sample(f"u{i}", -1, 0) for i in range(unlabeled)]


def test_sampler_invariants():
    samples = _samples()
    s = RandomIdentitySampler(samples, p=4, k=4, num_unlabeled=2, seed=1)
    batches = list(s)
    assert len(batches) == len(s) == 2
    for b in batches:
        pids = [samples[i].pid for i in b]
        labelled = [p for p in pids if p >= 0]
        assert len(b) == 18 and pids.count(-1) == 2
        assert len(set(labelled)) == 4 and all(labelled.count(p) == 4 for p in set(labelled))
    # every identity visited per epoch (10 ids, P=4: 8 per epoch, the 2 left over rotate)
    seen = set()
    for e in range(4):
        s.set_epoch(e)
        seen |= {samples[i].pid for b in s for i in b}
    assert seen >= set(range(10))
    s.set_epoch(0)
    assert list(s) == batches  # deterministic
    with pytest.raises(ValueError, match="P >= 2"):
        RandomIdentitySampler(samples, p=4, k=1)


def test_sampler_visits_every_identity_each_epoch():
    samples = _samples(n_ids=12, unlabeled=0)
    s = RandomIdentitySampler(samples, p=4, k=2)
    assert {samples[i].pid for b in s for i in b} == set(range(12))


def test_generator_deterministic_and_layout(tmp_path):
    a = generate(tmp_path / "a", TINY, workers=1, verbose=False)
    b = generate(tmp_path / "b", TINY, workers=2, verbose=False)
    fa = sorted(p.relative_to(a) for p in a.rglob("*.jpg"))
    assert fa == sorted(p.relative_to(b) for p in b.rglob("*.jpg"))
    for rel in fa[:20]:
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    ds = market_style(a)
    assert ds.num_train_pids == 12 and sum(s.pid < 0 for s in ds.train) == 6
    assert len({s.pid for s in ds.query}) == 10
    assert sum(s.pid == 0 for s in ds.gallery) == 5
    assert {s.camid for s in ds.query} <= set(range(6))
    stamp = (a / "synthreid.json").stat().st_mtime_ns
    assert generate(tmp_path / "a", TINY, verbose=False) == a  # second call reuses, writes nothing
    assert (a / "synthreid.json").stat().st_mtime_ns == stamp


def _hist(path):
    """Chromaticity histogram of the central body region (illumination-invariant, as a simple baseline)."""
    x = read_image(path).float() + 1
    h, w = x.shape[1:]
    body = x[:, int(h * 0.25) : int(h * 0.8), int(w * 0.3) : int(w * 0.7)].reshape(3, -1)
    chroma = (body[:2] / body.sum(0)).t()
    hist = torch.histogramdd(chroma, bins=[8, 8], range=[0, 1, 0, 1]).hist.flatten()
    return hist / hist.sum()


def test_identity_consistency(tmp_path):
    """Same identity: closer colour histograms on average, and the nearest image is far more often the same
    identity than chance."""
    ds = market_style(generate(tmp_path, TINY, workers=1, verbose=False))
    train = [s for s in ds.train if s.pid >= 0]
    h = torch.stack([_hist(s.path) for s in train])
    pids = torch.tensor([s.pid for s in train])
    d = 0.5 * (h[:, None] - h[None]).abs().sum(-1)
    same = pids[:, None] == pids[None]
    off = ~torch.eye(len(pids), dtype=torch.bool)
    assert d[same & off].mean() < 0.9 * d[~same].mean()
    nearest = torch.where(off, d, torch.full_like(d, 9.0)).argmin(1)
    hit = (pids[nearest] == pids).float().mean().item()
    chance = ((same & off).sum(1).float() / (len(pids) - 1)).mean().item()
    assert hit > 4 * chance, (hit, chance)


def test_device_store_equals_dataloader(tmp_path):
    ds = market_style(generate(tmp_path, TINY, workers=1, verbose=False))
    size = (64, 32)
    loader_x = torch.cat([b[0] for b in build_test_loader(ds.query, size, batch_size=8, workers=0)])
    store = DeviceStore(ds.query, size, "cpu")
    store_x = torch.cat([b[0] for b in store.test_batches(8)])
    assert torch.allclose(loader_x, store_x, atol=1e-6)
    tb = store.batch(list(range(4)), train=True, generator=torch.Generator().manual_seed(0))
    assert tb.shape == (4, 3, *size)


def test_profiles_exist():
    assert {"small", "full"} <= set(PROFILES)
    assert PROFILES["full"].train_ids == 750 and PROFILES["full"].test_ids == 750


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
