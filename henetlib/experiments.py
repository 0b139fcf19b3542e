"""The experiment runner: every result cached by its configuration, and the study's tables as data.

``run(config)`` returns the stored result when the same configuration (the config's identity, the data set's
fingerprint and the version of the code that trains and evaluates) already ran; otherwise it trains, stores
``results/<key>/result.json`` atomically, and keeps ``model.pt`` beside it. An interrupted run resumes from its
last checkpoint; ``sweep`` skips everything finished, so a killed and restarted sweep recomputes nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import distributed as ddp
from . import paper
from .data import ReIDDataset, build_dataset
from .losses import loss_names
from .model import feature_dim_of, layout_name
from .rpe import ErasingConfig
from .study import (
    ALL_LOSSES,
    FIG5_LEVELS,
    ORDER,
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
from .train import Evaluator, TrainConfig, cached_evaluator, load_trained, make_config, train
from .utils import RunLock, atomic_torch_save, atomic_write_json, git_commit, results_dir, stable_hash

# The modules whose code decides a result: a change to any of them invalidates the cache.
_RESULT_MODULES = ("model", "losses", "rpe", "data", "synth", "train", "evaluation", "distributed")


def code_version() -> str:
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for m in _RESULT_MODULES:
        h.update((here / f"{m}.py").read_bytes())
    return h.hexdigest()[:12]


@dataclass
class Result:
    key: str
    config: dict[str, Any]
    metrics: dict[str, float]
    name: str
    dataset: str
    dataset_fingerprint: str
    hardware: str
    train_seconds: float
    train_images: int
    images_per_second: float
    wall_seconds: float
    git_commit: str
    code_version: str
    history: list[dict[str, Any]] = field(default_factory=list)
    created: str = ""
    # per query, in query order: first-hit rank (-1: no true match) and AP (None: skipped); the bootstrap
    # of henetlib.stats resamples these, so intervals cost no training
    per_query: dict[str, list] = field(default_factory=dict)
    identity_key: str = ""  # the config's identity and the data set, without the code version
    skipped_images: list[str] = field(default_factory=list)  # unusable files left out (--skip-bad-images)
    # world size, backend, global batch and options of a torchrun (DDP) run; empty for one process. Not
    # part of the key: see docs/SCALING.md for what that means when comparing results
    distributed: dict[str, Any] = field(default_factory=dict)
    # where this result was read from when it is a published one (published/<profile>/<key>/); not saved
    source_dir: str = field(default="", repr=False)

    @property
    def folder(self) -> Path:
        return Path(self.source_dir) if self.source_dir else results_dir() / self.key

    @property
    def published(self) -> bool:
        return bool(self.source_dir)

    @property
    def model_path(self) -> Path:
        return self.folder / "model.pt"

    @property
    def train_config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.config)


_DATASETS: dict[tuple, ReIDDataset] = {}


def dataset_for(cfg: TrainConfig, verbose: bool = False) -> ReIDDataset:
    key = (cfg.dataset, cfg.data_root, cfg.synth_size, cfg.skip_bad_images)
    if key not in _DATASETS:
        _DATASETS[key] = build_dataset(cfg.dataset, cfg.data_root, cfg.synth_size, verbose=verbose,
                                       skip_bad_images=cfg.skip_bad_images)
    return _DATASETS[key]


def result_key(cfg: TrainConfig, ds: ReIDDataset) -> str:
    return stable_hash([cfg.identity(), ds.fingerprint(), code_version()])


def identity_key(cfg: TrainConfig, ds: ReIDDataset) -> str:
    """What a run is, whatever code trained it: how published results are found."""
    return stable_hash([cfg.identity(), ds.fingerprint()])


def load_result(key: str, results_dir_: Path | None = None, repair: bool = True) -> Result | None:
    """The stored result, or None. A result.json that cannot be read (a full disk, a copy cut short) is
    moved aside to ``broken-<time>/`` with a warning naming it, so the run is redone instead of every later
    sweep stopping on a parse error."""
    f = (results_dir_ or results_dir()) / key / "result.json"
    if not f.exists():
        return None
    try:
        d = json.loads(f.read_text())
        return Result(**{k: v for k, v in d.items() if k in Result.__dataclass_fields__ and k != "source_dir"})
    except (ValueError, TypeError, UnicodeDecodeError) as e:
        if not repair:
            raise ValueError(f"{f} cannot be read ({e}).") from e
        from .utils import quarantine

        quarantine(f, str(e).splitlines()[0])
        return None


# ---------------------------------------------------------------------------------------------------------
# Published results: result files trained elsewhere (the gpu profile on the lent H100), committed under
# published/<profile>/ with their provenance. A run missing from results/ is looked up there by its
# identity key, so a CPU-only clone renders the gpu-profile notebooks without training. They carry no
# weights: what needs a model (occlusion curves, CAM, ranked lists) was computed where it trained and
# sits beside each result.json.

_PUBLISHED: dict[tuple[str, str], dict[str, Path]] = {}  # (published folder, profile) -> index


def published_root() -> Path:
    import os

    from .utils import REPO_ROOT

    return Path(os.environ.get("HENET_PUBLISHED_DIR") or REPO_ROOT / "published")


def published_index(profile: str) -> dict[str, Path]:
    """identity key -> folder of every published result of ``profile`` (read once per process)."""
    import os

    if os.environ.get("HENET_NO_PUBLISHED"):
        return {}
    key = (str(published_root()), profile)
    if key not in _PUBLISHED:
        idx = {}
        for f in sorted((published_root() / profile).glob("*/result.json")):
            try:
                idx[json.loads(f.read_text())["identity_key"]] = f.parent
            except (ValueError, KeyError) as e:
                raise ValueError(f"published result {f} cannot be read ({e}); restore it from git "
                                 f"(git checkout -- {f}) or delete its folder.") from e
        _PUBLISHED[key] = idx
    return _PUBLISHED[key]


def published_provenance(profile: str) -> dict[str, Any]:
    f = published_root() / profile / "PROVENANCE.json"
    return json.loads(f.read_text()) if f.exists() else {}


def find_published(cfg: TrainConfig, ds: ReIDDataset, profile: str) -> Result | None:
    folder = published_index(profile).get(identity_key(cfg, ds))
    if folder is None:
        return None
    res = load_result(folder.name, folder.parent, repair=False)  # published files are never moved
    res.source_dir = str(folder)
    return res


def profile_of(cfg: TrainConfig) -> str | None:
    """The profile whose settings ``cfg`` carries (None when overrides changed them)."""
    from .train import PROFILES

    for name, prof in PROFILES.items():
        if all(getattr(cfg, k) == (tuple(v) if isinstance(v, list) else v) for k, v in prof.items()
               if k != "checkpoint_every"):
            return name
    return None


def lookup(cfg: TrainConfig, ds: ReIDDataset, key: str | None = None) -> Result | None:
    """A finished result of ``cfg``: trained here with this code, else published (any code version)."""
    cached = load_result(key or result_key(cfg, ds))
    if cached is not None:
        return cached
    prof = profile_of(cfg)
    return find_published(cfg, ds, prof) if prof else None


def run(cfg: TrainConfig, progress: bool = True, force: bool = False) -> Result:
    """The cached (or published) result of ``cfg``, training it first if needed.

    Under torchrun every rank calls it and gets the same result; one run is trained by all ranks (DDP)."""
    ddp.setup(cfg.device)
    ds = dataset_for(cfg, verbose=False)
    key = result_key(cfg, ds)
    if ddp.world_size() > 1:
        return _run_ranks(cfg, ds, key, progress, force)
    if not force:
        cached = lookup(cfg, ds, key)
        if cached is not None:
            return cached
    folder = results_dir() / key
    folder.mkdir(parents=True, exist_ok=True)
    with RunLock(folder):  # another process training this run: wait for it, then use its result
        if not force:
            cached = load_result(key)
            if cached is not None:
                return cached
        return _train_and_store(cfg, ds, key, folder, progress)


def _run_ranks(cfg: TrainConfig, ds: ReIDDataset, key: str, progress: bool, force: bool) -> Result:
    """``run`` on several ranks: rank 0 looks the run up and holds its lock, every rank trains, and every
    rank returns rank 0's result (broadcast, so the ranks need not share a results folder to agree)."""
    folder = results_dir() / key
    lock, cached = None, None
    if ddp.is_main():
        cached = None if force else lookup(cfg, ds, key)
        if cached is None:
            lock = RunLock(folder)
            lock.acquire()  # another job training this run: wait, then use its result
            cached = None if force else load_result(key)
            if cached is not None:
                lock.release()
                lock = None
    cached = ddp.broadcast(cached)
    if cached is not None:
        return cached
    try:
        return _train_and_store(cfg, ds, key, folder, progress)
    finally:
        if lock is not None:
            lock.release()


def _train_and_store(cfg: TrainConfig, ds: ReIDDataset, key: str, folder: Path, progress: bool) -> Result:
    """Train ``cfg`` and store its model and result (rank 0 writes; every rank returns the result)."""
    t0 = time.time()
    out = train(cfg, out_dir=folder, progress=progress and ddp.is_main(), dataset=ds)
    res = None
    if ddp.is_main():
        atomic_torch_save({"model": out.model.state_dict(), "config": cfg.to_dict(),
                           "num_classes": ds.num_train_pids}, folder / "model.pt")
        res = Result(key=key, config=cfg.to_dict(), metrics=out.metrics, name=cfg.name(), dataset=ds.name,
                     dataset_fingerprint=ds.fingerprint(), hardware=out.hardware, train_seconds=out.train_seconds,
                     train_images=out.train_images, images_per_second=out.images_per_second,
                     wall_seconds=time.time() - t0, git_commit=git_commit(), code_version=code_version(),
                     history=[asdict(h) for h in out.history], created=time.strftime("%Y-%m-%dT%H:%M:%S"),
                     per_query=out.per_query, identity_key=identity_key(cfg, ds),
                     skipped_images=list(ds.skipped), distributed=out.distributed)
        atomic_write_json(folder / "result.json", asdict(res))
        (folder / "last.pt").unlink(missing_ok=True)  # the finished model supersedes the checkpoint
    return ddp.broadcast(res)


def too_slow_here(cfg: TrainConfig) -> bool:
    """A ResNet50 run on a CPU (hours), unless HENET_ALLOW_CPU_RESNET50 says to train it anyway."""
    import os

    from .utils import pick_device

    return (cfg.backbone == "resnet50" and pick_device(cfg.device).type == "cpu"
            and not os.environ.get("HENET_ALLOW_CPU_RESNET50"))


def _refuse_slow_training(todo: list[TrainConfig]) -> None:
    """ResNet50 profiles are for a GPU: say so before hours of CPU training start."""
    slow = [c for c in todo if too_slow_here(c)]
    if slow:
        raise ValueError(
            f"{len(slow)} ResNet50 run(s) are neither cached nor published (first: {slow[0].name()}), and this "
            "machine has no GPU: training them on the CPU would take hours. Run them on a GPU "
            "(python -m henetlib study --profile gpu), or set HENET_ALLOW_CPU_RESNET50=1 to train here anyway."
        )


def sweep(configs: list[TrainConfig], progress: bool = True) -> list[Result]:
    """Run configurations in order, skipping finished ones (deduplicated: equal configs run once).

    Keys are computed once, up front, so the results come back in the order of ``configs`` even if the
    code changes while the sweep runs.
    """
    keys = [result_key(cfg, dataset_for(cfg)) for cfg in configs]
    if ddp.world_size() > 1:
        return _sweep_ranks(configs, keys, progress)
    results, todo = _split_cached(configs, keys)
    if progress and todo:
        print(f"sweep: {len(results)} cached, {len(todo)} to train", flush=True)
    _refuse_slow_training(list(todo.values()))
    # Runs another process is training right now are taken last: by then they are usually done, and
    # run() waits on their lock and reads their result instead of training them again.
    pending = list(todo.items())
    busy = []
    for key, cfg in tqdm(pending, desc="sweep", disable=not progress or not todo):
        lock = RunLock(results_dir() / key)
        if not lock.acquire(blocking=False):
            busy.append((key, cfg))
            continue
        lock.release()
        results[key] = run(cfg, progress=progress)
    for key, cfg in busy:
        results[key] = run(cfg, progress=progress)
    return [results[k] for k in keys]


def _split_cached(configs: list[TrainConfig], keys: list[str]) -> tuple[dict[str, Result], dict[str, TrainConfig]]:
    """The finished results by key, and one configuration for each key still to train (looked up once)."""
    results: dict[str, Result] = {}
    todo: dict[str, TrainConfig] = {}
    for key, cfg in zip(keys, configs, strict=True):
        if key in results or key in todo:
            continue
        cached = lookup(cfg, dataset_for(cfg), key)
        if cached is not None:
            results[key] = cached
        else:
            todo[key] = cfg
    return results, todo


def _sweep_ranks(configs: list[TrainConfig], keys: list[str], progress: bool) -> list[Result]:
    """``sweep`` under torchrun: rank 0 decides what is missing and tells the others, then all ranks train
    each missing run together."""
    plan = None
    if ddp.is_main():
        results, todo = _split_cached(configs, keys)
        if progress and todo:
            print(f"sweep: {len(results)} cached, {len(todo)} to train on {ddp.world_size()} ranks", flush=True)
        try:
            _refuse_slow_training(list(todo.values()))
            plan = (results, todo, None)
        except ValueError as e:
            plan = (results, todo, str(e))
    results, todo, error = ddp.broadcast(plan)
    if error:
        raise ValueError(error)
    for key, cfg in todo.items():
        results[key] = run(cfg, progress=progress)
    return [results[k] for k in keys]


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


# ---------------------------------------------------------------------------------------------------------
# Fig. 5: trained models under test-time occlusion, cached beside each result.


def evaluator_for(cfg: TrainConfig, device: torch.device) -> Evaluator:
    """One Evaluator (decoded query and gallery) per data set, input size and device in this process."""
    return cached_evaluator(dataset_for(cfg), cfg.input_size, device)


def occlusion_curve(res: Result, modes=("re", "rpe", "re+rpe"), levels=(0.0, 0.5, 1.0), n: int = 20,
                    seed: int = 0, device: str | None = None) -> pd.DataFrame:
    """R1 and mAP of a trained model when the query and gallery images are erased with probability
    ``level`` by each test-time method (Fig. 5). Cached in ``results/<key>/occlusion.json``."""
    cache_f = res.folder / "occlusion.json"
    cache = json.loads(cache_f.read_text()) if cache_f.exists() else {}
    missing = [(m, lv) for m in modes for lv in levels if f"{m}|{lv:g}|{n}|{seed}" not in cache]
    if missing:
        model, cfg = _load_model(res, device, f"occlusion levels {missing} are not in {cache_f}")
        ev = evaluator_for(cfg, next(model.parameters()).device)
        for m, lv in missing:
            clean = next((v for k, v in cache.items() if k.split("|")[1:] == ["0", str(n), str(seed)]), None)
            if lv == 0 and clean is not None:  # no occlusion: the same for every test-time method
                cache[f"{m}|0|{n}|{seed}"] = clean
                continue
            occ = ErasingConfig(m, lv, n, fill=cfg.erasing_fill, re_impl=cfg.re_impl) if lv > 0 else None
            r = ev(model, occlusion=occ, seed=seed, protocol=cfg.test_protocol, subsets=False)
            # per-query vectors too: Fig. 5's claims are paired comparisons on the same queries
            cache[f"{m}|{lv:g}|{n}|{seed}"] = {"R1": r["R1"], "mAP": r["mAP"], "per_query": ev.last_per_query}
        atomic_write_json(cache_f, cache)
    recs = []
    for m in modes:
        for lv in levels:
            v = cache[f"{m}|{lv:g}|{n}|{seed}"]
            recs.append({"test_occlusion": ErasingConfig(m, 0.5, n).label(), "level": lv, "R1": v["R1"],
                         "mAP": v["mAP"], "per_query": v.get("per_query")})
    return pd.DataFrame(recs)


def _load_model(res: Result, device: str | torch.device | None, needed_for: str) -> tuple[torch.nn.Module, TrainConfig]:
    """The trained model of a local result, for data not yet cached beside it (``needed_for`` says which).

    Published results carry no weights: that is a clear error. A model.pt that cannot be read is moved
    aside and the run is redone (its result.json goes with it, so nothing stale stays behind)."""
    if not res.model_path.exists():
        raise FileNotFoundError(
            f"{res.name}: {needed_for}, and the model to compute them ({res.model_path}) is not here (published "
            "results carry no weights). Compute them where the model was trained, or retrain it here."
        )
    try:
        return load_trained(res.model_path, device)
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint: quarantine, retrain
        from .utils import quarantine

        quarantine(res.model_path, str(e).splitlines()[0][:200])
        if (res.folder / "result.json").exists():
            quarantine(res.folder / "result.json", "its model.pt was damaged")
        redone = run(res.train_config)
        return load_trained(redone.model_path, device)


def all_losses_config(ctx: StudyContext) -> TrainConfig:
    """G1+P4+R16 with every loss and no erasing (Table 4's last row): the model of CAM and ranked lists."""
    return make_config(ctx.profile, **ALL_LOSSES, **ctx.common)


def all_losses_result(ctx: StudyContext, progress: bool = True) -> Result:
    return run(all_losses_config(ctx), progress=progress)


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Compressed arrays, written atomically beside a result."""
    import io

    from .utils import atomic_write_bytes

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def protocols_frame(res: Result) -> pd.DataFrame:
    """R1/R5/R10/mAP/mINP of one model under each test protocol, side by side."""
    prot = res.metrics.get("protocols", {})
    return pd.DataFrame([{"protocol": p, **{k: v for k, v in m.items()}} for p, m in prot.items()])


# ---------------------------------------------------------------------------------------------------------
# What the notebooks call: one function per table, ours beside the paper's.


@dataclass
class StudyContext:
    """The parameters a study notebook takes, resolved once."""

    profile: str = "smoke"
    device: str = "auto"
    data_root: str | None = None
    dataset_name: str | None = None
    seeds: tuple[int, ...] = (0,)
    overrides: dict[str, Any] = field(default_factory=dict)  # e.g. {"epochs": 2} for quick checks

    def __post_init__(self) -> None:
        from .train import PROFILES

        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; use one of {sorted(PROFILES)}.")
        seeds = self.seeds
        if isinstance(seeds, str):  # papermill's -p passes "[0, 1]" or "0,1" as text
            import re

            seeds = [int(x) for x in re.findall(r"-?\d+", seeds)]
        elif isinstance(seeds, int):
            seeds = [seeds]
        if not seeds or not all(isinstance(x, int) and not isinstance(x, bool) for x in seeds):
            raise ValueError(f"seeds must be a non-empty list of integers such as [0, 1, 2], got {self.seeds!r} "
                             "(papermill: -y 'seeds: [0, 1, 2]'; CLI: --seeds 0,1,2).")
        self.seeds = tuple(seeds)
        from .data import KNOWN_DATASETS

        if self.dataset_name and self.dataset_name.lower() not in KNOWN_DATASETS:
            raise ValueError(f"unknown data set {self.dataset_name!r}; use synthreid, market1501, dukemtmc, "
                             "cuhk03-detected or cuhk03-labeled.")

    @property
    def common(self) -> dict[str, Any]:
        out: dict[str, Any] = {"device": self.device, **self.overrides}
        if self.data_root:
            out.update(dataset=self.dataset_name or "market1501", data_root=str(self.data_root))
        return out

    def dataset(self) -> ReIDDataset:
        return dataset_for(make_config(self.profile, **self.common))

    def runs(self, grids: tuple[str, ...] | None = None) -> list[tuple[str, TrainConfig]]:
        """(grid, config) of every run of ``grids`` (default: the whole study), each once, in the study's
        stable order (what ``study --shard`` slices and ``publish`` trains)."""
        return study_configs(self.profile, self.seeds, grids or ORDER, **self.common)

    def hardware(self) -> str:
        from .utils import hardware_string

        return hardware_string(self.device)

    def caption(self, results: list[Result] | None = None, extra: str = "") -> str:
        from .report import caption

        hw = sorted({r.hardware for r in results}) if results else [self.hardware()]
        seeds = f"seeds {', '.join(map(str, self.seeds))}"
        notes = [f"{seeds}.", "± is half the 95% bootstrap interval over queries"
                 + (" and seeds." if len(self.seeds) > 1 else ".")]
        sizes = [r.distributed.get("world_size", 1) for r in results or []]
        if any(n > 1 for n in sizes):
            notes.append(f"{sum(n > 1 for n in sizes)} of {len(sizes)} runs were trained with DDP on "
                         f"{', '.join(str(n) for n in sorted(set(sizes)) if n > 1)} processes (global batch "
                         "P x processes x K; docs/SCALING.md).")
        pub = [r for r in results or [] if r.published]
        if pub:
            prov = published_provenance(self.profile)
            notes.append(f"Rendered from published results ({len(pub)} of {len(results)} runs), trained on "
                         f"{prov.get('hardware', '?')} at commit {prov.get('git_commit', '?')}, "
                         f"{prov.get('date', '?')[:10]}; nothing was trained here.")
        return caption(self.profile, self.dataset().name, "; ".join(hw), " ".join(notes + [extra]).strip())


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
                  n_boot: int = 1000) -> pd.DataFrame:
    """Add ``<m>_lo`` / ``<m>_hi`` (95% bootstrap interval over queries, and over seeds when several) for
    each metric, from the per-query vectors of each row's results (``per_query[row key] = [seed dicts]``)."""
    from .stats import interval

    out = summ.copy()
    for m in metrics:
        lo, hi = [], []
        for _, row in out.iterrows():
            key = tuple(row[c] for c in by)
            pqs = per_query.get(key if len(by) > 1 else key[0], [])
            if pqs and all(pqs):
                iv = interval(pqs, m, n_boot=n_boot)
                lo.append(iv.lo), hi.append(iv.hi)
            else:
                lo.append(np.nan), hi.append(np.nan)
        out[f"{m}_lo"], out[f"{m}_hi"] = lo, hi
    return out


def _per_query_of(rows: list[tuple], results: list[Result], n_keys: int = 1) -> dict[tuple, list]:
    out: dict = {}
    for row, res in zip(rows, results, strict=True):
        key = row[0] if n_keys == 1 else tuple(row[:n_keys])
        out.setdefault(key, []).append(res.per_query)
    return out


def _table(ctx: StudyContext, rows: list[tuple], table: str, label: str, progress: bool) -> tuple[pd.DataFrame, list[Result]]:
    from .report import side_by_side

    results = sweep([r[-1] for r in rows], progress=progress)
    df = results_frame(rows, results, [label, "seed"])
    summ = add_intervals(summarise(df, [label, "FD"]), [label], _per_query_of(rows, results))
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
                         _per_query_of(rows, results))
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
    return add_intervals(summ, ["method", "p"], _per_query_of(rows, results, 2)), results


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
            curve = occlusion_curve(r, levels=levels, seed=seed, device=ctx.device)
            curve.insert(0, "trained_with", label)
            curve["seed"] = seed
            frames.append(curve)
    df = pd.concat(frames)
    by = ["trained_with", "test_occlusion", "level"]
    summ = summarise(df.drop(columns=["per_query"]), by, metrics=("R1", "mAP"))
    pq = {k: list(g["per_query"]) for k, g in df.groupby(by, sort=False)}
    summ = add_intervals(summ, by, pq)
    summ.attrs["per_query"] = pq
    return summ, results


def ranked_lists(res: Result, topk: int = 20, device: str | None = None) -> tuple[np.ndarray, list, list]:
    """(ranked, query samples, gallery samples): per query the ``topk`` nearest gallery indices, same-camera
    true matches removed, for ``plot_ranked_results(ranked=...)``. Cached in ``ranked.npz`` beside the
    result, so published results draw their ranked lists without the model."""
    cfg = res.train_config
    ds = dataset_for(cfg)
    f = res.folder / "ranked.npz"
    if f.exists():
        return np.load(f)["ranked"], ds.query, ds.gallery
    from .evaluation import pairwise_distance
    from .train import _features

    model, cfg = _load_model(res, device, f"its ranked lists are not in {f}")
    ev = evaluator_for(cfg, next(model.parameters()).device)
    qf = _features(model, ev.query, None, 0, (cfg.test_protocol,), None)[cfg.test_protocol]
    gf = _features(model, ev.gallery, None, 1, (cfg.test_protocol,), None)[cfg.test_protocol]
    d = pairwise_distance(qf, gf).float()
    qp, gp = ev.query.pids, ev.gallery.pids
    qc, gc = ev.query.camids, ev.gallery.camids
    junk = (qp[:, None] == gp[None, :]) & (qc[:, None] == gc[None, :])
    ranked = d.masked_fill(junk, float("inf")).topk(topk, dim=1, largest=False).indices.int().cpu().numpy()
    _save_npz(f, ranked=ranked)
    return ranked, ds.query, ds.gallery


def cam_data(res: Result, num_images: int = 4, method: str = "gradcam", n: int = 20,
             device: str | None = None) -> dict[str, Any]:
    """Per-branch CAM maps of a trained model on ``num_images`` training images, clean and RPE-occluded.

    Returns {"clean", "occluded": (N, H, W, 3) uint8 RGB, "maps": {kind: {branch: (N, H, W)}}, "branches",
    "pids"}. Cached in ``cams-<method>-<num_images>.npz`` beside the result (published results carry it)."""
    f = res.folder / f"cams-{method}-{num_images}.npz"
    if f.exists():
        z = np.load(f)
        branches = [str(b) for b in z["branches"]]
        return {"clean": z["clean"], "occluded": z["occluded"], "branches": branches, "pids": z["pids"].tolist(),
                "maps": {k: {b: z[f"{k}|{b}"] for b in branches} for k in ("clean", "occluded")}}
    from . import cam, rpe
    from .data import DeviceStore

    model, cfg = _load_model(res, "cpu", f"its CAM maps are not in {f}")
    ds = dataset_for(cfg)
    labelled = [i for i, s in enumerate(ds.train) if s.pid >= 0]
    pick = labelled[:: max(1, len(labelled) // num_images)][:num_images]
    store = DeviceStore([ds.train[i] for i in pick], cfg.input_size, "cpu")
    clean = store.batch(list(range(len(pick))))
    occluded = rpe.random_polygon_erasing_batch(clean, p=1.0, n=n, value=cfg.erasing_fill,
                                                generator=torch.Generator().manual_seed(0))
    labels = [ds.train[i].pid for i in pick]
    maps = {kind: cam.branch_cams(model, x, labels, method=method) for kind, x in (("clean", clean), ("occluded", occluded))}
    out = {"clean": cam.denormalize(clean), "occluded": cam.denormalize(occluded), "branches": model.branch_names(),
           "pids": labels, "maps": maps}
    _save_npz(f, clean=out["clean"], occluded=out["occluded"], branches=np.array(out["branches"]),
              pids=np.array(labels), **{f"{k}|{b}": v.astype(np.float16) for k, m in maps.items() for b, v in m.items()})
    return out
