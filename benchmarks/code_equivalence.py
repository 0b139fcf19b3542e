"""Did a code change leave training and evaluation bit-identical? Compare two result caches run by run.

A change to a result module (``henetlib.engine.cache.RESULT_MODULES``) changes ``code_version`` and so every
cache key, and marks the committed seed-noise models stale. When the change is a pure move (files into new
folders, imports, logging, comments), the numbers should not move. This script is the test: train the study
under the old code and under the new one (the same seeds, one thread per process, the same machine), then
pair the runs by identity key (the configuration and the data, without the code version) and compare the
metrics, every query's first-hit rank and AP, and every epoch's loss terms exactly.

    git worktree add /tmp/old <old commit>
    (cd /tmp/old && PYTHONPATH=. OMP_NUM_THREADS=1 python -m henetlib study --profile smoke [--from-scratch])
    make reproduce; make reproduce REGIME=scratch     # the new code's runs, into results/
    python benchmarks/code_equivalence.py --old /tmp/old/results --new results [--carry]

With ``--carry`` and every paired run identical, each seed-noise model in ``published/noise/`` whose code
version is the old one records the new code version as equivalent, with this evidence; the noise model's
status then treats it as current (``henetlib.study.noise_model.status``). Any difference refuses to carry.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load(folder: Path) -> dict[str, list[dict]]:
    """code version -> results of that version in ``folder``, each with its identity key."""
    out: dict[str, list[dict]] = defaultdict(list)
    for f in sorted(folder.glob("*/result.json")):
        d = json.loads(f.read_text())
        out[d["code_version"]].append(d)
    return out


def signature(d: dict) -> dict:
    """What must be equal: metrics, per-query ranks and APs, and each epoch's losses (not times)."""
    return {"metrics": d["metrics"], "per_query": d["per_query"], "regime": {k: v for k, v in d["regime"].items()
                                                                             if "second" not in k},
            "history": [{k: h[k] for k in ("epoch", "loss", "terms", "lr", "images")} for h in d["history"]]}


def compare(old: list[dict], new: list[dict]) -> dict:
    a = {d["identity_key"]: d for d in old}
    b = {d["identity_key"]: d for d in new}
    paired = sorted(set(a) & set(b))
    differ = [b[k]["name"] for k in paired if signature(a[k]) != signature(b[k])]
    return {"paired": len(paired), "identical": len(paired) - len(differ), "differ": differ,
            "only_old": len(set(a) - set(b)), "only_new": len(set(b) - set(a))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--old", type=Path, required=True, help="the old code's results folder")
    ap.add_argument("--new", type=Path, default=ROOT / "results", help="the new code's results folder")
    ap.add_argument("--old-version", default=None, help="old code version (default: the only one in --old)")
    ap.add_argument("--new-version", default=None, help="new code version (default: henetlib's current one)")
    ap.add_argument("--carry", action="store_true", help="record the equivalence in published/noise/*.json")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "code_equivalence.json")
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from henetlib.engine.cache import code_version
    from henetlib.study.noise_model import NoiseModel, noise_dir
    from henetlib.system.runtime import git_commit, hardware_string

    old_all, new_all = load(a.old), load(a.new)
    old_v = a.old_version or (next(iter(old_all)) if len(old_all) == 1 else None)
    if old_v is None:
        raise SystemExit(f"--old holds code versions {sorted(old_all)}; name one with --old-version.")
    new_v = a.new_version or code_version()
    r = compare(old_all.get(old_v, []), new_all.get(new_v, []))
    report = {"old_code_version": old_v, "new_code_version": new_v, "git_commit": git_commit(),
              "hardware": hardware_string("cpu"), "date": time.strftime("%Y-%m-%dT%H:%M:%S"), **r,
              "command": "python benchmarks/code_equivalence.py " + " ".join(sys.argv[1:])}
    print(json.dumps({k: v for k, v in report.items() if k != "differ"} | {"differ": r["differ"][:10]}, indent=1))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1) + "\n")
    if not a.carry:
        return 0 if not r["differ"] else 1
    if r["differ"] or not r["paired"]:
        raise SystemExit(f"not carried: {len(r['differ'])} of {r['paired']} paired runs differ.")
    evidence = (f"{r['identical']} of {r['paired']} seed-0 runs bit-identical (metrics, per-query ranks and APs, "
                f"per-epoch losses) under {new_v} and {old_v}; {report['hardware']}; {report['date'][:10]}; "
                "benchmarks/results/code_equivalence.json")
    for f in sorted(noise_dir().glob("*.json")):
        m = NoiseModel.load(f)
        if m.code_version != old_v and old_v not in m.equivalent_code:
            print(f"{f.name}: estimated under {m.code_version}, not {old_v}: left as it is")
            continue
        if new_v not in m.equivalent_code:
            m.equivalent_code[new_v] = evidence
            m.save(f)
            print(f"{f.name}: {new_v} recorded as equivalent to {m.code_version}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
