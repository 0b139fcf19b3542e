"""Evaluating a trained model: both test protocols from one forward, per-query vectors, occluded and clean
queries scored apart, test-time occlusion, and the evaluators kept per data set."""

from pathlib import Path

import numpy as np
import pytest
import torch

from henetlib.engine.config import make_config
from henetlib.engine.evaluator import Evaluator, apply_protocol, cached_evaluator
from henetlib.engine.train import train
from henetlib.method.rpe import ErasingConfig


@pytest.fixture(scope="module")
def trained(tmp_path_factory, isolated_env):
    """One tiny run (the test profile), shared by the tests of this module."""
    with isolated_env(tmp_path_factory.mktemp("evaluator")):
        return train(make_config("test", device="cpu"), progress=False)


def test_both_test_protocols_and_per_query_vectors(trained):
    out = trained
    prot = out.metrics["protocols"]
    assert set(prot) == {"flip-l2", "raw"}
    assert prot["flip-l2"]["R1"] == out.metrics["R1"]
    pq = out.per_query
    assert len(pq["first_rank"]) == len(pq["ap"]) == len(out.dataset.query)
    valid = [r for r in pq["first_rank"] if r > 0]
    # the evaluation counts in float32: agreement to float32 rounding of a percentage
    assert abs(100 * sum(r == 1 for r in valid) / len(valid) - out.metrics["R1"]) < 1e-4


def test_occluded_and_clean_queries_are_scored_apart(trained):
    """SynthReID marks its occluded queries: their R1 and the clean ones' are the per-query first ranks of each
    subset, and together they make the overall R1."""
    ds, m, pq = trained.dataset, trained.metrics, trained.per_query
    occluded = np.array([Path(s.path).name in ds.occluded_query for s in ds.query])
    assert 0 < occluded.sum() < len(occluded)
    ranks = np.array(pq["first_rank"])
    for name, sel in (("occluded", occluded), ("clean", ~occluded)):
        valid = ranks[sel][ranks[sel] > 0]
        assert m[f"R1_{name}"] == pytest.approx(100 * np.mean(valid == 1), abs=1e-4), name
    n_occ, n_clean = (ranks[occluded] > 0).sum(), (ranks[~occluded] > 0).sum()
    mixed = (n_occ * m["R1_occluded"] + n_clean * m["R1_clean"]) / (n_occ + n_clean)
    assert mixed == pytest.approx(m["R1"], abs=1e-4)


def test_an_evaluator_gives_the_runs_numbers_and_occludes_deterministically(trained):
    ev = Evaluator(trained.dataset, (64, 32), "cpu")
    raw = ev(trained.model, protocol="raw", subsets=False)
    assert raw["R1"] == pytest.approx(trained.metrics["protocols"]["raw"]["R1"], abs=1e-4)
    assert "R1_occluded" not in raw
    occ = ErasingConfig("rpe", 1.0, 20)
    a, b = ev(trained.model, occlusion=occ, seed=3), ev(trained.model, occlusion=occ, seed=3)
    assert a == b and a["mAP"] != trained.metrics["mAP"]  # every image erased: other features, same draws
    with pytest.raises(ValueError, match="protocol must be one of"):
        ev(trained.model, protocol="cosine")


def test_apply_protocol_known_answers():
    f, f_flip = torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, 0.0]])
    assert torch.equal(apply_protocol(f, None, "raw"), f)
    assert torch.allclose(apply_protocol(f, f_flip, "flip-l2"), torch.tensor([[2.0, 2.0]]) / 8**0.5)


def test_evaluators_are_kept_per_data_set_size_and_device(trained):
    ds = trained.dataset
    a = cached_evaluator(ds, (64, 32), "cpu")
    assert cached_evaluator(ds, (64, 32), torch.device("cpu")) is a
    assert cached_evaluator(ds, (32, 16), "cpu") is not a
