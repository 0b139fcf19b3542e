"""Which use of spare CPU time resolves the most claims: more seeds or more epochs? (README, "How much to
trust one seed".)

Run: python benchmarks/claims_resolution.py   (about 17 minutes on the 2-core machine after `make reproduce`,
whose seed-0 runs it reuses). Scores the Table 2-4 claims on the smoke profile three ways and prints a table
(row counts: claim rows x metric; with several seeds the intervals include their own training noise). The
noise-model design that replaced "more seeds" for the default is validated by benchmarks/seed_validation.py.
"""
import time
import warnings

from henetlib.study import tables
from henetlib.verdicts import claims, scoreboard

warnings.filterwarnings("ignore")

subset = [c for c in claims.CLAIMS if c.grid in ("table2", "table3", "table4")]
variants = {"baseline: seed 0, 8 epochs": dict(seeds=(0,)),
            "3 seeds (0,1,2), 8 epochs": dict(seeds=(0, 1, 2)),
            "seed 0, 12 epochs": dict(seeds=(0,), overrides={"epochs": 12, "milestones": (9,)})}
rows = []
for name, kw in variants.items():
    t0 = time.time()
    ctx = tables.StudyContext("smoke", "cpu", **kw)
    b = scoreboard.scoreboard(ctx, claims=subset)
    v = b["verdict"].value_counts()
    print(scoreboard.summary_line(b, "smoke"), flush=True)
    rows.append((name, int(v.get("reproduced", 0)), int(v.get("contradicted", 0)), int(v.get("unresolved", 0)),
                 round(float((b.hi - b.lo).mean()), 2), round(time.time() - t0)))
    print(rows[-1], flush=True)
print("| variant | reproduced | contradicted | unresolved | mean CI width (points) | seconds (cached baseline excluded) |")
print("| --- | --- | --- | --- | --- | --- |")
for r in rows:
    print("| " + " | ".join(map(str, r)) + " |")
