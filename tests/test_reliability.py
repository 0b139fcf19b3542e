"""No lost hours (docs/RELIABILITY.md): bad data fails before training, damaged cache entries are redone,
and two processes share one results folder safely."""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import cv2
import pytest

from henetlib.data import check
from henetlib.data.datasets import build_dataset
from henetlib.data.images import DataError
from henetlib.engine import cache
from henetlib.engine.config import make_config
from henetlib.study import derived, tables
from henetlib.system.files import RunLock


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
    from henetlib.data.images import read_image

    assert all(read_image(p).shape[0] == 3 for p in pngs)
    res = cache.run(make_config("test", device="cpu", dataset="market1501", data_root=str(root), skip_bad_images=True),
                 progress=False)
    assert sorted(res.skipped_images) == sorted(map(str, bad))


def test_check_verdict_is_cached(market, monkeypatch):
    root, _ = market
    build_dataset("market1501", root, skip_bad_images=True, verbose=False)

    monkeypatch.setattr(check, "_problem", lambda p: pytest.fail("decoded again"))
    assert len(build_dataset("market1501", root, skip_bad_images=True, verbose=False).skipped) == 3


def test_truncated_result_json_is_moved_aside_and_redone(isolated_dirs):
    cfg = make_config("test", device="cpu")
    res = cache.run(cfg, progress=False)
    f = res.folder / "result.json"
    f.write_text(f.read_text()[:100])  # a copy cut short
    with pytest.warns(UserWarning, match="result.json cannot be read"):
        again = cache.sweep([cfg], progress=False)[0]
    assert again.metrics["R1"] == res.metrics["R1"]  # redone, deterministically
    assert list(res.folder.glob("broken-*/result.json"))


def test_damaged_checkpoint_restarts_the_run(isolated_dirs):
    from henetlib.engine.train import train

    folder = isolated_dirs / "run"
    folder.mkdir()
    (folder / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="last.pt cannot be read"):
        out = train(make_config("test", device="cpu"), out_dir=folder, progress=False)
    assert [h.epoch for h in out.history] == [0]
    assert list(folder.glob("broken-*/last.pt"))


def test_damaged_model_is_moved_aside_and_derived_results_never_train(isolated_dirs, monkeypatch):
    cfg = make_config("test", device="cpu", stripes=(1, 4), recovery=True)
    res = cache.run(cfg, progress=False)
    res.model_path.write_bytes(b"\x00" * 64)
    monkeypatch.setattr(cache, "train", lambda *a, **k: pytest.fail("a derived result trained a model"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(derived.ModelDamaged, match="moved to"):
            derived.ranked_lists(res)
    assert list(res.folder.glob("broken-*/model.pt"))
    assert cache.load_result(res.key) is None  # its result.json went too: running it again retrains


def test_damaged_model_is_retrained_when_the_caller_decides(isolated_dirs):
    cfg = make_config("test", device="cpu", stripes=(1, 4), recovery=True)
    res = cache.run(cfg, progress=False)
    res.model_path.write_bytes(b"\x00" * 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranked, query, _ = tables.retrain_if_damaged(derived.ranked_lists, res)
    assert len(ranked) == len(query)
    assert cache.load_result(res.key) is not None


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
    print("TABLE", len(res), sum(r.metrics["R1"] >= 0 for r in res))
''')


def test_two_processes_share_one_results_folder(isolated_dirs):
    build_dataset("synthreid", synth_size="tiny", verbose=False)  # generated once, before both start
    env = {**os.environ, "TRAIN_LOG": str(isolated_dirs / "trained.log"), "PYTHONWARNINGS": "ignore"}
    procs = [subprocess.Popen([sys.executable, "-c", _SWEEP], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    assert all("TABLE 8 8" in o[0] for o in outs)  # both end with the full table
    trained = (isolated_dirs / "trained.log").read_text().split("\n")[:-1]
    assert len(trained) == len(set(trained)) == 8  # every run trained exactly once


def test_a_killed_process_leaves_no_stale_lock(isolated_dirs):
    folder = isolated_dirs / "results" / "k"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f'''
        import time
        from henetlib.system.files import RunLock
        RunLock({str(folder)!r}).acquire(); print("locked", flush=True); time.sleep(60)''')],
        stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"
    assert not RunLock(folder).acquire(blocking=False)  # held by the live process
    child.send_signal(signal.SIGKILL)
    child.wait()
    t0 = time.time()
    lock = RunLock(folder)
    assert lock.acquire(blocking=False) and time.time() - t0 < 1
    lock.release()


@pytest.mark.parametrize("params,message", [
    ({"profile": "huge"}, "unknown profile 'huge'"),
    ({"profile": "test", "seeds": ["a"]}, "seeds must be a non-empty list of integers"),
    ({"profile": "test", "dataset": "mars", "data_root": "/nowhere"}, "unknown data set 'mars'"),
])
def test_bad_notebook_parameters_fail_with_the_clis_message(isolated_dirs, params, message):
    """make reproduce checks the parameters before any kernel starts; papermill run directly shows the same
    one-line message as the notebook's error."""
    from pathlib import Path

    import papermill as pm

    from henetlib.study.reproduce import run_notebooks

    nb = Path(__file__).resolve().parent.parent / "notebooks" / "01_structure_analysis.ipynb"
    with pytest.raises(ValueError, match=message):
        run_notebooks([nb], device="cpu", reports_dir=isolated_dirs / "reports", jobs=1,
                      **{k: v for k, v in params.items() if k == "profile"},
                      extra={k: v for k, v in params.items() if k != "profile"})
    if params["profile"] != "huge":
        return  # one kernel start is enough to show papermill's side
    with pytest.raises(pm.PapermillExecutionError) as e:
        pm.execute_notebook(str(nb), str(isolated_dirs / "out.ipynb"), parameters=params, cwd=str(nb.parent),
                            progress_bar=False, kernel_name="python3")
    assert message in e.value.evalue and e.value.ename in ("ValueError", "DataError")


def test_bad_run_parameters_fail_at_config_time(tmp_path):
    with pytest.raises(ValueError, match="stripes must be distinct"):
        make_config("test", stripes=(0,))
    with pytest.raises(ValueError, match="stripes must be distinct"):
        make_config("test", stripes=(4, 4))
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        make_config("test", pretrained=str(tmp_path / "nope.pth"))
    with pytest.raises(ValueError, match="erasing probability"):
        make_config("test", erasing="rpe", erasing_p=1.5)
    from henetlib.cli import cli

    assert cli(["run", "--profile", "test", "--device", "cpu", "--stripes", "0"]) == 2  # one line, exit 2


def test_a_diverging_run_stops_clearly_and_caches_nothing(isolated_dirs):
    cfg = make_config("test", device="cpu", lr=1e6)
    with pytest.raises(FloatingPointError, match="lower the lr"):
        cache.run(cfg, progress=False)
    assert not list((isolated_dirs / "results").glob("*/result.json"))


_GENERATE = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    from henetlib.data.synth import generate
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
