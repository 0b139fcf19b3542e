"""The command line (``python -m henetlib`` / ``henet``): bad input as one clear line with exit code 2, a run
trained then read from the cache, the study's shards as array jobs, and published results imported."""

import json
import runpy
import sys

import pytest

from henetlib.cli import _ints, cli, main
from henetlib.engine import cache
from henetlib.engine.config import make_config
from henetlib.study import grids, publish


def test_cli_bad_data_root_is_one_clear_line(tmp_path, capsys):
    assert cli(["data", "--data-root", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: data set folder") and "bounding_box_train" in err and "Traceback" not in err


def test_bad_run_parameters_are_one_line_and_exit_2(capsys):
    assert cli(["run", "--profile", "test", "--device", "cpu", "--stripes", "0"]) == 2  # one line, exit 2
    err = capsys.readouterr().err
    assert err.startswith("error: stripes must be distinct") and err.count("\n") == 1


def test_python_dash_m_henetlib_runs_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["henetlib", "data", "--data-root", str(tmp_path / "missing")])
    with pytest.raises(SystemExit) as e:
        runpy.run_module("henetlib", run_name="__main__")
    assert e.value.code == 2 and capsys.readouterr().err.startswith("error: data set folder")


def test_ints_reads_comma_lists():
    assert _ints("0,1,2") == (0, 1, 2) and _ints("3,") == (3,) and _ints("") == ()


def test_run_trains_once_then_reads_the_cache(isolated_dirs, monkeypatch, capsys):
    assert main(["run", "--profile", "test", "--device", "cpu", "--stripes", "1,4", "--recovery"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    cfg = make_config("test", device="cpu")
    assert line.startswith(f"{cfg.name()}: R1=") and str(isolated_dirs / "results") in line
    monkeypatch.setattr(cache, "train", lambda *a, **k: pytest.fail("a cached run was trained again"))
    assert main(["run", "--profile", "test", "--device", "cpu", "--stripes", "1,4", "--recovery"]) == 0
    again = capsys.readouterr().out.strip().splitlines()[-1]

    def metrics(printed):
        return sorted(printed.split(": ", 1)[1].split(" (")[0].split(", "))

    assert metrics(again) == metrics(line) and any(m.startswith("R1=") for m in metrics(line))  # stored, not retrained


def test_study_shards_from_the_command_line(isolated_dirs, capsys):
    """Two of nine array jobs train their slices (and only those) into one shared results folder."""
    runs = grids.study_configs("test", (0,), device="cpu")
    want = {i: grids.shard(runs, i, 9) for i in (1, 2, 3)}
    for i in (1, 2):
        assert main(["study", "--profile", "test", "--device", "cpu", "--shard", f"{i}/9"]) == 0
    keys = {f.parent.name for f in (isolated_dirs / "results").glob("*/result.json")}
    expect = {cache.result_key(c, cache.dataset_for(c)) for i in (1, 2) for _, c in want[i]}
    assert keys == expect and len(keys) == len(want[1]) + len(want[2])
    capsys.readouterr()
    assert main(["study", "--profile", "test", "--device", "cpu", "--shard", "3/9", "--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed[:-1]] == ["todo"] * len(want[3])
    assert listed[-1] == f"shard 3/9: {len(want[3])} runs"
    assert main(["study", "--profile", "test", "--device", "cpu", "--shard", "1/9", "--list"]) == 0
    assert capsys.readouterr().out.count("done ") == len(want[1])


def test_import_published_unpacks_an_archive(isolated_dirs, capsys):
    folder = isolated_dirs / "results" / "k"
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({"config": make_config("test").to_dict()}))
    archive = publish.pack("test", isolated_dirs / "out", quiet=True)
    assert main(["import-published", str(archive), "--profile", "test"]) == 0
    assert capsys.readouterr().out.strip() == "1 results added to published/test/"
    assert (isolated_dirs / "published" / "test" / "k" / "result.json").exists()
