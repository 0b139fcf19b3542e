"""Project folders overridable by the environment, atomic writes that leave no half file, damaged files moved
aside, the run lock (released when its process dies), and a stable hash."""

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from henetlib.system import files
from henetlib.system.files import RunLock


def test_folders_follow_the_environment(tmp_path, monkeypatch):
    for env, fn in (("HENET_RESULTS_DIR", files.results_dir), ("HENET_FIGURES_DIR", files.figures_dir),
                    ("HENET_DATA_DIR", files.data_dir)):
        monkeypatch.setenv(env, str(tmp_path / env))
        assert fn() == tmp_path / env
        monkeypatch.delenv(env)
        assert fn().parent == files.REPO_ROOT
    assert (files.REPO_ROOT / "henetlib" / "system" / "files.py").exists()


def test_atomic_writes_replace_whole_files_and_leave_no_temporary(tmp_path):
    f = tmp_path / "sub" / "a.json"
    files.atomic_write_json(f, {"b": 1, "a": (1, 2)})
    assert f.read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'  # sorted keys, one trailing newline
    files.atomic_write_text(f, "text")
    files.atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    files.atomic_torch_save({"w": torch.ones(2)}, tmp_path / "w.pt")
    assert f.read_text() == "text" and (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert torch.equal(torch.load(tmp_path / "w.pt", weights_only=True)["w"], torch.ones(2))
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.json", "b.bin", "w.pt"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    f = tmp_path / "w.pt"
    files.atomic_torch_save({"w": torch.zeros(1)}, f)
    with pytest.raises(Exception, match="pickle|lambda"):
        files.atomic_torch_save({"w": lambda: 0}, f)  # fails half way through writing
    assert torch.equal(torch.load(f, weights_only=True)["w"], torch.zeros(1))
    assert [p.name for p in tmp_path.iterdir()] == ["w.pt"]  # the temporary file is gone too


def test_quarantine_moves_a_damaged_file_aside_with_a_warning(tmp_path):
    f = tmp_path / "result.json"
    f.write_text("{cut")
    with pytest.warns(UserWarning, match=r"result\.json cannot be read \(truncated\); moved to .*broken-"):
        moved = files.quarantine(f, "truncated")
    assert not f.exists() and moved.read_text() == "{cut" and moved.parent.name.startswith("broken-")


def test_run_lock_is_exclusive_and_a_context_manager(tmp_path):
    a, b = RunLock(tmp_path / "run"), RunLock(tmp_path / "run")
    with a:
        assert a.fd is not None and not b.acquire(blocking=False)
    assert a.fd is None and b.acquire(blocking=False)
    b.release()
    b.release()  # a second release does nothing


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


def test_stable_hash_ignores_key_order_and_nothing_else():
    h = files.stable_hash({"a": 1, "b": [1, 2]})
    assert len(h) == 16 and h == files.stable_hash({"b": [1, 2], "a": 1})
    assert h != files.stable_hash({"a": 1, "b": [2, 1]}) and h != files.stable_hash({"a": 1.5, "b": [1, 2]})
    assert files.stable_hash({"p": files.REPO_ROOT}) == files.stable_hash({"p": str(files.REPO_ROOT)})
    assert h == hashlib.sha256(json.dumps({"a": 1, "b": [1, 2]}, sort_keys=True).encode()).hexdigest()[:16]


def test_atomic_writes_are_readable_by_others_as_open_would_make_them(tmp_path):
    """mkstemp makes 0600 files; figures and reports/index.html must be readable by a web server."""
    old = os.umask(0o022)
    try:
        files.atomic_write_text(tmp_path / "a.md", "x")
        assert stat.S_IMODE((tmp_path / "a.md").stat().st_mode) == 0o644
        os.umask(0o077)
        files.atomic_write_bytes(tmp_path / "b.png", b"x")
        assert stat.S_IMODE((tmp_path / "b.png").stat().st_mode) == 0o600
    finally:
        os.umask(old)
