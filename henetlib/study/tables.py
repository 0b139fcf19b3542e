"""The study's tables and figures as data: one function per table of the paper, ours beside the paper's.

``table1`` .. ``table4``, ``fig4`` and ``fig5`` take a :class:`StudyContext` (the parameters a study notebook
takes), run (or find) their grid's results through :mod:`henetlib.engine.cache`, and return a frame of the mean
over seeds with 95% bootstrap intervals, with the paper's numbers beside ours where the paper gives them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from henetlib import paper
from henetlib.data.datasets import ReIDDataset, check_dataset_name
from henetlib.engine.cache import Result, dataset_for, published_provenance, published_seeds, run, sweep
from henetlib.engine.config import PROFILES, TrainConfig, make_config
from henetlib.engine.regime import RULE, regime_of
from henetlib.method.losses import loss_names
from henetlib.method.model import feature_dim_of, layout_name, read_backbone_state
from henetlib.output import prose
from henetlib.output.formats import side_by_side
from henetlib.stats import interval
from henetlib.study.derived import ModelDamaged, occlusion_curve
from henetlib.study.grids import (
    ALL_LOSSES,
    FIG5_LEVELS,
    ORDER,
    default_finetune,
    fig4_configs,
    fig5_configs,
    structure_label,
    study_configs,
    table1_configs,
    table2_configs,
    table3_configs,
    table3_stripes,
    table4_configs,
)
from henetlib.study.noise_model import NoiseStatus, kind_of
from henetlib.study.noise_model import status as noise_status
from henetlib.system.caches import CACHES
from henetlib.system.runtime import hardware_string

logger = logging.getLogger(__name__)
T = TypeVar("T")


_CHECKED_WEIGHTS = CACHES.cache("checked weight files", 16)


def check_weights(path: str | Path, backbone: str) -> None:
    """:func:`read_backbone_state`'s check of a weights file against ``backbone``, once per file (path, size,
    modification time) and backbone in this process: make reproduce resolves its parameters several times,
    and a ResNet50 checkpoint is 100 MB to read."""
    p = Path(path).expanduser()
    st = p.stat() if p.is_file() else None
    key = (str(p.resolve()), st.st_size if st else -1, st.st_mtime_ns if st else -1, backbone)
    if key not in _CHECKED_WEIGHTS:
        read_backbone_state(p, backbone)  # raises for a missing or unfitting file: nothing is remembered then
    _CHECKED_WEIGHTS.get(key, lambda: True)


# a notebook's ``regime`` parameter (and make reproduce's REGIME) -> StudyContext.finetune
REGIMES = {"default": None, "finetune": True, "scratch": False}


@dataclass
class StudyContext:
    """The parameters a study notebook takes, resolved once."""

    profile: str = "smoke"
    device: str = "auto"
    data_root: str | None = None
    dataset_name: str | None = None
    seeds: tuple[int, ...] = (0,)
    overrides: dict[str, Any] = field(default_factory=dict)  # e.g. {"epochs": 2} for quick checks
    # smoke/gpu: fine-tune the SynthReID-pretrained backbone with engine.config.FINETUNE's schedule (the
    # paper's regime; True) or train from random weights (False); None: the profile's default
    # (grids.DEFAULT_FINETUNE: smoke fine-tunes). The two regimes' runs never share a cache entry.
    finetune: bool | None = None

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; use one of {sorted(PROFILES)}.")
        if isinstance(self.finetune, str):  # papermill's -p passes text
            self.finetune = {"none": None, "": None}.get(self.finetune.strip().lower(),
                                                         self.finetune.strip().lower() in ("1", "true", "yes"))
        if self.finetune is None:
            self.finetune = default_finetune(self.profile)
        if self.finetune:
            make_config(self.profile, finetune=True)  # its error for a profile without a pretrained regime
        seeds = self.seeds
        if isinstance(seeds, str) and seeds.strip().lower() == "published":
            # the published multi-seed study's seeds where it applies (the profile's own data and settings)
            own = not self.data_root and not self.overrides
            seeds = list((published_seeds(self.profile) if own else ()) or (0,))
        if isinstance(seeds, str):  # papermill's -p passes "[0, 1]" or "0,1" as text
            seeds = [int(x) for x in re.findall(r"-?\d+", seeds)]
        elif isinstance(seeds, int):
            seeds = [seeds]
        if not seeds or not all(isinstance(x, int) and not isinstance(x, bool) for x in seeds):
            raise ValueError(f"seeds must be a non-empty list of integers such as [0, 1, 2], or \"published\", got {self.seeds!r} "
                             "(papermill: -y 'seeds: [0, 1, 2]'; CLI: --seeds 0,1,2).")
        self.seeds = tuple(seeds)
        if self.dataset_name:
            check_dataset_name(self.dataset_name)

    @classmethod
    def from_parameters(cls, profile: str = "smoke", device: str = "auto", data_root: str | None = "",
                        dataset: str | None = "", seeds: Any = (0,), regime: str = "default",
                        pretrained: str | None = "", overrides: dict[str, Any] | None = None) -> StudyContext:
        """A context from a study notebook's parameters (and ``make reproduce``'s): ``""`` means not given,
        ``regime`` is default / finetune / scratch, and ``pretrained`` (a local torchvision ResNet checkpoint)
        reaches every run of every table. The weights are checked against the backbone here, before any data is
        decoded or anything trains."""
        if regime not in REGIMES:
            raise ValueError(f"regime must be one of {sorted(REGIMES)}, got {regime!r} (default: the profile's own; "
                             "finetune: the SynthReID-pretrained backbone; scratch: random weights).")
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - {f.name for f in fields(TrainConfig)})
        if unknown:
            raise ValueError(f"overrides {unknown} are not TrainConfig fields; use e.g. {{'epochs': 1, 'max_steps': 2}}.")
        if pretrained:
            backbone = overrides.get("backbone") or PROFILES[profile]["backbone"]
            check_weights(pretrained, backbone)  # a clear error now, not after the data set is decoded
            overrides["pretrained"] = str(Path(pretrained).expanduser())
        return cls(profile, device, data_root or None, dataset or None, seeds, overrides, REGIMES[regime])

    @property
    def common(self) -> dict[str, Any]:
        out: dict[str, Any] = {"device": self.device, **self.overrides}
        if self.finetune:
            out["finetune"] = True
        if self.data_root:
            out.update(dataset=self.dataset_name or "market1501", data_root=str(self.data_root))
        return out

    def dataset(self) -> ReIDDataset:
        return dataset_for(make_config(self.profile, **self.common))

    def runs(self, grids: tuple[str, ...] | None = None) -> list[tuple[str, TrainConfig]]:
        """(grid, config) of every run of ``grids`` (default: the whole study), each once, in the study's
        stable order (what ``study --shard`` slices and ``publish`` trains)."""
        return study_configs(self.profile, self.seeds, grids or ORDER, **self.common)

    def noise(self) -> NoiseStatus:
        """The committed seed-noise model of this profile and regime, and whether it applies."""
        return noise_status(self)

    def seed_vars(self) -> dict:
        """{(group, metric): SeedVariance} of one configuration's score, for one-seed rows' intervals; empty
        without a usable noise model, or when the study has seeds of its own."""
        return self.noise().config_vars() if len(self.seeds) == 1 else {}

    def hardware(self) -> str:
        return hardware_string(self.device)

    def caption(self, results: list[Result] | None = None, extra: str = "") -> str:
        """A table's or figure's caption after its lead (prose.with_lead, where it is saved): ``extra`` (what is
        particular to it), then what ours rest on (runs, seeds, regimes, queries scored, what the intervals
        carry) and a pointer to the methods note, which this writes beside the figures: the provenance is
        stated once there rather than opening every caption."""
        results = list(results or [])
        prose.write_methods_note(self.methods_note())
        sizes = [r.distributed.get("world_size", 1) for r in results]
        if any(n > 1 for n in sizes):
            extra = (f"{extra} {sum(n > 1 for n in sizes)} of {len(sizes)} runs were trained with DDP on "
                     f"{', '.join(str(n) for n in sorted(set(sizes)) if n > 1)} processes (global batch "
                     "P x processes x K; docs/SCALING.md).").strip()
        return prose.figure_caption(extra, prose.rests_on(results, self.profile, self.seeds, self.noise_words(),
                                                          here=self.hardware()))

    def noise_words(self) -> str:
        """What the intervals carry, in a few words (the methods note says it in full)."""
        if len(self.seeds) > 1:
            return "queries and seeds"
        st = self.noise()
        return "queries and training noise" if st.usable and st.model is not None else "queries only"

    def methods_note(self) -> str:
        """The provenance behind every caption of this study (``METHODS_NOTE.md``): data set, hardware, how the
        runs start and how long they train, what the intervals carry, the regime rule, and where published
        results come from."""
        if len(self.seeds) > 1:
            spread = " and seeds."
        else:
            st = self.noise()
            if st.usable and st.model is not None:
                covered = "; ".join(f"{g}: {', '.join(d)}" for g, d in st.model.estimates.items())
                spread = (f", plus the training noise of one run where the noise model has an estimate ({covered}; "
                          f"other columns: queries only) ({st.note}).")
            else:
                spread = " only: no seed-noise model applies, so training noise is not included."
        prov = published_provenance(self.profile)
        pub = (f"Runs of profile '{self.profile}' not trained here are rendered from published results, trained on "
               f"{prov.get('hardware', '?')} at commit {prov.get('git_commit', '?')}, "
               f"{str(prov.get('date', '?'))[:10]}; each caption says how many of its runs are published."
               if prov else "")
        seeds = f"Seeds {', '.join(map(str, self.seeds))}."
        return prose.methods_note(prose.caption(self.profile, self.dataset().name, self.hardware(), seeds,
                                                start=self.start()),
                                  intervals="± is half the 95% bootstrap interval over queries" + spread,
                                  rule=RULE.describe(), published=pub)

    def start(self) -> str | None:
        """How the runs start and how long they train, from the resolved configuration (for captions)."""
        try:
            cfg = make_config(self.profile, **self.common)
        except ValueError:  # the paper profile without weights: its own error comes when a run starts
            return None
        if cfg.pretrain_profile:
            return (f"{cfg.epochs} P x K epochs fine-tuned from the backbone pretrained on SynthReID's own "
                    f"pretraining set ({cfg.pretrained}; a stand-in for ImageNet)")
        if cfg.pretrained:
            return f"{cfg.epochs} P x K epochs fine-tuned from {cfg.pretrained}"
        return f"{cfg.epochs} P x K epochs from random weights"


def all_losses_config(ctx: StudyContext) -> TrainConfig:
    """G1+P4+R16 with every loss and no erasing (Table 4's last row): the model of CAM and ranked lists."""
    return make_config(ctx.profile, **ALL_LOSSES, **ctx.common)


def all_losses_result(ctx: StudyContext, progress: bool = True) -> Result:
    return run(all_losses_config(ctx), progress=progress)


def results_frame(rows: list[tuple], results: list[Result], label_cols: list[str]) -> pd.DataFrame:
    """One line per (row, seed) with the metrics and the run's facts."""
    recs = []
    for row, res in zip(rows, results, strict=True):
        rec = dict(zip(label_cols, row[: len(label_cols)], strict=True))
        rec.update({k: res.metrics.get(k, np.nan) for k in ("R1", "R5", "R10", "mAP", "mINP", "R1_occluded",
                                                               "mAP_occluded", "R1_clean", "mAP_clean")})
        cfg = res.train_config
        rec.update(FD=feature_dim_of(cfg.stripes, cfg.recovery), seconds=res.train_seconds,
                   img_per_s=res.images_per_second, key=res.key)
        recs.append(rec)
    return pd.DataFrame(recs)


def summarise(df: pd.DataFrame, by: list[str], metrics=("R1", "R5", "R10", "mAP")) -> pd.DataFrame:
    """Mean over seeds, with the standard deviation where there are several."""
    g = df.groupby(by, sort=False)
    out = g[list(metrics)].mean()
    n = g.size()
    if int(n.max()) > 1:
        sd = g[list(metrics)].std(ddof=1).add_suffix("_sd")
        out = out.join(sd)
    out["seeds"] = n
    return out.reset_index()


def _metrics_dict(vals: tuple, names: tuple[str, ...]) -> dict[str, float]:
    return dict(zip(names, vals, strict=True))


def paper_rows(table: str) -> dict[str, dict[str, float]]:
    """The paper's rows keyed by our row labels."""
    if table == "table2":
        return {structure_label(k): _metrics_dict(v, ("FD", "R1", "R5", "R10", "mAP")) for k, v in paper.TABLE2.items()}
    if table == "table3":
        out = {}
        for (g1, p4, r16), v in paper.TABLE3.items():
            label = layout_name(table3_stripes(g1, p4), r16)
            out[label] = _metrics_dict(v, ("R1", "R5", "R10", "mAP", "FD"))
        return out
    if table == "table4":
        return {(loss_names(*k) or "CE only"): _metrics_dict(v, ("R1", "R5", "R10", "mAP"))
                for k, v in paper.TABLE4.items()}
    raise ValueError(f"unknown table {table!r}")


def add_intervals(summ: pd.DataFrame, by: list[str], per_query: dict[tuple, list], metrics=("R1", "mAP"),
                  n_boot: int = 1000, seed_var: dict | None = None, groups: dict | str = "none",
                  clusters: np.ndarray | None = None) -> pd.DataFrame:
    """Add ``<m>_lo`` / ``<m>_hi`` (95% bootstrap interval over queries, and over seeds when several) for
    each metric, from the per-query vectors of each row's results (``per_query[row key] = [seed dicts]``).
    ``seed_var``: ``{(group, metric): SeedVariance}`` of one configuration's score (a noise model's
    ``config_vars()``), added to a one-seed row's interval; rows with several seeds use their own spread.
    ``groups``: each row key's noise kind (or one kind for all); ``clusters``: each query's identity, which the
    bootstrap resamples."""
    out = summ.copy()
    for m in metrics:
        lo, hi = [], []
        for _, row in out.iterrows():
            key = tuple(row[c] for c in by)
            pqs = per_query.get(key if len(by) > 1 else key[0], [])
            if pqs and all(pqs):
                group = groups if isinstance(groups, str) else groups.get(key if len(by) > 1 else key[0], "none")
                sv = (seed_var or {}).get((group, m)) if len(pqs) == 1 else None  # R1_occluded: none estimated
                iv = interval(pqs, m, n_boot=n_boot, seed_var=sv, clusters=clusters)
                lo.append(iv.lo), hi.append(iv.hi)
            else:
                lo.append(np.nan), hi.append(np.nan)
        out[f"{m}_lo"], out[f"{m}_hi"] = lo, hi
    return out


def _kinds_of(rows: list[tuple], n_keys: int = 1) -> dict:
    """Each row key's noise kind (erasing or none), from its configuration."""
    return {(r[0] if n_keys == 1 else tuple(r[:n_keys])): kind_of(r[-1]) for r in rows}


def query_pids(ctx: StudyContext) -> np.ndarray:
    """Each query's identity, in query order (the bootstrap's clusters)."""
    return np.array([q.pid for q in ctx.dataset().query])


def _per_query_of(rows: list[tuple], results: list[Result], n_keys: int = 1) -> dict[tuple, list]:
    out: dict = {}
    for row, res in zip(rows, results, strict=True):
        key = row[0] if n_keys == 1 else tuple(row[:n_keys])
        out.setdefault(key, []).append(res.per_query)
    return out


def with_regime(summ: pd.DataFrame, by: list[str], rows: list[tuple], results: list[Result]) -> pd.DataFrame:
    """Add each row's regime check (henetlib.engine.regime): ``fit mAP``, the training-fit mAP (mean over seeds),
    and ``regime``: "paper" when every seed's run converged from a pretrained backbone, else what they were."""
    fits: dict = {}
    regs: dict = {}
    for row, res in zip(rows, results, strict=True):
        key = row[0] if len(by) == 1 else tuple(row[: len(by)])
        fits.setdefault(key, []).append((res.regime.get("train_fit") or {}).get("mAP", np.nan))
        regs.setdefault(key, []).append(regime_of(res.regime))
    out = summ.copy()
    keys = [row[by[0]] if len(by) == 1 else tuple(row[c] for c in by) for _, row in out.iterrows()]
    out["fit mAP"] = [float(np.nanmean(fits[k])) if np.isfinite(fits[k]).any() else np.nan for k in keys]
    out["regime"] = ["/".join(sorted(set(regs[k]))) for k in keys]
    return out


def _table(ctx: StudyContext, rows: list[tuple], table: str, label: str, progress: bool) -> tuple[pd.DataFrame, list[Result]]:
    results = sweep([r[-1] for r in rows], progress=progress)
    df = results_frame(rows, results, [label, "seed"])
    summ = add_intervals(summarise(df, [label, "FD"]), [label], _per_query_of(rows, results),
                         seed_var=ctx.seed_vars(), groups=_kinds_of(rows), clusters=query_pids(ctx))
    summ = with_regime(summ, [label], rows, results)
    return side_by_side(summ, paper_rows(table), label, ["R1", "mAP"]), results


def table2(ctx: StudyContext, progress: bool = True) -> tuple[pd.DataFrame, list[Result]]:
    """Table 2 (structure analysis): ours (mean over seeds) beside the paper's R1 and mAP."""
    return _table(ctx, table2_configs(ctx.profile, ctx.seeds, **ctx.common), "table2", "Structure", progress)


def table3(ctx: StudyContext, progress: bool = True) -> tuple[pd.DataFrame, list[Result]]:
    """Table 3 (branch ablation)."""
    return _table(ctx, table3_configs(ctx.profile, ctx.seeds, **ctx.common), "table3", "Branches", progress)


def table4(ctx: StudyContext, progress: bool = True) -> tuple[pd.DataFrame, list[Result]]:
    """Table 4 (loss ablation on G1+P4+R16)."""
    return _table(ctx, table4_configs(ctx.profile, ctx.seeds, **ctx.common), "table4", "Losses", progress)


def table1(ctx: StudyContext, progress: bool = True) -> tuple[pd.DataFrame, list[Result]]:
    """Table 1's HENet rows trained here: our R1/mAP (mean over seeds) beside the paper's."""
    rows = table1_configs(ctx.profile, ctx.seeds, **ctx.common)
    results = sweep([r[-1] for r in rows], progress=progress)
    df = results_frame(rows, results, ["Method", "seed"])
    summ = add_intervals(summarise(df, ["Method", "FD"], metrics=("R1", "mAP")), ["Method"],
                         _per_query_of(rows, results), seed_var=ctx.seed_vars(), groups=_kinds_of(rows),
                         clusters=query_pids(ctx))
    summ = with_regime(summ, ["Method"], rows, results)
    for c in ("R1", "mAP"):
        summ[f"{c} (paper)"] = summ["Method"].map(lambda m, c=c: paper.TABLE1[m]["r1" if c == "R1" else c])
    return summ, results


def fig4(ctx: StudyContext, probs: tuple[float, ...] | None = None,
         progress: bool = True) -> tuple[pd.DataFrame, list[Result]]:
    """Fig. 4: R1 and mAP over erasing probability per method (mean over seeds), on P(1,4)."""
    rows = fig4_configs(ctx.profile, ctx.seeds, probs, **ctx.common)
    results = sweep([r[-1] for r in rows], progress=progress)
    df = results_frame(rows, results, ["method", "p", "seed"])
    summ = summarise(df, ["method", "p"], metrics=("R1", "mAP", "R1_occluded", "mAP_occluded"))
    summ = add_intervals(summ, ["method", "p"], _per_query_of(rows, results, 2), seed_var=ctx.seed_vars(),
                         groups=_kinds_of(rows, 2), clusters=query_pids(ctx))
    return with_regime(summ, ["method", "p"], rows, results), results


def retrain_if_damaged(fn: Callable[..., T], res: Result, *args: Any, **kwargs: Any) -> T:
    """``fn(res, ...)``, a derived result of :mod:`henetlib.study.derived`; when the run's model was damaged
    (and moved aside), the run is trained again, once, and ``fn`` called on the new result."""
    try:
        return fn(res, *args, **kwargs)
    except ModelDamaged as e:
        logger.warning("%s; retraining it", e)
        return fn(run(e.config, progress=False), *args, **kwargs)


def fig5_curve(ctx: StudyContext, res: Result, levels: tuple[float, ...] | None = None) -> pd.DataFrame:
    """One Fig. 5 model's occlusion curve (cached beside its result): what ``study --shard`` computes right after
    training the model, so the evaluations run in the shards, not after them."""
    levels = levels or FIG5_LEVELS.get(ctx.profile, FIG5_LEVELS["gpu"])
    return retrain_if_damaged(occlusion_curve, res, levels=levels, seed=res.train_config.seed, device=ctx.device)


def train_runs(ctx: StudyContext, runs: list[tuple[str, TrainConfig]], progress: bool = True,
               curves: bool = True) -> list[Result]:
    """Train (or find) ``runs`` ((grid, config) pairs, as :meth:`StudyContext.runs` gives them), then, with
    ``curves``, the occlusion curves of the Fig. 5 models among them, in the process that trained them rather
    than serially afterwards."""
    results = sweep([c for _, c in runs], progress=progress)
    if curves:
        for (grid, _), res in zip(runs, results, strict=True):
            if grid == "fig5":
                fig5_curve(ctx, res)
    return results


def fig5(ctx: StudyContext, levels: tuple[float, ...] | None = None, train_p: float = 0.5,
         progress: bool = True) -> tuple[pd.DataFrame, list[Result]]:
    """Fig. 5: models trained with none / RE / RPE / RE+RPE, tested under RE, RPE and RE+RPE occlusion."""
    levels = levels or FIG5_LEVELS.get(ctx.profile, FIG5_LEVELS["gpu"])
    frames, results = [], []
    for seed in ctx.seeds:
        rows = fig5_configs(ctx.profile, seed, train_p, **ctx.common)
        res = sweep([c for _, c in rows], progress=progress)
        results += res
        for (label, _), r in zip(rows, res, strict=True):
            curve = fig5_curve(ctx, r, levels)
            curve.insert(0, "trained_with", label)
            curve["seed"] = seed
            frames.append(curve)
    df = pd.concat(frames)
    by = ["trained_with", "test_occlusion", "level"]
    summ = summarise(df.drop(columns=["per_query"]), by, metrics=("R1", "mAP"))
    pq = {k: list(g["per_query"]) for k, g in df.groupby(by, sort=False)}
    summ = add_intervals(summ, by, pq, seed_var=ctx.seed_vars(), groups="occlusion", clusters=query_pids(ctx))
    summ.attrs["per_query"] = pq
    return summ, results
