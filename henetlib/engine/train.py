"""The training loop: one for every table, CPU and CUDA alike (section 4.1; the configuration is
:mod:`henetlib.engine.config`). :class:`TrainStep` is one optimisation step (forward, losses, backward, update)
that may be compiled or captured as one CUDA graph; :func:`train` runs the epochs, checkpoints, resumes, and
evaluates the model at the end."""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from henetlib.data.datasets import (
    RandomIdentitySampler,
    ReIDDataset,
    build_dataset,
    build_train_loader,
)
from henetlib.engine import regime
from henetlib.engine.config import COMPILE_MODES, TrainConfig
from henetlib.engine.evaluator import cached_evaluator, cached_store
from henetlib.method.losses import HENetLoss
from henetlib.method.model import HENet
from henetlib.method.rpe import erase_batch
from henetlib.system import distributed as ddp
from henetlib.system.files import atomic_torch_save, quarantine
from henetlib.system.runtime import hardware_string, pick_device, seed_everything

logger = logging.getLogger(__name__)


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
    regime: dict[str, Any] = field(default_factory=dict)  # the regime check (henetlib.engine.regime)

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
            logger.info("resuming %s from epoch %d (%s)", cfg.name(), start_epoch, ckpt)
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
            if cfg.max_steps is not None and n_steps >= cfg.max_steps:
                break
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


def load_trained(path: str | Path, device: str | torch.device | None = None) -> tuple[HENet, TrainConfig]:
    """A model saved by the result cache (``model.pt``, :mod:`henetlib.engine.cache`), in eval mode."""
    state = torch.load(path, map_location="cpu", weights_only=True)  # never unpickle code from a results folder
    cfg = TrainConfig.from_dict(state["config"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HENet(state["num_classes"], cfg.stripes, cfg.recovery, cfg.backbone, None,
                      input_size=cfg.input_size, split=cfg.split)
    model.load_state_dict(state["model"])
    return model.to(pick_device(device)).eval(), cfg
