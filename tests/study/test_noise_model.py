"""The seed-noise model as stored (study/noise_model.py): its file per profile and regime, its provenance, and
whether it applies to a study (current, stale, not applicable, missing)."""

from types import SimpleNamespace

from henetlib.engine import cache
from henetlib.stats import SeedVariance
from henetlib.study import noise_model


def _model(**kw) -> noise_model.NoiseModel:
    base = dict(profile="test", profile_settings=noise_model._profile_settings("test"), overrides={},
                code_version=cache.code_version(), dataset="x", dataset_fingerprint="fp", seeds=[0, 1, 2, 3, 4],
                git_commit="abc", date="2026-11-25T10:00:00",
                estimates={"none": {"R1": {"var": 9.0, "df": 100.0, "var_within": 16.0, "configs": 30},
                                       "mAP": {"var": 4.0, "df": 100.0}}})
    return noise_model.NoiseModel(**{**base, **kw})


def test_status_current_stale_and_not_applicable(tmp_path, monkeypatch):
    ctx = SimpleNamespace(profile="test", overrides={}, dataset=lambda: SimpleNamespace(fingerprint=lambda: "fp"))
    p = tmp_path / "test.json"
    assert not noise_model.status(ctx, p).usable and "query-level only" in noise_model.status(ctx, p).note
    _model().save(p)
    st = noise_model.status(ctx, p)
    assert st.usable and not st.stale and st.seed_vars()[("none", "mAP")].var == 4.0
    assert noise_model.NoiseModel.load(p).seeds == [0, 1, 2, 3, 4]  # provenance round trip
    cv = st.config_vars()[("none", "R1")]
    assert cv.var == 16.0 and cv.df == 30 * 4 and st.config_vars()[("none", "mAP")] is None
    _model(code_version="000000000000").save(p)
    st = noise_model.status(ctx, p)
    assert st.usable and st.stale and "STALE" in st.note  # code changed: used, and said
    _model(profile_settings={"epochs": 99}).save(p)
    st = noise_model.status(ctx, p)
    assert not st.usable and "not applicable" in st.note and st.seed_vars() == {}
    ctx2 = SimpleNamespace(profile="test", overrides={"epochs": 2}, dataset=ctx.dataset)
    _model().save(p)
    assert not noise_model.status(ctx2, p).usable


def test_each_regime_has_its_own_noise_model(tmp_path, monkeypatch):
    monkeypatch.setenv("HENET_NOISE_DIR", str(tmp_path))
    assert noise_model.path_for("smoke").name == "smoke.json"
    assert noise_model.path_for("smoke", finetune=True).name == "smoke-finetune.json"
    scratch = SimpleNamespace(profile="test", overrides={}, finetune=False,
                              dataset=lambda: SimpleNamespace(fingerprint=lambda: "fp"))
    tuned = SimpleNamespace(**{**vars(scratch), "finetune": True})
    p = tmp_path / "test.json"
    _model().save(p)
    assert noise_model.status(scratch, p).usable
    assert not noise_model.status(tuned, p).usable  # a from-scratch model never applies to the fine-tuned regime
    assert "fine-tuned" in noise_model.status(tuned).note  # its own file, missing here
    m = _model(overrides={"finetune": True})
    assert m.save().name == "test-finetune.json" and noise_model.status(tuned).usable


def test_a_model_without_an_estimate_gives_none():
    m = _model(seeds=[0, 1, 2])
    sv = m.seed_variance("none", "R1")
    assert isinstance(sv, SeedVariance) and (sv.var, sv.df) == (9.0, 100.0) and "3 seeds" in sv.source
    assert m.seed_variance("occlusion", "R1") is None and m.config_variance("none", "mAP") is None
    assert m.config_variance("none", "R1").df == 30 * (3 - 1)


def test_the_noise_folder_follows_the_published_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("HENET_NOISE_DIR", raising=False)
    monkeypatch.setenv("HENET_PUBLISHED_DIR", str(tmp_path / "pub"))
    assert noise_model.noise_dir() == tmp_path / "pub" / "noise"
    monkeypatch.setenv("HENET_NOISE_DIR", str(tmp_path / "n"))
    assert noise_model.path_for("gpu", finetune=True) == tmp_path / "n" / "gpu-finetune.json"
