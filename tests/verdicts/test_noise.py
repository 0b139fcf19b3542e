"""Seed-noise estimation (verdicts/noise.py): the residual variance and its df, the equal-variance check, the
drift test, the estimate from a study's scores, the check configurations, and verdicts compared between two
boards, each on a synthetic case with a known answer."""

import json

import numpy as np
import pandas as pd
import pytest

from henetlib.stats import SeedVariance
from henetlib.study import tables
from henetlib.verdicts import noise, scores


def _matrix(c, s, sd, rng, sd_config=None):
    """(C, S): configuration means + a seed effect shared by all (large) + training noise of ``sd`` (per
    configuration when ``sd_config``)."""
    sds = np.full((c, 1), sd) if sd_config is None else np.asarray(sd_config, dtype=float)[:, None]
    return rng.normal(50, 5, (c, 1)) + rng.normal(0, 8, (1, s)) + rng.normal(0, 1, (c, s)) * sds


def test_residual_variance_recovers_sigma2_and_its_df():
    rng = np.random.default_rng(0)
    x = _matrix(40, 5, 2.0, rng)
    var, df, r = noise.residual_variance(x)
    assert df == 39 * 4 and var == pytest.approx(4.0, rel=0.15)
    assert np.allclose(r.sum(axis=0), 0) and np.allclose(r.sum(axis=1), 0)
    lo, hi = SeedVariance(var, df).interval()
    assert lo < 4.0 < hi


def test_equal_variance_check_flags_one_noisy_configuration():
    rng = np.random.default_rng(1)
    assert noise.equal_variance_check(_matrix(20, 8, 1.0, rng))["p"] > 0.05
    sds = [1.0] * 19 + [8.0]
    res = noise.equal_variance_check(_matrix(20, 8, 1.0, rng, sds))
    assert res["p"] < 0.05 and not res["equal"] and res["bartlett_p"] < 0.05


def test_drift_test_holds_under_the_model_and_flags_inflated_noise():
    rng = np.random.default_rng(2)
    sv = SeedVariance(4.0, 100.0)
    # under the model: seed b - seed a per configuration, plus a shared seed effect that must cancel
    ps = [noise.drift_test(rng.normal(0, np.sqrt(2 * 4.0), 6) + 5.0, sv)["p"] for _ in range(400)]
    assert 0.02 < np.mean(np.array(ps) < 0.05) < 0.09  # the nominal 5% false-alarm rate
    flagged = noise.drift_test(rng.normal(0, np.sqrt(2 * 4.0) * 4, 6), sv)
    assert flagged["drift"] and flagged["observed_sd"] > 2 * flagged["predicted_sd"]


def _scores(sd, seeds=(0, 1, 2, 3, 4), rng=None):
    """A StudyScores of 12 Table 3/4 configurations whose per-seed mAP carries training noise ``sd``."""
    rng = rng or np.random.default_rng(3)
    q = 100
    base = rng.uniform(0.3, 0.7, q)
    seed_fx = rng.normal(0, 0.05, len(seeds))
    data = scores.StudyScores(tuple(seeds))
    for grid, keys in (("table3", ["G1", "P4", "R16", "G1+P4", "G1+R16", "P4+R16"]),
                       ("table4", ["CE only", "OIM", "Tri", "MSE", "OIM+Tri", "OIM+MSE"])):
        for k in keys:
            mu = rng.uniform(-0.1, 0.1)
            lst = []
            for i, _ in enumerate(seeds):
                ap = np.clip(base + mu + seed_fx[i] + rng.normal(0, sd / 100), 0, 1)
                lst.append({"first_rank": np.where(ap > 0.5, 1, 2).tolist(), "ap": ap.tolist()})
            data.per_query.setdefault(grid, {})[k] = lst
            data.ident[(grid, k)] = f"{grid}|{k}"
    data.ident[("table4", "CE only")] = data.ident[("table3", "G1")]  # a shared run counts once
    return data


def test_estimate_from_scores_recovers_the_training_noise():
    est = noise.estimate_from_scores(_scores(2.0))
    sv = est[("none", "mAP")]
    assert sv.df == (11 - 1) * (5 - 1)  # 12 keys, one shared: 11 configurations
    assert sv.var == pytest.approx(4.0, rel=0.5)
    assert noise.estimate_from_scores(_scores(2.0, seeds=(0,))) == {}


def test_erasing_runs_get_their_own_seed_variance():
    """Configurations trained with erasing are pooled apart from those without: here they vary 3x as much."""
    data = _scores(1.0)
    rng = np.random.default_rng(5)
    base = np.asarray(data.per_query["table3"]["G1"][0]["ap"])
    for i in range(6):
        key = ("RE", 0.25 * (i + 1))
        lst = []
        for _ in data.seeds:
            ap = np.clip(base + rng.normal(0, 3.0 / 100), 0, 1)
            lst.append({"first_rank": np.where(ap > 0.5, 1, 2).tolist(), "ap": ap.tolist()})
        data.per_query.setdefault("fig4", {})[key] = lst
        data.ident[("fig4", key)] = json.dumps({"erasing": "re", "erasing_p": key[1]})
    est = noise.estimate_from_scores(data)
    assert est[("erasing", "mAP")].df == (6 - 1) * (5 - 1)
    assert est[("erasing", "mAP")].var > 4 * est[("none", "mAP")].var


def test_check_configs_are_chosen_from_the_claims_alone():
    ctx = tables.StudyContext("smoke", "cpu")
    a = noise.check_configs(ctx)
    assert len(a) == noise.N_CHECK and len({c.name() for c in a}) == noise.N_CHECK
    assert all(c.seed == 0 for c in a)
    assert [c.name() for c in noise.check_configs(ctx)] == [c.name() for c in a]  # stable


def test_compare_verdicts_counts_flips_and_coverage():
    default = pd.DataFrame({"claim": ["A", "A", "B"], "comparison": ["x", "y", "z"], "metric": ["R1"] * 3,
                            "verdict": ["reproduced", "unresolved", "reproduced"], "lo": [1.0, -1.0, 0.5],
                            "hi": [3.0, 1.0, 2.0], "ours diff": [2.0, 0.0, 1.0]})
    ref = default.assign(verdict=["reproduced", "reproduced", "contradicted"], **{"ours diff": [2.5, 0.4, -1.0]})
    out = noise.compare_verdicts(default, ref)
    assert out["rows"] == 3 and out["opposite"] == 1 and out["agree"] == 1
    assert out["coverage"] == pytest.approx(2 / 3)


def test_held_out_check_is_about_one_when_the_variance_is_right():
    """Seed 0 against the held-out seeds, scaled by their own spread: mean z^2 near 1 when the runs vary as
    modelled; far above 1 when seed 0 is shifted."""
    data = _scores(2.0, seeds=tuple(range(6)), rng=np.random.default_rng(11))
    res = noise.held_out_check(data)["none"]["mAP"]
    assert res["configs"] == 11 and 0.2 < res["mean_z2"] < 3.0
    for lst in data.per_query["table3"].values():
        lst[0] = {**lst[0], "ap": (np.clip(np.asarray(lst[0]["ap"]) + 0.1, 0, 1)).tolist()}
    data._cache.clear()
    shifted = noise.held_out_check(data)["none"]["mAP"]
    assert shifted["mean_z2"] > 3 * res["mean_z2"] and shifted["covered"] < res["covered"]
