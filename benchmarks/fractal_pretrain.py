"""Formula-driven pretraining against SynthReID pretraining for the smoke profile (issue 21: "measure both").

Pretrains smoke's backbone (resnet18-quarter, 64 x 32, 12 epochs, the same recipe) on a FractalDB-style set
of 600 fractal categories x 10 images (henetlib.fractal; no people), then fine-tunes the two regime probes
(all losses without erasing; with RE+RPE(20) at p = 0.5; seed 0) with smoke's fine-tuning schedule from
three starts: the committed SynthReID-pretrained weights, the fractal weights, and random weights. Reports
each probe's training fit, regime and test R1 / mAP. The choice of stand-in is not revisited by this
(docs/READINGS.md, "A stand-in for ImageNet"); the numbers say how much each start gives.

    python benchmarks/fractal_pretrain.py [--out benchmarks/results/fractal_pretrain.json]

About 5 minutes of the 2-core CPU. The fractal weights are written under results/ and not committed.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

from regime_schedule import PROBES  # the same two probes as the schedule search (benchmarks/ is on sys.path)

from henetlib.engine import cache, pretrain
from henetlib.engine.config import FINETUNE, make_config
from henetlib.system.files import results_dir
from henetlib.system.runtime import hardware_string


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "fractal_pretrain.json")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    t0 = time.time()
    weights = results_dir() / "fractal" / pretrain.config_for("smoke-fractal").file_name
    rec = pretrain.pretrain(pretrain.config_for("smoke-fractal"), weights, device="cpu")
    schedule = {k: v for k, v in FINETUNE["smoke"].items() if k != "pretrained"}
    starts = {"SynthReID pretraining (committed)": dict(finetune=True),
              "FractalDB-style pretraining": dict(finetune=True, pretrained=str(weights)),
              "random weights": dict(schedule)}
    rows = []
    for start, kw in starts.items():
        for probe, pk in PROBES.items():
            res = cache.run(make_config("smoke", device="cpu", **kw, **pk), progress=False)
            r = res.regime
            rows.append({"start": start, "probe": probe, "R1": round(res.metrics["R1"], 2),
                         "mAP": round(res.metrics["mAP"], 2), "train_fit": r.get("train_fit"),
                         "fit_gain_last": r.get("fit_gain_last"), "regime": r.get("regime"),
                         "train_seconds": round(res.train_seconds, 1)})
            print(json.dumps(rows[-1]), flush=True)
    out = {"pretraining": {k: rec[k] for k in ("config", "data", "history", "seconds", "own_test_set", "sha256")},
           "schedule": schedule, "runs": rows, "hardware": hardware_string("cpu"),
           "wall_seconds": round(time.time() - t0, 1), "date": time.strftime("%Y-%m-%d")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
