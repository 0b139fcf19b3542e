"""The seed-noise model as stored (``published/noise/<profile>[-finetune].json``) and whether it applies to a
study: :func:`status`. Below :mod:`henetlib.study.tables` (whose per-row intervals add it) and
:mod:`henetlib.verdicts.scoreboard`; :mod:`henetlib.verdicts.noise` estimates and checks it (the model itself
is described there).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from henetlib.engine.cache import code_version, published_root
from henetlib.engine.config import PROFILES
from henetlib.stats import METRICS, SeedVariance
from henetlib.system.files import atomic_write_json

# Seed-noise kinds: trained runs without erasing, trained runs with erasing (RE, RPE or both: their random masks
# add their own seed-to-seed noise), and Fig. 5's occlusion cells (a trained model scored under random masks)
GROUPS = ("none", "erasing", "occlusion")


def kind_of(cfg) -> str:
    """The noise kind of a trained configuration: "erasing" when it trains with any erasing, else "none"."""
    return "none" if cfg.erasing == "none" else "erasing"


def noise_dir() -> Path:
    """``published/noise/`` (beside the published results, so HENET_PUBLISHED_DIR moves both), or
    HENET_NOISE_DIR."""
    return Path(os.environ.get("HENET_NOISE_DIR") or published_root() / "noise")


def path_for(profile: str, finetune: bool = False) -> Path:
    """``<profile>.json``, or ``<profile>-finetune.json`` for the fine-tuned regime: the two regimes' seed
    noise differs (one starts every seed from the same pretrained weights), so each has its own model."""
    return noise_dir() / f"{profile}{'-finetune' if finetune else ''}.json"


@dataclass
class NoiseModel:
    """The stored estimate and its provenance."""

    profile: str
    profile_settings: dict[str, Any]
    overrides: dict[str, Any]
    code_version: str
    dataset: str
    dataset_fingerprint: str
    seeds: list[int]
    git_commit: str
    date: str
    estimates: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # group -> metric -> ...
    equal_variance: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    check_configs: list[str] = field(default_factory=list)
    # later code versions shown to train bit-identically to ``code_version`` -> the evidence
    # (benchmarks/code_equivalence.py --carry): the estimate stays current under them
    equivalent_code: dict[str, str] = field(default_factory=dict)

    def seed_variance(self, group: str, metric: str) -> SeedVariance | None:
        e = self.estimates.get(group, {}).get(metric)
        if not e:
            return None
        return SeedVariance(e["var"], e["df"], f"noise model {self.profile}, {len(self.seeds)} seeds, "
                                                 f"{self.date[:10]}")

    def config_variance(self, group: str, metric: str) -> SeedVariance | None:
        """The seed variance of ONE configuration's score (seed effect included: it does not cancel in a
        single row's interval), pooled over configurations: df = C (S - 1). For the tables' per-row ±."""
        e = self.estimates.get(group, {}).get(metric)
        if not e or "var_within" not in e:
            return None
        return SeedVariance(e["var_within"], e["configs"] * (len(self.seeds) - 1.0),
                            f"noise model {self.profile}, {len(self.seeds)} seeds")

    def save(self, path: Path | None = None) -> Path:
        p = path or path_for(self.profile, bool(self.overrides.get("finetune")))
        p.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(p, asdict(self))
        return p

    @classmethod
    def load(cls, path: Path) -> NoiseModel:
        d = json.loads(path.read_text())
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def _profile_settings(profile: str) -> dict[str, Any]:
    return json.loads(json.dumps(PROFILES[profile], default=str))


def _overrides(ctx) -> dict[str, Any]:
    """What ``ctx`` changes on its profile, the regime included (a model of one never applies to the other)."""
    out = dict(ctx.overrides)
    if getattr(ctx, "finetune", False):
        out["finetune"] = True
    return json.loads(json.dumps(out, default=str))


@dataclass
class NoiseStatus:
    model: NoiseModel | None
    usable: bool
    stale: list[str]
    note: str

    def seed_vars(self) -> dict[tuple[str, str], SeedVariance | None]:
        if not self.usable or self.model is None:
            return {}
        return {(g, m): self.model.seed_variance(g, m) for g in GROUPS for m in METRICS}

    def config_vars(self) -> dict[tuple[str, str], SeedVariance | None]:
        """Per (group, metric): one configuration's seed variance, for ``stats.interval(..., seed_var=)``."""
        if not self.usable or self.model is None:
            return {}
        return {(g, m): self.model.config_variance(g, m) for g in GROUPS for m in METRICS}


def status(ctx, path: Path | None = None) -> NoiseStatus:
    """The committed noise model of ``ctx.profile`` and whether it applies: current; stale (code changed:
    used, and said); not applicable (other profile settings, overrides or data: not used); missing."""
    ft = bool(getattr(ctx, "finetune", False))
    p = path or path_for(ctx.profile, ft)
    if not p.exists():
        return NoiseStatus(None, False, [], f"no seed-noise estimate for profile '{ctx.profile}'"
                                            f"{' (fine-tuned)' if ft else ''}: intervals and verdicts are "
                                            "query-level only (training noise not included)")
    m = NoiseModel.load(p)
    blocking = []
    if m.profile_settings != _profile_settings(ctx.profile):
        blocking.append("the profile's settings changed")
    if m.overrides != _overrides(ctx):
        blocking.append(f"overrides differ ({m.overrides} vs {_overrides(ctx)})")
    try:
        fp = ctx.dataset().fingerprint()
    except Exception:  # noqa: BLE001 - a data set that cannot be read here: judge by the rest
        fp = m.dataset_fingerprint
    if fp != m.dataset_fingerprint:
        blocking.append("the data set differs")
    if blocking:
        return NoiseStatus(m, False, blocking, f"seed-noise estimate of {m.date[:10]} not applicable ("
                                               f"{'; '.join(blocking)}): query-level only")
    now = code_version()
    stale = [] if now in (m.code_version, *m.equivalent_code) else [
        f"code version {m.code_version} -> {code_version()}"]
    note = (f"training noise from the seed-noise model ({len(m.seeds)} seeds, {m.date[:10]}, code "
            f"{m.code_version}{f'; this code {now} trains bit-identically to it' if now in m.equivalent_code else ''})")
    if stale:
        note += f"; STALE: {'; '.join(stale)}: recalibrate with python -m henetlib noise estimate"
    return NoiseStatus(m, True, stale, note)
