"""The reproduction check: this machine's fresh runs against the published multi-seed study.

Every clone renders the published study (``published/<profile>/``), so its tables, figures and verdicts are the
same on any machine. ``make reproduce`` still trains seed 0 of every configuration here, and this module asks
whether those fresh runs are what the published study predicts:

* **each fresh run against its configuration's prediction interval for a new seed:** the published seed mean
  ``m`` of the configuration, plus or minus ``t(df) * sqrt(v * (1 + 1/S))``, where ``v`` is one configuration's
  seed-to-seed variance pooled over the configurations of its noise kind (without / with erasing) and S the
  published seeds. A run from another CPU or thread count is a new draw of the training noise, so about 5% of
  the runs fall outside by chance;
* **the verdicts a one-seed study of the fresh runs would give** (the published study's seed variance added to
  every interval), claim by claim, against the published verdicts. Both are compared before the positive
  controls gate them: with one seed no control can be established.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from henetlib.engine import cache
from henetlib.stats import LEVEL, METRICS, SeedVariance
from henetlib.system.runtime import hardware_string
from henetlib.verdicts import noise, scoreboard
from henetlib.verdicts.claims import name_of
from henetlib.verdicts.scores import StudyScores, collect

logger = logging.getLogger(__name__)
TRAINED_GRIDS = {"table1", "table2", "table3", "table4", "fig4"}


@dataclass
class _OwnNoise:
    """A noise model made from the published study's own seeds (what one-seed intervals add)."""

    vars: dict[tuple[str, str], SeedVariance]
    note: str
    usable: bool = True
    model: Any = None
    stale: list = field(default_factory=list)

    def seed_vars(self) -> dict[tuple[str, str], SeedVariance]:
        return self.vars


def config_variances(data: StudyScores) -> dict[tuple[str, str], SeedVariance]:
    """Per (noise kind, metric): ONE configuration's seed-to-seed variance (the mean of the configurations'
    sample variances over seeds, df = C (S - 1)); the seed effect shared by all configurations is included, as
    it is in a single new run."""
    out = {}
    for kind in ("none", "erasing"):
        for m in METRICS:
            x, _ = noise.per_seed_matrix(data, kind, m)
            if x.shape[0] >= 1 and x.shape[1] >= 2:
                out[(kind, m)] = SeedVariance(noise.run_variance(x), float(x.shape[0] * (x.shape[1] - 1)),
                                              f"{x.shape[1]} published seeds x {x.shape[0]} configurations")
    return out


def prediction_table(published: StudyScores, fresh: StudyScores, level: float = LEVEL) -> pd.DataFrame:
    """One row per trained configuration with a fresh run: its published seed mean, the prediction interval
    for a new seed, the fresh score and whether it lies inside, per metric."""
    cv = config_variances(published)
    s = len(published.seeds)
    recs, seen = [], set()
    for grid in sorted(TRAINED_GRIDS & set(published.per_query)):
        for key in published.per_query[grid]:
            ident = published.ident.get((grid, key))
            if ident in seen:
                continue
            pub_lst = published.per_query[grid].get(key)
            new_lst = fresh.per_query.get(grid, {}).get(key)
            if not pub_lst or not all(pub_lst) or not new_lst or not all(new_lst):
                continue
            seen.add(ident)
            kind = published.kind(grid, key)
            rec: dict[str, Any] = {"grid": grid, "configuration": name_of(key), "kind": kind}
            inside = True
            for m in METRICS:
                per_seed = np.nanmean(published.scores(grid, key, m), axis=1)
                x = float(np.nanmean(fresh.scores(grid, key, m)))
                sv = cv.get((kind, m))
                half = (float(sps.t.ppf(1 - (1 - level) / 2, sv.df)) * np.sqrt(sv.var * (1 + 1 / s))
                        if sv is not None else np.nan)
                mean = float(per_seed.mean())
                ok = bool(abs(x - mean) <= half) if np.isfinite(half) else False
                inside &= ok
                rec.update({f"{m} published": mean, f"{m} lo": mean - half, f"{m} hi": mean + half,
                            f"{m} fresh": x, f"{m} inside": ok})
            rec["inside"] = inside
            recs.append(rec)
    return pd.DataFrame(recs)


def verdict_agreement(ctx, published: StudyScores, fresh: StudyScores, published_board: pd.DataFrame | None = None,
                      n_boot: int = 1000) -> pd.DataFrame:
    """Per claim: the published (multi-seed) verdict and the one a one-seed study of the fresh runs gives, both
    before the positive controls gate them."""
    pub = published_board if published_board is not None else scoreboard.scoreboard(
        ctx, n_boot=n_boot, train=False, data=published, gate=False)
    own = _OwnNoise(noise.estimate_from_scores(published),
                    f"training noise from the published study's {len(published.seeds)} seeds")
    one_ctx = dataclasses.replace(ctx, seeds=fresh.seeds) if dataclasses.is_dataclass(ctx) else ctx
    new = scoreboard.scoreboard(one_ctx, n_boot=n_boot, train=False, data=fresh, noise_model=own, gate=False)
    a = scoreboard.claim_verdicts(pub).set_index("claim")["verdict"]
    b = scoreboard.claim_verdicts(new).set_index("claim")["verdict"]
    kinds = scoreboard.claim_verdicts(pub).set_index("claim")["kind"]
    out = pd.DataFrame({"published (measured)": a, "one-seed fresh": b.reindex(a.index)})
    out = out[kinds.reindex(out.index) != "efficiency"]  # sizes and speeds are not trained
    out = out[(out["published (measured)"] != "not run") & (out["one-seed fresh"] != "not run")]
    out["agree"] = out["published (measured)"] == out["one-seed fresh"]
    return out.reset_index()


def check(ctx, published_board: pd.DataFrame | None = None, n_boot: int = 1000) -> dict[str, Any]:
    """The reproduction check of ``ctx`` (its profile and regime): fresh runs (this machine, seed 0) against the
    published study. ``available`` is False when either side is missing."""
    pub_seeds = published_seeds(ctx)
    if not pub_seeds:
        return {"available": False, "why": f"no published multi-seed study for profile '{ctx.profile}'"}
    grids = TRAINED_GRIDS | {"fig5"}  # Fig. 5's claims too: its cells score the fresh models under occlusion
    published = collect(dataclasses.replace(ctx, seeds=pub_seeds), grids, train=False)
    with cache.local_only():
        fresh = collect(dataclasses.replace(ctx, seeds=(0,)), grids, train=False)
    local = [r for g in fresh.per_query.values() for lst in g.values() for r in lst if r]
    if not local:
        return {"available": False, "why": "no fresh runs on this machine (make reproduce trains them)"}
    pred = prediction_table(published, fresh)
    agree = verdict_agreement(ctx, published, fresh, published_board, n_boot)
    outside = pred[~pred["inside"]]
    return {
        "available": True, "hardware": hardware_string(ctx.device), "published_seeds": list(pub_seeds),
        "runs": int(len(pred)), "inside": int(pred["inside"].sum()),
        "outside": [f"{r.grid}: {r.configuration} ("
                    + ", ".join(f"{m} {r[f'{m} fresh']:.1f} outside [{r[f'{m} lo']:.1f}, {r[f'{m} hi']:.1f}]"
                                for m in METRICS if not r[f"{m} inside"]) + ")" for _, r in outside.iterrows()],
        "claims": int(len(agree)), "claims_agree": int(agree["agree"].sum()),
        "disagree": [f"{r.claim}: published {r['published (measured)']}, one-seed {r['one-seed fresh']}"
                     for _, r in agree[~agree["agree"]].iterrows()],
        "table": pred, "verdicts": agree,
    }


def published_seeds(ctx) -> tuple[int, ...]:
    """The seeds the published study holds for ``ctx``'s profile (from its provenance record)."""
    return cache.published_seeds(ctx.profile)


def sentence(result: dict[str, Any]) -> str:
    """The check in one sentence, e.g. "31 of 33 fresh runs inside their published interval; one-seed verdicts
    agree on 18 of 22 claims"."""
    if not result.get("available"):
        return f"Reproduction check not available: {result.get('why', '?')}."
    expected = result["runs"] * (1 - LEVEL**2)  # a run is outside when R1 or mAP is; at most this many by chance
    out = (f"{result['inside']} of {result['runs']} fresh runs inside their published 95% prediction interval for "
           f"R1 and mAP (up to about {expected:.0f} outside by chance); one-seed "
           f"verdicts agree on {result['claims_agree']} of {result['claims']} claims (on {result['hardware']})")
    if result["outside"]:
        out += ". Outside: " + "; ".join(result["outside"])
    return out + "."
