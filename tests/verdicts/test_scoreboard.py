"""The claims scored: contrast kinds (differences, trends, peaks, equivalence, drops and slopes), Holm within a
claim, the claim-level rule, efficiency claims, missing runs, own seeds in the interval, each on synthetic
scores with a known answer (no training); the saved board; and one scoreboard end to end on the test profile."""

from types import SimpleNamespace

import numpy as np
import pytest

from henetlib.engine import cache
from henetlib.stats import SeedVariance
from henetlib.study import grids, tables
from henetlib.study import noise_model as study_noise_model
from henetlib.verdicts import claims, controls, scoreboard, scores, stability

Q = 200


# ---------------------------------------------------------------------------------------------------------
# Synthetic scores with known answers


_U = np.random.default_rng(9).permutation((np.arange(Q) + 0.5) / Q)  # fixed per query: pairs R1 hits


def _pq_ap(ap: np.ndarray) -> dict:
    """A per-query dict whose mAP scores are exactly 100 * ap; R1 hits where a fixed per-query uniform is
    below ap, so mean R1 follows mean mAP and configurations stay paired."""
    return {"first_rank": np.where(_U < ap, 1, 3).tolist(), "ap": np.clip(ap, 0, 1).tolist()}


def _data(cells: dict[str, dict], seeds=(0,), noise_sd: float = 0.0, rng=None) -> scores.StudyScores:
    """StudyScores from {grid: {key: mean mAP in points}}: every query gets mean + a shared query offset."""
    rng = rng or np.random.default_rng(0)
    base = rng.uniform(-0.1, 0.1, Q)
    out = scores.StudyScores(tuple(seeds))
    for grid, cfg in cells.items():
        for key, mean in cfg.items():
            lst = []
            for _ in seeds:
                shift = rng.normal(0, noise_sd) / 100 if noise_sd else 0.0
                lst.append(_pq_ap(0.5 + (mean - 50) / 100 + base + shift))
            out.per_query.setdefault(grid, {})[key] = lst
            out.ident[(grid, key)] = f"{grid}|{key}"
    return out


def _score(data, ids, noise_status=None, profile="smoke", gate=False):
    """Scored without the positive-control gate unless asked: these tests check the contrasts themselves."""
    ctx = SimpleNamespace(profile=profile, seeds=data.seeds)
    st = noise_status or study_noise_model.NoiseStatus(None, False, [], "none")
    cl = [c for c in claims.for_profile(profile) if c.id in ids]
    return scoreboard.scoreboard(ctx, n_boot=200, claims=cl, data=data, noise_model=st, efficiency={}, gate=gate)


def _only(board, cid, metric="mAP"):
    return board[(board.claim == cid) & (board.metric == metric)]


def test_difference_rows_reproduce_and_contradict():
    t3 = {"G1": 60, "P4": 62, "R16": 55, "G1+P4": 70, "G1+R16": 65, "P4+R16": 69, "G1+P4+R16": 75}
    b = _score(_data({"table3": t3}), {"T3a", "T3b"})
    rows = _only(b, "T3a")
    assert rows["ours diff"].round(6).tolist() == pytest.approx([10, 8, 5, 10, 7, 14])
    assert set(rows.verdict) == {"reproduced"}
    flipped = {**t3, "G1+P4+R16": 50}
    b2 = _score(_data({"table3": flipped}), {"T3b"})
    assert set(_only(b2, "T3b").verdict) == {"contradicted"}
    assert scoreboard.claim_verdicts(b2).set_index("claim").loc["T3b", "verdict"] == "contradicted"


def test_trend_is_the_least_squares_slope():
    """Scores linear in p: 40 + 20 p for every method; the slope over p is 20 points per unit p."""
    probs = claims._fig4_probs("smoke")
    cells = {(m, p): 40 + 20 * p for m in claims.fig4_labels() for p in (0.0, *probs[m])}
    b = _score(_data({"fig4": cells}), {"F4a"})
    rows = _only(b, "F4a")
    assert rows["ours diff"].tolist() == pytest.approx([20.0] * len(rows))
    assert set(rows.verdict) == {"reproduced"}
    down = {k: 40 - 20 * k[1] for k in cells}
    assert set(_only(_score(_data({"fig4": down}), {"F4a"}), "F4a").verdict) == {"contradicted"}


def test_peak_needs_both_neighbours():
    probs = claims._fig4_probs("smoke")
    peak = {(m, p): 50 - 40 * (p - 0.5) ** 2 for m in claims.fig4_labels() for p in (0.0, *probs[m])}
    b = _score(_data({"fig4": peak}), {"F4e"})
    assert set(_only(b, "F4e").verdict) == {"reproduced"} and len(_only(b, "F4e")) == 2
    rising = {k: 40 + 20 * k[1] for k in peak}  # no peak: p = 0.75 beats 0.5
    v = _only(_score(_data({"fig4": rising}), {"F4e"}), "F4e").verdict.tolist()
    assert v == ["reproduced", "contradicted"]


def _fig4_cells(value=50.0):
    probs = claims._fig4_probs("smoke")
    return {(m, p): value for m in claims.fig4_labels() for p in (0.0, *probs[m])}


def test_equivalence_relative_to_re_gain_by_two_one_sided_rows():
    """F4c: RPE(40) within half of RE's own gain over no erasing (10 points here: margin 5)."""
    cells = _fig4_cells()
    cells[("RE", 0.0)] = 40.0  # no erasing; RE@0.5 = 50: RE's gain is 10
    cells[("RPE(40)", 0.5)] = 51.0  # inside +-5
    b = _only(_score(_data({"fig4": cells}), {"F4c"}), "F4c")
    assert len(b) == 2 and b.verdict.tolist() == ["reproduced", "reproduced"]
    assert all(t.startswith("equivalence") for t in b.test)
    assert b["ours diff"].tolist() == pytest.approx([1 - 5, 1 + 5])  # (RPE40 - RE) -+ 0.5 x gain
    cells[("RPE(40)", 0.5)] = 58.0  # 8 above RE: beyond the margin
    b = _only(_score(_data({"fig4": cells}), {"F4c"}), "F4c")
    assert b.verdict.tolist() == ["contradicted", "reproduced"]
    assert scoreboard.claim_verdicts(_score(_data({"fig4": cells}), {"F4c"})).verdict.tolist() == ["contradicted"]


def test_non_inferiority_keeps_a_share_of_the_gain():
    """T2b: P(1,2,3) - P(1) > 2/3 x (P(1,2,3,4) - P(1)): 9 of a 10-point gain passes, 5 of 10 fails."""
    t2 = {"P(1)": 50.0, "P(1,2)": 55.0, "P(1,2,3)": 59.0, "P(1,2,3,4)": 60.0}
    b = _only(_score(_data({"table2": t2}), {"T2b"}), "T2b")
    assert b.test.iloc[0].startswith("non-inferiority") and b.verdict.tolist() == ["reproduced"]
    assert b["ours diff"].iloc[0] == pytest.approx(9 - 10 * claims.NEARLY)
    t2["P(1,2,3)"] = 55.0
    b = _only(_score(_data({"table2": t2}), {"T2b"}), "T2b")
    assert b.verdict.tolist() == ["contradicted"]


def test_the_paper_keeps_its_own_non_inferiority_reading():
    assert claims._t2_kept("mAP") > claims.NEARLY and claims._t2_kept("R1") > claims.NEARLY


def _fig5(levels, score):
    return {(m, t, float(x)): score(m, t, x) for m in claims._FIG5_MODELS for t in claims._FIG5_TESTS for x in levels}


def test_drops_and_slope_differences_in_fig5():
    """Clean scores differ by model; each model loses ``rate * level`` points, RE+RPE-trained least and the
    RE+RPE test occlusion fastest. Drops, slopes and their differences have exact known values."""
    lv = grids.FIG5_LEVELS["smoke"]
    clean = {"none": 60, "RE": 55, "RPE(20)": 57, "RE+RPE(20)": 52}
    rate = {"none": 30, "RE": 20, "RPE(20)": 18, "RE+RPE(20)": 10}
    extra = {"RE": 1.0, "RPE(20)": 1.0, "RE+RPE(20)": 1.5}
    cells = _fig5(lv, lambda m, t, x: clean[m] - rate[m] * extra[t] * x)
    b = _score(_data({"fig5": cells}), {"F5a", "F5b", "F5c", "F5e"})
    f5a = _only(b, "F5a").set_index("comparison")["ours diff"]
    assert f5a["none under RE+RPE(20): slope over level"] == pytest.approx(-45.0)
    f5b = _only(b, "F5b").set_index("comparison")["ours diff"]
    assert f5b["RE: slope under RE+RPE < slope under RPE(20)"] == pytest.approx(-10.0)
    f5c = _only(b, "F5c").set_index("comparison")["ours diff"]
    mean_occ = np.mean([x for x in lv if x > 0])
    assert f5c["drop(none) > drop(RE) under RE"] == pytest.approx((30 - 20) * mean_occ)
    f5e = _only(b, "F5e").set_index("comparison")["ours diff"]
    # RE+RPE's lead over RPE(20) grows by (18 - 10) points per unit level under RE
    assert f5e["lead of RE+RPE(20) over RPE(20) under RE: slope over level"] == pytest.approx(8.0)
    for cid in ("F5a", "F5b", "F5c", "F5e"):
        assert set(_only(b, cid).verdict) == {"reproduced"}, cid


def test_holm_within_a_claim_before_contradicted():
    """Nine rows of T4a; one is 1 point on the wrong side with noise that makes it significant alone
    (p ~ 0.01) but not after Holm over its 18 rows (both metrics): unresolved, not contradicted."""
    t4 = {"CE only": 40, "OIM": 50, "Tri": 50, "MSE": 50, "OIM+Tri": 60, "OIM+MSE": 60, "Tri+MSE": 60,
          "OIM+Tri+MSE": 70}
    t4["OIM+MSE"] = 50 - 2.4 * 0.9  # wrong side of OIM and MSE by ~2.2 points
    st = study_noise_model.NoiseStatus(None, True, [], "model")
    st.seed_vars = lambda: {(g, m): SeedVariance(0.5, np.inf, "model") for g in study_noise_model.GROUPS for m in ("R1", "mAP")}
    b = _score(_data({"table4": t4}), {"T4a"}, st)
    rows = _only(b, "T4a").set_index("comparison")
    raw = rows.loc["OIM+MSE > OIM"]
    assert raw.hi < 0  # its own 95% interval is on the wrong side ...
    assert raw.verdict == "unresolved" and raw["p against"] >= 0.025  # ... but Holm keeps it unresolved
    t4["OIM+MSE"] = 40  # 10 points wrong: survives Holm
    b = _score(_data({"table4": t4}), {"T4a"}, st)
    assert _only(b, "T4a").set_index("comparison").loc["OIM+MSE > OIM", "verdict"] == "contradicted"


@pytest.mark.parametrize("rows,expected", [
    (["reproduced"] * 4, "reproduced"), (["reproduced", "unresolved"], "unresolved"),
    (["reproduced", "contradicted", "unresolved"], "contradicted"), (["not run", "not run"], "not run"),
    (["reproduced", "not run"], "unresolved"), ([], "not run"),
    (["untestable here", "untestable here"], "untestable here"), (["untestable here", "reproduced"], "unresolved"),
    (["untestable here", "contradicted"], "contradicted"), (["calibration", "reproduced"], "reproduced"),
])
def test_claim_level_rule(rows, expected):
    assert scoreboard.claim_verdict(rows) == expected


def test_t1c_is_out_of_scope_not_a_restatement_of_t1b():
    assert "T1c" not in {c.id for c in claims.CLAIMS}
    assert any("highest ES" in o.quote for o in claims.OUT_OF_SCOPE)


def test_efficiency_claims_from_measured_sizes_and_repeated_timings():
    rng = np.random.default_rng(0)

    def m(v, fps):
        return {"inference_size_mb": v, "fps_batch1": fps, "fps_batch1_repeats": (fps + rng.normal(0, 1, 8)).tolist()}

    meas = {"AlignedReID": m(90, 200), "PCB": m(95, 190), "HPM": m(300, 80), "MGN": m(250, 110),
            "HENet(Base)": m(150, 160), "HENet(+Losses)": m(200, 199.5)}
    ctx = SimpleNamespace(profile="smoke", seeds=(0,))
    cl = [c for c in claims.CLAIMS if c.kind == "efficiency"]
    b = scoreboard.scoreboard(ctx, claims=cl, data=scores.StudyScores((0,)), efficiency=meas,
                              noise_model=study_noise_model.NoiseStatus(None, False, [], "none"))
    rows = b.set_index("comparison")
    # our HPM graph does not reproduce the paper's V: rows that hinge on it test our graph, not the paper
    assert rows.loc["V: HPM > PCB", "verdict"] == "untestable here"
    assert "graph differs" in rows.loc["V: HPM > PCB", "why"]
    assert rows.loc["V: AlignedReID < PCB", "verdict"] == "reproduced"
    # 200 against 199.5 fps with 1-fps timing noise over 8 repeats: not decided
    assert rows.loc["S: AlignedReID > HENet(+Losses)", "verdict"] == "unresolved"
    assert rows.loc["S: AlignedReID > MGN", "verdict"] == "reproduced"
    meas["PCB"] = m(80, 190)
    b = scoreboard.scoreboard(ctx, claims=cl, data=scores.StudyScores((0,)), efficiency=meas,
                              noise_model=study_noise_model.NoiseStatus(None, False, [], "none"))
    assert scoreboard.claim_verdicts(b).set_index("claim").loc["E1a", "verdict"] == "contradicted"


def test_missing_runs_are_not_run_never_a_guess():
    b = _score(_data({"table3": {"G1": 50}}), {"T3a"})
    assert set(b.verdict) == {"not run"}
    assert scoreboard.claim_verdicts(b).verdict.tolist() == ["not run"]
    # the test profile sweeps no p above 0.5: the peak claim is listed, not run, rather than dropped
    t = _score(scores.StudyScores((0,)), {"F4e"}, profile="test")
    assert scoreboard.claim_verdicts(t).set_index("claim").loc["F4e", "verdict"] == "not run"


def test_own_seeds_enter_the_interval():
    t3 = {"G1": 60, "P4": 62, "R16": 55, "G1+P4": 70, "G1+R16": 65, "P4+R16": 69, "G1+P4+R16": 75}
    one = _score(_data({"table3": t3}), {"T3a"})
    three = _score(_data({"table3": t3}, seeds=(0, 1, 2), noise_sd=3.0), {"T3a"})
    assert (one.basis == "query-level only").all()
    assert three.basis.str.startswith("query + seed").all()
    assert ((three.hi - three.lo) > (one.hi - one.lo)).all()
    data = _data({"table3": t3}, seeds=(0, 1, 2), noise_sd=3.0)
    sub = data.subset([2])
    assert sub.seeds == (2,) and sub.per_query["table3"]["G1"][0] is data.per_query["table3"]["G1"][2]


def test_save_writes_the_claim_table_first(isolated_dirs):
    t3 = {"G1": 60, "P4": 62, "R16": 55, "G1+P4": 70, "G1+R16": 65, "P4+R16": 69, "G1+P4+R16": 75}
    b = _score(_data({"table3": t3}), {"T3a", "T3b"})
    scoreboard.save(b, "claims", "caption line")
    md = (isolated_dirs / "figures" / "claims.md").read_text()
    assert md.index("## Claims") < md.index("## Rows") < md.index("caption line") < md.index("## Not tested")
    assert "“combining any two branches" in md and "(l. 598-599)" in md
    line = scoreboard.summary_line(b, "smoke")
    assert line.startswith("2 claims on smoke: 2 reproduced") and "query-level only" in line


def test_scoreboard_trains_and_scores_the_test_profile(table4_study, isolated_env, monkeypatch):
    """Table 4's claims scored on the test profile's runs (trained once per session by the table4_study
    fixture, so the scoreboard finds every run cached)."""
    monkeypatch.setattr(cache, "train", lambda *a, **k: pytest.fail("a cached run was trained again"))
    with isolated_env(table4_study.root):
        ctx = tables.StudyContext("test", "cpu")
        board = scoreboard.scoreboard(ctx, n_boot=100, claims=claims.for_grid("table4"))
        other = tables.StudyContext("test", "cpu", seeds=(7,))  # nothing trained, nothing published
        empty = scoreboard.scoreboard(other, n_boot=50, claims=claims.for_grid("table2"), train=False)
    assert len(board) == 2 * sum(len(c.rows) for c in claims.for_grid("table4"))
    # one seed cannot pass the triplet control (5 seeds at least): Table 4's rows are untestable, and what
    # they measured stays beside the verdict
    assert set(board["verdict"]) == {"untestable here"}
    assert set(board["measured"]) <= {"reproduced", "contradicted", "unresolved"}
    assert (board["lo"] <= board["ours diff"]).all() and (board["ours diff"] <= board["hi"]).all()
    assert "on test" in scoreboard.summary_line(board, "test")
    assert set(empty["verdict"]) == {"not run"}


# ---------------------------------------------------------------------------------------------------------
# Positive controls, duplicates, categories of unresolved rows, stability


def _controls_data(re_gain: float, tri_gain: float, seeds=(0, 1, 2, 3, 4)) -> scores.StudyScores:
    cells = {"fig4": {**_fig4_cells(), ("RE", 0.0): 50.0 - re_gain, ("RE", 0.5): 50.0},
             "table4": {"CE only": 50.0 - tri_gain, "Tri": 50.0, "OIM": 52, "MSE": 51, "OIM+Tri": 55,
                        "OIM+MSE": 54, "Tri+MSE": 53, "OIM+Tri+MSE": 57}}
    data = _data(cells, seeds=seeds, noise_sd=0.3)
    data.query_pids = np.arange(Q) // 4  # four queries an identity
    return data


def test_a_failed_control_makes_its_rows_untestable_never_contradicted():
    data = _controls_data(re_gain=-6.0, tri_gain=6.0)  # RE hurts here; the triplet helps
    b = _score(data, {"F4a", "F4d", "T4a"}, gate=True)
    assert b.attrs["controls"]["RE"]["passes"] is False and b.attrs["controls"]["triplet"]["passes"] is True
    f4 = b[b.claim.isin(["F4a", "F4d"])]
    assert not (f4.verdict == "contradicted").any()
    assert set(f4.verdict) <= {"untestable here", "calibration"}
    assert (b[b.claim == "F4a"].set_index("comparison").loc["RE: slope over p", "verdict"] == "calibration").all()
    assert set(b[b.claim == "T4a"].verdict) - {"untestable here"} == set(b[b.claim == "T4a"].verdict)
    v = scoreboard.claim_verdicts(b).set_index("claim")["verdict"]
    assert v["F4d"] == "untestable here"
    md_controls = controls.controls_table(b)
    assert md_controls.set_index("control").loc["RE", "testbed"].startswith("fails")


def test_controls_need_five_seeds():
    b = _score(_controls_data(6.0, 6.0, seeds=(0, 1, 2)), {"T4b"}, gate=True)
    assert b.attrs["controls"]["triplet"]["passes"] is False
    assert "fewer than 5 seeds" in b.attrs["controls"]["triplet"]["state"]


def test_rows_repeating_another_claims_runs_count_once():
    t4 = {"CE only": 40, "OIM": 50, "Tri": 50, "MSE": 50, "OIM+Tri": 60, "OIM+MSE": 60, "Tri+MSE": 60,
          "OIM+Tri+MSE": 70}
    data = _data({"table4": t4})
    data.ident = {("table4", k): f"cfg-{k}" for k in t4}
    b = _score(data, {"T4a", "T4b"})
    dup = b[b["duplicate of"] != ""]
    # T4b's rows against OIM, Tri and MSE repeat T4a's "OIM+Tri+MSE > X" rows, in both metrics
    assert len(dup) == 6 and set(dup["duplicate of"]) == {"T4a"} and set(dup.claim) == {"T4b"}
    assert scoreboard.row_counts(b).sum() == len(b) - 6


def test_unresolved_rows_say_why():
    st = study_noise_model.NoiseStatus(None, True, [], "model")
    st.seed_vars = lambda: {(g, m): SeedVariance(0.05, 100.0, "model") for g in study_noise_model.GROUPS
                            for m in ("R1", "mAP")}
    t3 = {"G1": 60, "P4": 60.2, "R16": 55, "G1+P4": 60.2, "G1+R16": 65, "P4+R16": 69, "G1+P4+R16": 75}
    b = _score(_data({"table3": t3}), {"T3a"}, st).set_index(["comparison", "metric"])
    why = b.loc[("G1+P4 > G1", "mAP"), "why"]
    assert b.loc[("G1+P4 > G1", "mAP"), "verdict"] == "unresolved"
    # the paper's G1+P4 - G1 is 1.91 mAP; an interval of 0.2 +- 0.6 excludes it
    assert why == "effect smaller than the paper's"
    st.seed_vars = lambda: {(g, m): SeedVariance(9.0, 100.0, "model") for g in study_noise_model.GROUPS
                            for m in ("R1", "mAP")}
    t3b = {**t3, "G1+P4": 62.0}
    b = _score(_data({"table3": t3b}), {"T3a"}, st).set_index(["comparison", "metric"])
    assert b.loc[("G1+P4 > G1", "mAP"), "why"].startswith("needs ") and "seeds" in b.loc[("G1+P4 > G1", "mAP"), "why"]


def test_stability_is_one_for_a_clear_effect_and_lower_for_a_marginal_one():
    t3 = {"G1": 60, "P4": 62, "R16": 55, "G1+P4": 70, "G1+R16": 65, "P4+R16": 69, "G1+P4+R16": 75}
    data = _data({"table3": t3}, seeds=(0, 1, 2, 3, 4), noise_sd=0.5)
    ctx = SimpleNamespace(profile="smoke", seeds=data.seeds)
    b = _score(data, {"T3a"})
    st = stability.stability(ctx, b, data, n=10, n_boot=100)
    assert st == {"T3a": 1.0}
    assert scoreboard.claim_verdicts(b).set_index("claim").loc["T3a", "stability"] == 1.0
