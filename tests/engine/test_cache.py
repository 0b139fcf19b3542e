"""The result cache: keys, a run trained once and read back, damaged files moved aside and redone, sweeps that
skip finished runs, two processes sharing one results folder, and results published from elsewhere found by
their identity."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import pytest

from henetlib.data.datasets import build_dataset
from henetlib.engine import cache
from henetlib.engine.config import make_config
from henetlib.engine.train import load_trained


def test_run_caches_and_sweep_dedups(isolated_dirs, monkeypatch):
    cfg = make_config("test", device="cpu")
    res = cache.run(cfg, progress=False)
    f = res.folder / "result.json"
    stored = json.loads(f.read_text())
    assert stored["metrics"]["R1"] == res.metrics["R1"] and stored["hardware"] and stored["code_version"]
    assert res.model_path.exists() and not (res.folder / "last.pt").exists()
    model, cfg2 = load_trained(res.model_path, "cpu")
    assert cfg2 == cfg and not model.training

    def boom(*a, **k):
        raise AssertionError("a cached configuration was trained again")

    monkeypatch.setattr(cache, "train", boom)
    assert cache.run(cfg, progress=False).key == res.key
    out = cache.sweep([cfg, make_config("test", device="cpu")], progress=False)
    assert [r.key for r in out] == [res.key, res.key]


def test_truncated_result_json_is_moved_aside_and_redone(isolated_dirs):
    cfg = make_config("test", device="cpu")
    res = cache.run(cfg, progress=False)
    f = res.folder / "result.json"
    f.write_text(f.read_text()[:100])  # a copy cut short
    with pytest.warns(UserWarning, match="result.json cannot be read"):
        again = cache.sweep([cfg], progress=False)[0]
    assert again.metrics["R1"] == res.metrics["R1"]  # redone, deterministically
    assert list(res.folder.glob("broken-*/result.json"))


def test_a_diverging_run_stops_clearly_and_caches_nothing(isolated_dirs):
    cfg = make_config("test", device="cpu", lr=1e6)
    with pytest.raises(FloatingPointError, match="lower the lr"):
        cache.run(cfg, progress=False)
    assert not list((isolated_dirs / "results").glob("*/result.json"))


_SWEEP = textwrap.dedent('''
    import os, sys, warnings
    warnings.filterwarnings("ignore")
    from henetlib.engine import cache as runner
    from henetlib.study import grids as study
    real = runner.train
    def logged(cfg, *a, **k):
        with open(os.environ["TRAIN_LOG"], "a") as f:
            f.write(cfg.name() + "\\n")
        return real(cfg, *a, **k)
    runner.train = logged
    rows = study.table4_configs("test", (0,), device="cpu")
    res = runner.sweep([r[-1] for r in rows], progress=False)
    print("TABLE", len(res), sum(0 <= r.metrics["R1"] <= 100 for r in res))
    print("R1", [r.metrics["R1"] for r in res])
''')


def test_two_processes_share_one_results_folder(isolated_dirs):
    build_dataset("synthreid", synth_size="tiny", verbose=False)  # generated once, before both start
    env = {**os.environ, "TRAIN_LOG": str(isolated_dirs / "trained.log"), "PYTHONWARNINGS": "ignore"}
    procs = [subprocess.Popen([sys.executable, "-c", _SWEEP], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    assert all("TABLE 8 8" in o[0] for o in outs)  # both end with the full table
    r1 = [next(line for line in o[0].splitlines() if line.startswith("R1 ")) for o in outs]
    assert r1[0] == r1[1]  # ... of the same results, whichever process trained each run
    trained = (isolated_dirs / "trained.log").read_text().split("\n")[:-1]
    assert len(trained) == len(set(trained)) == 8  # every run trained exactly once


def test_keys_follow_the_identity_and_the_code(isolated_dirs, monkeypatch):
    cfg = make_config("test", device="cpu")
    ds = cache.dataset_for(cfg)
    key, ident = cache.result_key(cfg, ds), cache.identity_key(cfg, ds)
    assert len(key) == len(ident) == 16 and key != ident
    assert cache.result_key(make_config("test", device="auto"), ds) == key  # where it runs is not what it is
    assert cache.result_key(make_config("test", device="cpu", seed=1), ds) != key
    assert len(cache.code_version()) == 12 and set(cache.code_version()) <= set("0123456789abcdef")
    monkeypatch.setattr(cache, "code_version", lambda: "000000000000")  # the code that trains changed
    assert cache.result_key(cfg, ds) != key and cache.identity_key(cfg, ds) == ident


def test_load_result_missing_and_damaged(isolated_dirs):
    assert cache.load_result("nothing-here") is None
    f = isolated_dirs / "results" / "k" / "result.json"
    f.parent.mkdir(parents=True)
    f.write_text('{"key": "k", "metrics": ')
    with pytest.raises(ValueError, match="result.json cannot be read"):
        cache.load_result("k", repair=False)
    assert f.exists()  # without repair (published results) nothing is moved
    with pytest.warns(UserWarning, match="moved to"):
        assert cache.load_result("k") is None
    assert not f.exists() and list(f.parent.glob("broken-*/result.json"))


def _publish_fake(cfg, ds, profile="test", metrics=None):
    """A published result of ``cfg`` as publish.unpack leaves it: a result.json under published/<profile>/."""
    key = cache.result_key(cfg, ds)
    rec = {"key": key, "config": cfg.to_dict(), "metrics": metrics or {"R1": 42.0, "mAP": 21.0}, "name": cfg.name(),
           "dataset": ds.name, "dataset_fingerprint": ds.fingerprint(), "hardware": "elsewhere", "train_seconds": 1.0,
           "train_images": 8, "images_per_second": 8.0, "wall_seconds": 1.0, "git_commit": "abc",
           "code_version": "an older one", "identity_key": cache.identity_key(cfg, ds)}
    folder = cache.published_root() / profile / key
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps(rec))
    cache.forget_published(profile)
    return folder


def test_published_results_are_found_by_identity_and_never_retrained(isolated_dirs, monkeypatch):
    cfg = make_config("test", device="cpu")
    ds = cache.dataset_for(cfg)
    assert cache.lookup(cfg, ds) is None
    folder = _publish_fake(cfg, ds)
    found = cache.lookup(cfg, ds)
    assert found.published and found.folder == folder and found.metrics == {"R1": 42.0, "mAP": 21.0}
    assert found.model_path == folder / "model.pt"
    monkeypatch.setattr(cache, "train", lambda *a, **k: pytest.fail("a published result was trained again"))
    assert cache.run(cfg, progress=False).key == found.key
    assert [r.metrics["R1"] for r in cache.sweep([cfg, cfg], progress=False)] == [42.0, 42.0]
    assert cache.lookup(make_config("test", device="cpu", seed=1), ds) is None  # another run
    monkeypatch.setenv("HENET_NO_PUBLISHED", "1")
    cache.forget_published("test")
    assert cache.published_index("test") == {} and cache.lookup(cfg, ds) is None


def test_published_first_unless_asked_for_this_machines_runs(isolated_dirs, monkeypatch):
    """The published study is what every clone renders: it shadows a local run of the same configuration;
    HENET_SOURCE=local and local_only() put this machine's runs first."""
    cfg = make_config("test", device="cpu")
    ds = cache.dataset_for(cfg)
    local = cache.run(cfg, progress=False)
    _publish_fake(cfg, ds)
    assert cache.lookup(cfg, ds).published and cache.lookup(cfg, ds).metrics["R1"] == 42.0
    assert cache.lookup_local(cfg, ds).key == local.key
    with cache.local_only():
        assert not cache.lookup(cfg, ds).published
    assert cache.lookup(cfg, ds).published  # restored after the block
    monkeypatch.setenv("HENET_SOURCE", "local")
    assert not cache.lookup(cfg, ds).published
    assert local.threads >= 1


def test_profile_of_and_a_damaged_published_index(isolated_dirs):
    assert cache.profile_of(make_config("test", device="cpu", seed=3)) == "test"
    assert cache.profile_of(make_config("smoke", finetune=True)) == "smoke"  # either regime of a profile
    assert cache.profile_of(make_config("smoke", erasing="rpe")) == "smoke"
    assert cache.profile_of(make_config("test", epochs=2)) is None  # overrides changed the profile's settings
    bad = cache.published_root() / "test" / "x" / "result.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{}")
    with pytest.raises(ValueError, match="restore it from git"):
        cache.published_index("test")


def test_resnet50_on_a_cpu_is_refused_before_training(isolated_dirs, monkeypatch):
    monkeypatch.setattr(cache, "train", lambda *a, **k: pytest.fail("trained"))
    cfg = make_config("test", device="cpu", backbone="resnet50")
    assert cache.too_slow_here(cfg) and not cache.too_slow_here(make_config("test", device="cpu"))
    assert not cache.too_slow_here(dataclasses.replace(cfg, max_steps=1))  # a dry run: seconds a step
    with pytest.raises(ValueError, match=r"1 ResNet50 run\(s\) are neither cached nor published.*HENET_ALLOW_CPU"):
        cache.sweep([cfg], progress=False)
    monkeypatch.setenv("HENET_ALLOW_CPU_RESNET50", "1")
    assert not cache.too_slow_here(cfg)
