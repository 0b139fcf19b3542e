"""What is computed from a trained model and cached beside its result: ranked lists and occlusion curves, each
computed once and then read without the model; a published result without weights, and a damaged model moved
aside (derived results never train)."""

import dataclasses
import warnings

import numpy as np
import pytest

from henetlib.engine import cache
from henetlib.engine.config import make_config
from henetlib.study import derived


@pytest.fixture(scope="module")
def trained(tmp_path_factory, isolated_env):
    """One tiny run (the test profile's all-losses model) in its own results folder."""
    root = tmp_path_factory.mktemp("derived")
    with isolated_env(root):
        res = cache.run(make_config("test", device="cpu"), progress=False)
    return root, res


@pytest.fixture
def in_trained(trained, isolated_env, monkeypatch):
    """The trained run, with the folders pointing at it; loading its model is counted."""
    root, res = trained
    loads = []
    real = derived._load_model
    monkeypatch.setattr(derived, "_load_model", lambda *a, **k: loads.append(1) or real(*a, **k))
    with isolated_env(root):
        yield res, loads


def test_ranked_lists_agree_with_the_evaluation_and_are_computed_once(in_trained):
    res, loads = in_trained
    ranked, query, gallery = derived.ranked_lists(res, topk=5)
    assert ranked.shape == (len(query), 5) and loads == [1]
    qp, gp = np.array([s.pid for s in query]), np.array([s.pid for s in gallery])
    qc, gc = np.array([s.camid for s in query]), np.array([s.camid for s in gallery])
    assert not ((gp[ranked] == qp[:, None]) & (gc[ranked] == qc[:, None])).any()  # same-camera matches removed
    first = np.array(res.per_query["first_rank"])
    valid = first > 0
    assert np.array_equal(gp[ranked[valid, 0]] == qp[valid], first[valid] == 1)  # rank 1 as the run scored it
    again, _, _ = derived.ranked_lists(res, topk=5)
    assert np.array_equal(again, ranked) and loads == [1]  # read from ranked.npz, no model loaded
    assert (res.folder / "ranked.npz").exists()


def test_occlusion_curve_is_cached_per_level_and_its_clean_point_is_the_runs(in_trained):
    res, loads = in_trained
    df = derived.occlusion_curve(res, modes=("re", "rpe"), levels=(0.0, 1.0))
    assert df[["test_occlusion", "level"]].values.tolist() == [["RE", 0.0], ["RE", 1.0], ["RPE(20)", 0.0],
                                                               ["RPE(20)", 1.0]]
    clean = df[df.level == 0]
    assert clean["R1"].tolist() == pytest.approx([res.metrics["R1"]] * 2, abs=1e-4)  # level 0: no occlusion
    assert all(len(pq["ap"]) == len(res.per_query["ap"]) for pq in df["per_query"])
    assert (df[df.level == 1]["mAP"] != clean["mAP"].iloc[0]).all()  # every image erased: other rankings
    n = len(loads)
    again = derived.occlusion_curve(res, modes=("re", "rpe"), levels=(0.0, 1.0))
    assert len(loads) == n and again.drop(columns="per_query").equals(df.drop(columns="per_query"))
    derived.occlusion_curve(res, modes=("re",), levels=(0.5,))  # a new level needs the model once more
    assert len(loads) == n + 1


def test_protocols_frame_and_a_result_without_weights(in_trained, tmp_path):
    res, _ = in_trained
    prot = derived.protocols_frame(res)
    assert prot["protocol"].tolist() == ["flip-l2", "raw"]
    assert prot.set_index("protocol").loc["flip-l2", "R1"] == res.metrics["R1"]
    published = dataclasses.replace(res, source_dir=str(tmp_path))  # published results carry no weights
    with pytest.raises(derived.ModelUnavailable, match="published results carry no weights"):
        derived.ranked_lists(published)
    with pytest.raises(derived.ModelUnavailable, match="occlusion levels"):
        derived.occlusion_curve(published, levels=(0.0,))


def test_damaged_model_is_moved_aside_and_derived_results_never_train(isolated_dirs, monkeypatch):
    cfg = make_config("test", device="cpu", stripes=(1, 4), recovery=True)
    res = cache.run(cfg, progress=False)
    res.model_path.write_bytes(b"\x00" * 64)
    monkeypatch.setattr(cache, "train", lambda *a, **k: pytest.fail("a derived result trained a model"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(derived.ModelDamaged, match="moved to"):
            derived.ranked_lists(res)
    assert list(res.folder.glob("broken-*/model.pt"))
    assert cache.load_result(res.key) is None  # its result.json went too: running it again retrains
