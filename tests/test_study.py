"""The study as data: its runs in a stable order, and shards that cover them exactly once."""

import json

import pytest

from henetlib.cli import main
from henetlib.engine import cache
from henetlib.study import grids


def _ident(cfg) -> str:
    return json.dumps(cfg.identity(), sort_keys=True, default=str)


def test_study_order_is_stable_and_without_duplicates():
    runs = grids.study_configs("smoke", (0, 1))
    idents = [_ident(c) for _, c in runs]
    assert len(set(idents)) == len(idents) == 2 * 33  # 27 + Fig. 4 curves for RE, RPE(20), RE+RPE(20)
    assert [_ident(c) for _, c in grids.study_configs("smoke", (0, 1))] == idents  # same list in every job
    assert [g for g, _ in runs][:4] == ["fig5"] * 4  # the models later work needs are trained first
    # every grid's runs are in the study
    for grid in grids.ORDER:
        assert {_ident(c) for c in grids.grid_configs(grid, "smoke", (0, 1))} <= set(idents)


@pytest.mark.parametrize("count", [1, 2, 3, 7, 54, 60])
def test_shards_cover_every_run_exactly_once(count):
    runs = grids.study_configs("gpu", (0, 1))
    parts = [grids.shard(runs, i, count) for i in range(1, count + 1)]
    flat = [_ident(c) for part in parts for _, c in part]
    assert sorted(flat) == sorted(_ident(c) for _, c in runs)  # covered, no overlap
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1  # balanced


def test_shard_spec_errors_name_the_form():
    assert grids.parse_shard("3/8") == (3, 8)
    for bad in ("0/8", "9/8", "3", "a/b", "3/0"):
        with pytest.raises(ValueError, match="I/N with 1 <= I <= N"):
            grids.parse_shard(bad)
    with pytest.raises(ValueError, match="unknown table"):
        grids.grid_configs("table9", "test")


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


def test_fig4_curve_methods_and_fig5_levels():
    """smoke sweeps four probabilities (0 shared) for the methods the curve claims need and p = 0.5 for the rest;
    gpu sweeps every method; both have at least four occlusion levels and one probability above 0.5."""
    smoke = grids.fig4_configs("smoke")
    by = {}
    for label, p, _, _ in smoke:
        by.setdefault(label, set()).add(p)
    assert by["RE+RPE(20)"] == {0.0, 0.25, 0.5, 0.75} and by["RPE(10)"] == {0.0, 0.5}
    gpu = {(label, p) for label, p, _, _ in grids.fig4_configs("gpu")}
    assert all((m, p) in gpu for m in by for p in (0.0, 0.25, 0.5, 0.75))
    for prof in ("smoke", "gpu"):
        assert len(grids.FIG5_LEVELS[prof]) >= 4 and max(grids.FIG4_PROBS[prof]) > 0.5
