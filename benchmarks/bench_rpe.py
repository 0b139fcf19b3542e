"""RPE cost: per image against torchvision's RandomErasing, and the batched version's images/s.

Run: python benchmarks/bench_rpe.py [--device cpu|cuda] [--batch 256]
Goals: per-image RPE at most 4x torchvision's RandomErasing at 384x128; batched RPE >= 50,000 img/s on an H100.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from henetlib.rpe import (
    RandomPolygonErasing,
    random_erasing,
    random_erasing_batch,
    random_polygon_erasing_batch,
)
from henetlib.utils import hardware_string, pick_device


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=256)
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


if __name__ == "__main__":
    main()
