"""The study as data: the rows of every table and figure as training configurations, and its runs split
into disjoint shards for job arrays (docs/SCALING.md).

The cached runner (:mod:`henetlib.experiments`) trains and renders these; nothing here trains.
"""

from __future__ import annotations

import json
import re
from typing import Any

from henetlib import paper
from henetlib.engine.config import TrainConfig, make_config
from henetlib.method.losses import loss_names
from henetlib.method.model import layout_name
from henetlib.method.rpe import ErasingConfig

# Tables 2-3 share one loss setting, as their identical rows in the paper imply (Table 2's P(1) and P(1,4)
# rows equal Table 3's G1 and G1+P4): CE on every feature, plus MSE where R16 exists (its decoder is what
# makes it a recovery branch). Table 4 switches OIM, triplet and MSE on G1+P4+R16. Figs. 4-5 train
# G1+P4+R16 with all losses: the paper's RE+RPE(20) point at p = 0.5 (93.72 / 80.53) is Table 4's
# all-losses row (93.67 / 80.60), not the CE-only P(1,4) row (90.17 / 70.39).
BASE_LOSSES = dict(oim=False, triplet=False, mse=True)
ALL_LOSSES = dict(stripes=(1, 4), recovery=True, oim=True, triplet=True, mse=True)

TABLE2_ROWS = [(1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), (1, 3), (1, 4), (1, 6)]
TABLE3_ROWS = [(True, False, False), (False, True, False), (False, False, True), (True, True, False),
               (True, False, True), (False, True, True), (True, True, True)]
TABLE4_ROWS = list(paper.TABLE4)
FIG4_METHODS = [("re", 20), ("rpe", 10), ("rpe", 20), ("rpe", 30), ("rpe", 40), ("re+rpe", 20)]
# Fig. 4's erasing probabilities besides the shared no-erasing run (p = 0), so every curve has at least four
# points and one above 0.5: "increases along with the probability" is a slope, "a relatively peak state when
# probability equals 0.5" needs both neighbours (claims F4a, F4e).
FIG4_PROBS = {"test": (0.5,), "smoke": (0.25, 0.5, 0.75), "gpu": (0.25, 0.5, 0.75), "paper": (0.1, 0.3, 0.5, 0.7, 0.9)}
# Methods swept over every probability of FIG4_PROBS; the others train at p = 0.5 only (the point F4b-F4d
# compare at). smoke saves 6 runs (~72 s of its 10-minute budget) this way; None: every method.
FIG4_CURVE_METHODS: dict[str, tuple[str, ...] | None] = {
    "test": None, "smoke": ("RE", "RPE(20)", "RE+RPE(20)"), "gpu": None, "paper": None}
FIG5_MODELS = [("none", 20), ("re", 20), ("rpe", 20), ("re+rpe", 20)]
# Fig. 5's test-time occlusion levels (0 = clean): at least four on smoke and gpu, so "decreases with the
# level" is a slope and "especially when the level is large" a drop at the top level (claims F5a-F5e).
FIG5_LEVELS = {"test": (0.0, 1.0), "smoke": (0.0, 0.25, 0.5, 1.0), "gpu": (0.0, 0.25, 0.5, 0.75, 1.0),
               "paper": (0.0, 0.25, 0.5, 0.75, 1.0)}


def fig4_probs_for(profile: str, label: str, probs: tuple[float, ...] | None = None) -> tuple[float, ...]:
    """The probabilities (besides p = 0) Fig. 4 trains ``label`` at on ``profile``."""
    probs = probs or FIG4_PROBS.get(profile, FIG4_PROBS["gpu"])
    curve = FIG4_CURVE_METHODS.get(profile)
    if curve is None or label in curve:
        return tuple(probs)
    return tuple(p for p in probs if p == 0.5) or tuple(probs[:1])


def _cfg(profile: str, seed: int, common: dict[str, Any], **kw: Any) -> TrainConfig:
    return make_config(profile, seed=seed, **{**common, **kw})


def table2_configs(profile: str, seeds=(0,), **common: Any) -> list[tuple[str, int, TrainConfig]]:
    return [(structure_label(s), seed, _cfg(profile, seed, common, stripes=s, recovery=False, **BASE_LOSSES))
            for s in TABLE2_ROWS for seed in seeds]


def structure_label(stripes: tuple[int, ...]) -> str:
    """Table 2's notation: P(1,2,3)."""
    return "P(" + ",".join(str(k) for k in stripes) + ")"


def table3_stripes(g1: bool, p4: bool) -> tuple[int, ...]:
    """Table 3's branch switches as HENet stripes: G1 -> 1, P4 -> 4."""
    return tuple(k for k, on in ((1, g1), (4, p4)) if on)


def table3_configs(profile: str, seeds=(0,), **common: Any) -> list[tuple[str, int, TrainConfig]]:
    rows = []
    for g1, p4, r16 in TABLE3_ROWS:
        stripes = table3_stripes(g1, p4)
        for seed in seeds:
            rows.append((layout_name(stripes, r16), seed,
                         _cfg(profile, seed, common, stripes=stripes, recovery=r16, **BASE_LOSSES)))
    return rows


def table4_configs(profile: str, seeds=(0,), **common: Any) -> list[tuple[str, int, TrainConfig]]:
    rows = []
    for oim, tri, mse in TABLE4_ROWS:
        label = loss_names(oim, tri, mse) or "CE only"
        for seed in seeds:
            rows.append((label, seed, _cfg(profile, seed, common, stripes=(1, 4), recovery=True, oim=oim,
                                           triplet=tri, mse=mse)))
    return rows


def fig4_configs(profile: str, seeds=(0,), probs: tuple[float, ...] | None = None,
                 **common: Any) -> list[tuple[str, float, int, TrainConfig]]:
    rows = []
    for seed in seeds:
        base = _cfg(profile, seed, common, **ALL_LOSSES)
        for mode, n in FIG4_METHODS:
            label = ErasingConfig(mode, 0.5, n).label()
            rows.append((label, 0.0, seed, base))  # p = 0: no erasing, shared by every curve
            for p in fig4_probs_for(profile, label, probs):
                rows.append((label, p, seed, _cfg(profile, seed, common, erasing=mode, erasing_p=p, rpe_n=n,
                                                  **ALL_LOSSES)))
    return rows


def fig5_configs(profile: str, seed: int = 0, p: float = 0.5, **common: Any) -> list[tuple[str, TrainConfig]]:
    rows = []
    for mode, n in FIG5_MODELS:
        kw = dict(erasing=mode, erasing_p=p, rpe_n=n) if mode != "none" else {}
        rows.append((ErasingConfig(mode, p, n).label(), _cfg(profile, seed, common, **ALL_LOSSES, **kw)))
    return rows


# Table 1's HENet rows as the paper defines them (section 4.3): Base = G1+P4; +Losses adds R16 and the
# hierarchical losses; +RPE and +Both add RPE. "All experiments of our method only use random horizontal
# flipping and random erasing", so every row trains with RE; +RPE / +Both use RE+RPE(20). p = 0.5.
TABLE1_ROWS = {
    "HENet(Base)": dict(stripes=(1, 4), recovery=False, **BASE_LOSSES, erasing="re"),
    "HENet(+RPE)": dict(stripes=(1, 4), recovery=False, **BASE_LOSSES, erasing="re+rpe"),
    "HENet(+Losses)": dict(ALL_LOSSES, erasing="re"),
    "HENet(+Both)": dict(ALL_LOSSES, erasing="re+rpe"),
}


def table1_configs(profile: str, seeds=(0,), p: float = 0.5, **common: Any) -> list[tuple[str, int, TrainConfig]]:
    return [(name, seed, _cfg(profile, seed, common, erasing_p=p, rpe_n=20, **kw))
            for name, kw in TABLE1_ROWS.items() for seed in seeds]


# ---------------------------------------------------------------------------------------------------------
# Every run of the study, in one stable order, and its shards.

# Grids in the order their runs are trained: the runs whose weights later work needs come first (Fig. 5's
# four models for the occlusion curves, Table 4's all-losses model for CAM and ranked lists).
ORDER = ("fig5", "table4", "table1", "table3", "table2", "fig4")

# The regime a study runs in when none is asked for (issue 21). smoke fine-tunes its committed
# SynthReID-pretrained backbone with train.FINETUNE's schedule: the paper's regime, in which regularisers are
# tested on converged models rather than underfitted ones. gpu trains from random weights until a lease has
# pretrained its ResNet50 (benchmarks/gpu_call.sh pretrain); test and paper have one regime each.
DEFAULT_FINETUNE = {"smoke": True}


def default_finetune(profile: str) -> bool:
    return DEFAULT_FINETUNE.get(profile, False)


def regime_name(profile: str, finetune: bool) -> str:
    """"default" when ``finetune`` is the profile's default regime, else "fine-tuned" / "from-scratch": the
    sub-folder of figures/ and reports/ a non-default regime writes to (figures/from-scratch/: the study
    trained from random weights, beside the default fine-tuned one)."""
    if finetune == default_finetune(profile):
        return "default"
    return "fine-tuned" if finetune else "from-scratch"


def grid_configs(grid: str, profile: str, seeds=(0,), **common: Any) -> list[TrainConfig]:
    """The configurations of one table or figure (``table1`` ... ``fig5``), in row and seed order."""
    if grid == "fig5":  # one seed per call: its rows are (label, config)
        return [c for seed in seeds for _, c in fig5_configs(profile, seed, **common)]
    tables = {"table1": table1_configs, "table2": table2_configs, "table3": table3_configs,
              "table4": table4_configs, "fig4": fig4_configs}
    if grid not in tables:
        raise ValueError(f"unknown table or figure {grid!r}; use one of {', '.join(ORDER)}.")
    return [r[-1] for r in tables[grid](profile, seeds, **common)]


def study_configs(profile: str, seeds=(0,), grids: tuple[str, ...] = ORDER,
                  **common: Any) -> list[tuple[str, TrainConfig]]:
    """(grid, config) of every run of ``grids``, in ORDER, each run once (tables share rows: Table 4's
    all-losses row is also Figs. 4-5's no-erasing model). The order depends only on the arguments, so
    every job of an array computes the same list."""
    out, seen = [], set()
    for grid in (g for g in ORDER if g in grids):
        for c in grid_configs(grid, profile, seeds, **common):
            ident = json.dumps(c.identity(), sort_keys=True, default=str)
            if ident not in seen:
                seen.add(ident)
                out.append((grid, c))
    return out


def parse_shard(spec: str) -> tuple[int, int]:
    """``"I/N"`` (1 <= I <= N) as (I, N), with an error that shows the form."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(spec))
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise ValueError(f"--shard must be I/N with 1 <= I <= N (the I-th of N jobs, counted from 1, e.g. 3/8 or "
                         f"$SLURM_ARRAY_TASK_ID/8 with --array=1-8), got {spec!r}.")
    return int(m.group(1)), int(m.group(2))


def shard(items: list, index: int, count: int) -> list:
    """The ``index``-th (from 1) of ``count`` disjoint slices of ``items``: every ``count``-th item from
    position ``index - 1``. The N slices cover ``items`` exactly once, and neighbours in the study's order
    (rows of one table, of similar cost) land on different jobs, which balances them."""
    if not 1 <= index <= count:
        raise ValueError(f"shard {index}/{count}: the index must be between 1 and {count}.")
    return items[index - 1 :: count]
