import json

import pytest
import torch

from henetlib.engine import cache, evaluator
from henetlib.engine.config import TrainConfig, make_config
from henetlib.engine.train import load_trained, train
from henetlib.study import grids, tables


def test_config_validation_and_identity():
    with pytest.raises(ValueError, match="erasing mode"):
        TrainConfig(erasing="blur")
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp8")
    with pytest.raises(ValueError, match="profile"):
        make_config("huge")
    a = make_config("test", device="cpu")
    b = make_config("test", device="cuda") if torch.cuda.is_available() else make_config("test", device="auto")
    assert a.identity() == b.identity()  # the device does not change what a run is
    # MSE without R16 acts as no MSE: same identity, same name
    assert make_config("test", recovery=False, mse=True).identity() == make_config("test", recovery=False, mse=False).identity()
    assert "MSE" not in make_config("test", recovery=False).name()
    assert TrainConfig.from_dict(a.to_dict()) == a


def test_train_tiny_and_metrics(isolated_dirs):
    out = train(make_config("test", device="cpu"), progress=False)
    assert len(out.history) == 1 and out.train_images > 0
    for k in ("R1", "R5", "R10", "mAP", "mINP"):
        assert 0.0 <= out.metrics[k] <= 100.0
    assert set(out.history[0].terms) == {"ce", "oim", "triplet", "mse"}


def test_dataloader_path_with_per_image_erasing(isolated_dirs):
    """The path for data sets too large for memory: DataLoader workers, OpenCV RPE per image."""
    out = train(make_config("test", device="cpu", data_path="loader", erasing="re+rpe"), progress=False)
    assert out.train_images > 0 and out.metrics["mAP"] >= 0


def test_interrupted_run_resumes(isolated_dirs, monkeypatch):
    cfg = make_config("test", device="cpu", epochs=2, checkpoint_every=1)
    folder = isolated_dirs / "run"

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluator.Evaluator, "__call__", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, out_dir=folder, progress=False)
    saved = torch.load(folder / "last.pt", weights_only=True)  # checkpoints hold no pickled objects
    assert saved["epoch"] == 0
    monkeypatch.undo()
    calls = []
    real = evaluator.Evaluator.__call__
    monkeypatch.setattr(evaluator.Evaluator, "__call__", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    out = train(cfg, out_dir=folder, progress=False)
    assert [h.epoch for h in out.history] == [0, 1]  # epoch 0 came from the checkpoint
    assert out.history[0].loss == saved["history"][0]["loss"]
    assert calls == [1]


def test_run_caches_and_sweep_dedups(isolated_dirs, monkeypatch):
    cfg = make_config("test", device="cpu")
    res = cache.run(cfg, progress=False)
    f = res.folder / "result.json"
    stored = json.loads(f.read_text())
    assert stored["metrics"]["R1"] == res.metrics["R1"] and stored["hardware"] and stored["code_version"]
    assert res.model_path.exists() and not (res.folder / "last.pt").exists()
    model, cfg2 = load_trained(res.model_path, "cpu")
    assert cfg2 == cfg and not model.training

    def boom(*a, **k):
        raise AssertionError("a cached configuration was trained again")

    monkeypatch.setattr(cache, "train", boom)
    assert cache.run(cfg, progress=False).key == res.key
    out = cache.sweep([cfg, make_config("test", device="cpu")], progress=False)
    assert [r.key for r in out] == [res.key, res.key]


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


def test_cli_bad_data_root_is_one_clear_line(tmp_path, capsys):
    from henetlib.cli import cli

    assert cli(["data", "--data-root", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: data set folder") and "bounding_box_train" in err and "Traceback" not in err


def test_paper_profile_refuses_random_weights(tmp_path):
    with pytest.raises(ValueError, match="from_scratch"):
        make_config("paper")
    assert make_config("paper", from_scratch=True).pretrained is None
    # opting out does not change what the run is
    assert make_config("paper", from_scratch=True).identity() == make_config(
        "paper", pretrained=None, from_scratch=True).identity()


def test_both_test_protocols_and_per_query_vectors(isolated_dirs):
    out = train(make_config("test", device="cpu"), progress=False)
    prot = out.metrics["protocols"]
    assert set(prot) == {"flip-l2", "raw"}
    assert prot["flip-l2"]["R1"] == out.metrics["R1"]
    pq = out.per_query
    assert len(pq["first_rank"]) == len(pq["ap"]) == len(out.dataset.query)
    valid = [r for r in pq["first_rank"] if r > 0]
    # the evaluation counts in float32: agreement to float32 rounding of a percentage
    assert abs(100 * sum(r == 1 for r in valid) / len(valid) - out.metrics["R1"]) < 1e-4
    with pytest.raises(ValueError, match="test_protocol"):
        make_config("test", test_protocol="cosine")
