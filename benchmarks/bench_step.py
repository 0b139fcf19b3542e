"""One training step, counted: ATen operators per phase, host synchronisations, CPU (or GPU) step time.

Run: python benchmarks/bench_step.py [--profile smoke] [--erasing re+rpe] [--stripes 1,4] [--no-recovery]
          [--no-oim] [--no-triplet] [--no-mse] [--batch 32] [--k 4] [--backbone resnet50]
          [--height 384 --width 128] [--precision bf16] [--device cuda] [--mode eager|cuda-graph]

A step is: the device data path (gather, resize, flip, normalise: reported apart), erasing, model forward,
losses forward, backward, optimizer. The operators are counted with a ``TorchDispatchMode`` (every ATen call,
views included; "kernels" leaves out the views, which launch nothing). The step's total is erasing +
forward + losses + backward (issue 20's definition: the optimizer is apart, it is one fused kernel on a
GPU). Host syncs are the operators that make the host wait for the device (``SYNC_OPS``, boolean-mask
indexing). The time is the median of several whole steps. The ratio compares with a plain G1 step of the
same backbone and input (stripes (1,), no R16, CE only, no erasing).

The counting part runs with any henetlib version (PYTHONPATH=/old/checkout gives the numbers before a
change); ``--mode cuda-graph`` needs henetlib.engine.train.TrainStep. tests/engine/test_train.py imports ``count_step``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

if __package__ in (None, ""):
    sys.path.append(str(Path(__file__).resolve().parents[1]))  # after PYTHONPATH: an old checkout can be measured

from henetlib.engine.config import make_config
from henetlib.engine.train import build_for

# Operators that wait for the device: a scalar read, a data-dependent output shape, a comparison returning a
# Python bool. Boolean-mask indexing (x[mask], x[mask] = v) is nonzero() underneath and is caught apart.
SYNC_OPS = frozenset({
    "_local_scalar_dense", "item", "is_nonzero", "nonzero", "argwhere", "equal", "allclose", "masked_select",
    "unique", "_unique", "_unique2", "unique_dim", "unique_consecutive", "unique_dim_consecutive", "bincount",
    "histc", "_assert_async_msg_sync",
})
PHASES = ("data", "erasing", "forward", "losses", "backward", "optimizer", "after")
STEP_PHASES = ("erasing", "forward", "losses", "backward")  # issue 20's "step without the optimizer"


def is_sync(func, args, kwargs) -> bool:
    name = func.overloadpacket.__name__
    if name in SYNC_OPS:
        return True
    if name == "repeat_interleave" and kwargs.get("output_size") is None and len(args) and \
            isinstance(args[0], torch.Tensor) and args[0].dtype != torch.bool and len(args) < 3:
        return func is torch.ops.aten.repeat_interleave.Tensor  # the output size is read from the device
    if name in ("index", "index_put", "index_put_", "_index_put_impl_"):
        idx = args[1] if len(args) > 1 else kwargs.get("indices", ())
        return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in idx)
    if name in ("_to_copy", "copy_") and len(args) and isinstance(args[0], torch.Tensor):
        src = args[1] if name == "copy_" else args[0]
        dst = args[0].device if name == "copy_" else kwargs.get("device", src.device)
        return isinstance(src, torch.Tensor) and src.device.type != "cpu" and torch.device(dst).type == "cpu"
    return False


class OpCounter(TorchDispatchMode):
    """Counts the ATen calls by phase (``counter.phase = "losses"``); ``phase = None`` pauses counting."""

    def __init__(self):
        super().__init__()
        self.phase: str | None = None
        self.ops: dict[str, Counter] = {}
        self.views: dict[str, int] = {}
        self.syncs: dict[str, Counter] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.phase is not None:
            self.ops.setdefault(self.phase, Counter())[str(func)] += 1
            if func.is_view:
                self.views[self.phase] = self.views.get(self.phase, 0) + 1
            if is_sync(func, args, kwargs):
                self.syncs.setdefault(self.phase, Counter())[str(func)] += 1
        return func(*args, **kwargs)

    def total(self, phase: str) -> int:
        return sum(self.ops.get(phase, Counter()).values())

    def kernels(self, phase: str) -> int:
        return self.total(phase) - self.views.get(phase, 0)

    def n_syncs(self, phase: str) -> int:
        return sum(self.syncs.get(phase, Counter()).values())


@dataclass
class StepCount:
    ops: dict[str, int]
    kernels: dict[str, int]
    syncs: dict[str, dict[str, int]]
    by_op: dict[str, Counter] = field(default_factory=dict)

    @property
    def step(self) -> int:
        return sum(self.ops.get(p, 0) for p in STEP_PHASES)

    @property
    def step_kernels(self) -> int:
        return sum(self.kernels.get(p, 0) for p in STEP_PHASES)

    @property
    def n_syncs(self) -> int:
        return sum(sum(c.values()) for p, c in self.syncs.items() if p != "optimizer")

    def table(self) -> str:
        """The per-phase table in Markdown."""
        rows = ["| phase | ATen ops | kernels (no views) | host syncs |", "| --- | --- | --- | --- |"]
        for p in PHASES:
            rows.append(f"| {p} | {self.ops.get(p, 0)} | {self.kernels.get(p, 0)} | "
                        f"{sum(self.syncs.get(p, {}).values())} |")
        rows.append(f"| **step without optimizer** (erasing+forward+losses+backward) | **{self.step}** | "
                    f"{self.step_kernels} | {self.n_syncs} |")
        return "\n".join(rows)


class _FakeDataset:
    def __init__(self, n: int):
        self.num_train_pids = n


class Bench:
    """Model, losses, optimizer and a uint8 image store for one configuration (random data)."""

    def __init__(self, cfg, dev: torch.device, classes: int = 100, store_size: tuple[int, int] | None = None,
                 seed: int = 0):
        torch.manual_seed(seed)
        self.cfg, self.dev = cfg, dev
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model, self.criterion = build_for(cfg, _FakeDataset(classes))
        try:  # as the training engine does: P x K batches with no unlabeled sample
            self.criterion.set_batch_structure(cfg.k, 0)
        except TypeError:  # henetlib before issue 20
            self.criterion.set_batch_structure(cfg.k)
        self.model.to(dev).train()
        self.criterion.to(dev).train()
        self.cl = dev.type == "cuda" and cfg.channels_last
        if self.cl:
            self.model.to(memory_format=torch.channels_last)
        self.amp = torch.bfloat16 if (cfg.precision == "bf16" or (cfg.precision == "auto" and dev.type == "cuda")) \
            else None
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=cfg.betas,
                                    weight_decay=cfg.weight_decay, fused=dev.type == "cuda")
        h, w = store_size or cfg.input_size
        g = torch.Generator().manual_seed(seed)
        self.store = torch.randint(0, 256, (256, 3, h, w), dtype=torch.uint8, generator=g).to(dev)
        per = cfg.p * cfg.k
        self.y = torch.arange(cfg.p, device=dev).repeat_interleave(cfg.k)
        self.idx = torch.randint(0, len(self.store), (per,), generator=g).to(dev)
        self.gen = torch.Generator(device=dev).manual_seed(seed + 7)
        self.erasing = cfg.erasing_config
        try:  # the training engine's own step where it has one (henetlib after issue 20)
            from henetlib.engine.train import TrainStep
        except ImportError:
            TrainStep = None
        self.train_step = TrainStep(self.model, self.criterion, self.opt, self.amp, self.cl) if TrainStep else None

    def data(self) -> torch.Tensor:
        from henetlib.data.datasets import preprocess

        flip = torch.rand(len(self.idx), generator=self.gen, device=self.dev) < 0.5
        return preprocess(self.store[self.idx], self.cfg.input_size, flip)

    def erase(self, clean: torch.Tensor) -> torch.Tensor:
        from henetlib.method.rpe import erase_batch

        return erase_batch(clean, self.erasing, self.gen) if self.erasing.mode != "none" else clean

    def autocast(self):
        return torch.autocast(self.dev.type, dtype=self.amp or torch.float32, enabled=self.amp is not None)

    def step(self, counter: OpCounter | None = None) -> None:
        """One eager step: henetlib.engine.train.TrainStep where there is one, else the same calls inline. With a
        ``counter``, hooks on the model, the losses and the optimizer mark the phases."""
        def mark(p):
            if counter is not None:
                counter.phase = p

        hooks = []
        if counter is not None:
            hooks = [self.model.register_forward_pre_hook(lambda *a: mark("forward")),
                     self.model.register_forward_hook(lambda *a: mark("losses")),
                     self.criterion.register_forward_hook(lambda *a: mark("backward")),
                     self.opt.register_step_pre_hook(lambda *a: mark("optimizer")),
                     self.opt.register_step_post_hook(lambda *a: mark("after"))]
        try:
            mark("data")
            clean = self.data()
            mark("erasing")
            x = self.erase(clean)
            if self.train_step is not None:
                self.train_step(x, clean, self.y)
            else:
                if self.cl:
                    x = x.contiguous(memory_format=torch.channels_last)
                with self.autocast():
                    res = self.criterion(self.model(x), self.y, x, clean)
                self.opt.zero_grad(set_to_none=True)
                res.total.backward()
                self.opt.step()
        finally:
            mark(None)
            for h in hooks:
                h.remove()


def count_step(cfg, dev: torch.device | str = "cpu", classes: int = 100, warm: int = 1) -> StepCount:
    """Operators per phase of one eager step of ``cfg`` (after ``warm`` uncounted steps: Adam creates its
    state on the first)."""
    b = Bench(cfg, torch.device(dev), classes)
    for _ in range(warm):
        b.step()
    counter = OpCounter()
    with counter:
        b.step(counter)
    return StepCount({p: counter.total(p) for p in PHASES}, {p: counter.kernels(p) for p in PHASES},
                     {p: dict(c) for p, c in counter.syncs.items()}, counter.ops)


def time_steps(b: Bench, steps: int, warmup: int, mode: str) -> float:
    """Median seconds of one whole step (data to optimizer)."""
    cuda = b.dev.type == "cuda"
    if mode == "eager":
        run = b.step
    else:
        from henetlib.engine.train import TrainStep

        if mode == "cuda-graph":  # a capturable Adam with a tensor lr, as the training engine builds it
            b.opt = torch.optim.Adam(b.model.parameters(), lr=torch.tensor(b.cfg.lr, device=b.dev),
                                     betas=b.cfg.betas, weight_decay=b.cfg.weight_decay, fused=True,
                                     capturable=True)
        ts = TrainStep(b.model, b.criterion, b.opt, amp=b.amp, channels_last=b.cl, mode=mode)

        def run():
            clean = b.data()
            ts(b.erase(clean), clean, b.y)

    for _ in range(warmup):
        run()
    times = []
    for _ in range(steps):
        if cuda:
            torch.cuda.synchronize(b.dev)
        t0 = time.perf_counter()
        run()
        if cuda:
            torch.cuda.synchronize(b.dev)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def plain_g1(cfg):
    """The same backbone and input as ``cfg``: stripes (1,), no R16, CE only, no erasing."""
    return replace(cfg, stripes=(1,), recovery=False, oim=False, triplet=False, mse=False, erasing="none")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--erasing", default="re+rpe", choices=["none", "re", "rpe", "re+rpe"])
    ap.add_argument("--rpe-n", type=int, default=20)
    ap.add_argument("--stripes", default="1,4")
    ap.add_argument("--no-recovery", action="store_true")
    ap.add_argument("--no-oim", action="store_true")
    ap.add_argument("--no-triplet", action="store_true")
    ap.add_argument("--no-mse", action="store_true")
    ap.add_argument("--batch", type=int, default=None, help="P x K (default: the profile's)")
    ap.add_argument("--k", type=int, default=None)
    ap.add_argument("--backbone", default=None)
    ap.add_argument("--height", type=int, default=None)
    ap.add_argument("--width", type=int, default=None)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--mode", default="eager", help="eager, or a TrainConfig.compile value (cuda-graph, ...)")
    ap.add_argument("--steps", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--skip-time", action="store_true", help="count operators only")
    ap.add_argument("--top", type=int, default=0, help="print the N most frequent operators of each phase")
    args = ap.parse_args()
    over = dict(erasing=args.erasing, rpe_n=args.rpe_n, stripes=tuple(int(s) for s in args.stripes.split(",") if s),
                recovery=not args.no_recovery, oim=not args.no_oim, triplet=not args.no_triplet, mse=not args.no_mse,
                backbone=args.backbone, height=args.height, width=args.width, precision=args.precision,
                device=args.device, k=args.k, from_scratch=True)
    cfg = make_config(args.profile, **over)
    if args.batch:
        cfg = replace(cfg, p=args.batch // cfg.k)
    dev = torch.device(args.device)
    base = plain_g1(cfg)
    print(f"torch {torch.__version__}; {cfg.name()}; {cfg.backbone} {cfg.height}x{cfg.width}, batch {cfg.p * cfg.k} "
          f"(P {cfg.p} x K {cfg.k}), {args.classes} classes, device {dev}, precision {cfg.precision}")
    # the operator count is the same on any device (bar a few casts); count on the CPU unless told
    c, c0 = count_step(cfg, dev, args.classes), count_step(base, dev, args.classes)
    print(c.table())
    for p in PHASES if args.top else ():
        print(f"  {p}: " + ", ".join(f"{k} {v}" for k, v in c.by_op.get(p, Counter()).most_common(args.top)))
    for p, s in c.syncs.items():
        if s:
            print(f"  syncs in {p}: {s}")
    print(f"plain G1 step of the same backbone: {c0.step} ops ({c0.step_kernels} kernels); ratio "
          f"{c.step / c0.step:.2f}x ops")
    if args.skip_time:
        return
    b, b0 = Bench(cfg, dev, args.classes), Bench(base, dev, args.classes)
    t = time_steps(b, args.steps, args.warmup, args.mode)
    t0 = time_steps(b0, args.steps, args.warmup, "eager")
    print(f"step time ({args.mode}, median of {args.steps}, data to optimizer): {1e3 * t:.1f} ms "
          f"({cfg.p * cfg.k / t:,.0f} img/s); plain G1 eager: {1e3 * t0:.1f} ms; ratio {t / t0:.2f}x")


if __name__ == "__main__":
    main()
