"""The study as data: the rows of every table and figure as configurations, its runs in a stable order, and
shards that cover them exactly once."""

import json

import pytest

from henetlib.study import grids, tables


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


def test_study_rows_cover_the_tables():
    assert len(grids.table2_configs("test")) == 7
    assert len(grids.table3_configs("test")) == 7
    t4 = {tuple(c.effective_losses()) for _, _, c in grids.table4_configs("test")}
    assert len(t4) == 8
    fig4 = grids.fig4_configs("smoke")
    assert {m for m, *_ in fig4} == {"RE", "RPE(10)", "RPE(20)", "RPE(30)", "RPE(40)", "RE+RPE(20)"}
    assert set(tables.paper_rows("table3")) == {label for label, _, _ in grids.table3_configs("test")}
    assert set(tables.paper_rows("table2")) == {label for label, _, _ in grids.table2_configs("test")}
    assert set(tables.paper_rows("table4")) == {label for label, _, _ in grids.table4_configs("test")}


def test_fig4_and_fig5_sweeps_are_curves():
    for p in ("smoke", "gpu"):
        probs = grids.FIG4_PROBS[p]
        assert len(probs) + 1 >= 4 and max(probs) > 0.5  # p = 0 is the shared no-erasing run
        assert len(grids.FIG5_LEVELS[p]) >= 4


def test_labels_and_table3_switches():
    assert grids.structure_label((1, 2, 3)) == "P(1,2,3)"
    assert grids.table3_stripes(True, True) == (1, 4) and grids.table3_stripes(False, True) == (4,)
    assert grids.table3_stripes(False, False) == ()
    assert [label for label, _, _ in grids.table3_configs("test")] == ["G1", "P4", "R16", "G1+P4", "G1+R16", "P4+R16",
                                                                      "G1+P4+R16"]


def test_rows_carry_their_settings_and_seeds():
    rows = grids.table4_configs("test", (0, 1), device="cpu")
    assert len(rows) == 16 and [seed for _, seed, _ in rows[:2]] == [0, 1]
    ce_only = rows[0][-1]
    assert rows[0][0] == "CE only" and (ce_only.oim, ce_only.triplet, ce_only.mse) == (False, False, False)
    assert all(c.stripes == (1, 4) and c.recovery and c.device == "cpu" and c.seed == s for _, s, c in rows)
    t2 = grids.table2_configs("test")
    assert all(not c.recovery and (c.oim, c.triplet, c.mse) == (False, False, True) for _, _, c in t2)
    t1 = dict((name, c) for name, _, c in grids.table1_configs("test"))
    assert t1["HENet(Base)"].erasing == "re" and t1["HENet(+Both)"].erasing == "re+rpe" and t1["HENet(+Both)"].recovery


def test_fig4_probabilities_per_method():
    assert grids.fig4_probs_for("smoke", "RE+RPE(20)") == (0.25, 0.5, 0.75)
    assert grids.fig4_probs_for("smoke", "RPE(10)") == (0.5,)  # not a curve method on smoke: p = 0.5 only
    assert grids.fig4_probs_for("gpu", "RPE(10)") == (0.25, 0.5, 0.75)
    assert grids.fig4_probs_for("smoke", "RPE(10)", probs=(0.1, 0.2)) == (0.1,)  # no 0.5 asked: the first
    fig5 = grids.grid_configs("fig5", "test", (0, 1))
    assert len(fig5) == 8 and [c.erasing for c in fig5[:4]] == ["none", "re", "rpe", "re+rpe"]
    assert {c.seed for c in fig5[4:]} == {1}


def test_shard_rejects_an_index_outside_its_count():
    with pytest.raises(ValueError, match="between 1 and 3"):
        grids.shard([1, 2, 3], 4, 3)
    assert grids.shard(list(range(7)), 2, 3) == [1, 4]
