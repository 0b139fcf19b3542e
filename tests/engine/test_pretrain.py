"""Pretraining on SynthReID's own set (a stand-in for ImageNet): no identity shared with the study's sets, the
committed backbone against its provenance record, and the command on a tiny set."""

import json
from dataclasses import asdict

import pytest
import torch

from henetlib.engine import pretrain
from henetlib.method.model import HENet


def test_pretraining_set_shares_no_identity_with_the_study_sets():
    """The stand-in for ImageNet never sees a study identity (seed 1 against the study's seed 0)."""
    from henetlib.data.synth import PROFILES

    for name in ("pretrain-small", "pretrain-full"):
        assert PROFILES[name].seed not in (PROFILES["smoke"].seed, PROFILES["small"].seed)
    assert pretrain.shared_identities("pretrain-small") == []  # tiny, smoke, small and full
    assert pretrain.shared_identities("pretrain-full", ("smoke",)) == []


def test_shared_identities_finds_a_shared_identity():
    """The check can fail: a set with the study's seed shares every identity."""
    assert pretrain.shared_identities("tiny", ("small",))[0][1] == "small"


def test_committed_smoke_backbone_matches_its_provenance():
    weights = pretrain.weights_path("smoke")
    rec = pretrain.check_provenance(weights)  # SHA-256, config hash, command -> config
    assert rec["config"] == asdict(pretrain.PRETRAIN_PROFILES["smoke"])  # what the profile builds today
    assert rec["command"] == "python -m henetlib pretrain --profile smoke"
    assert rec["data"]["set"] == "pretrain-small"
    model = HENet(10, (1, 4), True, pretrain.PRETRAIN_PROFILES["smoke"].backbone, str(weights), input_size=(64, 32))
    state = torch.load(weights, map_location="cpu", weights_only=True)
    assert torch.equal(model.encoder[0].weight, state["conv1.weight"])  # loaded, not random


def test_provenance_check_catches_a_changed_file(tmp_path):
    src = pretrain.weights_path("smoke")
    dst = tmp_path / src.name
    state = torch.load(src, map_location="cpu", weights_only=True)
    state["conv1.weight"] = state["conv1.weight"] + 1
    torch.save(state, dst)
    dst.with_suffix(".json").write_text(pretrain.provenance_path(src).read_text())
    with pytest.raises(ValueError, match="SHA-256"):
        pretrain.check_provenance(dst)


def test_command_round_trip():
    cfg = pretrain.config_for("smoke", epochs=3, lr=1e-3)
    cmd = pretrain.command_for(cfg)
    assert cmd == "python -m henetlib pretrain --profile smoke --epochs 3 --lr 0.001"
    assert pretrain.config_for("smoke", **pretrain._parse_command(cmd)) == cfg
    with pytest.raises(ValueError, match="paper profile"):
        pretrain.config_for("paper")


def test_pretrain_tiny_writes_weights_and_record(tmp_path, monkeypatch):
    """The whole command on a tiny set: weights HENet can load, and a record that checks out."""
    monkeypatch.setenv("HENET_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setitem(pretrain.PRETRAIN_PROFILES, "smoke", pretrain.PretrainConfig(
        "smoke", "resnet18-half", "tiny", 64, 32, epochs=1, batch_size=16, lr=1e-3))
    out = tmp_path / "w.pt"
    rec = pretrain.pretrain(pretrain.config_for("smoke"), out, device="cpu", progress=False)
    assert pretrain.check_provenance(out)["sha256"] == rec["sha256"]
    assert json.loads(out.with_suffix(".json").read_text())["steps"] == rec["steps"] > 0
    HENet(5, (1,), False, "resnet18-half", str(out), input_size=(64, 32))
