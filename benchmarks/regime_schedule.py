"""Choose the pretrained smoke profile's epochs by the regime check alone (issue 21).

The rule, fixed before this script ran: the epochs are the fewest of the candidates at which both probe runs
pass the convergence rule of henetlib.regime (training-fit mAP gain over the last 20% of epochs < 2 points).
The probes are the two runs expected to fit slowest: all losses without erasing, and all losses with
RE+RPE(20) at p = 0.5, seed 0. lr and the 80% lr step are fixed by the profile's stated rule. Only the
training fit is printed: no test metric and no verdict is looked at while choosing.

    python benchmarks/regime_schedule.py [--candidates 8,12,16] [--profile smoke]

Runs go through the result cache, so the chosen schedule's probes are reused by the study.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

from henetlib import runner
from henetlib.train import make_config

PROBES = {"all losses, no erasing": {}, "all losses, RE+RPE(20) p=0.5": dict(erasing="re+rpe", erasing_p=0.5)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--candidates", default="8,12,16")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "regime_schedule.json")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    rows = []
    chosen = None
    for epochs in (int(e) for e in args.candidates.split(",")):
        ok = True
        for name, kw in PROBES.items():
            cfg = make_config(args.profile, finetune=True, epochs=epochs, milestones=(math.ceil(0.8 * epochs),),
                              device="cpu", **kw)
            t0 = time.time()
            res = runner.run(cfg, progress=False)
            r = res.regime
            rows.append({"epochs": epochs, "probe": name, "lr": cfg.lr, "milestones": list(cfg.milestones),
                         "train_fit_check": r.get("train_fit_check"), "train_fit": r.get("train_fit"),
                         "gain": r.get("fit_gain_last"), "converged": r.get("converged"),
                         "final_loss": r.get("final_loss"), "train_seconds": round(res.train_seconds, 1),
                         "wall_seconds": round(time.time() - t0, 1)})
            print(json.dumps(rows[-1]), flush=True)
            ok &= bool(r.get("converged"))
        if ok:
            chosen = epochs
            break
    out = {"rule": "fewest candidate epochs at which both probes converge", "candidates": args.candidates,
           "chosen_epochs": chosen, "runs": rows, "date": time.strftime("%Y-%m-%d %H:%M")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"chosen epochs: {chosen}")


if __name__ == "__main__":
    main()
