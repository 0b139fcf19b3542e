"""A run as data: TrainConfig's checks and identity, the profiles, overrides, the fine-tuned regime, and the
paper profile that refuses to start from random weights."""

import pytest
import torch

from henetlib.engine.config import FINETUNE, PROFILES, TrainConfig, make_config


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


def test_paper_profile_refuses_random_weights(tmp_path):
    with pytest.raises(ValueError, match="from_scratch"):
        make_config("paper")
    assert make_config("paper", from_scratch=True).pretrained is None
    # opting out does not change what the run is
    assert make_config("paper", from_scratch=True).identity() == make_config(
        "paper", pretrained=None, from_scratch=True).identity()


def test_compile_field_modes_and_old_values():
    assert TrainConfig().compile == "none"
    assert TrainConfig(compile=True).compile == "default"  # stored results from before hold a bool
    assert TrainConfig.from_dict({**TrainConfig().to_dict(), "compile": False}).compile == "none"
    assert "compile" not in TrainConfig(compile="cuda-graph").identity()
    with pytest.raises(ValueError, match="compile"):
        TrainConfig(compile="fast")
    with pytest.raises(ValueError, match="K >= 2"):
        make_config("test", k=1)


def test_bad_run_parameters_fail_at_config_time(tmp_path):
    with pytest.raises(ValueError, match="stripes must be distinct"):
        make_config("test", stripes=(0,))
    with pytest.raises(ValueError, match="stripes must be distinct"):
        make_config("test", stripes=(4, 4))
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        make_config("test", pretrained=str(tmp_path / "nope.pth"))
    with pytest.raises(ValueError, match="erasing probability"):
        make_config("test", erasing="rpe", erasing_p=1.5)
    with pytest.raises(ValueError, match="test_protocol"):
        make_config("test", test_protocol="cosine")


@pytest.mark.parametrize("profile", ["test", "smoke", "gpu"])
def test_a_profile_sets_its_sizes(profile):
    cfg = make_config(profile)
    for k, v in PROFILES[profile].items():
        assert getattr(cfg, k) == (tuple(v) if isinstance(v, list) else v), (profile, k)
    assert cfg.input_size == (PROFILES[profile]["height"], PROFILES[profile]["width"])


def test_overrides_go_on_top_and_none_is_ignored():
    cfg = make_config("test", epochs=3, lr=None, stripes=[1, 2], seed=7)
    assert (cfg.epochs, cfg.lr, cfg.stripes, cfg.seed) == (3, PROFILES["test"]["lr"], (1, 2), 7)
    with pytest.raises(TypeError):
        make_config("test", epoch=3)  # a misspelt field is an error, not ignored


def test_finetune_is_the_profiles_pretrained_regime():
    cfg = make_config("smoke", finetune=True)
    assert cfg.pretrained == FINETUNE["smoke"]["pretrained"] == "synthreid-pretrain:smoke"
    assert (cfg.epochs, cfg.milestones, cfg.lr) == (16, (13,), 2.8e-4)
    assert cfg.pretrain_profile == "smoke" and cfg.pretrained_path.endswith(".pt")
    assert cfg.identity() != make_config("smoke").identity()  # the two regimes never share a cache entry
    assert make_config("smoke", finetune=False) == make_config("smoke")
    for profile in ("test", "paper"):
        with pytest.raises(ValueError, match=f"profile '{profile}' has no pretrained regime"):
            make_config(profile, finetune=True)


def test_identity_keeps_what_the_run_computes():
    a = make_config("test")
    ident = a.identity()
    assert not {"device", "data_path", "checkpoint_every", "compile", "sync_bn"} & set(ident)
    assert make_config("test", checkpoint_every=5, data_path="loader").identity() == ident
    assert make_config("test", seed=1).identity() != ident and make_config("test", lr=2e-3).identity() != ident
    # losses as they act: OIM needs a P(k) branch, the triplet a stripe branch
    g1 = make_config("test", stripes=(1,), recovery=False)
    assert g1.effective_losses() == (False, True, False) and g1.identity()["oim"] is False


def test_names_say_layout_losses_and_erasing():
    assert make_config("test").name() == "G1+P4+R16 | CE+OIM+Tri+MSE | none | s0"
    cfg = make_config("test", stripes=(1,), recovery=False, erasing="re+rpe", erasing_p=0.25, seed=2)
    assert cfg.name() == "G1 | CE+Tri | RE+RPE(20)@0.25 | s2"


def test_from_dict_ignores_fields_it_does_not_know():
    a = make_config("test", stripes=(1, 2))
    d = {**a.to_dict(), "a_field_from_the_future": 1}
    assert TrainConfig.from_dict(d) == a
    assert TrainConfig.from_dict({**a.to_dict(), "stripes": [1, 2]}).stripes == (1, 2)  # JSON lists read back
