"""What is computed from a trained model, cached beside its result: occlusion curves (Fig. 5), ranked lists
and CAM maps.

Each is written next to ``result.json`` (``occlusion.json``, ``ranked.npz``, ``cams-<method>-<n>-<format>.npz``), so a
published result, which carries no weights, still draws them. The model is loaded only for what is missing.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from henetlib.data.datasets import DeviceStore
from henetlib.engine.cache import Result, dataset_for
from henetlib.engine.config import TrainConfig
from henetlib.engine.evaluation import pairwise_distance
from henetlib.engine.evaluator import Evaluator, cached_evaluator, split_features
from henetlib.engine.train import load_trained
from henetlib.method import rpe
from henetlib.method.rpe import ErasingConfig
from henetlib.output import cam
from henetlib.system.files import atomic_write_bytes, atomic_write_json, quarantine


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


class ModelUnavailable(FileNotFoundError):
    """The trained model a derived result needs is not here (a published result carries no weights)."""


class ModelDamaged(ModelUnavailable):
    """The trained model could not be read; it and its result.json were moved aside, so that running the
    configuration again retrains it. Derived results never train: the caller decides
    (:func:`henetlib.study.tables.retrain_if_damaged` does)."""

    def __init__(self, message: str, config: TrainConfig):
        super().__init__(message)
        self.config = config


def _load_model(res: Result, device: str | torch.device | None, needed_for: str) -> tuple[torch.nn.Module, TrainConfig]:
    """The trained model of a local result, for data not yet cached beside it (``needed_for`` says which)."""
    if not res.model_path.exists():
        raise ModelUnavailable(
            f"{res.name}: {needed_for}, and the model to compute them ({res.model_path}) is not here (published "
            "results carry no weights). Compute them where the model was trained, or retrain it here."
        )
    try:
        return load_trained(res.model_path, device)
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint: quarantined, so that a rerun retrains
        moved = quarantine(res.model_path, str(e).splitlines()[0][:200])
        if (res.folder / "result.json").exists():
            quarantine(res.folder / "result.json", "its model.pt was damaged")
        raise ModelDamaged(f"{res.name}: {needed_for}, and its model could not be read ({e}); it was moved to "
                           f"{moved}. Run the configuration again to retrain it.", res.train_config) from e


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Compressed arrays, written atomically beside a result."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def protocols_frame(res: Result) -> pd.DataFrame:
    """R1/R5/R10/mAP/mINP of one model under each test protocol, side by side."""
    prot = res.metrics.get("protocols", {})
    return pd.DataFrame([{"protocol": p, **{k: v for k, v in m.items()}} for p, m in prot.items()])


def ranked_lists(res: Result, topk: int = 20, device: str | None = None) -> tuple[np.ndarray, list, list]:
    """(ranked, query samples, gallery samples): per query the ``topk`` (at most the gallery's size) nearest
    gallery indices, same-camera true matches removed, for ``plot_ranked_results(ranked=...)``. Cached in ``ranked.npz`` beside the
    result, so published results draw their ranked lists without the model."""
    cfg = res.train_config
    ds = dataset_for(cfg)
    f = res.folder / "ranked.npz"
    if f.exists():
        return np.load(f)["ranked"], ds.query, ds.gallery
    model, cfg = _load_model(res, device, f"its ranked lists are not in {f}")
    ev = evaluator_for(cfg, next(model.parameters()).device)
    qf = split_features(model, ev.query, None, 0, (cfg.test_protocol,), None)[cfg.test_protocol]
    gf = split_features(model, ev.gallery, None, 1, (cfg.test_protocol,), None)[cfg.test_protocol]
    d = pairwise_distance(qf, gf).float()
    qp, gp = ev.query.pids, ev.gallery.pids
    qc, gc = ev.query.camids, ev.gallery.camids
    junk = (qp[:, None] == gp[None, :]) & (qc[:, None] == gc[None, :])
    k = min(topk, d.shape[1])  # a small gallery (a user's test folder) has fewer than topk images
    ranked = d.masked_fill(junk, float("inf")).topk(k, dim=1, largest=False).indices.int().cpu().numpy()
    _save_npz(f, ranked=ranked)
    return ranked, ds.query, ds.gallery


def cam_data(res: Result, num_images: int = 4, method: str = "gradcam", n: int = 20,
             device: str | None = None) -> dict[str, Any]:
    """Per-branch CAM maps of a trained model on ``num_images`` training images, clean and RPE-occluded.

    Returns {"clean", "occluded": (N, H, W, 3) uint8 RGB, "maps": {kind: {branch: (N, H, W)}}, "branches",
    "pids"}. Cached in :func:`henetlib.output.cam.cache_name` beside the result (published results carry it)."""
    f = res.folder / cam.cache_name(method, num_images)
    if f.exists():
        z = np.load(f)
        branches = [str(b) for b in z["branches"]]
        return {"clean": z["clean"], "occluded": z["occluded"], "branches": branches, "pids": z["pids"].tolist(),
                "maps": {k: {b: z[f"{k}|{b}"] for b in branches} for k in ("clean", "occluded")}}
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
