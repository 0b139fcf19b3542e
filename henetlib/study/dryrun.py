"""The dry run's report (``make reproduce ... QUICK=1``): what a user checks before spending GPU hours.

A dry run trains every run of the study for one epoch of one step from the user's weights on the user's
data, renders every notebook from those runs, and then says, from what it measured: the data set's counts,
whether the weights loaded (every backbone tensor matched) and reached every run, the device, the peak
memory, the time per training step, and the full study's estimated time on this machine. The estimate scales
each run's measured time per step to the full schedule (epochs x P x K batches of the training set) and adds
what the run cost besides training (building the model, the regime check, evaluation).
"""

from __future__ import annotations

import json
import logging
import resource
import statistics
from pathlib import Path
from typing import Any

import torch

from henetlib.engine.cache import Result, dataset_for, lookup
from henetlib.engine.config import TrainConfig, weights_sha256
from henetlib.method.model import read_backbone_state
from henetlib.study.tables import StudyContext
from henetlib.system.files import atomic_write_json, atomic_write_text
from henetlib.system.runtime import hardware_string

logger = logging.getLogger(__name__)

# what makes a dry run's configuration differ from the full study's (and the seed: the dry run has the first)
_SCHEDULE = ("seed", "epochs", "max_steps")


def _layout_key(cfg: TrainConfig) -> str:
    return json.dumps({k: v for k, v in cfg.identity().items() if k not in _SCHEDULE}, sort_keys=True, default=str)


def steps_per_epoch(cfg: TrainConfig, num_train_pids: int) -> int:
    """P x K batches of one epoch: each training identity once, P a batch (the sampler's length)."""
    return max(1, num_train_pids // cfg.p)


def _steps_done(res: Result) -> float:
    cfg = res.train_config
    world = res.distributed.get("world_size", 1) or 1
    return sum(h["images"] for h in res.history) / (cfg.p * cfg.k * world)


def _weights(ctx: StudyContext, results: list[Result]) -> dict[str, Any]:
    path = ctx.overrides.get("pretrained")
    if not path:
        start = results[0].train_config.pretrained if results else None
        return {"given": False, "start": start or "random weights"}
    backbone = results[0].train_config.backbone if results else ctx.overrides.get("backbone", "resnet50")
    state = read_backbone_state(path, backbone)
    sha = weights_sha256(path)
    used = sum(r.train_config.pretrained == path and r.train_config.identity()["pretrained"] == f"sha256:{sha}"
               for r in results)
    return {"given": True, "path": path, "sha256": sha, "backbone": backbone, "tensors_matched": len(state),
            "runs_from_weights": used, "runs": len(results)}


def peak_memory() -> dict[str, float]:
    """Peak resident memory (MiB) of this process and of the largest finished child (training shards,
    notebook kernels), and the peak CUDA memory this process allocated."""
    out = {"process_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "largest_child_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def estimate(full: StudyContext, quick: StudyContext) -> dict[str, Any]:
    """Each dry run measured, and each full-study run's estimated time from it."""
    full_runs = [cfg for _, cfg in full.runs()]
    ds = dataset_for(full_runs[0])
    measured: dict[str, Result] = {}
    for _, cfg in quick.runs():
        res = lookup(cfg, dataset_for(cfg))
        if res is None:
            raise RuntimeError(f"the dry run of {cfg.name()} is not in the cache; run the dry run again.")
        measured[_layout_key(cfg)] = res
    per_step = {k: r.train_seconds / max(_steps_done(r), 1e-9) for k, r in measured.items()}
    total = 0.0
    for cfg in full_runs:
        key = _layout_key(cfg)
        res = measured[key]
        total += max(res.wall_seconds - res.train_seconds, 0.0)
        total += cfg.epochs * steps_per_epoch(cfg, ds.num_train_pids) * per_step[key]
    return {"results": list(measured.values()), "seconds_per_step": statistics.median(per_step.values()),
            "seconds_per_step_range": [min(per_step.values()), max(per_step.values())],
            "full_runs": len(full_runs), "full_epochs": full_runs[0].epochs, "full_seconds": total, "dataset": ds}


def report(full: StudyContext, quick: StudyContext, reports: Path, seconds: float) -> dict[str, Any]:
    """Write ``reports/.../dry_run.md`` and ``dry_run.json`` and log the report; returns it."""
    est = estimate(full, quick)
    ds, results, epochs = est.pop("dataset"), est.pop("results"), est.pop("full_epochs")
    cfg = results[0].train_config
    weights = _weights(full, results)
    mem = peak_memory()
    out = {
        "profile": full.profile,
        "regime": ("fine-tuned from the given weights" if weights["given"] else
                   "fine-tuned from the SynthReID-pretrained backbone" if full.finetune else "from random weights"),
        "device": hardware_string(full.device), "dry_run_seconds": round(seconds, 1),
        "dataset": {"name": ds.name, "train_ids": ds.num_train_pids, "train_images": len(ds.train),
                    "query": len(ds.query), "gallery": len(ds.gallery)},
        "weights": weights, "memory": {k: round(v, 1) for k, v in mem.items()},
        "schedule": {"epochs": epochs, "steps_per_epoch": steps_per_epoch(cfg, ds.num_train_pids),
                     "batch": f"{cfg.p} x {cfg.k}", "input": f"{cfg.height} x {cfg.width}",
                     "seeds": list(full.seeds)},
        **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in est.items()},
    }
    text = render(out)
    reports.mkdir(parents=True, exist_ok=True)
    atomic_write_json(reports / "dry_run.json", out)
    atomic_write_text(reports / "dry_run.md", text)
    logger.info("\n%s\n(written to %s)", text, reports / "dry_run.md")
    return out


def _duration(s: float) -> str:
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s"


def render(r: dict[str, Any]) -> str:
    d, w, m, sch = r["dataset"], r["weights"], r["memory"], r["schedule"]
    if w["given"]:
        ok = w["runs_from_weights"] == w["runs"]
        weights = (f"{w['path']} (sha256 {w['sha256'][:12]}): all {w['tensors_matched']} {w['backbone']} tensors "
                   f"matched; {w['runs_from_weights']} of {w['runs']} runs started from them"
                   + ("" if ok else " - NOT every run: check the overrides"))
    else:
        weights = f"none given: the profile's own start ({w['start']})"
    memory = f"{m['largest_child_mib']:.0f} MiB resident in the largest training or notebook process"
    if "cuda_mib" in m:
        memory += f", {m['cuda_mib']:.0f} MiB of CUDA memory"
    lo, hi = r["seconds_per_step_range"]
    return "\n".join([
        f"# Dry run: profile {r['profile']}, {r['regime']}",
        "",
        f"- Data: {d['name']}: {d['train_ids']} training identities ({d['train_images']} images), "
        f"{d['query']} queries, {d['gallery']} gallery images.",
        f"- Weights: {weights}.",
        f"- Device: {r['device']}.",
        f"- Peak memory: {memory}.",
        f"- Time per training step ({sch['batch']} images at {sch['input']}): median {r['seconds_per_step']:.2f} s "
        f"over the study's layouts ({lo:.2f}-{hi:.2f} s; the first step of a run included).",
        f"- The full study: {r['full_runs']} runs of {sch['epochs']} epochs x {sch['steps_per_epoch']} steps "
        f"(seeds {', '.join(map(str, sch['seeds']))}): about {_duration(r['full_seconds'])} of training and "
        "evaluation in one process on this machine (the CPU trains it in shards: divide by their number).",
        f"- This dry run took {_duration(r['dry_run_seconds'])}.",
    ]) + "\n"
