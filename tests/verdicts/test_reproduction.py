"""The reproduction check: fresh runs against the published study's prediction intervals, and one-seed verdicts
against the published ones, on synthetic scores with a known answer."""

import json
from types import SimpleNamespace

import numpy as np

from henetlib.verdicts import reproduction, scores

Q = 120


_U = np.random.default_rng(9).permutation((np.arange(Q) + 0.5) / Q)  # fixed per query


def _pq(mean: float, rng: np.random.Generator) -> dict:
    """AP = mean + query noise; R1 hits where a fixed per-query uniform is below AP (R1 follows mAP)."""
    ap = np.clip(mean / 100 + rng.normal(0, 0.05, Q), 0, 1)
    return {"first_rank": np.where(_U < ap, 1, 3).tolist(), "ap": ap.tolist()}


def _study(means: dict[str, float], seeds, sd: float, rng) -> scores.StudyScores:
    data = scores.StudyScores(tuple(seeds), query_pids=np.arange(Q) // 3)
    for key, mu in means.items():
        data.per_query.setdefault("table4", {})[key] = [_pq(mu + rng.normal(0, sd), rng) for _ in seeds]
        data.ident[("table4", key)] = json.dumps({"name": key, "erasing": "none"})
    return data


MEANS = {"CE only": 50.0, "OIM": 52.0, "Tri": 55.0, "MSE": 51.0, "OIM+Tri": 56.0, "OIM+MSE": 53.0,
         "Tri+MSE": 56.5, "OIM+Tri+MSE": 58.0}


def test_fresh_runs_inside_their_intervals_and_one_moved_out_is_named():
    rng = np.random.default_rng(0)
    published = _study(MEANS, range(5), 1.0, rng)
    fresh = _study(MEANS, (0,), 1.0, np.random.default_rng(1))
    table = reproduction.prediction_table(published, fresh)
    assert len(table) == len(MEANS)
    assert table["inside"].sum() >= len(MEANS) - 1  # a fresh draw of the same noise
    moved = dict(MEANS, Tri=MEANS["Tri"] - 15.0)  # this machine's Tri is 15 points off: outside
    fresh2 = _study(moved, (0,), 1.0, np.random.default_rng(1))
    t2 = reproduction.prediction_table(published, fresh2).set_index("configuration")
    assert not t2.loc["Tri", "inside"] and not t2.loc["Tri", "mAP inside"]
    assert t2.loc["Tri", "mAP lo"] < t2.loc["Tri", "mAP published"] < t2.loc["Tri", "mAP hi"]


def test_the_interval_widens_with_the_published_seed_spread():
    rng = np.random.default_rng(3)
    quiet = reproduction.prediction_table(_study(MEANS, range(5), 0.2, rng), _study(MEANS, (0,), 0.2, rng))
    noisy = reproduction.prediction_table(_study(MEANS, range(5), 3.0, rng), _study(MEANS, (0,), 3.0, rng))
    width = lambda t: (t["mAP hi"] - t["mAP lo"]).mean()  # noqa: E731
    assert width(noisy) > 3 * width(quiet)


def test_one_seed_verdicts_are_compared_claim_by_claim():
    rng = np.random.default_rng(4)
    clear = dict(MEANS, **{"OIM+Tri+MSE": 80.0})  # far above every other row, in R1 too
    published = _study(clear, range(5), 0.5, rng)
    fresh = _study(clear, (0,), 0.5, np.random.default_rng(5))
    ctx = SimpleNamespace(profile="smoke", seeds=published.seeds)
    agree = reproduction.verdict_agreement(ctx, published, fresh, n_boot=200).set_index("claim")
    assert set(agree.index) == {"T4a", "T4b"}
    assert agree.loc["T4b", "published (measured)"] == "reproduced"
    flipped = _study(dict(MEANS, **{"OIM+Tri+MSE": 20.0}), (0,), 0.5, np.random.default_rng(5))
    agree2 = reproduction.verdict_agreement(ctx, published, flipped, n_boot=200).set_index("claim")
    assert agree2.loc["T4b", "one-seed fresh"] == "contradicted" and not agree2.loc["T4b", "agree"]


def test_the_sentence_says_how_many_agree():
    res = {"available": True, "inside": 31, "runs": 33, "claims_agree": 18, "claims": 22, "hardware": "cpu",
           "outside": ["table4: Tri (mAP 40.0 outside [50.0, 60.0])"]}
    s = reproduction.sentence(res)
    assert s.startswith("31 of 33 fresh runs inside") and "agree on 18 of 22 claims" in s and "Tri" in s
    assert "not available" in reproduction.sentence({"available": False, "why": "x"})
