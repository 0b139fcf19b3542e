"""CPU time of one batched erasing call, this checkout against another (a git worktree), back to back.

Run: python benchmarks/bench_erasing_ab.py --old /tmp/old [--rounds 3] [--calls 50]
     (``git worktree add /tmp/old <commit>`` makes the other checkout)

Each round runs a fresh process per checkout, one thread, that warms up and then profiles ``calls`` calls of
``erase_batch`` (RE+RPE(20), p = 0.5, batch 32 at 64 x 32: the smoke training step's erasing) and prints the
profiler's self-CPU total per call, which a loaded machine disturbs less than wall time. Rounds alternate the
two checkouts; the median per checkout is reported.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = """
import sys, torch
sys.path.insert(0, sys.argv[1])
torch.set_num_threads(1)
try:
    from henetlib.method.rpe import ErasingConfig, erase_batch
except ImportError:  # a checkout from before the wings
    from henetlib.rpe import ErasingConfig, erase_batch
cfg = ErasingConfig("re+rpe", p=0.5, n=20)
x = torch.randn(32, 3, 64, 32, generator=torch.Generator().manual_seed(0))
g = torch.Generator().manual_seed(0)
for _ in range(20):
    erase_batch(x, cfg, g)
calls = int(sys.argv[2])
with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
    for _ in range(calls):
        erase_batch(x, cfg, g)
print(sum(e.self_cpu_time_total for e in prof.key_averages()) / calls / 1e3)
"""


def one(path: Path, calls: int) -> float:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(calls)], capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()
    return float(out[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", type=Path, required=True, help="the other checkout (a git worktree)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=50)
    a = ap.parse_args()
    if not any((a.old / "henetlib" / f).exists() for f in ("method/rpe.py", "rpe.py")):
        sys.exit(f"error: {a.old} holds no henetlib/method/rpe.py or henetlib/rpe.py; make it with 'git worktree add {a.old} <commit>'")
    here = Path(__file__).resolve().parents[1]
    res: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(a.rounds):
        res["old"].append(one(a.old, a.calls))
        res["new"].append(one(here, a.calls))
    for k, v in res.items():
        print(f"{k}: {statistics.median(v):.2f} ms per call (rounds: {', '.join(f'{x:.2f}' for x in v)})")


if __name__ == "__main__":
    main()
