"""RPE cost: per image against torchvision's RandomErasing, the batched version's images/s, and the batched
path's ATen operators and CPU time per call against the former loop implementation (issue 20).

Run: python benchmarks/bench_rpe.py [--device cpu|cuda] [--batch 256] [--skip-before]
Goals: per-image RPE at most 4x torchvision's RandomErasing at 384x128; batched RPE >= 50,000 img/s on an H100;
erase_batch RE+RPE(20) at batch 32, 64x32 in a fixed number of ATen operators (issue 20: <= 60) with no host
synchronisation. "Before" is the former implementation, kept verbatim as a reference in
tests/method/rpe_reference.py (the lean one is checked bit-identical to it there).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from henetlib.method.rpe import (
    ErasingConfig,
    RandomPolygonErasing,
    erase_batch,
    random_erasing,
    random_erasing_batch,
    random_polygon_erasing_batch,
)
from henetlib.system.runtime import hardware_string, pick_device


def per_image(t, img, n=300):
    for _ in range(20):
        t(img)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            t(img)
        times.append((time.perf_counter() - t0) / n)
    return statistics.median(times)


def batched(fn, x, dev, reps=10):
    g = torch.Generator(device=dev).manual_seed(0)
    for _ in range(3):
        fn(x, p=1.0, generator=g)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(x, p=1.0, generator=g)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return len(x) / statistics.median(times)


class OpCount(TorchDispatchMode):
    """Every ATen call, views included (as benchmarks/bench_step.py counts them)."""

    def __init__(self):
        super().__init__()
        self.ops: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func)] += 1
        return func(*args, **(kwargs or {}))


def reference_erase_batch():
    """The former implementation (tests/method/rpe_reference.py), or None if it is not there."""
    path = Path(__file__).resolve().parents[1] / "tests" / "method" / "rpe_reference.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("_rpe_reference", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod._reference_erase_batch


def count_ops(fn, cfg: ErasingConfig, b=32, h=64, w=32) -> int:
    x = torch.randn(b, 3, h, w)
    fn(x, cfg, torch.Generator().manual_seed(0))  # warm-up (the lean version caches its constants)
    c = OpCount()
    with c:
        fn(x, cfg, torch.Generator().manual_seed(1))
    return sum(c.ops.values())


def ms_per_call(fn, cfg: ErasingConfig, b: int, h: int, w: int, dev: torch.device, reps: int) -> float:
    x = torch.randn(b, 3, h, w, device=dev)
    g = torch.Generator(device=dev).manual_seed(0)
    fn(x, cfg, g)
    times = []
    for _ in range(reps):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn(x, cfg, g)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--skip-before", action="store_true", help="do not time the former implementation")
    args = ap.parse_args()
    dev = pick_device(args.device)
    print(f"hardware: {hardware_string(dev)}")
    img = torch.randn(3, 384, 128)
    t_rpe = per_image(RandomPolygonErasing(p=1.0), img)
    t_re = per_image(random_erasing(p=1.0), img)
    print(f"per image, CPU, 384x128, p=1: RPE(n=20) {t_rpe * 1e3:.3f} ms, torchvision RandomErasing "
          f"{t_re * 1e3:.3f} ms: ratio {t_rpe / t_re:.2f}x (goal <= 4x)")
    x = torch.randn(args.batch, 3, 384, 128, device=dev)
    for name, fn in (("RPE(n=20)", random_polygon_erasing_batch), ("RE", random_erasing_batch)):
        ips = batched(fn, x, dev, reps=10 if dev.type == "cuda" else 3)
        print(f"batched {name} on {dev.type}, batch {args.batch} at 384x128, p=1: {ips:,.0f} img/s")

    ref = reference_erase_batch()
    cfgs = [ErasingConfig("re"), ErasingConfig("rpe", n=20), ErasingConfig("re+rpe", n=20)]
    print("\nerase_batch, batch 32 at 64x32, p=0.5: ATen operators per call (views included)")
    print("| erasing | before | after |\n| --- | --- | --- |")
    for cfg in cfgs:
        before = f"{count_ops(ref, cfg):,}" if ref else "-"
        print(f"| {cfg.label()} | {before} | {count_ops(erase_batch, cfg):,} |")
    print(f"\nerase_batch on {dev.type}: ms per call (median), p=0.5")
    print("| erasing | batch, size | before | after |\n| --- | --- | --- | --- |")
    for b, h, w, reps in ((32, 64, 32, 15), (args.batch, 384, 128, 3)):
        for cfg in cfgs:
            before = "-" if ref is None or args.skip_before else f"{ms_per_call(ref, cfg, b, h, w, dev, reps):.1f}"
            after = ms_per_call(erase_batch, cfg, b, h, w, dev, reps)
            print(f"| {cfg.label()} | {b}, {h}x{w} | {before} | {after:.1f} |")


if __name__ == "__main__":
    main()
