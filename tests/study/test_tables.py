"""The study's tables as data: the notebooks' parameters (StudyContext), a table trained and set beside the
paper's, intervals with and without the seed-noise model, captions, and a damaged model retrained once."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from henetlib.engine import cache
from henetlib.engine.config import make_config
from henetlib.stats import SeedVariance
from henetlib.study import derived, grids, tables


def test_table4_sets_ours_beside_the_papers(table4_study):
    df, results = table4_study.table, table4_study.results
    rows = grids.table4_configs("test", device="cpu")
    assert df["Losses"].tolist() == [label for label, _, _ in rows]  # the paper's row order
    assert [r.train_config for r in results] == [c for _, _, c in rows]
    assert (df["FD"] == 2560).all() and (df["seeds"] == 1).all()
    ref = tables.paper_rows("table4")
    assert df["R1 (paper)"].tolist() == [ref[label]["R1"] for label in df["Losses"]]
    assert (df["R1 (paper)"].iloc[0], df["mAP (paper)"].iloc[-1]) == (88.72, 80.60)  # CE only; OIM+Tri+MSE
    assert ((df["R1_lo"] <= df["R1"]) & (df["R1"] <= df["R1_hi"])).all()
    assert ((df["mAP_lo"] <= df["mAP"]) & (df["mAP"] <= df["mAP_hi"])).all()
    assert df["R1"].tolist() == [r.metrics["R1"] for r in results]  # one seed: the run's own R1
    assert set(df["regime"]) <= {"from scratch", "not converged", "paper"} and df["fit mAP"].notna().all()


def test_a_caption_says_what_the_numbers_rest_on(table4_study):
    caption = table4_study.caption
    # what is plotted leads (prose.with_lead, where it is saved); the provenance is in the methods note
    assert caption.startswith("Ours rest on 8 runs of profile test, seed 0: ")
    assert re.search(r"R1 and mAP over \d+ of \d+ queries \(\d+ without a cross-camera match\)", caption)
    assert "95% intervals over queries only" in caption and caption.endswith("METHODS_NOTE.md.")
    note = (table4_study.root / "figures" / "METHODS_NOTE.md").read_text()
    assert "Ours: profile 'test', data set synthreid-tiny, measured on " in note
    assert "Seeds 0." in note and "training noise is not included" in note
    assert "Regime check." in note and "Runs: 1 P x K epochs from random weights." in note


def test_paper_rows_and_summaries():
    t2 = tables.paper_rows("table2")
    assert t2["P(1,4)"] == {"FD": 2048, "R1": 90.17, "R5": 95.68, "R10": 97.30, "mAP": 70.39}
    assert tables.paper_rows("table3")["G1+P4+R16"]["mAP"] == 70.97
    with pytest.raises(ValueError, match="unknown table 'table9'"):
        tables.paper_rows("table9")
    df = pd.DataFrame({"row": ["a", "a", "b"], "seed": [0, 1, 0], "R1": [50.0, 54.0, 60.0], "R5": [1.0] * 3,
                       "R10": [2.0] * 3, "mAP": [30.0, 32.0, 40.0]})
    s = tables.summarise(df, ["row"])
    assert s["R1"].tolist() == [52.0, 60.0] and s["seeds"].tolist() == [2, 1]
    assert s["R1_sd"].iloc[0] == pytest.approx(np.sqrt(8.0)) and np.isnan(s["R1_sd"].iloc[1])
    assert "R1_sd" not in tables.summarise(df[df.seed == 0], ["row"])  # one seed each: no spread column


def test_study_context_reads_seeds_as_papermill_passes_them():
    assert tables.StudyContext("test", seeds="[0, 1]").seeds == (0, 1)
    assert tables.StudyContext("test", seeds="0,1,2").seeds == (0, 1, 2)
    assert tables.StudyContext("test", seeds=[3]).seeds == (3,)
    with pytest.raises(ValueError, match="seeds must be"):
        tables.StudyContext("test", seeds=["a"])
    with pytest.raises(ValueError, match="unknown profile"):
        tables.StudyContext("huge")


def test_study_context_common_and_runs():
    ctx = tables.StudyContext("test", "cpu", data_root="/data/market", overrides={"epochs": 2})
    assert ctx.common == {"device": "cpu", "epochs": 2, "dataset": "market1501", "data_root": "/data/market"}
    assert [c.epochs for _, c in ctx.runs(("table4",))] == [2] * 8
    with pytest.raises(ValueError, match="unknown data set 'mars'"):
        tables.StudyContext("test", dataset_name="mars")
    assert tables.StudyContext("paper", "cpu").start() is None  # no weights: its own error comes when a run starts
    assert tables.all_losses_config(tables.StudyContext("test", "cpu")) == make_config("test", device="cpu")


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
    rng = np.random.default_rng(0)
    pq = {"first_rank": rng.integers(0, 3, 60), "ap": rng.random(60)}
    summ = pd.DataFrame({"Losses": ["a"], "R1": [50.0], "mAP": [40.0]})
    plain = tables.add_intervals(summ, ["Losses"], {"a": [pq]})
    noisy = tables.add_intervals(summ, ["Losses"], {"a": [pq]}, seed_var={("none", "R1"): SeedVariance(9.0, 40.0)})
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
    assert "intervals over queries only" in ctx.caption()
    assert "training noise is not included" in ctx.methods_note()


def test_damaged_model_is_retrained_when_the_caller_decides(isolated_dirs):
    cfg = make_config("test", device="cpu", stripes=(1, 4), recovery=True)
    res = cache.run(cfg, progress=False)
    res.model_path.write_bytes(b"\x00" * 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranked, query, _ = tables.retrain_if_damaged(derived.ranked_lists, res)
    assert len(ranked) == len(query)
    assert cache.load_result(res.key) is not None
