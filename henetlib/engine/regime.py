"""The regime check: does a run fit its own training data, and had its schedule converged?

The paper fine-tunes ImageNet weights for about 46 passes over Market-1501 (section 4.1), so its claims on
regularisers (RPE, RE, the added losses) are made about converged models. A run that stops while it still
underfits measures something else: there every regulariser costs accuracy. Each of our results therefore
records, beside its test metrics:

* **training fit**: R1 / mAP with a fixed subset of the *training* identities used as query and gallery
  (one query per identity and camera, the rest as gallery, cross-camera matches only; L2-normalised
  features without the flipped second forward),
  and the accuracy of the G1 (else first) classifier on those images, both on clean images in eval mode;
* the same training fit at the **check point**, the end of the epoch at 80% of the schedule;
* the final epoch's **training loss** (from the history).

The rule, fixed before any scoreboard of the new regime was looked at (docs/READINGS.md, "Regime"):

* **converged**: the last 20% of the epochs raised the training-fit mAP by less than
  ``RegimeRule.plateau_points`` (2.0) points;
* **paper regime**: converged, and the backbone was pretrained (the paper fine-tunes pretrained weights).
  A converged run from random weights is "from scratch"; any run that had not converged is "not converged".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from henetlib.data.datasets import DeviceStore, ReIDDataset, Sample
from henetlib.engine.evaluation import evaluate_ranking, pairwise_distance
from henetlib.system.caches import CACHES

FIT_IDENTITIES = 50  # training identities in the fit subset (fewer when the set has fewer)


@dataclass(frozen=True)
class RegimeRule:
    """When a run counts as converged (see the module docstring)."""

    window: float = 0.2  # the last 20% of the epochs
    plateau_points: float = 2.0  # at most this many mAP points of training fit gained over the window

    def check_epoch(self, epochs: int) -> int:
        """The 0-based epoch after which the check point's training fit is measured (80% of the schedule);
        -1 when the schedule is too short to have one (a one-epoch run cannot show a plateau)."""
        e = math.ceil((1.0 - self.window) * epochs) - 1
        return e if 0 <= e < epochs - 1 else -1

    def describe(self) -> str:
        return (f"converged: training-fit mAP rose by < {self.plateau_points:g} points over the last "
                f"{self.window:.0%} of the epochs; paper regime: converged and fine-tuned from a pretrained backbone")


RULE = RegimeRule()


def fit_subset(ds: ReIDDataset, max_ids: int = FIT_IDENTITIES) -> tuple[list[Sample], list[Sample]]:
    """(query, gallery) from the training split: the first ``max_ids`` labelled identities (by label) that
    were seen by two cameras or more; for each, its first image of every camera is a query (when another
    camera's image stays in the gallery to match it), the rest gallery. Deterministic from the data set alone."""
    by_pid: dict[int, list[Sample]] = {}
    for s in sorted(ds.train, key=lambda s: s.path):
        if s.pid >= 0:
            by_pid.setdefault(s.pid, []).append(s)
    query, gallery = [], []
    for pid in sorted(by_pid):
        items = by_pid[pid]
        if len({s.camid for s in items}) < 2:
            continue
        seen: set[int] = set()
        qs, gs = [], []
        for s in items:
            (gs if s.camid in seen else qs).append(s)
            seen.add(s.camid)
        for s in list(qs):  # a query needs a match under another camera; else it joins the gallery
            if not any(t.camid != s.camid for t in gs):
                qs.remove(s)
                gs.append(s)
        if not qs:
            continue
        query += qs
        gallery += gs
        if len({s.pid for s in query}) >= max_ids:
            break
    return query, gallery


# The fit subset decoded once per data set, size and device: every run measures it twice (80% and end).
_FIT_STORES = CACHES.cache("regime fit subsets", 1)  # one data set at a time, as the decoded splits


def _fit_stores(ds: ReIDDataset, size: tuple[int, int], device: torch.device,
                max_ids: int) -> tuple[list[Sample], list[Sample], tuple[DeviceStore, ...]]:
    key = (ds.name, ds.fingerprint(), tuple(size), str(device), max_ids)

    def make() -> tuple:
        query, gallery = fit_subset(ds, max_ids)
        stores = tuple(DeviceStore(s, size, device) for s in (query, gallery)) if query and gallery else ()
        return query, gallery, stores

    return _FIT_STORES.get(key, make)


def _features_and_logits(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The eval-mode feature and G1's identity logits (else the first stripe branch's, else R16's), from one
    forward: a hook keeps the branch's output as the forward passes it."""
    kept: list = []
    head = model.branches[0] if len(model.branches) else model.recovery_branch
    handle = head.register_forward_hook(lambda _m, _i, out: kept.append(out))
    try:
        f = model(x)
    finally:
        handle.remove()
    if len(model.branches):
        return f, head.fc_global(kept[0][0])
    return f, head.fc(kept[0])


@torch.no_grad()
def training_fit(model: torch.nn.Module, ds: ReIDDataset, size: tuple[int, int], device: torch.device,
                 amp: torch.dtype | None = None, max_ids: int = FIT_IDENTITIES) -> dict[str, float]:
    """R1, mAP and classifier accuracy (in %) on the fit subset of the training identities."""
    query, gallery, stores = _fit_stores(ds, size, device, max_ids)
    if not query or not gallery:
        return {}
    was_training = model.training
    model.eval()
    feats, correct, total = [], 0, 0
    for store in stores:
        out = []
        for x, pids, *_ in store.test_batches():
            if device.type == "cpu":  # oneDNN infers 2x faster on channels-last input, as in evaluator.split_features
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                f, logits = _features_and_logits(model, x)
                f, logits = f.float(), logits.float()
            # L2-normalised features ranked by Euclidean distance, as the test protocol does (without its
            # flipped second forward: the fit is a regime check, and half its cost is spent on every run)
            out.append(torch.nn.functional.normalize(f, dim=1))
            correct += int((logits.argmax(1).cpu().numpy() == pids).sum())
            total += len(pids)
        feats.append(torch.cat(out))
    model.train(was_training)
    rr = evaluate_ranking(pairwise_distance(*feats), np.array([s.pid for s in query]),
                          np.array([s.pid for s in gallery]), np.array([s.camid for s in query]),
                          np.array([s.camid for s in gallery]))
    return {"R1": round(rr.summary()["R1"], 2), "mAP": round(rr.summary()["mAP"], 2),
            "classifier_acc": round(100.0 * correct / max(total, 1), 2), "identities": len({s.pid for s in query}),
            "queries": len(query)}


def assess(final_fit: dict[str, float], check_fit: dict[str, float] | None, pretrained: bool,
           final_loss: float | None, rule: RegimeRule = RULE) -> dict[str, Any]:
    """The regime record of one run from its two training-fit measurements."""
    gain = None
    if check_fit and final_fit and "mAP" in check_fit and "mAP" in final_fit:
        gain = round(final_fit["mAP"] - check_fit["mAP"], 2)
    converged = gain is not None and gain < rule.plateau_points
    regime = "not converged" if not converged else ("paper" if pretrained else "from scratch")
    return {"train_fit": final_fit, "train_fit_check": check_fit, "fit_gain_last": gain,
            "final_loss": None if final_loss is None else round(float(final_loss), 4),
            "pretrained": pretrained, "converged": converged, "regime": regime,
            "rule": {**asdict(rule), "text": rule.describe()}}


def regime_of(result_regime: dict[str, Any] | None) -> str:
    """The regime a stored result was in ("unknown" for results that predate the check)."""
    return (result_regime or {}).get("regime", "unknown")


def summarise(regimes: list[str]) -> str:
    """'3 of 4 runs in the paper regime (1 not converged)' for a verdict's runs."""
    n = len(regimes)
    paper = sum(r == "paper" for r in regimes)
    others = {r: regimes.count(r) for r in sorted(set(regimes)) if r != "paper"}
    tail = f" ({', '.join(f'{c} {r}' for r, c in others.items())})" if others else ""
    return f"{paper} of {n} runs in the paper regime{tail}"
