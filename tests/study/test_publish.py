"""Publishing results trained elsewhere: the small files packed (never weights), unpacked into published/ with
their provenance, found again without training, and foreign archives refused."""

import io
import json
import tarfile

import pytest

from henetlib.engine import cache
from henetlib.engine.config import make_config
from henetlib.study import publish, tables


def test_publish_round_trip_renders_without_training(isolated_dirs, monkeypatch):
    cfg = make_config("test", device="cpu", stripes=(1, 4), recovery=True)
    trained = cache.run(cfg, progress=False)
    archive = publish.pack("test", isolated_dirs / "out")
    monkeypatch.setenv("HENET_PUBLISHED_DIR", str(isolated_dirs / "published"))
    monkeypatch.setenv("HENET_RESULTS_DIR", str(isolated_dirs / "elsewhere"))  # a fresh clone: no results/
    assert publish.unpack(archive, "test") == 1
    found = cache.lookup(cfg, cache.dataset_for(cfg))
    assert found is not None and found.published and found.metrics == trained.metrics
    assert found.per_query == trained.per_query
    monkeypatch.setattr(cache, "train", lambda *a, **k: pytest.fail("a published result was trained again"))
    assert cache.run(cfg, progress=False).key == trained.key


def test_unpack_rejects_foreign_archives(isolated_dirs):
    bad = isolated_dirs / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        data = b"x"
        info = tarfile.TarInfo("../../etc/evil")
        info.size = 1
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError, match="unexpected member"):
        publish.unpack(bad, "test")


def _fake_result(root, key, profile):
    folder = root / key
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({"config": make_config(profile).to_dict()}))
    (folder / "model.pt").write_bytes(b"weights")
    (folder / "ranked.npz").write_bytes(b"ranked")
    (folder / "notes.txt").write_text("not a result file")


def test_pack_takes_the_profiles_small_files_and_never_weights(isolated_dirs):
    _fake_result(isolated_dirs / "results", "a", "test")
    _fake_result(isolated_dirs / "results", "b", "smoke")
    archive = publish.pack("test", isolated_dirs / "out", quiet=True)
    assert archive.name == "published-test.tar.gz"
    with tarfile.open(archive) as tar:
        names = sorted(tar.getnames())
        prov = json.loads(tar.extractfile("PROVENANCE.json").read())
    assert names == ["PROVENANCE.json", "a/ranked.npz", "a/result.json"]
    assert prov["profile"] == "test" and prov["code_version"] == cache.code_version()
    assert {"git_commit", "hardware", "torch", "date"} <= set(prov)


def test_unpack_keeps_a_record_of_every_call(isolated_dirs):
    _fake_result(isolated_dirs / "results", "a", "test")
    archive = publish.pack("test", isolated_dirs / "out", quiet=True)
    assert publish.unpack(archive, "test") == 1 and publish.unpack(archive, "test") == 1
    prov = json.loads((isolated_dirs / "published" / "test" / "PROVENANCE.json").read_text())
    assert len(prov["calls"]) == 2 and prov["calls"][0]["code_version"] == cache.code_version()
    assert (isolated_dirs / "published" / "test" / "a" / "ranked.npz").read_bytes() == b"ranked"


def test_what_can_be_trained_here_and_what_is_available(isolated_dirs, monkeypatch):
    monkeypatch.delenv("HENET_ALLOW_CPU_RESNET50", raising=False)
    assert publish.can_train(tables.StudyContext("test", "cpu"))
    assert not publish.can_train(tables.StudyContext("gpu", "cpu"))  # ResNet50 on a CPU: hours
    monkeypatch.setattr(cache, "train", lambda *a, **k: pytest.fail("trained"))
    assert publish.available_results(tables.StudyContext("test", "cpu")) == []


def test_publish_study_copies_every_run_with_its_provenance_and_never_weights(isolated_dirs, monkeypatch):
    ctx = tables.StudyContext("test", "cpu", seeds=(0,))
    runs = ctx.runs(("table4",))
    monkeypatch.setattr(tables.StudyContext, "runs", lambda self, grids=None: runs)
    with pytest.raises(ValueError, match="not trained here"):
        publish.publish_study([ctx])
    for _, cfg in runs:
        cache.run(cfg, progress=False)
    dest = publish.publish_study([ctx], "the command")
    prov = json.loads((dest / "PROVENANCE.json").read_text())
    assert prov["multi_seed"] and prov["seeds"] == [0] and prov["runs"] == len(runs) == len(prov["records"])
    assert prov["command"] == "the command" and all(r["threads"] >= 1 for r in prov["records"])
    assert not list(dest.rglob("*.pt"))
    assert cache.published_seeds("test") == (0,)
    found = cache.lookup(runs[0][1], cache.dataset_for(runs[0][1]))
    assert found.published
