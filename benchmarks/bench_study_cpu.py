"""The CPU training time of the smoke study, for two versions of henetlib (issue 20: what the lean step saves).

Run: python benchmarks/bench_study_cpu.py --old /path/to/old/checkout [--profile smoke] [--epochs 2]
          [--rounds 2] [--out benchmarks/results/study_cpu.json]

Every run of the study (``study_configs``: the configurations of the current checkout) is trained for
``--epochs`` P x K epochs without evaluation, once with the old checkout's henetlib and once with this one, in
alternating child processes (old, new, old, new, ... ``--rounds`` times), so that both see the same machine
state. A child times the training loop only (``TrainOutput.train_seconds``: erasing, forward, losses, backward,
optimizer; no evaluation, no regime check) and reports seconds per epoch. The study's saving is then
sum over runs of (old - new) seconds per epoch x the profile's epochs: the training time ``make reproduce``
spends, which is what the lean step changed (evaluation and the notebooks are the same code in both).

The old checkout must accept the configurations' fields (unknown ones are dropped: e.g. ``pretrained``'s
SynthReID token did not exist before issue 21, so the fine-tuned regime cannot be compared this way).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import torch
try:
    from henetlib.data.datasets import build_dataset
    from henetlib.engine import train as T
    from henetlib.engine.config import TrainConfig
except ImportError:  # a checkout from before the wings
    from henetlib import train as T
    from henetlib.data import build_dataset
    TrainConfig = T.TrainConfig
spec = json.loads(sys.argv[1])
out = []
ds = None
for d in spec["configs"]:
    cfg = TrainConfig.from_dict({**d, "epochs": spec["epochs"], "checkpoint_every": 10**6, "device": "cpu"})
    if ds is None:
        ds = build_dataset(cfg.dataset, cfg.data_root, cfg.synth_size, verbose=False)
    t0 = time.perf_counter()
    res = T.train(cfg, None, progress=False, dataset=ds, evaluate=False)
    wall = time.perf_counter() - t0
    # the first epoch pays one-time costs (the device store, allocator warm-up): reported apart, and the
    # run's whole wall time (model build, data path set-up, every epoch) beside it
    secs = [h.seconds for h in res.history]
    out.append({"name": cfg.name(), "first": secs[0], "per_epoch": sum(secs[1:]) / max(1, len(secs) - 1),
                "wall": wall})
print("RESULT" + json.dumps({"henetlib": T.__file__, "torch": torch.__version__, "threads": torch.get_num_threads(),
                             "runs": out}))
"""


def _child(code: Path, spec: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code), "HENET_NO_PUBLISHED": "1"}
    p = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], env=env, cwd=str(code),
                       capture_output=True, text=True, check=False)
    line = next((x for x in p.stdout.splitlines() if x.startswith("RESULT")), None)
    if p.returncode or line is None:
        raise RuntimeError(f"the child for {code} failed (exit {p.returncode}):\n{p.stderr[-2000:]}")
    return json.loads(line[len("RESULT"):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", type=Path, required=True, help="a checkout of the version to compare with")
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--epochs", type=int, default=2, help="epochs timed per run (the first is reported apart)")
    ap.add_argument("--rounds", type=int, default=2, help="old/new alternations")
    ap.add_argument("--out", type=Path, default=None, help="write the measurements as JSON")
    a = ap.parse_args()
    if not any((a.old / "henetlib" / f).exists() for f in ("engine/train.py", "train.py")):
        raise SystemExit(f"--old {a.old}: no henetlib/engine/train.py (or henetlib/train.py) there; pass a checkout "
                         "(git worktree add DIR COMMIT).")
    sys.path.insert(0, str(ROOT))
    from dataclasses import asdict

    from henetlib.engine.config import PROFILES
    from henetlib.study.grids import study_configs

    configs = [asdict(c) for _, c in study_configs(a.profile)]
    spec = {"configs": configs, "epochs": a.epochs}
    per: dict[str, dict[str, list[float]]] = {"old": {}, "new": {}}
    walls: dict[str, dict[str, list[float]]] = {"old": {}, "new": {}}
    child_s: dict[str, list[float]] = {"old": [], "new": []}
    meta = {}
    t0 = time.time()
    for r in range(a.rounds):
        for tag, code in (("old", a.old.resolve()), ("new", ROOT)):
            c0 = time.time()
            res = _child(code, spec)
            child_s[tag].append(time.time() - c0)
            meta[tag] = {k: res[k] for k in ("henetlib", "torch", "threads")}
            for run in res["runs"]:
                per[tag].setdefault(run["name"], []).append(run["per_epoch"])
                walls[tag].setdefault(run["name"], []).append(run.get("wall", float("nan")))
            print(f"round {r + 1}/{a.rounds} {tag}: {sum(x['per_epoch'] for x in res['runs']):.1f} s per epoch "
                  f"of every run ({time.time() - t0:.0f} s so far)", flush=True)
    epochs = PROFILES[a.profile]["epochs"]
    rows = []
    for name in per["new"]:
        old, new = statistics.median(per["old"][name]), statistics.median(per["new"][name])
        rows.append({"run": name, "old s/epoch": old, "new s/epoch": new, "saved s (study)": (old - new) * epochs,
                     "old run wall s": statistics.median(walls["old"][name]),
                     "new run wall s": statistics.median(walls["new"][name])})
    tot_old = sum(r["old s/epoch"] for r in rows) * epochs
    tot_new = sum(r["new s/epoch"] for r in rows) * epochs
    print(f"\n{'run':58s} {'old s/ep':>9s} {'new s/ep':>9s} {'saved':>7s}")
    for r in rows:
        print(f"{r['run']:58s} {r['old s/epoch']:9.2f} {r['new s/epoch']:9.2f} {r['saved s (study)']:7.1f}")
    print(f"\n{len(rows)} runs x {epochs} epochs: training {tot_old:.0f} s (old) -> {tot_new:.0f} s (new), "
          f"{tot_old - tot_new:.0f} s saved ({100 * (tot_old - tot_new) / tot_old:.0f}%)")
    print("child processes (every run at --epochs, set-up included): "
          + ", ".join(f"{k} {statistics.median(v):.0f} s" for k, v in child_s.items()))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"command": " ".join(sys.argv), "meta": meta, "epochs": epochs, "rows": rows,
                                     "total_old_s": tot_old, "total_new_s": tot_new,
                                     "child_seconds": child_s,
                                     "date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count()}, indent=1))


if __name__ == "__main__":
    main()
