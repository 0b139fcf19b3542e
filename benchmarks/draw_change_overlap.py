"""Do a change of random draws move any table? Every "x ± h" interval in the tables of two figure folders.

Issue 20 changed which uniform plays which part in the batched erasing (one draw per kind for RE and RPE
together, a sentinel row after the rectangle attempts, one shared fill), so every run with erasing, and
Fig. 5's occluded test images, see other random numbers than before. The issue asks that every table's
intervals overlap the old ones. This compares each ``x ± h`` cell of every Markdown table under the new
figures folder with the same cell (same file, table, row and column) of the old one, taken from a git
revision, and counts cells that are identical, overlap, or do not overlap. It also counts the claim
verdicts in ``claims.md`` before and after.

Run: python benchmarks/draw_change_overlap.py --old-rev b9e3d5b [--figures figures] [--save NAME]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

CELL = re.compile(r"^([+-]?\d+(?:\.\d+)?)\s*±\s*(\d+(?:\.\d+)?)$")
ROOT = Path(__file__).resolve().parents[1]


def tables(text: str) -> list[list[list[str]]]:
    """The Markdown tables of a file: lists of rows of stripped cells, header first, separator dropped."""
    out, cur = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set(":-") for c in cells):
                cur.append(cells)
        elif cur:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def compare(old: str, new: str, name: str) -> dict:
    res = {"cells": 0, "identical": 0, "overlap": 0, "apart": [], "unmatched_rows": 0}
    for t_old, t_new in zip(tables(old), tables(new), strict=False):
        header = t_new[0]
        for r_old, r_new in zip(t_old[1:], t_new[1:], strict=False):
            if r_old[0] != r_new[0] or len(r_old) != len(r_new):
                res["unmatched_rows"] += 1
                continue
            for col, a, b in zip(header, r_old, r_new, strict=True):
                ma, mb = CELL.match(a), CELL.match(b)
                if not (ma and mb):
                    continue
                res["cells"] += 1
                (xa, ha), (xb, hb) = (map(float, ma.groups()), map(float, mb.groups()))
                if a == b:
                    res["identical"] += 1
                elif abs(xa - xb) <= ha + hb:
                    res["overlap"] += 1
                else:
                    res["apart"].append({"file": name, "row": " | ".join(r_new[:2]), "column": col, "old": a, "new": b})
    return res


def verdicts(text: str) -> dict[str, dict[str, int]]:
    """Verdict counts of claims.md: its first table has one row per claim, its second one per row."""
    out: dict[str, dict[str, int]] = {}
    for name, t in zip(("claims", "rows"), [t for t in tables(text) if "verdict" in t[0]], strict=False):
        i = t[0].index("verdict")
        counts: dict[str, int] = {}
        for row in t[1:]:
            key = row[i].replace("✓", "").replace("✗", "").replace("?", "").strip()
            counts[key] = counts.get(key, 0) + 1
        out[name] = counts
    return out


def old_text(rev: str, rel: str) -> str | None:
    """The file ``rel`` at ``rev``, or None where it did not exist."""
    r = subprocess.run(["git", "show", f"{rev}:{rel}"], cwd=ROOT, capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old-rev", required=True, help="git revision holding the old figures")
    ap.add_argument("--figures", default="figures", help="figures folder, relative to the repository")
    ap.add_argument("--save", default=None, help="write benchmarks/results/<NAME>.json")
    a = ap.parse_args()
    folder = ROOT / a.figures
    files = sorted(folder.glob("*.md"))
    if not files:
        sys.exit(f"error: no tables under {folder}; run make reproduce first")
    total = {"cells": 0, "identical": 0, "overlap": 0, "apart": [], "unmatched_rows": 0}
    per_file, olds = {}, {}
    for f in files:
        rel = f.relative_to(ROOT).as_posix()
        old = olds[f.name] = old_text(a.old_rev, rel)
        if old is None:
            continue
        r = compare(old, f.read_text(), rel)
        per_file[rel] = {k: (len(v) if k == "apart" else v) for k, v in r.items()}
        for k in ("cells", "identical", "overlap", "unmatched_rows"):
            total[k] += r[k]
        total["apart"] += r["apart"]
    claims = folder / "claims.md"
    old_claims = olds.get("claims.md") or ""
    out = {"old_rev": a.old_rev, "figures": a.figures, **{k: total[k] for k in ("cells", "identical", "overlap",
                                                                                 "unmatched_rows")},
           "apart": total["apart"], "claim_verdicts_old": verdicts(old_claims),
           "claim_verdicts_new": verdicts(claims.read_text()) if claims.exists() else {}, "per_file": per_file}
    print(f"{out['cells']} interval cells: {out['identical']} identical, {out['overlap']} overlapping, "
          f"{len(out['apart'])} apart; {out['unmatched_rows']} rows not matched")
    for x in out["apart"]:
        print(f"  apart: {x['file']} [{x['row']}] {x['column']}: {x['old']} -> {x['new']}")
    print(f"claim verdicts: {out['claim_verdicts_old']} -> {out['claim_verdicts_new']}")
    if a.save:
        path = ROOT / "benchmarks" / "results" / f"{a.save}.json"
        path.write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
