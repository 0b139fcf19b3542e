"""A training run as data: :class:`TrainConfig`, the profiles that size it (``test``, ``smoke``, ``gpu``,
``paper``), the fine-tuning regime of each small profile, and :func:`make_config`.

The ``paper`` profile is section 4.1 of the paper: P x K batches (P = 4, K = 4), Adam, lr 2e-4 decayed x0.1 at
epoch 160, 200 epochs, input 384 x 128, from ImageNet weights. ``smoke`` and ``gpu`` shorten it for machines
without ImageNet weights (docs/READINGS.md, "Smoke profile" and "A stand-in for ImageNet")."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from henetlib.engine.evaluation import TEST_PROTOCOLS
from henetlib.engine.pretrain import config_for, weights_path
from henetlib.method.losses import LossConfig, loss_names
from henetlib.method.model import SPLITS, layout_name
from henetlib.method.rpe import ErasingConfig
from henetlib.system.caches import CACHES

COMPILE_MODES = ("none", "default", "reduce-overhead", "cuda-graph")

_WEIGHT_HASHES = CACHES.cache("weight file hashes", 16)


def weights_sha256(path: str | Path) -> str:
    """SHA-256 of a weights file (hashed once per path, size and modification time in this process): how a
    configuration names user-given weights in its cache key, so that moving or renaming the file keeps the key
    and changing its content does not."""
    p = Path(path).expanduser().resolve()
    st = p.stat()

    def digest() -> str:
        h = hashlib.sha256()
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()

    return _WEIGHT_HASHES.get((str(p), st.st_size, st.st_mtime_ns), digest)


@dataclass
class TrainConfig:
    """Everything that defines a run. Two equal configs give the same result (up to GPU non-determinism)."""

    # data
    dataset: str = "synthreid"
    data_root: str | None = None
    synth_size: str = "small"
    # layout (Tables 2-3)
    stripes: tuple[int, ...] = (1, 4)
    recovery: bool = True
    # losses (Table 4)
    oim: bool = True
    triplet: bool = True
    mse: bool = True
    triplet_margin: float = 1.2  # eq. 6's m, on unnormalised features (MGN's code line)
    oim_update: str = "sample"  # "sample" (OIM's authors) or "identity-mean"
    recon_target: str = "clean"  # R16 rebuilds the un-erased image ("clean") or the erased input ("input")
    # augmentation (Figs. 4-5): none, re, rpe, re+rpe
    erasing: str = "none"
    erasing_p: float = 0.5
    rpe_n: int = 20
    erasing_fill: str = "random"  # "random": Rand(0, 255) (Algorithm 1); "normal": N(0, 1)
    re_impl: str = "zhong"  # "zhong": uniform ratio, RPE's fill; "torchvision": its RandomErasing
    # model and input
    backbone: str = "resnet50"
    pretrained: str | None = None
    split: str = "layer3"  # where the shared encoder ends: "layer3" (default) or "mgn"
    height: int = 384
    width: int = 128
    # optimisation (section 4.1)
    p: int = 4
    k: int = 4
    num_unlabeled: int = 0
    lr: float = 2e-4
    weight_decay: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    epochs: int = 200
    milestones: tuple[int, ...] = (160, 200)
    warmup_epochs: int = 0
    max_steps: int | None = None  # at most this many steps an epoch (a dry run); None: every P x K batch
    seed: int = 0
    from_scratch: bool = False  # the paper profile refuses random weights unless this says so
    skip_bad_images: bool = False  # train without unreadable files of a real data set (recorded in the result)
    # execution (not part of the result's identity beyond precision)
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    channels_last: bool = True
    # "none" (eager), "default" / "reduce-overhead" (torch.compile of model and losses together) or
    # "cuda-graph" (forward, losses, backward and Adam captured once, replayed each step; CUDA only).
    # Stored results may hold the old bool: True reads as "default".
    compile: str = "none"
    data_path: str = "auto"  # auto, device, loader
    checkpoint_every: int = 10
    test_protocol: str = "flip-l2"  # "flip-l2": mean of image and flip, L2-normalised; "raw": as is
    # several processes (torchrun; docs/SCALING.md): they act only when there is more than one rank
    sync_bn: bool = False  # synchronise BatchNorm statistics across ranks (CUDA only)
    triplet_gather: bool = False  # batch-hard mining over every rank's features, not each rank's own

    def __post_init__(self) -> None:
        self.stripes = tuple(int(s) for s in self.stripes)
        self.milestones = tuple(int(m) for m in self.milestones)
        self.betas = tuple(float(b) for b in self.betas)
        if isinstance(self.compile, bool):
            self.compile = "default" if self.compile else "none"
        if self.compile not in COMPILE_MODES:
            raise ValueError(f"compile must be one of {COMPILE_MODES}, got {self.compile!r}.")
        if self.triplet and self.stripes and (self.p < 2 or self.k < 2):
            # checked once here rather than in every step (a check there is a host sync)
            raise ValueError(f"the triplet loss needs P >= 2 identities and K >= 2 images each a batch, got "
                             f"P={self.p}, K={self.k}.")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}.")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}.")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32', got {self.precision!r}.")
        if self.data_path not in ("auto", "device", "loader"):
            raise ValueError(f"data_path must be 'auto', 'device' or 'loader', got {self.data_path!r}.")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1 (or None for whole epochs), got {self.max_steps}.")
        if not self.stripes and not self.recovery:
            raise ValueError("a run needs at least one branch: stripes (e.g. 1,4) or the recovery branch R16.")
        if any(k < 1 for k in self.stripes) or len(set(self.stripes)) != len(self.stripes):
            raise ValueError(f"stripes must be distinct bin counts >= 1 (1 = G1, k = P(k)), got {self.stripes}.")
        if self.pretrain_profile is not None:
            config_for(self.pretrain_profile)  # a known pretraining profile
        elif self.pretrained is not None and not Path(self.pretrained).expanduser().is_file():
            raise FileNotFoundError(f"pretrained weights file {self.pretrained!r} does not exist. Give the path of a "
                                    "local torchvision ResNet state_dict (nothing is ever downloaded).")
        if self.test_protocol not in TEST_PROTOCOLS:
            raise ValueError(f"test_protocol must be one of {sorted(TEST_PROTOCOLS)}, got {self.test_protocol!r}.")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}.")
        self.erasing_config  # noqa: B018 - validates
        self.loss_config  # noqa: B018 - validates

    @property
    def input_size(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def erasing_config(self) -> ErasingConfig:
        return ErasingConfig(self.erasing, self.erasing_p, self.rpe_n, fill=self.erasing_fill, re_impl=self.re_impl)

    @property
    def loss_config(self) -> LossConfig:
        return LossConfig(oim=self.oim, triplet=self.triplet, mse=self.mse, margin=self.triplet_margin,
                          oim_update=self.oim_update, recon_target=self.recon_target,
                          triplet_gather=self.triplet_gather)

    def effective_losses(self) -> tuple[bool, bool, bool]:
        """(OIM, triplet, MSE) as they act: OIM needs a P(k) branch, triplet a stripe branch, MSE R16."""
        return (self.oim and any(k > 1 for k in self.stripes), self.triplet and bool(self.stripes),
                self.mse and self.recovery)

    def name(self) -> str:
        losses = loss_names(*self.effective_losses())
        aug = self.erasing_config.label() + (f"@{self.erasing_p:g}" if self.erasing != "none" else "")
        return f"{layout_name(self.stripes, self.recovery)} | CE{'+' + losses if losses else ''} | {aug} | s{self.seed}"

    def identity(self) -> dict[str, Any]:
        """The fields that define the result (execution details such as device are left out)."""
        # Fields that do not change what a run computes stay out: a new field in the identity would orphan
        # every cached and published result (skipping files already changes the data set's fingerprint).
        # The DDP options are left out with the world size: a run keeps its key, and so its checkpoint and
        # result, whatever number of processes trains it (docs/SCALING.md says what that means for results).
        skip = {"device", "data_path", "checkpoint_every", "compile", "from_scratch", "skip_bad_images",
                "sync_bn", "triplet_gather"}
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        if self.max_steps is None:  # absent unless set: the keys of full-schedule runs do not change
            out.pop("max_steps")
        out["oim"], out["triplet"], out["mse"] = self.effective_losses()
        if self.pretrain_profile is not None:
            out["pretrained"] = f"{self.pretrained}@{config_for(self.pretrain_profile).config_hash()}"
        elif self.pretrained is not None:  # the weights by their content, wherever the file lies
            out["pretrained"] = f"sha256:{weights_sha256(self.pretrained)}"
        return out

    @property
    def pretrain_profile(self) -> str | None:
        """``X`` when ``pretrained`` is the token ``synthreid-pretrain:X`` (a backbone made by
        ``python -m henetlib pretrain --profile X``), else None."""
        if self.pretrained is None or not self.pretrained.startswith(PRETRAINED_TOKEN):
            return None
        return self.pretrained.removeprefix(PRETRAINED_TOKEN)

    @property
    def pretrained_path(self) -> str | None:
        """The weights file: ``pretrained`` itself, or where ``python -m henetlib pretrain --profile X``
        writes for the token ``synthreid-pretrain:X`` (pretrained/, committed for smoke)."""
        if self.pretrain_profile is None:
            return self.pretrained
        return str(weights_path(self.pretrain_profile))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# Profiles: one word that sets the sizes. smoke and gpu train from random weights by default (a larger lr;
# schedules that stop while underfit: the regime check says so). FINETUNE (``finetune=True``, CLI --finetune)
# is the paper's regime: a backbone pretrained here on SynthReID's own pretraining set (henetlib.engine.pretrain, a
# stand-in for ImageNet; docs/READINGS.md "Pretraining"), the paper's lr scaled by sqrt(batch / 16), its lr
# step at 80% of the epochs (160 / 200), and smoke's epochs chosen by the regime check
# (benchmarks/results/regime_schedule_smoke.json: 16; docs/READINGS.md, "Smoke profile", says how).
PROFILES: dict[str, dict[str, Any]] = {
    "test": dict(backbone="resnet18-half", height=64, width=32, synth_size="tiny", epochs=1, milestones=(1,),
                 p=4, k=2, lr=1e-3, checkpoint_every=1),
    # smoke: a quarter-width ResNet18 on SynthReID's 50-identity training set, so that its converged study
    # fits `make reproduce`'s 10 minutes on two CPU cores (docs/READINGS.md, "Smoke profile")
    "smoke": dict(backbone="resnet18-quarter", height=64, width=32, synth_size="smoke", epochs=8, milestones=(6,),
                  p=8, k=4, lr=1e-3, checkpoint_every=4),
    # gpu: the whole study in about 20 minutes of one H100 (docs/BENCHMARKS.md). ResNet50 at SynthReID's
    # native 128 x 64 (384 x 128 would upsample 3x: 6x the compute, no new information), 60 P x K epochs.
    # P = 64 identities a batch: at batch 64 an H100 step is bound by kernel launches (80 ms at 128 x 64 and
    # at 384 x 128 alike), so a 4x larger batch costs little more per step. 30 P x K epochs = 330 steps.
    "gpu": dict(backbone="resnet50", height=128, width=64, synth_size="full", epochs=30, milestones=(24,),
                p=64, k=4, lr=6e-4, warmup_epochs=2, checkpoint_every=10),
    "paper": dict(backbone="resnet50", height=384, width=128, synth_size="full", epochs=200,
                  milestones=(160, 200), p=4, k=4, lr=2e-4, checkpoint_every=10),
}


PRETRAINED_TOKEN = "synthreid-pretrain:"

FINETUNE: dict[str, dict[str, Any]] = {
    "smoke": dict(pretrained="synthreid-pretrain:smoke", epochs=16, milestones=(13,), lr=2.8e-4),
    # gpu: epochs not yet chosen by the regime check (needs a GPU lease; benchmarks/gpu_call.sh)
    "gpu": dict(pretrained="synthreid-pretrain:gpu", epochs=30, milestones=(24,), lr=8e-4),
}


def make_config(profile: str = "smoke", **overrides: Any) -> TrainConfig:
    """The profile's settings with ``overrides`` on top (``None`` values are ignored).

    ``finetune=True`` makes ``smoke`` and ``gpu`` fine-tune the backbone pretrained by
    ``python -m henetlib pretrain`` with the schedule of ``FINETUNE`` (the paper's regime). The ``paper`` profile
    fine-tunes ImageNet weights (section 4.1), so it refuses to start from random weights unless
    ``from_scratch=True`` says that is meant.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {sorted(PROFILES)}.")
    base = dict(PROFILES[profile])
    if overrides.pop("finetune", None):
        if profile not in FINETUNE:
            raise ValueError(f"finetune: profile {profile!r} has no pretrained regime; use smoke or gpu (the paper "
                             "profile fine-tunes the ImageNet weights you give with --pretrained).")
        base.update(FINETUNE[profile])
    cfg = TrainConfig(**{**base, **{k: v for k, v in overrides.items() if v is not None}})
    if profile == "paper" and cfg.pretrained is None and not cfg.from_scratch:
        raise ValueError(
            "the 'paper' profile fine-tunes an ImageNet-pretrained ResNet50, as the paper does, but no weights "
            "were given. Pass a local torchvision ResNet50 checkpoint (pretrained='path/to/resnet50.pth', CLI "
            "--pretrained PATH), or opt out explicitly with from_scratch=True (CLI --from-scratch)."
        )
    return cfg
