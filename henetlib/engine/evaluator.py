"""Evaluating a trained model: features of a split under each test protocol (one forward, plus one flipped
forward when a protocol needs it), and an :class:`Evaluator` that holds the decoded query and gallery so that
many evaluations (Fig. 5's occlusion levels) decode them once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from henetlib.data.datasets import (
    DeviceStore,
    ReIDDataset,
)
from henetlib.engine.evaluation import TEST_PROTOCOLS, evaluate_ranking, pairwise_distance
from henetlib.method.rpe import ErasingConfig, erase_batch
from henetlib.system.caches import CACHES
from henetlib.system.runtime import pick_device

# ---------------------------------------------------------------------------------------------------------
# Evaluation of a trained model


@torch.no_grad()
def split_features(model: torch.nn.Module, store: DeviceStore, occlusion: ErasingConfig | None, seed: int,
              protocols: tuple[str, ...], amp: torch.dtype | None,
              batch_size: int = 256) -> dict[str, torch.Tensor]:
    """Features of a split under each test protocol, from one forward (and one flipped forward if needed)."""
    dev = store.device
    gen = torch.Generator(device=dev).manual_seed(seed)
    need_flip = any(TEST_PROTOCOLS[p]["flip"] for p in protocols)
    feats: dict[str, list[torch.Tensor]] = {p: [] for p in protocols}
    for s in range(0, len(store), batch_size):
        idx = torch.arange(s, min(s + batch_size, len(store)), device=dev)
        x = store.batch(idx)
        if occlusion is not None and occlusion.mode != "none":
            x = erase_batch(x, occlusion, gen)
        if dev.type == "cpu":  # oneDNN infers 2x faster on channels-last input (docs/BENCHMARKS.md)
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None):
            f = model(x).float()
            f_flip = model(torch.flip(x, dims=[3])).float() if need_flip else None
        for p in protocols:
            feats[p].append(apply_protocol(f, f_flip, p))
    return {p: torch.cat(v) for p, v in feats.items()}


def apply_protocol(f: torch.Tensor, f_flip: torch.Tensor | None, protocol: str) -> torch.Tensor:
    """A test-time feature: ``raw`` is the concatenated feature as it is; ``flip-l2`` averages it with the
    flipped image's and L2-normalises (MGN's code line); then Euclidean distance ranks."""
    spec = TEST_PROTOCOLS[protocol]
    if spec["flip"]:
        f = (f + f_flip) / 2
    return torch.nn.functional.normalize(f, dim=1) if spec["normalize"] else f


class Evaluator:
    """Holds the decoded query and gallery sets so many evaluations (Fig. 5) decode them once."""

    def __init__(self, ds: ReIDDataset, size: tuple[int, int], device: torch.device | str):
        self.ds = ds
        self.device = pick_device(device)
        self.query = DeviceStore(ds.query, size, self.device)
        self.gallery = DeviceStore(ds.gallery, size, self.device)
        names = [Path(s.path).name for s in ds.query]
        self.occluded = torch.tensor([n in ds.occluded_query for n in names], dtype=torch.bool)
        self.last_per_query: dict[str, list] = {}

    def __call__(self, model: torch.nn.Module, occlusion: ErasingConfig | None = None, seed: int = 0,
                 protocol: str = "flip-l2", amp: torch.dtype | None = None, subsets: bool = True,
                 all_protocols: bool = False) -> dict[str, Any]:
        """R1, R5, R10, mAP, mINP in % under ``protocol``, plus occluded/clean query subsets when the set
        marks them. ``all_protocols`` adds ``metrics["protocols"][name]`` for every test protocol.
        Per-query first-hit ranks and APs of ``protocol`` are kept in ``self.last_per_query``."""
        if protocol not in TEST_PROTOCOLS:
            raise ValueError(f"protocol must be one of {sorted(TEST_PROTOCOLS)}, got {protocol!r}.")
        model.eval()
        protocols = tuple(TEST_PROTOCOLS) if all_protocols else (protocol,)
        qfs = split_features(model, self.query, occlusion, seed, protocols, amp)
        gfs = split_features(model, self.gallery, occlusion, seed + 1, protocols, amp)
        q, g = self.ds.query, self.ds.gallery
        qp, gp = np.array([s.pid for s in q]), np.array([s.pid for s in g])
        qc, gc = np.array([s.camid for s in q]), np.array([s.camid for s in g])
        metrics: dict[str, Any] = {}
        for p in protocols:
            dist = pairwise_distance(qfs[p], gfs[p])
            rr = evaluate_ranking(dist, qp, gp, qc, gc)
            if all_protocols:
                metrics.setdefault("protocols", {})[p] = rr.summary()
            if p != protocol:
                continue
            metrics.update(rr.summary())
            self.last_per_query = {"first_rank": rr.query_first_rank.tolist(),
                                   "ap": [None if np.isnan(a) else round(float(a), 6) for a in rr.query_ap]}
            if subsets and self.occluded.any() and not self.occluded.all():
                for name, sel in (("occluded", self.occluded), ("clean", ~self.occluded)):
                    sel_np = sel.numpy()
                    r = evaluate_ranking(dist[sel.to(dist.device)], qp[sel_np], gp, qc[sel_np], gc).summary()
                    metrics.update({f"{k}_{name}": v for k, v in r.items()})
        return metrics


# Decoded splits kept for the life of the process, so a sweep decodes each data set once per device.
_STORES = CACHES.cache("decoded splits", 1)  # one training split at a time: they can be large
_EVALUATORS = CACHES.cache("evaluators", 2)


def _split_key(ds: ReIDDataset, size: tuple[int, int], dev: torch.device) -> tuple:
    return (ds.name, ds.fingerprint(), tuple(size), str(dev))


def cached_store(ds: ReIDDataset, split: str, size: tuple[int, int], dev: torch.device) -> DeviceStore:
    key = (split, *_split_key(ds, size, dev))
    return _STORES.get(key, lambda: DeviceStore(getattr(ds, split), size, dev))


def cached_evaluator(ds: ReIDDataset, size: tuple[int, int], dev: torch.device | str) -> Evaluator:
    dev = pick_device(dev)
    key = _split_key(ds, size, dev)
    return _EVALUATORS.get(key, lambda: Evaluator(ds, size, dev))
