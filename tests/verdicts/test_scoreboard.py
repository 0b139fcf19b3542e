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
from henetlib.verdicts import claims, scoreboard, scores

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


def _score(data, ids, noise_status=None, profile="smoke"):
    ctx = SimpleNamespace(profile=profile, seeds=data.seeds)
    st = noise_status or study_noise_model.NoiseStatus(None, False, [], "none")
    cl = [c for c in claims.for_profile(profile) if c.id in ids]
    return scoreboard.scoreboard(ctx, n_boot=200, claims=cl, data=data, noise_model=st, efficiency={})


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


def test_equivalence_by_tost():
    probs = claims._fig4_probs("smoke")
    cells = {(m, p): 50.0 for m in claims.fig4_labels() for p in (0.0, *probs[m])}
    b = _score(_data({"fig4": cells}), {"F4c"})
    assert _only(b, "F4c").test.tolist() == ["equivalent"] and _only(b, "F4c").verdict.tolist() == ["reproduced"]
    cells[("RPE(40)", 0.5)] = 55.0
    b = _score(_data({"fig4": cells}), {"F4c"})
    assert _only(b, "F4c").test.tolist() == ["not equivalent"]
    assert _only(b, "F4c").verdict.tolist() == ["contradicted"]
    cells[("RPE(40)", 0.5)] = 50.9  # inside the margin, but the noise model's interval reaches past it
    st = study_noise_model.NoiseStatus(None, True, [], "model")
    st.seed_vars = lambda: {(g, m): SeedVariance(4.0, 50.0, "model") for g in study_noise_model.GROUPS for m in ("R1", "mAP")}
    b = _score(_data({"fig4": cells}), {"F4c"}, st)
    assert _only(b, "F4c").test.tolist() == ["unresolved"]
    assert _only(b, "F4c")["seeds needed"].iloc[0] > 1


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
    assert f5e["drop(RPE(20)) > drop(RE+RPE(20)) at level 1 under RE"] == pytest.approx(8.0)
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
])
def test_claim_level_rule(rows, expected):
    assert scoreboard.claim_verdict(rows) == expected


def test_es_rows_and_their_paper_column():
    """ES among the four HENet rows from our R1/mAP: the paper column is the same quantity from the paper's
    R1/mAP (not the published ES, chosen among eight models)."""
    row = next(c for c in claims.CLAIMS if c.id == "T1c").rows[0]
    ours_from_paper = scoreboard._paper_es(row)
    assert 0 < ours_from_paper != pytest.approx(scoreboard.published_es_difference(row))
    t1 = {n: 50.0 + 5 * i for i, n in enumerate(claims._H)}
    b = _score(_data({"table1": t1}), {"T1c", "T1a"})
    es = b[b.claim == "T1c"]
    assert (es.metric == "ES").all() and es["ours diff"].notna().all() and (es.lo <= es.hi).all()


def test_efficiency_claims_from_measured_sizes():
    meas = {k: {"inference_size_mb": v, "fps_batch1": s} for k, v, s in
            [("AlignedReID", 90, 200), ("PCB", 95, 190), ("HPM", 300, 80), ("MGN", 250, 110),
             ("HENet(Base)", 150, 160), ("HENet(+Losses)", 200, 195)]}
    ctx = SimpleNamespace(profile="smoke", seeds=(0,))
    cl = [c for c in claims.CLAIMS if c.kind == "efficiency"]
    b = scoreboard.scoreboard(ctx, claims=cl, data=scores.StudyScores((0,)), efficiency=meas,
                          noise_model=study_noise_model.NoiseStatus(None, False, [], "none"))
    v = scoreboard.claim_verdicts(b).set_index("claim")["verdict"]
    assert v["E1a"] == "reproduced" and v["E2"] == "reproduced"
    assert v["E1b"] == "unresolved"  # AlignedReID 200 vs +Losses 195 FPS: within the 5% tie
    meas["PCB"]["inference_size_mb"] = 80
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
    assert set(board["verdict"]) <= {"reproduced", "contradicted", "unresolved"}
    assert (board["lo"] <= board["ours diff"]).all() and (board["ours diff"] <= board["hi"]).all()
    assert "on test" in scoreboard.summary_line(board, "test")
    assert set(empty["verdict"]) == {"not run"}
