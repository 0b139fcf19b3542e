"""A stand-in for ImageNet pretraining: backbones pretrained here, on a SynthReID set of their own.

The paper fine-tunes an ImageNet-pretrained ResNet50 (section 4.1). No ImageNet weights exist on the
project's machines, and training the study's profiles from random weights tests the claims in a regime
the paper never ran: short schedules that underfit, where every regulariser costs accuracy
(docs/READINGS.md, "Pretraining"). This module gives each small profile a pretrained backbone all the same.

* The backbone trains as an identity classifier (global average pool, BatchNorm, linear layer; CE with
  label smoothing) on ``SynthReID pretrain-*``: its own seed (1), so its own identities, its own cameras
  and its own backgrounds. No identity is shared with the study's sets (seed 0);
  :func:`shared_identities` checks it and a test calls it.
* The weights are saved as a torchvision-style ResNet ``state_dict`` without ``fc``, so HENet loads them
  through ``pretrained=PATH`` exactly as it loads a real ImageNet checkpoint.
* Beside the weights, ``<name>.json`` records the provenance: the configuration and its hash, the exact
  command that reproduces the file, the file's SHA-256, torch, hardware, date and cost.

``python -m henetlib pretrain --profile smoke`` writes ``pretrained/smoke-resnet18-quarter.pt`` (committed;
``make reproduce`` uses it and never pretrains). ``--profile gpu`` pretrains the ResNet50 at the start of a
GPU lease (``benchmarks/gpu_call.sh``). The paper profile takes the user's ImageNet weights instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from henetlib.data import fractal, synth
from henetlib.data.datasets import DeviceStore, ReIDDataset, build_dataset, market_style
from henetlib.engine.evaluation import evaluate_ranking, pairwise_distance
from henetlib.method.model import backbone_network
from henetlib.system.files import REPO_ROOT, atomic_torch_save, atomic_write_json, data_dir, stable_hash
from henetlib.system.runtime import git_commit, hardware_string, pick_device, seed_everything

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainConfig:
    """One pretraining run. ``profile`` names the study profile whose backbone this is."""

    profile: str
    backbone: str
    synth_set: str  # a SynthReID set of its own (henetlib.data.synth.PROFILES, seed 1), or a FractalDB-style one
    height: int
    width: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup_epochs: int = 1
    seed: int = 0

    def config_hash(self) -> str:
        """What the published runs record: the hash of everything that decides the weights."""
        return stable_hash(asdict(self))[:16]

    @property
    def file_name(self) -> str:
        return f"{self.profile}-{self.backbone}.pt"


PRETRAIN_PROFILES: dict[str, PretrainConfig] = {
    # smoke: resnet18-quarter at the smoke profile's 64 x 32; about 6,000 images of 600 identities.
    "smoke": PretrainConfig("smoke", "resnet18-quarter", "pretrain-small", 64, 32, epochs=12, batch_size=128,
                            lr=2e-3),
    # smoke-fractal: the same backbone and recipe on formula-driven images without people (FractalDB-style,
    # henetlib.data.fractal); measured against smoke's by benchmarks/fractal_pretrain.py, not committed.
    "smoke-fractal": PretrainConfig("smoke-fractal", "resnet18-quarter", "fractaldb-600", 64, 32, epochs=12,
                                    batch_size=128, lr=2e-3),
    # gpu: ResNet50 at 128 x 64 on 1,500 identities; run at the start of a GPU lease.
    "gpu": PretrainConfig("gpu", "resnet50", "pretrain-full", 128, 64, epochs=40, batch_size=256, lr=1e-3),
}


def pretrained_dir() -> Path:
    return REPO_ROOT / "pretrained"


def weights_path(profile: str) -> Path:
    """Where the profile's pretrained backbone lives (committed for smoke)."""
    return pretrained_dir() / config_for(profile).file_name


def provenance_path(weights: str | Path) -> Path:
    return Path(weights).with_suffix(".json")


def config_for(profile: str, **overrides: Any) -> PretrainConfig:
    if profile not in PRETRAIN_PROFILES:
        raise ValueError(f"no pretraining is defined for profile {profile!r}; use one of "
                         f"{sorted(PRETRAIN_PROFILES)} (the paper profile takes your ImageNet weights: "
                         "--pretrained PATH).")
    return replace(PRETRAIN_PROFILES[profile], **{k: v for k, v in overrides.items() if v is not None})


def command_for(cfg: PretrainConfig) -> str:
    """The command that reproduces ``cfg``'s weights (only the fields that differ from the profile)."""
    base = PRETRAIN_PROFILES[cfg.profile]
    extra = "".join(f" --{k.replace('_', '-')} {v}" for k, v in asdict(cfg).items()
                    if k in _CLI_FIELDS and v != getattr(base, k))
    return f"python -m henetlib pretrain --profile {cfg.profile}{extra}"


_CLI_FIELDS = ("epochs", "batch_size", "lr", "seed")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------------
# The pretraining set shares no identity with the study's sets


def shared_identities(pretrain_set: str, study_sets: tuple[str, ...] = ("tiny", "smoke", "small", "full")) -> list[tuple]:
    """(pretraining pid, study set, study pid) for every identity whose appearance parameters are equal.

    An identity of SynthReID is the parameter set :func:`henetlib.data.synth.make_identity` draws from
    (seed, pid); the pretraining sets use seed 1 and the study's sets seed 0. Empty when disjoint."""
    def params(seed: int, pid: int) -> bytes:
        ident = synth.make_identity(seed, pid)
        return json.dumps({k: np.asarray(v, dtype=float).round(6).tolist() for k, v in vars(ident).items()},
                          sort_keys=True).encode()

    p = synth.PROFILES[pretrain_set]
    mine = {params(p.seed, pid): pid for pid in range(1, p.train_ids + p.test_ids + 1)}
    shared = []
    for name in study_sets:
        s = synth.PROFILES[name]
        if s.seed == p.seed:
            shared.append((None, name, "same seed: every identity is shared"))
            continue
        for pid in range(1, s.train_ids + s.test_ids + 1):
            hit = mine.get(params(s.seed, pid))
            if hit is not None:
                shared.append((hit, name, pid))
    return shared


# ---------------------------------------------------------------------------------------------------------
# Training


class _Classifier(nn.Module):
    """Backbone, global average pool, BatchNorm neck and a linear identity classifier."""

    def __init__(self, backbone: nn.Module, num_classes: int):
        super().__init__()
        self.backbone = backbone
        dim = _out_channels(backbone)
        self.neck = nn.BatchNorm1d(dim)
        self.fc = nn.Linear(dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        x = b.layer4(b.layer3(b.layer2(b.layer1(x))))
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.neck(self.features(x)))


def _out_channels(net: nn.Module) -> int:
    last = net.layer4[-1]
    return (last.conv3 if hasattr(last, "conv3") else last.conv2).out_channels


def _lr_at(cfg: PretrainConfig, step: int, total: int, per_epoch: int) -> float:
    """Linear warm-up, then cosine decay to zero (an ImageNet-style schedule)."""
    warm = cfg.warmup_epochs * per_epoch
    if step < warm:
        return cfg.lr * (step + 1) / warm
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * (step - warm) / max(total - warm, 1)))


@torch.no_grad()
def _retrieval(model: _Classifier, ds: ReIDDataset, size: tuple[int, int], dev: torch.device) -> dict[str, float]:
    """R1 / mAP of the backbone's pooled features on a set's own query and gallery (no fine-tuning)."""
    model.eval()
    feats = []
    for split in (ds.query, ds.gallery):
        store = DeviceStore(split, size, dev)
        out = [F.normalize(model.features(x), dim=1) for x, *_ in store.test_batches()]
        feats.append(torch.cat(out))
    q, g = ds.query, ds.gallery
    rr = evaluate_ranking(pairwise_distance(*feats), np.array([s.pid for s in q]), np.array([s.pid for s in g]),
                          np.array([s.camid for s in q]), np.array([s.camid for s in g]))
    return {k: round(v, 2) for k, v in rr.summary().items() if k in ("R1", "mAP")}


def pretraining_set(name: str, verbose: bool = True) -> ReIDDataset:
    """SynthReID's pretraining set ``name``, or a FractalDB-style set (``henetlib.data.fractal.PROFILES``), each
    generated on first use under data/."""

    if name in fractal.PROFILES:
        return market_style(fractal.generate(data_dir() / "fractaldb", name, verbose), name)
    return build_dataset("synthreid", None, name, verbose=verbose)


def pretrain(cfg: PretrainConfig, out: str | Path | None = None, device: str = "auto",
             progress: bool = True) -> dict[str, Any]:
    """Train ``cfg``'s backbone and write ``out`` (default :func:`weights_path`) and its provenance JSON.

    Returns the provenance record. Deterministic from ``cfg`` on one machine (fixed seeds; CPU kernels
    may round differently on another processor or thread count, so the record keeps the SHA-256 it got)."""
    out = Path(out) if out else pretrained_dir() / cfg.file_name
    dev = pick_device(device)
    seed_everything(cfg.seed)
    ds = pretraining_set(cfg.synth_set, progress)
    labelled = [s for s in ds.train if s.pid >= 0]
    store = DeviceStore(labelled, (cfg.height, cfg.width), dev)
    model = _Classifier(backbone_network(cfg.backbone), ds.num_train_pids).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    amp = torch.bfloat16 if dev.type == "cuda" else None
    gen = torch.Generator(device=dev).manual_seed(cfg.seed + 11)
    n = len(store)
    per_epoch = n // cfg.batch_size
    total = per_epoch * cfg.epochs
    history, step, t0 = [], 0, time.perf_counter()
    model.train()
    for epoch in range(cfg.epochs):
        order = torch.randperm(n, generator=gen, device=dev)
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev)
        for i in range(per_epoch):
            idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            for g_ in opt.param_groups:
                g_["lr"] = _lr_at(cfg, step, total, per_epoch)
            x = store.batch(idx, train=True, generator=gen)
            y = store.pids[idx]
            with torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach()
            correct += (logits.argmax(1) == y).sum()
            step += 1
        rec = {"epoch": epoch, "loss": round(float(loss_sum) / per_epoch, 4),
               "train_acc": round(100 * float(correct) / (per_epoch * cfg.batch_size), 2)}
        history.append(rec)
        if progress:
            logger.info("pretrain %s epoch %d/%d: loss %.3f, train acc %.1f%%, %.0f s", cfg.profile, epoch + 1,
                        cfg.epochs, rec["loss"], rec["train_acc"], time.perf_counter() - t0)
    seconds = time.perf_counter() - t0
    state = {f"{k}": v.detach().cpu().clone() for k, v in model.backbone.state_dict().items()
             if not k.startswith("fc.")}
    atomic_torch_save(state, out)
    record = {
        "config": asdict(cfg), "config_hash": cfg.config_hash(), "command": command_for(cfg),
        "sha256": file_sha256(out), "file": out.name,
        "data": {"set": cfg.synth_set, "identities": ds.num_train_pids, "images": n,
                 "fingerprint": ds.fingerprint()},
        "history": history, "seconds": round(seconds, 1), "steps": total,
        "own_test_set": _retrieval(model, ds, (cfg.height, cfg.width), dev),
        "hardware": hardware_string(dev), "torch": torch.__version__, "commit": git_commit(),
        "date": time.strftime("%Y-%m-%d"),
    }
    atomic_write_json(provenance_path(out), record)
    if progress:
        logger.info("wrote %s (%.0f s); provenance in %s", out, seconds, provenance_path(out))
    return record


def check_provenance(weights: str | Path) -> dict[str, Any]:
    """The committed weights match their record: the file's SHA-256, a configuration that is the profile's
    today (same hash), and a command that rebuilds that configuration. Raises ValueError naming what differs."""
    weights = Path(weights)
    prov = provenance_path(weights)
    if not weights.is_file() or not prov.is_file():
        raise FileNotFoundError(f"pretrained backbone {weights} or its record {prov.name} is missing; make it with "
                                "'python -m henetlib pretrain --profile PROFILE'.")
    rec = json.loads(prov.read_text())
    cfg = PretrainConfig(**rec["config"])
    problems = []
    if file_sha256(weights) != rec["sha256"]:
        problems.append("the file's SHA-256 is not the one recorded")
    if cfg.config_hash() != rec["config_hash"]:
        problems.append("the recorded configuration does not hash to the recorded hash")
    if cfg != config_for(cfg.profile, **_parse_command(rec["command"])):
        problems.append(f"the command {rec['command']!r} does not rebuild the recorded configuration")
    if problems:
        raise ValueError(f"{weights}: " + "; ".join(problems) + ". Re-run the recorded command.")
    return rec


def _parse_command(command: str) -> dict[str, Any]:
    words = command.split()
    out: dict[str, Any] = {}
    for flag, value in zip(words, words[1:], strict=False):
        name = flag.removeprefix("--").replace("-", "_")
        if flag.startswith("--") and name in _CLI_FIELDS:
            out[name] = float(value) if name == "lr" else int(value)
    return out
