"""Table 1's V of every peer and HENet graph beside ours, and why HPM's is not reproduced (no timing, no weights).

Run: python benchmarks/peer_sizes.py [--markdown]
Prints henetlib.engine.efficiency.peer_size_check() as a table, then the batch-1 multiply-accumulates of each
graph at 384x128 (counted on the meta device: no memory, no arithmetic) and a least-squares line of the
paper's batch-1 latency (1/S) over those MACs fitted on the other five graphs, which predicts the S of the
published HPM and of the per-scale reading; the paper's 82 fps sides with one of them. Seconds on a CPU.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from henetlib.engine.efficiency import peer_size_check, table1_graphs
from henetlib.method.peers import HPMPerScale
from henetlib.paper import TABLE1


def gmacs(model: torch.nn.Module, size: tuple[int, int] = (384, 128)) -> float:
    """Batch-1 multiply-accumulates (10^9) of a meta-device model's eval forward."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(torch.empty(1, 3, *size, device="meta"))
    return counter.get_total_flops() / 2e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true", help="the table in Markdown, reasons in full")
    args = ap.parse_args()

    rows = peer_size_check()
    print(f"V: {rows[0]['counts']}; tolerance {rows[0]['tolerance']:.0%}\n")
    if args.markdown:
        print("| model | paper V | our V | ratio | with classifiers | status | reason |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if args.markdown:
            print(f"| {r['model']} | {r['paper_v']:g} | {r['our_v']:.1f} | {r['ratio']:.3f} | {r['our_v_all']:.1f} "
                  f"| {r['status']} | {r['reason']} |")
        else:
            print(f"{r['model']:15s} paper {r['paper_v']:5g}  ours {r['our_v']:6.1f} MiB  ratio {r['ratio']:.3f}  "
                  f"(all {r['our_v_all']:6.1f})  {r['status']}")

    with warnings.catch_warnings(), torch.device("meta"):
        warnings.simplefilter("ignore")
        graphs = table1_graphs(751)
        graphs["HPM (per scale)"] = HPMPerScale(751)
    macs = {name: gmacs(m) for name, m in graphs.items()}
    fit = [n for n in graphs if n in TABLE1 and n != "HPM"]
    slope, intercept = np.polyfit([macs[n] for n in fit], [1000 / TABLE1[n]["s"] for n in fit], 1)
    print(f"\nPaper's 1/S (ms) ~ {intercept:.2f} + {slope:.3f} x GMACs, fitted on {', '.join(fit)}")
    for name, g in macs.items():
        paper_s = TABLE1.get(name.split(" ")[0], {}).get("s")
        print(f"{name:16s} {g:6.2f} GMACs  predicted S {1000 / (intercept + slope * g):6.1f} fps  "
              f"paper S {paper_s if paper_s is not None else '-'}")


if __name__ == "__main__":
    main()
