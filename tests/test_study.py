"""The study as data: its runs in a stable order, and shards that cover them exactly once."""

import json

import pytest

from henetlib import experiments as ex
from henetlib import study
from henetlib.__main__ import main


def _ident(cfg) -> str:
    return json.dumps(cfg.identity(), sort_keys=True, default=str)


def test_study_order_is_stable_and_without_duplicates():
    runs = study.study_configs("smoke", (0, 1))
    idents = [_ident(c) for _, c in runs]
    assert len(set(idents)) == len(idents) == 2 * 27
    assert [_ident(c) for _, c in study.study_configs("smoke", (0, 1))] == idents  # same list in every job
    assert [g for g, _ in runs][:4] == ["fig5"] * 4  # the models later work needs are trained first
    # every grid's runs are in the study
    for grid in study.ORDER:
        assert {_ident(c) for c in study.grid_configs(grid, "smoke", (0, 1))} <= set(idents)


@pytest.mark.parametrize("count", [1, 2, 3, 7, 54, 60])
def test_shards_cover_every_run_exactly_once(count):
    runs = study.study_configs("gpu", (0, 1))
    parts = [study.shard(runs, i, count) for i in range(1, count + 1)]
    flat = [_ident(c) for part in parts for _, c in part]
    assert sorted(flat) == sorted(_ident(c) for _, c in runs)  # covered, no overlap
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1  # balanced


def test_shard_spec_errors_name_the_form():
    assert study.parse_shard("3/8") == (3, 8)
    for bad in ("0/8", "9/8", "3", "a/b", "3/0"):
        with pytest.raises(ValueError, match="I/N with 1 <= I <= N"):
            study.parse_shard(bad)
    with pytest.raises(ValueError, match="unknown table"):
        study.grid_configs("table9", "test")


def test_study_shards_from_the_command_line(isolated_dirs, capsys):
    """Two of nine array jobs train their slices (and only those) into one shared results folder."""
    runs = study.study_configs("test", (0,), device="cpu")
    want = {i: study.shard(runs, i, 9) for i in (1, 2, 3)}
    for i in (1, 2):
        assert main(["study", "--profile", "test", "--device", "cpu", "--shard", f"{i}/9"]) == 0
    keys = {f.parent.name for f in (isolated_dirs / "results").glob("*/result.json")}
    expect = {ex.result_key(c, ex.dataset_for(c)) for i in (1, 2) for _, c in want[i]}
    assert keys == expect and len(keys) == len(want[1]) + len(want[2])
    capsys.readouterr()
    assert main(["study", "--profile", "test", "--device", "cpu", "--shard", "3/9", "--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed[:-1]] == ["todo"] * len(want[3])
    assert listed[-1] == f"shard 3/9: {len(want[3])} runs"
    assert main(["study", "--profile", "test", "--device", "cpu", "--shard", "1/9", "--list"]) == 0
    assert capsys.readouterr().out.count("done ") == len(want[1])
