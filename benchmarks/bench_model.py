"""HENet training and inference speed on random data (the numbers the developers' guide compares with).

Run: python benchmarks/bench_model.py [--device cuda] [--backbone resnet50] [--batch 64] [--precision bf16]
          [--compile] [--steps 30] [--height 384 --width 128] [--erasing rpe]
Training: one full step (forward of every branch, Fig. 2's losses, backward, Adam) on a P x K batch, with
the batched GPU erasing included when --erasing is given. Inference: henetlib.efficiency.measure.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch

from henetlib.engine.efficiency import measure
from henetlib.method.losses import HENetLoss, LossConfig
from henetlib.method.model import HENet
from henetlib.method.rpe import ErasingConfig, erase_batch
from henetlib.system.runtime import hardware_string, pick_device


def train_speed(args, dev) -> float:
    """Training img/s of one full step, with the device-resident data path (uint8 store -> gather, resize,
    flip, normalise, erasing) included; prints the share of data, forward, backward and optimizer."""
    from henetlib.data.datasets import preprocess

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HENet(751, (1, 4), True, args.backbone, input_size=(args.height, args.width)).to(dev)
    crit = HENetLoss(751, (1, 4), LossConfig()).to(dev)
    k = 4
    crit.set_batch_structure(k)
    cl = dev.type == "cuda"
    if cl:
        model = model.to(memory_format=torch.channels_last)
    fwd = torch.compile(model) if args.compile else model
    opt = torch.optim.Adam(model.parameters(), lr=2e-4, weight_decay=5e-4, fused=dev.type == "cuda")
    amp = torch.bfloat16 if args.precision == "bf16" else None
    y = torch.arange(args.batch // k, device=dev).repeat_interleave(k)
    store = torch.randint(0, 256, (512, 3, args.height, args.width), dtype=torch.uint8, device=dev)
    gen = torch.Generator(device=dev).manual_seed(0)
    erasing = ErasingConfig(args.erasing) if args.erasing != "none" else None
    phases = ("data", "forward", "backward", "optimizer")
    timed = {p: [] for p in phases}
    use_events = dev.type == "cuda"

    def mark():
        if use_events:
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            return e
        return time.perf_counter()

    def step(record: bool):
        t = [mark()]
        idx = torch.randint(0, len(store), (args.batch,), device=dev, generator=gen)
        flip = torch.rand(args.batch, device=dev, generator=gen) < 0.5
        clean = preprocess(store[idx], (args.height, args.width), flip)
        x = erase_batch(clean, erasing, gen) if erasing else clean
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)
        t.append(mark())
        with torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None):
            loss = crit(fwd(x), y, x, clean).total
        t.append(mark())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t.append(mark())
        opt.step()
        t.append(mark())
        if record:
            timed["_marks"] = timed.get("_marks", []) + [t]

    t0 = time.perf_counter()
    for _ in range(args.warmup):
        step(False)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    print(f"  warm-up ({args.warmup} steps{', compile' if args.compile else ''}): {time.perf_counter() - t0:.1f} s")
    times = []
    for rep in range(3):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step(rep == 2)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) / args.steps)
    for t in timed.pop("_marks"):
        for i, p in enumerate(phases):
            timed[p].append(t[i].elapsed_time(t[i + 1]) / 1e3 if use_events else t[i + 1] - t[i])
    total = sum(statistics.mean(v) for v in timed.values())
    print("  step breakdown (device time per phase): " + ", ".join(
        f"{p} {100 * statistics.mean(timed[p]) / total:.0f}%" for p in phases)
        + f"; sum {1e3 * total:.1f} ms vs wall {1e3 * statistics.median(times):.1f} ms per step")
    return args.batch / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--backbone", default="resnet50")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--height", type=int, default=384)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--erasing", default="none", choices=["none", "re", "rpe", "re+rpe"])
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--skip-infer", action="store_true")
    ap.add_argument("--cuda-graphs", action="store_true")
    args = ap.parse_args()
    dev = pick_device(args.device)
    if args.precision == "auto":
        args.precision = "bf16" if dev.type == "cuda" else "fp32"
    print(f"hardware: {hardware_string(dev)}")
    print(f"HENet(+Both) = G1+P4+R16, {args.backbone}, {args.height}x{args.width}, batch {args.batch}, {args.precision}")
    if not args.skip_train:
        ips = train_speed(args, dev)
        print(f"  training: {ips:,.0f} img/s (erasing: {args.erasing})")
    if args.skip_infer:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HENet(751, (1, 4), True, args.backbone, input_size=(args.height, args.width))
    m = measure(model, (args.height, args.width), dev, batch=max(args.batch, 256) if dev.type == "cuda" else args.batch,
                dtype=torch.bfloat16 if args.precision == "bf16" else torch.float32, cuda_graphs=args.cuda_graphs,
                repeats=5 if dev.type == "cuda" else 3, inner=10 if dev.type == "cuda" else 1)
    print(f"  inference: batch-1 {m.fps_batch1:,.1f} fps{' (CUDA graphs)' if m.cuda_graphs else ''}, "
          f"batch {m.batch} {m.throughput:,.0f} img/s; {m.params / 1e6:.1f} M parameters, {m.size_mb:.0f} MiB "
          f"(V = {m.inference_size_mb:.1f} MiB without classifiers and decoder)")


if __name__ == "__main__":
    main()
