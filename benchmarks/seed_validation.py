"""Validate the seed-noise design (issue #22): do one-seed verdicts with the noise model agree with many seeds?

Runs the study with ``--seeds N`` seeds (0 .. N-1; trains what is not cached), then compares three scoreboards:

* **default**: seed 0 only, intervals with the noise model estimated from seeds 1 .. N-1 (held out from seed 0,
  so seed 0's own training noise is not in its estimate);
* **query-level**: seed 0 only, no noise model (what the scoreboard printed before #22);
* **reference**: all N seeds, the training noise from their own spread (pooled over the configurations).

and reports, per design: the rows whose verdict flips to the *opposite* side (reproduced <-> contradicted;
goal: none), the resolved rows the reference leaves unresolved, and how often the default interval covers
(a) the N-seed mean and (b) the held-out mean of seeds 1 .. N-1 (goal 90-98% at the nominal 95%). It also
stores the equal-variance check (Brown-Forsythe) of the noise model.

What to expect when the model is right and training noise dominates the query noise: the N-seed mean contains
seed 0, so ``d0 - mean`` has seed variance ``sigma2 sum(w^2) (1 - 1/N)`` and the 95% default interval covers it
more often than 95%; the held-out mean of seeds 1 .. N-1 does not, ``d0 - mean`` then has seed variance
``sigma2 sum(w^2) (1 + 1/(N-1))``, so about 92% coverage for N = 5 (93-94% when query noise is comparable). Results: a JSON file and a figure in
``benchmarks/results/``; ``--save-model`` also writes the all-seed noise model to ``published/noise/``.

Run after ``make reproduce`` (its seed-0 runs are reused):

    python benchmarks/seed_validation.py --profile smoke --seeds 5 --save-model

About 30 minutes of the 2-core CPU for the smoke profile (4 more seeds of 33 runs and their occlusion curves).
A quick check of the script itself: ``--profile test --seeds 3 --grids table3,table4`` (a few minutes).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from henetlib.engine import cache
from henetlib.output import export, style
from henetlib.study import noise_model as study_noise_model
from henetlib.study import tables
from henetlib.verdicts import claims, noise, scoreboard, scores

warnings.filterwarnings("ignore")
ALL_GRIDS = ("table1", "table2", "table3", "table4", "fig4", "fig5")


def run(profile: str, n_seeds: int, grids: tuple[str, ...], device: str, n_boot: int, out: Path,
        save_model: bool, finetune: bool | None = None) -> dict:
    if n_seeds < 3:
        raise SystemExit("--seeds must be at least 3 (seed 0 plus a held-out noise model of two or more seeds).")
    from henetlib.study.grids import default_finetune

    finetune = default_finetune(profile) if finetune is None else finetune  # None: the profile's default regime
    t0 = time.time()
    ctx_all = tables.StudyContext(profile, device, seeds=tuple(range(n_seeds)), finetune=finetune)
    data_all = scores.collect(ctx_all, set(grids), train=True, progress=True)
    t_train = time.time() - t0
    rest_idx = list(range(1, n_seeds))
    ctx_rest = tables.StudyContext(profile, device, seeds=tuple(rest_idx), finetune=finetune)
    data_rest = data_all.subset(rest_idx)
    data_0 = data_all.subset([0])
    ctx_0 = tables.StudyContext(profile, device, seeds=(0,), finetune=finetune)

    model_rest = noise.estimate(ctx_rest, train=False, data=data_rest)
    model_all = noise.estimate(ctx_all, train=False, data=data_all)
    if save_model:
        print(f"noise model written to {model_all.save()}")
    held_out = study_noise_model.NoiseStatus(model_rest, True, [], f"noise model from held-out seeds {rest_idx}")
    none = study_noise_model.NoiseStatus(None, False, [], "query-level only")
    cl = [c for c in claims.for_profile(profile) if c.grid in grids and c.kind != "efficiency"]

    def board(ctx, data, st):
        return scoreboard.scoreboard(ctx, n_boot=n_boot, claims=cl, data=data, noise_model=st, efficiency={})

    default = board(ctx_0, data_0, held_out)
    query_only = board(ctx_0, data_0, none)
    reference = board(ctx_all, data_all, none)  # several seeds: their own spread
    rest = board(ctx_rest, data_rest, none)
    result = {
        "profile": profile, "finetune": finetune, "seeds": list(range(n_seeds)), "grids": list(grids),
        "n_boot": n_boot, "hardware": ctx_all.hardware(),
        "code_version": cache.code_version(), "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "train_seconds": round(t_train), "claims": [c.id for c in cl],
        "noise_model_held_out": {"estimates": model_rest.estimates, "equal_variance": model_rest.equal_variance},
        "noise_model_all": {"estimates": model_all.estimates, "equal_variance": model_all.equal_variance},
        "default_vs_reference": noise.compare_verdicts(default, reference),
        "default_vs_held_out_mean": noise.compare_verdicts(default, rest),
        "query_only_vs_reference": noise.compare_verdicts(query_only, reference),
        "query_only_vs_held_out_mean": noise.compare_verdicts(query_only, rest),
        "claim_verdicts": {
            "default": scoreboard.claim_verdicts(default)[["claim", "verdict"]].to_dict("records"),
            "reference": scoreboard.claim_verdicts(reference)[["claim", "verdict"]].to_dict("records")},
    }
    out.mkdir(parents=True, exist_ok=True)
    stem = f"seed_validation_{profile}{'-finetune' if finetune else ''}"
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1, default=str))
    cols = ["claim", "comparison", "metric", "ours diff", "lo", "hi", "verdict", "basis"]
    rows = default[cols].merge(reference[cols[:4] + ["verdict"]], on=cols[:3], suffixes=("", " (N seeds)"))
    rows = rows.merge(rest[cols[:4]], on=cols[:3], suffixes=("", " (held out)"))
    rows.to_csv(out / f"{stem}_rows.csv", index=False)
    _figure(rows, result, out / f"{stem}.png")
    print(json.dumps({k: v for k, v in result.items() if k.endswith(("reference", "mean"))}, indent=1))
    return result


def _figure(rows, result, path: Path) -> None:
    """Seed 0's noise-aware interval of every row against the N-seed mean, in the project's print style;
    the caption goes beside it (``<stem>.caption.txt``, ``.tex``), never into the image."""

    r = rows.dropna(subset=["ours diff", "ours diff (N seeds)"]).reset_index(drop=True)
    r = r.sort_values("ours diff (N seeds)").reset_index(drop=True)
    fig, ax = style.figure("two", 2.4)
    x = np.arange(len(r))
    cov = (r["lo"] <= r["ours diff (N seeds)"]) & (r["ours diff (N seeds)"] <= r["hi"])
    ax.vlines(x[cov], r["lo"][cov], r["hi"][cov], color=style.PALETTE[0], lw=1.2, label="covers the N-seed mean")
    ax.vlines(x[~cov], r["lo"][~cov], r["hi"][~cov], color=style.PALETTE[3], lw=1.2, linestyles="dashed",
              label="misses it")
    ax.plot(x, r["ours diff (N seeds)"], "k.", ms=4, label=f"mean of {len(result['seeds'])} seeds")
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xlabel("claim row x metric, sorted by the N-seed mean")
    ax.set_ylabel("contrast (points)")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside upper center", ncols=3)
    d, h = result["default_vs_reference"], result["default_vs_held_out_mean"]
    q = result["query_only_vs_held_out_mean"]
    regime = "fine-tuned from the SynthReID-pretrained backbone" if result.get("finetune") else "from random weights"
    cap = (f"Seed-noise validation, profile '{result['profile']}', {regime}, grids {', '.join(result['grids'])}, seeds "
           f"{result['seeds'][0]}-{result['seeds'][-1]}. Each bar: seed 0's 95% interval (query bootstrap plus the "
           f"noise model estimated from the other seeds). They cover the {len(result['seeds'])}-seed mean in "
           f"{d['coverage']:.0%} of {d['rows']} rows and the held-out seeds' mean in {h['coverage']:.0%} "
           f"(query-level intervals: {q['coverage']:.0%}); {d['opposite']} verdicts are opposite to the "
           f"{len(result['seeds'])}-seed verdicts. Code {result['code_version']}, {result['date'][:10]}, "
           f"{result.get('hardware', 'the 2-core CPU machine')}.")
    export.save_figure(fig, path.stem, cap, folder=path.parent)


def redraw(stem: Path) -> None:
    """The figure again from a run's saved JSON and rows (no training)."""
    import pandas as pd

    result = json.loads(stem.with_suffix(".json").read_text())
    rows = pd.read_csv(stem.parent / f"{stem.name}_rows.csv")
    _figure(rows, result, stem.with_suffix(".png"))

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1 (at least 3; 5 or more recommended)")
    ap.add_argument("--grids", default=",".join(ALL_GRIDS))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    ap.add_argument("--save-model", action="store_true", help="write the all-seed noise model to published/noise/")
    ap.add_argument("--finetune", action="store_true", help="the fine-tuned regime (smoke's default)")
    ap.add_argument("--from-scratch", action="store_true", help="the from-scratch regime")
    ap.add_argument("--redraw", type=Path, default=None,
                    help="only redraw the figure of a saved run (benchmarks/results/seed_validation_<...> stem)")
    a = ap.parse_args()
    if a.redraw:
        redraw(a.redraw)
        return
    a.finetune = True if a.finetune else False if a.from_scratch else None
    grids = tuple(g for g in a.grids.split(",") if g)
    unknown = set(grids) - set(ALL_GRIDS)
    if unknown:
        raise SystemExit(f"unknown grids {sorted(unknown)}; use {', '.join(ALL_GRIDS)}")
    res = run(a.profile, a.seeds, grids, a.device, a.n_boot, Path(a.out), a.save_model, a.finetune)
    print(f"noise model (held out) equal-variance check: "
          f"{json.dumps(res['noise_model_held_out']['equal_variance'], default=str)[:400]}")


if __name__ == "__main__":
    main()
