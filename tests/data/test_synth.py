"""SynthReID: deterministic whatever the number of workers, the Market-1501 layout, identities that look
alike across images, written once when several processes ask for it at the same time."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from henetlib.data.datasets import market_style
from henetlib.data.images import read_image
from henetlib.data.synth import PROFILES, generate, make_identity, occluded_queries
from tests.data.layouts import TINY


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


def test_profiles_exist():
    assert {"small", "full"} <= set(PROFILES)
    assert PROFILES["full"].train_ids == 750 and PROFILES["full"].test_ids == 750


def test_unknown_profile_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown SynthReID profile 'huge'.*tiny"):
        generate(tmp_path, "huge")
    assert not list(tmp_path.iterdir())  # refused before anything is written


def test_identities_are_fixed_by_seed_and_number():
    a, b = make_identity(0, 5), make_identity(0, 5)
    assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in vars(a))
    others = [make_identity(0, 6), make_identity(1, 5)]
    assert all(not np.array_equal(a.upper, o.upper) or a.height != o.height for o in others)
    assert 2 <= len(a.cams) <= 6 and len(set(a.cams.tolist())) == len(a.cams)


def test_occluded_queries_are_listed_and_loaded(tmp_path):
    root = generate(tmp_path, TINY, workers=1, verbose=False)
    listed = occluded_queries(root)
    queries = {p.name for p in (root / "query").glob("*.jpg")}
    assert listed and listed < queries  # some queries, not all (occlusion rate 0.25)
    assert market_style(root).occluded_query == listed
    assert occluded_queries(tmp_path / "nowhere") == set()


def test_a_set_of_another_profile_is_written_again(tmp_path):
    """The stamp records the profile: a folder written with other settings is regenerated, not reused."""
    root = generate(tmp_path, TINY, workers=1, verbose=False)
    stamp = root / "synthreid.json"
    rec = json.loads(stamp.read_text())
    rec["profile"]["distractors"] = 99
    stamp.write_text(json.dumps(rec))
    generate(tmp_path, TINY, workers=1, verbose=False)
    assert json.loads(stamp.read_text())["profile"]["distractors"] == TINY.distractors
    assert sum(1 for p in (root / "bounding_box_test").glob("0000_*.jpg")) == TINY.distractors


_GENERATE = textwrap.dedent('''
    import logging, sys, time
    from pathlib import Path
    from henetlib.data.synth import generate
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")  # its progress lines
    root, me = Path(sys.argv[1]), sys.argv[2]
    (root.parent / f"ready-{me}").touch()
    while len(list(root.parent.glob("ready-*"))) < 2:  # start generating together
        time.sleep(0.01)
    print("DEST", generate(root, "tiny", workers=1, verbose=True))
''')


def test_concurrent_synthreid_generation_writes_once(tmp_path):
    """Two DDP ranks (or array jobs) reaching a missing SynthReID at the same moment: one writes it."""
    root = tmp_path / "synthreid"
    procs = [subprocess.Popen([sys.executable, "-c", _GENERATE, str(root), str(i)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    text = "".join(o for o, _ in outs)
    assert text.count("generating") == 1 and text.count("DEST") == 2
    assert (root / "tiny" / "synthreid.json").exists() and not list(root.glob(".tiny.tmp-*"))
