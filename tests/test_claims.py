"""Claims as the paper words them: quotes, contrast kinds, verdict rules, each on a synthetic case with a known
answer (no training), and one scoreboard end to end on the test profile."""

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from henetlib.engine import cache
from henetlib.stats import SeedVariance
from henetlib.study import grids, publish, tables
from henetlib.study import noise_model as study_noise_model
from henetlib.verdicts import claims, scoreboard, scores

PAPER = Path(__file__).resolve().parents[2] / "shared" / "paper" / "HENet-paper.txt"
Q = 200


def _paper_lines() -> list[str]:
    if not PAPER.exists():
        pytest.skip(f"the paper's text is not at {PAPER}")
    return PAPER.read_text().split("\n")


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def _lines_text(lines: list[str], spec: str) -> str:
    a, _, b = spec.partition("-")
    chunk = lines[int(a) - 1: int(b or a)]
    text = ""
    for line in chunk:  # undo the line-end hyphenation of the extraction
        text = text[:-1] + line if text.endswith("-") else f"{text} {line}"
    return _norm(text)


def test_every_claim_quotes_the_paper_at_its_lines():
    lines = _paper_lines()
    for c in [*claims.CLAIMS, *claims.OUT_OF_SCOPE]:
        assert _norm(c.quote) in _lines_text(lines, c.lines), (c.id, c.lines)


def test_the_paper_puts_every_numeric_row_on_the_claimed_side():
    """Directions come from the sentences; the paper's own numbers must agree with every row where it has them
    (the readings of Tables 3-4 were chosen so: each combination against its own constituents)."""
    seen = 0
    for c in claims.CLAIMS:
        for r in c.rows:
            for m in ("R1", "mAP"):
                e = scoreboard.paper_effect(c, r, m)
                if np.isfinite(e):
                    seen += 1
                    assert (abs(e) < r.margin) if r.margin else r.direction * e > 0, (c.id, r.label, m, e)
    assert seen > 60


def test_strict_readings_would_fail_in_the_paper():
    """Why T3a and T4a compare each combination with its own constituents: the strict reading fails on the
    paper's own numbers."""
    t3 = tables.paper_rows("table3")
    assert t3["G1+R16"]["R1"] < t3["P4"]["R1"]
    t4 = tables.paper_rows("table4")
    assert t4["OIM+MSE"]["R1"] < t4["Tri"]["R1"]


@pytest.mark.parametrize("profile", ["smoke", "gpu"])
def test_claim_rows_name_configurations_the_study_trains(profile):
    keys = {
        "table1": set(grids.TABLE1_ROWS), "table2": set(tables.paper_rows("table2")),
        "table3": set(tables.paper_rows("table3")), "table4": set(tables.paper_rows("table4")),
        "fig4": {(r[0], float(r[1])) for r in grids.fig4_configs(profile)},
        "fig5": {(m, t, float(x)) for m in claims._FIG5_MODELS for t in claims._FIG5_TESTS
                 for x in grids.FIG5_LEVELS[profile]},
    }
    cl = claims.for_profile(profile)
    for c in cl:
        assert c.rows, c.id  # every claim has a testable row on smoke and gpu
        if c.kind != "efficiency":
            for r in c.rows:
                assert {k for k, _ in r.weights} <= keys[c.grid], (c.id, r.label)
    ids = {c.id for c in cl}
    assert {"T1a", "T1b", "E1a", "E1b", "T3a", "T4a", "F4a", "F4b", "F4c", "F4d", "F4e", "F5a", "F5b", "F5c", "F5d",
            "F5e"} <= ids
    assert "F4.1" not in ids  # "RPE(20) > RE" has no sentence behind it


def test_fig4_and_fig5_sweeps_are_curves():
    for p in ("smoke", "gpu"):
        probs = grids.FIG4_PROBS[p]
        assert len(probs) + 1 >= 4 and max(probs) > 0.5  # p = 0 is the shared no-erasing run
        assert len(grids.FIG5_LEVELS[p]) >= 4


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


def test_scoreboard_trains_and_scores_the_test_profile(isolated_dirs):
    ctx = tables.StudyContext("test", "cpu")
    board = scoreboard.scoreboard(ctx, n_boot=100, claims=claims.for_grid("table4"))
    assert len(board) == 2 * sum(len(c.rows) for c in claims.for_grid("table4"))
    assert set(board["verdict"]) <= {"reproduced", "contradicted", "unresolved"}
    assert (board["lo"] <= board["ours diff"]).all() and (board["ours diff"] <= board["hi"]).all()
    assert "on test" in scoreboard.summary_line(board, "test")
    other = tables.StudyContext("test", "cpu", seeds=(7,))  # nothing trained, nothing published
    empty = scoreboard.scoreboard(other, n_boot=50, claims=claims.for_grid("table2"), train=False)
    assert set(empty["verdict"]) == {"not run"}


def test_study_context_reads_seeds_as_papermill_passes_them():
    assert tables.StudyContext("test", seeds="[0, 1]").seeds == (0, 1)
    assert tables.StudyContext("test", seeds="0,1,2").seeds == (0, 1, 2)
    assert tables.StudyContext("test", seeds=[3]).seeds == (3,)
    with pytest.raises(ValueError, match="seeds must be"):
        tables.StudyContext("test", seeds=["a"])
    with pytest.raises(ValueError, match="unknown profile"):
        tables.StudyContext("huge")


def test_publish_round_trip_renders_without_training(isolated_dirs, monkeypatch):
    from henetlib.engine.config import make_config

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
    import io
    import tarfile


    bad = isolated_dirs / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        data = b"x"
        info = tarfile.TarInfo("../../etc/evil")
        info.size = 1
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError, match="unexpected member"):
        publish.unpack(bad, "test")


def _board(verdicts: dict[str, str], regime: str = "-"):
    import pandas as pd

    rows = [{"claim": cid, "kind": "difference", "metric": "R1", "verdict": v, "seeds needed": np.nan, "basis": "",
             "regime": regime, "comparison": "a vs b", "text": ""} for cid, v in verdicts.items()]
    b = pd.DataFrame(rows)
    b.attrs["profile"] = "smoke"
    return b


def test_compare_regimes_names_flips_and_holds(monkeypatch):
    scratch = _board({"T2-1": "contradicted", "T2-2": "reproduced", "T3-1": "unresolved", "T4-1": "contradicted"})
    tuned = _board({"T2-1": "reproduced", "T2-2": "reproduced", "T3-1": "contradicted", "T4-1": "not run"}, "paper")
    seen = []

    def fake(ctx, n_boot=1000, train=True, **kw):
        seen.append((ctx.finetune, train))
        return tuned if ctx.finetune else scratch

    monkeypatch.setattr(scoreboard, "scoreboard", fake)
    ctx = tables.StudyContext("smoke", "cpu", finetune=False)
    both = scoreboard.compare_regimes(ctx, n_boot=10)
    assert seen == [(False, False), (True, False)]  # nothing is trained
    change = dict(zip(both["claim"], both["change"], strict=True))
    assert change == {"T2-1": "flips: contradicted -> reproduced", "T2-2": "holds (reproduced in both)",
                      "T3-1": "resolved only fine-tuned", "T4-1": "not comparable (runs missing)"}
    assert both.attrs["comparable"] == 3
    assert set(both["regime (fine-tuned)"]) == {"paper"}
    # the own regime's board is reused, not scored again
    seen.clear()
    scoreboard.compare_regimes(tables.StudyContext("smoke", "cpu", finetune=True), board=tuned)
    assert seen == [(False, False)]


def test_compare_regimes_on_a_profile_with_one_regime():
    both = scoreboard.compare_regimes(tables.StudyContext("test", "cpu"))
    assert both.attrs["comparable"] == 0 and "one regime" in both.attrs["summary"]


def test_study_context_finetune():
    ctx = tables.StudyContext("smoke", "cpu", finetune="True")  # papermill may pass text
    assert ctx.finetune is True and ctx.common["finetune"] is True
    assert "fine-tuned from the backbone pretrained on SynthReID" in ctx.start()
    assert "16 P x K epochs" in ctx.start()
    assert tables.StudyContext("smoke", "cpu", finetune=False).start() == "8 P x K epochs from random weights"
    assert tables.StudyContext("smoke", "cpu").finetune is True  # smoke's default regime (study.DEFAULT_FINETUNE)
    assert tables.StudyContext("smoke", "cpu", finetune="None").finetune is True
    assert tables.StudyContext("test", "cpu").finetune is False
    with pytest.raises(ValueError, match="no pretrained regime"):
        tables.StudyContext("test", "cpu", finetune=True)


def test_table_intervals_add_the_noise_model_to_one_seed_rows():
    import pandas as pd

    rng = np.random.default_rng(0)
    pq = {"first_rank": rng.integers(0, 3, 60), "ap": rng.random(60)}
    summ = pd.DataFrame({"Losses": ["a"], "R1": [50.0], "mAP": [40.0]})
    plain = tables.add_intervals(summ, ["Losses"], {"a": [pq]})
    noisy = tables.add_intervals(summ, ["Losses"], {"a": [pq]}, seed_var={("trained", "R1"): SeedVariance(9.0, 40.0)})
    w = lambda d, m: float(d[f"{m}_hi"].iloc[0] - d[f"{m}_lo"].iloc[0])  # noqa: E731
    # sd 3 points, added in quadrature to the query bootstrap's: sqrt(q^2 + (t * 3)^2) > q
    assert w(noisy, "R1") > w(plain, "R1") + 1.0
    assert w(noisy, "mAP") == pytest.approx(w(plain, "mAP"))  # no estimate for mAP: query-level only
    other = tables.add_intervals(summ, ["Losses"], {"a": [pq]}, seed_var={("occlusion", "R1"): SeedVariance(9.0, 40.0)})
    assert w(other, "R1") == pytest.approx(w(plain, "R1"))  # another group's estimate is not used


def test_captions_say_whether_training_noise_is_in_the_intervals(isolated_dirs, monkeypatch):
    monkeypatch.setenv("HENET_NOISE_DIR", str(isolated_dirs / "noise"))
    ctx = tables.StudyContext("test", "cpu")
    assert ctx.seed_vars() == {}
    assert "training noise is not included" in ctx.caption()
