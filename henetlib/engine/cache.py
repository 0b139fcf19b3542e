"""The result cache: every training run stored under a key of its configuration, and found again.

``run(config)`` returns the stored result when the same configuration (the config's identity, the data set's
fingerprint and the version of the code that trains and evaluates) already ran; otherwise it trains, stores
``results/<key>/result.json`` atomically, and keeps ``model.pt`` beside it. An interrupted run resumes from its
last checkpoint; ``sweep`` skips everything finished, so a killed and restarted sweep recomputes nothing.
A run missing here is looked up among the published results (``published/<profile>/``) by its identity key,
which leaves the code version out. Under torchrun, ``run`` and ``sweep`` train each missing run with all ranks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from henetlib.data.datasets import ReIDDataset, build_dataset
from henetlib.engine.config import FINETUNE, PROFILES, TrainConfig
from henetlib.engine.train import train
from henetlib.system import distributed as ddp
from henetlib.system.caches import CACHES
from henetlib.system.files import (
    REPO_ROOT,
    RunLock,
    atomic_torch_save,
    atomic_write_json,
    quarantine,
    results_dir,
    stable_hash,
)
from henetlib.system.runtime import git_commit, pick_device

logger = logging.getLogger(__name__)

# The modules whose code decides a result (paths under henetlib/): a change to any of them invalidates the cache.
RESULT_MODULES = ("method/model.py", "method/losses.py", "method/rpe.py", "data/datasets.py", "data/synth.py",
                  "engine/config.py", "engine/train.py", "engine/evaluator.py", "engine/evaluation.py",
                  "engine/regime.py", "system/distributed.py", "system/caches.py")


def code_version() -> str:
    """A hash of :data:`RESULT_MODULES`' source: part of every result's cache key."""
    h = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for m in RESULT_MODULES:
        h.update((package / m).read_bytes())
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
    # the regime check (henetlib.engine.regime): training fit at 80% and at the end, converged, the regime
    regime: dict[str, Any] = field(default_factory=dict)
    # CPU threads torch used (numerics differ with the thread count, so two runs of one config on one machine
    # agree only at equal counts); 0: recorded before it was kept
    threads: int = 0
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


_DATASETS = CACHES.cache("data sets", 8)


def dataset_for(cfg: TrainConfig, verbose: bool = False) -> ReIDDataset:
    key = (cfg.dataset, cfg.data_root, cfg.synth_size, cfg.skip_bad_images)
    return _DATASETS.get(key, lambda: build_dataset(cfg.dataset, cfg.data_root, cfg.synth_size, verbose=verbose,
                                                    skip_bad_images=cfg.skip_bad_images))


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
        quarantine(f, str(e).splitlines()[0])
        return None


# ---------------------------------------------------------------------------------------------------------
# Published results: result files trained elsewhere (the gpu profile on the lent H100), committed under
# published/<profile>/ with their provenance. A run missing from results/ is looked up there by its
# identity key, so a CPU-only clone renders the gpu-profile notebooks without training. They carry no
# weights: what needs a model (occlusion curves, CAM, ranked lists) was computed where it trained and
# sits beside each result.json.

_PUBLISHED = CACHES.cache("published indexes", 8)  # (published folder, profile) -> index


def published_root() -> Path:
    return Path(os.environ.get("HENET_PUBLISHED_DIR") or REPO_ROOT / "published")


def forget_published(profile: str) -> None:
    """Drop the in-memory index of ``profile``'s published results (after adding to them)."""
    _PUBLISHED.pop((str(published_root()), profile))


def published_index(profile: str) -> dict[str, Path]:
    """identity key -> folder of every published result of ``profile`` (read once per process)."""
    if os.environ.get("HENET_NO_PUBLISHED"):
        return {}

    def make() -> dict[str, Path]:
        idx = {}
        for f in sorted((published_root() / profile).glob("*/result.json")):
            try:
                idx[json.loads(f.read_text())["identity_key"]] = f.parent
            except (ValueError, KeyError) as e:
                raise ValueError(f"published result {f} cannot be read ({e}); restore it from git "
                                 f"(git checkout -- {f}) or delete its folder.") from e
        return idx

    return _PUBLISHED.get((str(published_root()), profile), make)


def published_provenance(profile: str) -> dict[str, Any]:
    f = published_root() / profile / "PROVENANCE.json"
    return json.loads(f.read_text()) if f.exists() else {}


def published_seeds(profile: str) -> tuple[int, ...]:
    """The seeds of ``profile``'s published multi-seed study (empty when none is published)."""
    prov = published_provenance(profile)
    return tuple(prov.get("seeds", ())) if prov.get("multi_seed") and not os.environ.get("HENET_NO_PUBLISHED") else ()


def find_published(cfg: TrainConfig, ds: ReIDDataset, profile: str) -> Result | None:
    folder = published_index(profile).get(identity_key(cfg, ds))
    if folder is None:
        return None
    res = load_result(folder.name, folder.parent, repair=False)  # published files are never moved
    res.source_dir = str(folder)
    return res


def profile_of(cfg: TrainConfig) -> str | None:
    """The profile whose settings ``cfg`` carries, in either of its regimes (None when overrides changed them)."""
    for name, prof in PROFILES.items():
        for settings in (prof, {**prof, **FINETUNE.get(name, {})}):
            if all(getattr(cfg, k) == (tuple(v) if isinstance(v, list) else v) for k, v in settings.items()
                   if k != "checkpoint_every"):
                return name
    return None


def prefer_published() -> bool:
    """Whether a lookup takes a published result before this machine's own run of the same configuration.

    By default it does: the published multi-seed study is what every clone renders, identically, whatever its
    CPU trained (``HENET_SOURCE=local`` puts this machine's runs first; ``HENET_NO_PUBLISHED=1`` ignores the
    published ones, which is how ``make reproduce`` trains its fresh runs for the reproduction check)."""
    return os.environ.get("HENET_SOURCE", "published") != "local"


def lookup(cfg: TrainConfig, ds: ReIDDataset, key: str | None = None) -> Result | None:
    """A finished result of ``cfg``: published (any code version) or trained here with this code, in the order
    :func:`prefer_published` gives."""
    prof = profile_of(cfg)
    if prof and prefer_published():
        published = find_published(cfg, ds, prof)
        if published is not None:
            return published
    cached = load_result(key or result_key(cfg, ds))
    if cached is not None:
        return cached
    return find_published(cfg, ds, prof) if prof and not prefer_published() else None


@contextmanager
def local_only() -> Iterator[None]:
    """Within the block, lookups see only this machine's runs (published results are ignored)."""
    before = os.environ.get("HENET_NO_PUBLISHED")
    os.environ["HENET_NO_PUBLISHED"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("HENET_NO_PUBLISHED", None)
        else:
            os.environ["HENET_NO_PUBLISHED"] = before


def lookup_local(cfg: TrainConfig, ds: ReIDDataset | None = None) -> Result | None:
    """This machine's own finished run of ``cfg`` with this code, never a published one."""
    return load_result(result_key(cfg, ds or dataset_for(cfg)))


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
                     skipped_images=list(ds.skipped), distributed=out.distributed, regime=out.regime,
                     threads=torch.get_num_threads())
        atomic_write_json(folder / "result.json", asdict(res))
        (folder / "last.pt").unlink(missing_ok=True)  # the finished model supersedes the checkpoint
    return ddp.broadcast(res)


def too_slow_here(cfg: TrainConfig) -> bool:
    """A ResNet50 run on a CPU (hours), unless HENET_ALLOW_CPU_RESNET50 says to train it anyway. A dry run's
    (``max_steps``: a few steps an epoch) takes seconds a step, so it is never refused."""
    return (cfg.backbone == "resnet50" and pick_device(cfg.device).type == "cpu" and cfg.max_steps is None
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
        logger.info("sweep: %d cached, %d to train", len(results), len(todo))
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
            logger.info("sweep: %d cached, %d to train on %d ranks", len(results), len(todo), ddp.world_size())
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
