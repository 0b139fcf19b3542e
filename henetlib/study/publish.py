"""Publishing results trained elsewhere: the gpu-profile study on a lent GPU, brought back as small files.

On the GPU machine, ``python -m henetlib publish --profile gpu --budget 480 --out DIR`` trains the study's
runs in a fixed order until the time budget is spent (finished runs are skipped, so several calls resume it),
computes what needs the weights while they exist (Fig. 5's occlusion curves, CAM maps, ranked lists), and
packs every result's small files (never weights) into ``DIR/published-<profile>.tar.gz`` with a provenance
record. Here, ``python -m henetlib import-published FILE`` unpacks them into ``published/<profile>/``, where
:func:`henetlib.engine.cache.lookup` finds them by the runs' identities.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import tarfile
import time
from pathlib import Path
from typing import Any

import torch

from henetlib.data.staging import staging_folder, swap_in
from henetlib.engine import cache, efficiency
from henetlib.engine.config import TrainConfig, make_config
from henetlib.output import cam
from henetlib.study import grids
from henetlib.study.derived import cam_data, occlusion_curve, ranked_lists
from henetlib.study.tables import StudyContext, all_losses_config
from henetlib.system.files import atomic_write_bytes, results_dir
from henetlib.system.runtime import git_commit, hardware_string

logger = logging.getLogger(__name__)

SMALL_FILES = ("result.json", "occlusion.json", "ranked.npz", cam.cache_name("gradcam", 4))


def available_results(ctx: StudyContext) -> list:
    """Every run of the study that is cached here or published (nothing is trained)."""
    return [r for _, c in ctx.runs() if (r := cache.lookup(c, cache.dataset_for(c))) is not None]


def can_train(ctx: StudyContext) -> bool:
    """False where the profile's runs would be ResNet50 on a CPU (hours): score what is published instead."""
    return not cache.too_slow_here(make_config(ctx.profile, **{**ctx.common, "from_scratch": True}))


def train_within(ctx: StudyContext, budget_s: float, progress: bool = True,
                 out_dir: str | Path | None = None) -> tuple[int, int]:
    """Train missing runs until ``budget_s`` seconds have passed; returns (finished, still missing).

    With ``out_dir``, the extras and the archive are refreshed after every run, so a call cut short by its
    time limit still brings back everything finished before."""
    t0 = time.time()
    todo = [(g, c) for g, c in ctx.runs() if cache.lookup(c, cache.dataset_for(c)) is None]
    done = 0
    per_run = 0.0
    for grid, cfg in todo:
        left = budget_s - (time.time() - t0)
        if left < max(per_run * 1.2, 5.0):
            break
        t1 = time.time()
        try:
            res = cache.run(cfg, progress=False)
        except FloatingPointError as e:  # one diverging run must not cost the rest of the call
            logger.warning("[%s] %s: %s", grid, cfg.name(), e)
            continue
        per_run = max(per_run, time.time() - t1)
        done += 1
        if progress:
            logger.info("[%s] %s: R1 %.1f mAP %.1f (%.0f img/s, %.0f s)", grid, res.name, res.metrics["R1"],
                        res.metrics["mAP"], res.images_per_second, time.time() - t1)
        if out_dir is not None:
            extras(ctx, progress)
            pack(ctx.profile, out_dir, quiet=True)
    return done, len(todo) - done


def extras(ctx: StudyContext, progress: bool = True) -> None:
    """What needs weights, for every trained model that has them here."""
    ds = ctx.dataset()
    for seed in ctx.seeds:
        rows = grids.fig5_configs(ctx.profile, seed, **ctx.common)
        res = [cache.lookup(c, ds) for _, c in rows]
        if all(r is not None and not r.published and not (r.folder / "occlusion.json").exists() for r in res):
            levels = grids.FIG5_LEVELS.get(ctx.profile, grids.FIG5_LEVELS["gpu"])
            for r in res:
                occlusion_curve(r, levels=levels, seed=seed, device=ctx.device)
            if progress:
                logger.info("[extras] Fig. 5 occlusion curves, seed %s", seed)
    best = cache.lookup(all_losses_config(ctx), ds)
    if (best is not None and not best.published and best.model_path.exists()
            and not (best.folder / cam.cache_name("gradcam", 4)).exists()):
        ranked_lists(best, device=ctx.device)
        try:
            cam_data(best, 4, "gradcam")
        except ImportError as e:  # the grad-cam package travels as a wheel to GPU machines
            logger.warning("[extras] CAM skipped: %s", e)
        if progress:
            logger.info("[extras] ranked lists and CAM of %s", best.name)


def publish_study(contexts: list[StudyContext], command: str = "") -> Path:
    """Publish this machine's runs of ``contexts`` (one per regime, each with its seeds) as the profile's
    multi-seed study: every run's small files (never weights) into ``published/<profile>/``, with a provenance
    record naming each run's commit, code version, CPU, threads, torch and date. The folder is built aside and
    renamed into place, so an interrupted call leaves the previous study whole. Every run must be trained."""
    profile = contexts[0].profile
    if any(c.profile != profile for c in contexts):
        raise ValueError("publish_study: every context must have the same profile.")
    runs, missing = [], []
    for ctx in contexts:
        with cache.local_only():
            extras(ctx, progress=False)  # what needs the weights (occlusion curves, ranked lists, CAM), while here
            for grid, cfg in ctx.runs():
                res = cache.lookup_local(cfg)
                (runs if res is not None else missing).append((ctx, grid, cfg, res))
    if missing:
        ctx, grid, cfg, _ = missing[0]
        raise ValueError(f"{len(missing)} runs of the study are not trained here (first: [{grid}] {cfg.name()}); "
                         f"train them first: python -m henetlib study --profile {profile} --seeds "
                         f"{','.join(map(str, ctx.seeds))}{'' if ctx.finetune else ' --from-scratch'}.")
    dest = cache.published_root() / profile
    tmp = staging_folder(cache.published_root(), profile, folders=())
    records = []
    for ctx, grid, cfg, res in runs:
        for name in SMALL_FILES:
            if (res.folder / name).exists():
                (tmp / res.key).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(res.folder / name, tmp / res.key / name)
        records.append({"key": res.key, "grid": grid, "name": res.name, "seed": cfg.seed,
                        "regime": "fine-tuned" if ctx.finetune else "from scratch", "hardware": res.hardware,
                        "threads": res.threads, "git_commit": res.git_commit, "code_version": res.code_version,
                        "created": res.created})
    latest = results_dir() / "efficiency" / efficiency.LATEST  # the Table 1 measurement notebook 07 showed
    if latest.exists():
        shutil.copyfile(latest, tmp / efficiency.PUBLISHED_NAME)
    seeds = sorted({s for c in contexts for s in c.seeds})
    prov = {**provenance(profile), "multi_seed": True, "seeds": seeds,
            "regimes": sorted({r["regime"] for r in records}), "command": command,
            "runs": len(records), "hardware_of_runs": sorted({r["hardware"] for r in records}),
            "threads_of_runs": sorted({r["threads"] for r in records}),
            "code_versions": sorted({r["code_version"] for r in records}),
            "train_seconds": round(sum(r.train_seconds for *_, r in runs), 1), "records": records}
    (tmp / "PROVENANCE.json").write_text(json.dumps(prov, indent=1) + "\n")
    swap_in(tmp, dest)
    cache.forget_published(profile)
    logger.info("[publish] %d runs of %s (seeds %s, %s) -> %s", len(records), profile, seeds,
                ", ".join(prov["regimes"]), dest)
    return dest


def provenance(profile: str) -> dict[str, Any]:
    return {"profile": profile, "git_commit": git_commit(), "code_version": cache.code_version(),
            "hardware": hardware_string("auto"), "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def pack(profile: str, out_dir: str | Path, quiet: bool = False) -> Path:
    """Every finished result's small files (never weights) and the provenance, as one tar.gz."""
    out = Path(out_dir) / f"published-{profile}.tar.gz"
    buf = io.BytesIO()
    n = 0
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for f in sorted(results_dir().glob("*/result.json")):
            if cache.profile_of(TrainConfig.from_dict(json.loads(f.read_text())["config"])) != profile:
                continue
            n += 1
            for name in SMALL_FILES:
                if (f.parent / name).exists():
                    tar.add(f.parent / name, arcname=f"{f.parent.name}/{name}")
        data = json.dumps(provenance(profile), indent=2).encode()
        info = tarfile.TarInfo("PROVENANCE.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    atomic_write_bytes(out, buf.getvalue())
    if not quiet:
        logger.info("[pack] %d results -> %s (%.1f MB)", n, out, len(buf.getvalue()) / 1e6)
    return out


def unpack(archive: str | Path, profile: str) -> int:
    """Add an archive's results to ``published/<profile>/`` (existing ones are replaced); returns the count."""
    dest = cache.published_root() / profile
    dest.mkdir(parents=True, exist_ok=True)
    n = 0
    with tarfile.open(archive, "r:gz") as tar:
        for m in tar.getmembers():
            parts = Path(m.name).parts
            ok = m.isfile() and ".." not in parts and (
                parts == ("PROVENANCE.json",) or (len(parts) == 2 and parts[1] in SMALL_FILES))
            if not ok:
                raise ValueError(f"{archive}: unexpected member {m.name!r}; not a henetlib publish archive.")
            data = tar.extractfile(m).read()
            if parts == ("PROVENANCE.json",):
                prov = json.loads(data)
                old = dest / "PROVENANCE.json"
                runs = json.loads(old.read_text()).get("calls", []) if old.exists() else []
                prov["calls"] = runs + [{k: prov[k] for k in ("git_commit", "code_version", "hardware", "torch",
                                                                "date")}]
                data = json.dumps(prov, indent=2).encode()
            else:
                n += parts[1] == "result.json"
            atomic_write_bytes(dest / m.name, data)
    cache.forget_published(profile)
    return n
