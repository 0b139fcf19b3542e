"""The training engine: one loop for every table, CPU and CUDA alike.

Section 4.1 of the paper: P x K batches (P = 4, K = 4), Adam (betas 0.9 / 0.999, weight decay 5e-4),
lr 2e-4 decayed x0.1 at epoch 160, 200 epochs, input 384 x 128. That is the ``paper`` profile. The
``smoke`` and ``gpu`` profiles shorten it for machines without ImageNet weights (see PROFILES).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from . import distributed as ddp
from . import regime
from .data import DeviceStore, RandomIdentitySampler, ReIDDataset, build_dataset, build_train_loader
from .evaluation import TEST_PROTOCOLS, evaluate_ranking, pairwise_distance
from .losses import HENetLoss, LossConfig, loss_names
from .model import SPLITS, HENet, layout_name
from .rpe import ErasingConfig, erase_batch
from .utils import atomic_torch_save, hardware_string, pick_device, seed_everything

COMPILE_MODES = ("none", "default", "reduce-overhead", "cuda-graph")


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
        if not self.stripes and not self.recovery:
            raise ValueError("a run needs at least one branch: stripes (e.g. 1,4) or the recovery branch R16.")
        if any(k < 1 for k in self.stripes) or len(set(self.stripes)) != len(self.stripes):
            raise ValueError(f"stripes must be distinct bin counts >= 1 (1 = G1, k = P(k)), got {self.stripes}.")
        if self.pretrain_profile is not None:
            from .pretrain import config_for

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
        out["oim"], out["triplet"], out["mse"] = self.effective_losses()
        if self.pretrain_profile is not None:
            from .pretrain import config_for  # the pretraining's configuration hash, not a path on disk

            out["pretrained"] = f"{self.pretrained}@{config_for(self.pretrain_profile).config_hash()}"
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
        from .pretrain import weights_path

        return str(weights_path(self.pretrain_profile))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# Profiles: one word that sets the sizes. smoke and gpu train from random weights by default (a larger lr;
# schedules that stop while underfit: the regime check says so). FINETUNE (``finetune=True``, CLI --finetune)
# is the paper's regime: a backbone pretrained here on SynthReID's own pretraining set (henetlib.pretrain, a
# stand-in for ImageNet; docs/READINGS.md "Pretraining"), the paper's lr scaled by sqrt(batch / 16), its lr
# step at 80% of the epochs (160 / 200), and smoke's epochs chosen by the regime check
# (benchmarks/results/regime_schedule_smoke.json: 16; docs/READINGS.md, "Smoke profile", says how).
PROFILES: dict[str, dict[str, Any]] = {
    "test": dict(backbone="resnet18-half", height=64, width=32, synth_size="tiny", epochs=1, milestones=(1,),
                 p=4, k=2, lr=1e-3, checkpoint_every=1),
    # smoke: a quarter-width ResNet18 on SynthReID's 50-identity training set, so that its converged study
    # fits `make reproduce`'s 10 minutes on two CPU cores (session 4; docs/READINGS.md, "Smoke profile")
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


@dataclass
class EpochLog:
    epoch: int
    loss: float  # mean over the epoch's steps (and over the ranks under DDP)
    terms: dict[str, float]
    lr: float
    seconds: float
    images: int  # every rank's images
    world_size: int = 1  # processes that trained this epoch (a resumed run may change it)


@dataclass
class TrainOutput:
    config: TrainConfig
    model: HENet
    dataset: ReIDDataset
    history: list[EpochLog] = field(default_factory=list)
    train_seconds: float = 0.0
    train_images: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    hardware: str = ""
    per_query: dict[str, list] = field(default_factory=dict)  # first-hit rank and AP per query
    distributed: dict[str, Any] = field(default_factory=dict)  # world size, backend, ... under DDP
    regime: dict[str, Any] = field(default_factory=dict)  # the regime check (henetlib.regime)

    @property
    def images_per_second(self) -> float:
        return self.train_images / max(self.train_seconds, 1e-9)


def _amp_dtype(cfg: TrainConfig, dev: torch.device) -> torch.dtype | None:
    if cfg.precision == "bf16" or (cfg.precision == "auto" and dev.type == "cuda"):
        return torch.bfloat16
    return None


def build_for(cfg: TrainConfig, ds: ReIDDataset) -> tuple[HENet, HENetLoss]:
    model = HENet(ds.num_train_pids, cfg.stripes, cfg.recovery, cfg.backbone, cfg.pretrained_path,
                  input_size=cfg.input_size, split=cfg.split)
    model.reconstruct = cfg.effective_losses()[2]  # R16's decoder runs only for the MSE term
    criterion = HENetLoss(ds.num_train_pids, cfg.stripes, cfg.loss_config)
    criterion.set_batch_structure(cfg.k)  # the P x K sampler: no identity has more than K samples a batch
    return model, criterion


def _lr_at(cfg: TrainConfig, epoch: int) -> float:
    lr = cfg.lr * (0.1 ** sum(epoch >= m for m in cfg.milestones))
    if cfg.warmup_epochs and epoch < cfg.warmup_epochs:
        lr *= (epoch + 1) / cfg.warmup_epochs
    return lr


class TrainStep:
    """The training step of a run in its execution mode (``TrainConfig.compile``).

    Calling it with a batch (erased images, clean images, labels) takes one optimisation step and returns
    the detached loss vector (total, then each term in ``names``), still on the device.

    * ``"none"``: eager: forward, Fig. 2's losses (eqs. 5-9), backward, Adam; nothing is read back from the
      device.
    * ``"default"`` / ``"reduce-overhead"``: the model and the losses traced by ``torch.compile`` as one
      graph (they trace with no graph break); backward through the compiled graph, Adam eager.
    * ``"cuda-graph"``: forward, losses, backward and the fused Adam step captured in one CUDA graph and
      replayed on static input buffers. Needs ``Adam(capturable=True)`` with a tensor lr (``set_lr``
      writes it between epochs) and a fixed batch shape. The first ``warmup`` steps run eagerly on a side
      stream (real steps, counted as such); the next is captured and replayed, and so is every later one.
    """

    def __init__(self, net: torch.nn.Module, criterion: HENetLoss, opt: torch.optim.Optimizer,
                 amp: torch.dtype | None = None, channels_last: bool = False, mode: str = "none", warmup: int = 3):
        if mode not in COMPILE_MODES:
            raise ValueError(f"compile mode must be one of {COMPILE_MODES}, got {mode!r}.")
        self.net, self.criterion, self.opt, self.amp, self.mode = net, criterion, opt, amp, mode
        self.channels_last = channels_last
        self.names: tuple[str, ...] = ()
        self.warmup, self._eager_steps = warmup, 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self._forward = self._forward_eager
        if mode in ("default", "reduce-overhead"):
            self._forward = torch.compile(self._forward_eager, mode=mode)
        if mode == "cuda-graph":
            if ddp.world_size() > 1:
                raise ValueError("compile='cuda-graph' runs in one process; use 'none' or 'default' under torchrun.")
            if not opt.defaults.get("capturable") or not torch.is_tensor(opt.param_groups[0]["lr"]):
                raise ValueError("compile='cuda-graph' needs Adam(capturable=True) with a tensor lr.")
            if criterion.oim is not None and criterion.oim.rounds_hint is None:
                raise ValueError("compile='cuda-graph' needs criterion.set_batch_structure(K): OIM would count "
                                 "the rounds on the host.")

    def set_lr(self, lr: float) -> None:
        for g in self.opt.param_groups:
            if torch.is_tensor(g["lr"]):
                g["lr"].fill_(lr)  # in place: a captured graph holds its address
            else:
                g["lr"] = lr

    def _forward_eager(self, x: torch.Tensor, clean: torch.Tensor, y: torch.Tensor,
                       ) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
        # the autocast cache would keep casts made during a CUDA-graph capture: off in that mode
        with torch.autocast(x.device.type, dtype=self.amp or torch.float32, enabled=self.amp is not None,
                            cache_enabled=self.mode != "cuda-graph"):
            res = self.criterion(self.net(x), y, x, clean)
        return res.total, res.values, res.names

    def _eager(self, x: torch.Tensor, clean: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total, values, self.names = self._forward(x, clean, y)
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        return values

    def __call__(self, x: torch.Tensor, clean: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.mode != "cuda-graph":
            return self._eager(x, clean, y)
        if self.graph is None and self._eager_steps < self.warmup:
            # eager warm-up on a side stream (cuDNN/cuBLAS workspaces, Adam's state) before the capture
            self._eager_steps += 1
            side = torch.cuda.Stream(x.device)
            side.wait_stream(torch.cuda.current_stream(x.device))
            with torch.cuda.stream(side):
                values = self._eager(x, clean, y)
            torch.cuda.current_stream(x.device).wait_stream(side)
            return values
        if self.graph is None:
            self._capture(x, clean, y)
        else:
            self._x.copy_(x)
            self._clean.copy_(clean)
            self._y.copy_(y)
        self.graph.replay()
        return self._values.clone()

    def _capture(self, x: torch.Tensor, clean: torch.Tensor, y: torch.Tensor) -> None:
        """Capture forward, losses, backward and Adam on static copies of this batch (run by the replay)."""
        self._x, self._clean, self._y = x.clone(), clean.clone(), y.clone()
        self.opt.zero_grad(set_to_none=True)  # the backward in the graph allocates the gradients it writes
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            total, self._values, self.names = self._forward_eager(self._x, self._clean, self._y)
            total.backward()
            self.opt.step()


def _use_device_store(cfg: TrainConfig, ds: ReIDDataset, dev: torch.device) -> bool:
    if cfg.data_path != "auto":
        return cfg.data_path == "device"
    h, w = cfg.input_size
    nbytes = len(ds.train) * 3 * max(h * w, 128 * 64)
    limit = 8 * 2**30 if dev.type == "cuda" else 2 * 2**30
    return nbytes < limit


def train(cfg: TrainConfig, out_dir: str | Path | None = None, progress: bool = True,
          dataset: ReIDDataset | None = None, evaluate: bool = True) -> TrainOutput:
    """Train one configuration; resumes from ``out_dir/last.pt`` when a previous run was interrupted.

    Under torchrun every rank calls this: the model is wrapped in DDP, each rank trains on its share of the
    global P*N x K batch, and rank 0 alone writes checkpoints and evaluates (the others return no metrics).
    A checkpoint holds nothing per rank, so a run resumes with any number of processes."""
    ddp.setup(cfg.device)
    ddp.check(cfg.sync_bn, cfg.device)
    dev = ddp.device_for(cfg.device)
    rank, world, main = ddp.rank(), ddp.world_size(), ddp.is_main()
    seed_everything(cfg.seed)
    ds = dataset or build_dataset(cfg.dataset, cfg.data_root, cfg.synth_size, verbose=progress,
                                  skip_bad_images=cfg.skip_bad_images)
    model, criterion = build_for(cfg, ds)
    model.to(dev)
    criterion.to(dev)
    amp = _amp_dtype(cfg, dev)
    if dev.type == "cuda" and cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    # R16's decoder gets no gradient when MSE is off: DDP must be told, or it waits for those gradients
    net = ddp.wrap(model, dev, cfg.sync_bn, find_unused=cfg.recovery and not model.reconstruct)
    graphed = cfg.compile == "cuda-graph"
    if graphed and dev.type != "cuda":
        raise ValueError("compile='cuda-graph' needs a CUDA device; use compile='none' here.")
    # fused: one kernel for the whole update on the GPU, and 4x faster than the per-parameter loop on the CPU
    # (41 -> 11 ms a smoke step, docs/BENCHMARKS.md); a CUDA graph needs it capturable, lr a tensor
    opt = torch.optim.Adam(model.parameters(), lr=torch.tensor(cfg.lr, device=dev) if graphed else cfg.lr,
                           betas=cfg.betas, weight_decay=cfg.weight_decay, fused=dev.type in ("cuda", "cpu"),
                           capturable=graphed)
    out = TrainOutput(cfg, model, ds, hardware=hardware_string(dev))
    start_epoch = 0
    check_fit: dict[str, float] | None = None  # training fit at 80% of the schedule (regime check)
    ckpt = Path(out_dir) / "last.pt" if out_dir else None
    state = _load_checkpoint(ckpt) if main else None
    state = ddp.broadcast(state)  # every rank resumes from rank 0's checkpoint
    if state is not None:
        model.load_state_dict(state["model"])
        criterion.load_state_dict(state["criterion"])
        opt.load_state_dict(state["optimizer"])
        for g in opt.param_groups:  # a checkpoint of another mode holds the lr as a float or a tensor
            g["lr"] = torch.tensor(float(g["lr"]), device=dev) if graphed else float(g["lr"])
        start_epoch = state["epoch"] + 1
        out.history = [EpochLog(**h) for h in state["history"]]
        check_fit = state.get("regime_check")
        out.train_seconds, out.train_images = state["train_seconds"], state["train_images"]
        if progress and main:
            print(f"resuming {cfg.name()} from epoch {start_epoch} ({ckpt})")
    # on the CPU only the input goes channels-last: oneDNN runs the step 7% faster so, and 8% slower with the
    # weights converted too (docs/BENCHMARKS.md)
    step = TrainStep(net, criterion, opt, amp, channels_last=cfg.channels_last,
                     mode=cfg.compile)

    # rank 0 keeps the single-process random stream; the other ranks draw their own flips and erasing
    gen = torch.Generator(device=dev).manual_seed(cfg.seed + 7 + 1_000_003 * rank)
    store = None
    if _use_device_store(cfg, ds, dev):
        store = cached_store(ds, "train", cfg.input_size, dev)
        sampler = RandomIdentitySampler(ds.train, cfg.p, cfg.k, cfg.num_unlabeled, cfg.seed, rank, world)
        loader = None
    else:
        # erasing happens on the batch below, as on the device path, so R16 can see the clean images
        loader = build_train_loader(ds, cfg.input_size, cfg.p, cfg.k, None, cfg.seed,
                                    num_unlabeled=cfg.num_unlabeled, rank=rank, world_size=world)
        sampler = loader.batch_sampler
    erasing = cfg.erasing_config
    # P x K batches, then the sampler's unlabeled samples: OIM and the triplet need no count from the device
    criterion.set_batch_structure(cfg.k, sampler.num_unlabeled)

    model.train()
    bar = tqdm(range(start_epoch, cfg.epochs), desc=cfg.name(), disable=not (progress and main), leave=False)
    for epoch in bar:
        lr = _lr_at(cfg, epoch)
        step.set_lr(lr)
        sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        sums: torch.Tensor | None = None  # total, then each term: summed on the device, read once an epoch
        n_steps = n_img = 0
        if store is not None:
            # the epoch's batch indices in one copy: a host-to-device copy per step would wait for the GPU
            index = torch.as_tensor(sampler.batches(), dtype=torch.long, device=dev)
            batches = index.unbind(0) if len(index) else ()
        else:
            batches = loader
        for batch in batches:
            if store is not None:
                # flip + erasing on the device; ``clean`` is the flipped image before erasing
                x, clean = store.batch(batch, train=True, erasing=erasing, generator=gen, return_clean=True)
                y = store.pids[batch]
            else:
                clean, y = batch[0].to(dev, non_blocking=True), batch[1].to(dev, non_blocking=True)
                x = erase_batch(clean, erasing, gen) if erasing.mode != "none" else clean
            values = step(x, clean, y)
            sums = values if sums is None else sums + values
            n_steps += 1
            n_img += len(x)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        secs = time.perf_counter() - t0
        terms: dict[str, float] = {}
        if sums is not None:  # one all-reduce per epoch: the logged loss is the global batch's
            totals = ddp.all_reduce_mean(sums).tolist()
            terms = {k_: v / max(n_steps, 1) for k_, v in sorted(zip(("total", *step.names), totals, strict=True))}
        n_img *= world
        log = EpochLog(epoch, terms.pop("total", float("nan")), terms, lr, secs, n_img, world)
        out.history.append(log)
        out.train_seconds += secs
        out.train_images += n_img
        if not np.isfinite(log.loss):
            raise FloatingPointError(f"{cfg.name()}: loss became {log.loss} at epoch {epoch}; lower the lr.")
        bar.set_postfix(loss=f"{log.loss:.3f}", **{k_: f"{v:.3f}" for k_, v in terms.items()},
                        ips=f"{n_img / max(secs, 1e-9):.0f}")
        if main and evaluate and epoch == regime.RULE.check_epoch(cfg.epochs):
            check_fit = regime.training_fit(model, ds, cfg.input_size, dev, amp)  # back in train mode after
        if main and ckpt is not None and ((epoch + 1) % cfg.checkpoint_every == 0) and epoch + 1 < cfg.epochs:
            atomic_torch_save({"model": model.state_dict(), "criterion": criterion.state_dict(),
                               "optimizer": opt.state_dict(), "epoch": epoch,
                               "history": [asdict(h) for h in out.history],
                               "train_seconds": out.train_seconds, "train_images": out.train_images,
                               "regime_check": check_fit}, ckpt)
    model.eval()
    if ddp.active():
        out.distributed = _distributed_record(cfg, criterion)
    if evaluate and main:
        final_fit = regime.training_fit(model, ds, cfg.input_size, dev, amp)
        out.regime = regime.assess(final_fit, check_fit, cfg.pretrained is not None,
                                   out.history[-1].loss if out.history else None)
        ev = cached_evaluator(ds, cfg.input_size, dev)
        out.metrics = ev(model, protocol=cfg.test_protocol, amp=amp, all_protocols=True)
        out.per_query = ev.last_per_query
    return out


def _load_checkpoint(ckpt: Path | None) -> dict[str, Any] | None:
    """``last.pt`` on the CPU (every rank moves what it needs to its device), or None. A checkpoint cut
    short is moved aside and the run starts over rather than stopping."""
    if ckpt is None or not ckpt.exists():
        return None
    try:
        return torch.load(ckpt, map_location="cpu", weights_only=True)  # tensors and plain types: no pickle
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint
        from .utils import quarantine

        quarantine(ckpt, str(e).splitlines()[0][:200])
        return None


def _distributed_record(cfg: TrainConfig, criterion: HENetLoss) -> dict[str, Any]:
    """What a DDP run records in its result; raises if the ranks' OIM tables and queues differ."""
    digests = ddp.gather_objects(ddp.state_digest(criterion))
    if len(set(digests)) > 1:
        raise RuntimeError(f"{cfg.name()}: the ranks' OIM tables differ after training ({digests}); the "
                           "all-gather before the OIM update did not run on every rank.")
    world = ddp.world_size()
    return {"world_size": world, "backend": ddp.backend(), "global_batch": cfg.p * world * cfg.k,
            "sync_bn": cfg.sync_bn and world > 1, "triplet_gather": cfg.triplet_gather and world > 1,
            "criterion_digest_per_rank": digests}


# ---------------------------------------------------------------------------------------------------------
# Evaluation of a trained model


@torch.no_grad()
def _features(model: torch.nn.Module, store: DeviceStore, occlusion: ErasingConfig | None, seed: int,
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
        qfs = _features(model, self.query, occlusion, seed, protocols, amp)
        gfs = _features(model, self.gallery, occlusion, seed + 1, protocols, amp)
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
_STORES: dict[tuple, DeviceStore] = {}
_EVALUATORS: dict[tuple, Evaluator] = {}


def _split_key(ds: ReIDDataset, size: tuple[int, int], dev: torch.device) -> tuple:
    return (ds.name, ds.fingerprint(), tuple(size), str(dev))


def cached_store(ds: ReIDDataset, split: str, size: tuple[int, int], dev: torch.device) -> DeviceStore:
    key = (split, *_split_key(ds, size, dev))
    if key not in _STORES:
        _STORES.clear()  # one training split at a time: they can be large
        _STORES[key] = DeviceStore(getattr(ds, split), size, dev)
    return _STORES[key]


def cached_evaluator(ds: ReIDDataset, size: tuple[int, int], dev: torch.device | str) -> Evaluator:
    dev = pick_device(dev)
    key = _split_key(ds, size, dev)
    if key not in _EVALUATORS:
        if len(_EVALUATORS) >= 2:
            _EVALUATORS.clear()
        _EVALUATORS[key] = Evaluator(ds, size, dev)
    return _EVALUATORS[key]


def evaluate_model(model: torch.nn.Module, ds: ReIDDataset, size: tuple[int, int],
                   device: torch.device | str | None = None, protocol: str = "flip-l2",
                   amp: torch.dtype | None = None) -> dict[str, Any]:
    """R1, R5, R10, mAP, mINP in %, plus the same on occluded and clean queries when the set marks them."""
    return Evaluator(ds, size, pick_device(device))(model, protocol=protocol, amp=amp)


def load_trained(path: str | Path, device: str | torch.device | None = None) -> tuple[HENet, TrainConfig]:
    """A model saved by the experiment runner (``model.pt``), in eval mode."""
    state = torch.load(path, map_location="cpu", weights_only=True)  # never unpickle code from a results folder
    cfg = TrainConfig.from_dict(state["config"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HENet(state["num_classes"], cfg.stripes, cfg.recovery, cfg.backbone, None,
                      input_size=cfg.input_size, split=cfg.split)
    model.load_state_dict(state["model"])
    return model.to(pick_device(device)).eval(), cfg
