"""Re-ID data sets: the Market-1501, DukeMTMC and CUHK03-NP layouts, errors that name the problem, the P x K
sampler (one process and split across ranks), and the device-resident store against the DataLoader."""

import numpy as np
import pytest
import torch

from henetlib.data.datasets import (
    DeviceStore,
    RandomIdentitySampler,
    Sample,
    build_dataset,
    build_test_loader,
    cuhk03_np,
    market_style,
)
from henetlib.data.images import DataError
from henetlib.data.synth import generate
from tests.data.layouts import MARKET_NAMES, TINY, make_market, write_image


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
    write_image(root / "query" / "person.jpg")
    assert any(p.endswith("person.jpg") for p in market_style(root).unparsed)  # collected, not dropped
    with pytest.raises(DataError, match="person.jpg"):
        build_dataset("market1501", root, verbose=False)  # and reported by the check, before training
    empty = make_market(tmp_path / "empty", {k: v for k, v in MARKET_NAMES.items() if k != "query"})
    (empty / "query").mkdir()
    with pytest.raises(DataError, match="no images"):
        market_style(empty)
    with pytest.raises(DataError, match="needs a root"):
        build_dataset("market1501", None)


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


def test_device_store_equals_dataloader(tmp_path):
    ds = market_style(generate(tmp_path, TINY, workers=1, verbose=False))
    size = (64, 32)
    loader_x = torch.cat([b[0] for b in build_test_loader(ds.query, size, batch_size=8, workers=0)])
    store = DeviceStore(ds.query, size, "cpu")
    store_x = torch.cat([b[0] for b in store.test_batches(8)])
    assert torch.allclose(loader_x, store_x, atol=1e-6)
    tb = store.batch(list(range(4)), train=True, generator=torch.Generator().manual_seed(0))
    assert tb.shape == (4, 3, *size)


def test_sampler_ranks_split_the_global_batch():
    samples = [Sample(f"{pid}_{i}.jpg", pid, i % 3) for pid in range(12) for i in range(5)]
    whole = RandomIdentitySampler(samples, p=6, k=2, seed=1)
    ranks = [RandomIdentitySampler(samples, p=3, k=2, seed=1, rank=r, world_size=2) for r in range(2)]
    for s in (whole, *ranks):
        s.set_epoch(4)
    assert len(ranks[0]) == len(whole) == 2
    for b, batch in enumerate(whole.batches()):
        assert ranks[0].batches()[b] + ranks[1].batches()[b] == batch
        pids = [{samples[i].pid for i in r.batches()[b]} for r in ranks]
        assert not pids[0] & pids[1]  # distinct identities on each rank
    with pytest.raises(ValueError, match="needs 14 identities"):
        RandomIdentitySampler(samples, p=7, k=2, world_size=2)


def test_unknown_data_set_names_the_choices(tmp_path):
    with pytest.raises(ValueError, match="unknown data set 'mars'.*market1501"):
        build_dataset("mars", tmp_path)


def test_fingerprint_follows_the_file_lists(tmp_path):
    root = make_market(tmp_path / "m", MARKET_NAMES)
    a, b = market_style(root), market_style(root)
    assert a.fingerprint() == b.fingerprint() and len(a.fingerprint()) == 16
    write_image(root / "bounding_box_test" / "0003_c6s1_000401_01.jpg")
    assert market_style(root).fingerprint() != a.fingerprint()  # one more gallery image: another data set


@pytest.mark.gpu
def test_device_store_matches_cpu(isolated_dirs):
    ds = build_dataset("synthreid", synth_size="tiny")
    a = DeviceStore(ds.query[:16], (64, 32), "cpu").batch(range(16))
    b = DeviceStore(ds.query[:16], (64, 32), torch.device("cuda")).batch(range(16)).cpu()
    assert torch.allclose(a, b, atol=1e-4)
