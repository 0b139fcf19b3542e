"""Command line for machines without Jupyter: fill the result cache, then render the notebooks anywhere.

  python -m henetlib data --profile smoke                   generate SynthReID and print its summary
  python -m henetlib run --profile gpu --stripes 1,4 --recovery
  python -m henetlib table1|table2|table3|table4|fig4|fig5 --profile gpu [--seeds 0,1,2] [--data-root PATH]
  python -m henetlib study --profile gpu                    every table and figure's runs
  python -m henetlib study --profile paper --shard 3/8      the 3rd of 8 disjoint slices (a job array)
  torchrun --nproc_per_node=4 -m henetlib run ...           one run on 4 GPUs with DDP (docs/SCALING.md)
  python -m henetlib reproduce --profile smoke              execute the notebooks into reports/
  python -m henetlib pretrain --profile smoke               pretrain the profile's backbone (pretrained/)
  python -m henetlib noise estimate|check|show --profile smoke   the seed-noise model (published/noise/)

The library reports progress through ``logging``; this command line shows it (INFO, or DEBUG with -v).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path

from henetlib.data.datasets import build_dataset
from henetlib.data.images import DataError
from henetlib.engine import cache
from henetlib.engine.config import make_config
from henetlib.engine.pretrain import config_for, pretrain
from henetlib.stats import query_count_clause
from henetlib.study import grids, noise_model, publish, reproduce, tables
from henetlib.system import distributed as ddp
from henetlib.system.files import REPO_ROOT, results_dir
from henetlib.verdicts import noise, regimes

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
GRIDS = ("table2", "table3", "table4", "fig4", "fig5", "table1")


def _ints(s: str) -> tuple[int, ...]:
    return tuple(int(x) for x in s.split(",") if x != "")


def _common(args: argparse.Namespace) -> dict:
    out = {"device": args.device}
    if args.data_root:
        out.update(dataset=args.dataset or "market1501", data_root=str(args.data_root))
    elif args.dataset:
        out["dataset"] = args.dataset
    for name in ("epochs", "max_steps", "backbone", "height", "width", "synth_size", "pretrained", "from_scratch",
                 "skip_bad_images", "p", "k", "sync_bn", "triplet_gather", "compile"):
        if getattr(args, name, None):
            out[name] = getattr(args, name)
    return out


def _add_regime(p: argparse.ArgumentParser) -> None:
    """--finetune / --from-scratch, the one definition of the regime flags (every command that trains or reads
    a study takes them)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--finetune", action="store_true",
                   help="smoke/gpu: fine-tune the SynthReID-pretrained backbone (the paper's regime; smoke's default)")
    g.add_argument("--from-scratch", action="store_true",
                   help="train from random weights (gpu's default; the paper profile needs it to start without "
                        "ImageNet weights). A regime other than the profile's default renders into "
                        "figures/<regime>/ and reports/<regime>/")


def _finetune(args: argparse.Namespace) -> bool:
    """The regime asked for: --finetune, --from-scratch, else the profile's default (grids.DEFAULT_FINETUNE).
    A profile without a fine-tuned regime refuses --finetune here, before any work."""
    ft = True if args.finetune else False if args.from_scratch else grids.default_finetune(args.profile)
    if ft:
        tables.StudyContext(args.profile, finetune=True)  # raises for test and paper
    return ft


def _context(args: argparse.Namespace, overrides: dict | None = None) -> tables.StudyContext:
    return tables.StudyContext(args.profile, args.device, str(args.data_root) if args.data_root else None,
                               args.dataset, _ints(args.seeds), overrides or {}, finetune=_finetune(args))


def _override(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` (VALUE read as JSON where it parses: 1, 0.5, true, [1, 4]; else as text)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--override takes KEY=VALUE (a TrainConfig field), got {text!r}.")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def _reproduce(args: argparse.Namespace) -> int:
    notebooks = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if args.notebooks:
        wanted = set(args.notebooks.split(","))
        notebooks = [nb for nb in notebooks if nb.stem in wanted or nb.stem[:2] in wanted]
    if not notebooks:
        print(f"Nothing to reproduce: no study notebooks in {NOTEBOOK_DIR}.")
        return 0
    t0 = time.time()
    regime = "finetune" if args.finetune else "scratch" if args.from_scratch else "default"
    seeds = "published" if args.seeds.strip().lower() == "published" else list(_ints(args.seeds))
    extra: dict = {"seeds": seeds, "regime": regime, "dataset": args.dataset or "",
                   "pretrained": str(args.pretrained or ""), "overrides": dict(args.override or [])}
    ok = reproduce.run_notebooks(notebooks, profile=args.profile, device=args.device, data_root=args.data_root,
                                 extra=extra, jobs=max(1, args.jobs), force=args.force, quick=args.quick)
    print(f"Total: {time.time() - t0:.0f} s")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m henetlib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--profile", default="smoke", choices=["test", "smoke", "gpu", "paper"])
        p.add_argument("--device", default="auto", help="auto (CUDA when present), cuda or cpu")
        p.add_argument("--data-root", type=Path, default=None, help="a Market-1501-style folder (default: SynthReID)")
        p.add_argument("--dataset", default=None, help="market1501, dukemtmc, cuhk03-detected, cuhk03-labeled")

    rp = sub.add_parser("reproduce", help="execute every study notebook with papermill into reports/")
    common(rp)
    rp.add_argument("--notebooks", default=None, help="comma-separated notebook stems or numbers (00,01)")
    rp.add_argument("--seeds", default="published",
                    help="comma-separated seeds for every table and figure (e.g. 0,1,2); default: the published "
                         "multi-seed study's where one exists (this machine's seed 0 then feeds the reproduction "
                         "check), else 0")
    _add_regime(rp)
    rp.add_argument("--pretrained", type=Path, default=None,
                    help="a local torchvision ResNet checkpoint every run of every notebook starts from (the paper "
                         "profile's ImageNet weights); named in the cache key by its SHA-256")
    rp.add_argument("--quick", action="store_true",
                    help="a dry run: every notebook end to end, each run one epoch of one step, the first seed, "
                         "into results/, figures/ and reports/ dry-run/ folders; ends with a report (data, weights, "
                         "memory, time per step, the full study's estimated time)")
    rp.add_argument("--override", type=_override, action="append", metavar="KEY=VALUE",
                    help="a TrainConfig field changed on every run (repeatable), e.g. --override backbone=resnet18")
    rp.add_argument("--jobs", type=int, default=2,
                    help="notebooks rendered at once, and training processes on a CPU (default 2)")
    rp.add_argument("--force", action="store_true",
                    help="execute every notebook, even those whose inputs did not change since their last run")
    cr = sub.add_parser("compare-regimes", help="the claims scored from scratch and fine-tuned, side by side "
                                                "(both studies must be trained or published)")
    common(cr)
    cr.add_argument("--seeds", default="0")
    cr.add_argument("--n-boot", type=int, default=1000, help="bootstrap draws per interval")

    dp = sub.add_parser("data", help="generate/check a data set and print its summary")
    common(dp)

    pp = sub.add_parser("publish", help="train the study within a time budget, then pack its small result files")
    common(pp)
    pp.add_argument("--seeds", default="0")
    pp.add_argument("--budget", type=float, default=480, help="seconds of training to spend in this call")
    pp.add_argument("--out", type=Path, required=True, help="folder for published-<profile>.tar.gz")
    _add_regime(pp)
    pt = sub.add_parser("pretrain", help="pretrain a profile's backbone on SynthReID's own pretraining set")
    pt.add_argument("--profile", default="smoke", choices=["smoke", "gpu"])
    pt.add_argument("--device", default="auto")
    pt.add_argument("--out", type=Path, default=None, help="weights file (default: pretrained/<profile>-<backbone>.pt)")
    for flag, typ in (("--epochs", int), ("--batch-size", int), ("--lr", float), ("--seed", int)):
        pt.add_argument(flag, type=typ, default=None, help="override the profile's pretraining setting")
    npar = sub.add_parser("noise", help="the seed-noise model: estimate it from seeds 0-4, check it, or show it")
    npar.add_argument("action", choices=("estimate", "check", "show"))
    common(npar)
    npar.add_argument("--seeds", default="0,1,2,3,4", help="estimate: the seeds (default 0-4)")
    npar.add_argument("--no-train", action="store_true", help="use cached or published runs only")
    _add_regime(npar)
    ps = sub.add_parser("publish-study", help="publish this machine's multi-seed runs of both regimes (small files, "
                                              "never weights) as published/<profile>/, with their provenance")
    common(ps)
    ps.add_argument("--seeds", default="0,1,2,3,4")
    ps.add_argument("--regimes", default="both", choices=("both", "default"),
                    help="both regimes (fine-tuned and from scratch), or one: the profile's default, or the one "
                         "--finetune / --from-scratch names")
    _add_regime(ps)
    ip = sub.add_parser("import-published", help="unpack a publish archive into published/<profile>/")
    ip.add_argument("archive", type=Path)
    ip.add_argument("--profile", default="gpu")

    for name in ("run", "study", *GRIDS):
        p = sub.add_parser(name, help="train (cached) " + ("one configuration" if name == "run" else name))
        common(p)
        p.add_argument("--seeds", default="0")
        p.add_argument("--epochs", type=int, default=None, help="override the profile's epochs")
        p.add_argument("--max-steps", type=int, default=None,
                       help="at most this many steps an epoch (a dry run; make reproduce QUICK=1)")
        p.add_argument("--backbone", default=None, help="override: resnet50, resnet34, resnet18, resnet18-half, resnet18-quarter")
        p.add_argument("--height", type=int, default=None, help="override the input height")
        p.add_argument("--width", type=int, default=None, help="override the input width")
        p.add_argument("--synth-size", default=None, choices=["tiny", "smoke", "small", "full"], help="SynthReID size")
        p.add_argument("--pretrained", default=None, help="a local torchvision ResNet checkpoint (never downloaded)")
        _add_regime(p)
        p.add_argument("--skip-bad-images", action="store_true",
                       help="train without unreadable or misnamed files of a real data set (recorded in results)")
        p.add_argument("--p", type=int, default=None,
                       help="override P, identities per batch (per process under torchrun: the global batch "
                            "is P x processes x K)")
        p.add_argument("--k", type=int, default=None, help="override K, images per identity")
        p.add_argument("--sync-bn", action="store_true", help="torchrun: synchronise BatchNorm across GPUs")
        p.add_argument("--triplet-gather", action="store_true",
                       help="torchrun: mine triplets over every process's features, not each one's own")
        p.add_argument("--compile", default=None, choices=["none", "default", "reduce-overhead", "cuda-graph"],
                       help="how the training step runs: eager (none), torch.compile of model and losses "
                            "(default, reduce-overhead) or one captured CUDA graph (cuda-graph; CUDA only)")
        if name == "study":
            p.add_argument("--shard", default=None, metavar="I/N",
                           help="train only the I-th of N disjoint slices of the study's runs (1 <= I <= N)")
            p.add_argument("--list", action="store_true",
                           help="list the runs (of the shard) and whether each is done; train nothing")
        if name == "run":
            p.add_argument("--stripes", default="1,4")
            p.add_argument("--recovery", action="store_true")
            p.add_argument("--no-oim", action="store_true")
            p.add_argument("--no-triplet", action="store_true")
            p.add_argument("--no-mse", action="store_true")
            p.add_argument("--erasing", default="none", choices=["none", "re", "rpe", "re+rpe"])
            p.add_argument("--erasing-p", type=float, default=0.5)
            p.add_argument("--rpe-n", type=int, default=20)
    parser.add_argument("-v", "--verbose", action="store_true", help="show the library's DEBUG messages too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    warnings.filterwarnings("ignore", message="HENet: no pretrained weights")

    if args.cmd == "reproduce":
        return _reproduce(args)
    if args.cmd == "compare-regimes":
        ctx = tables.StudyContext(args.profile, args.device, str(args.data_root) if args.data_root else None,
                                  args.dataset, _ints(args.seeds))
        table = regimes.compare_regimes(ctx, n_boot=args.n_boot)
        print(table.to_string(index=False, max_colwidth=70))
        print(f"\n{table.attrs['summary']}\nwritten: {regimes.save_regimes(table, ctx)}")
        return 0
    if args.cmd == "noise":
        return _noise(args)
    if args.cmd == "pretrain":
        cfg = config_for(args.profile, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
        pretrain(cfg, args.out, args.device)
        return 0
    if args.cmd == "publish-study":
        base = _context(args)
        ctxs = [base] if args.regimes == "default" else [
            dataclasses.replace(base, finetune=ft) for ft in (True, False)]
        command = f"python -m henetlib publish-study --profile {args.profile} --seeds {args.seeds} --regimes {args.regimes}"
        print(f"published {publish.publish_study(ctxs, command)}")
        return 0
    if args.cmd == "import-published":
        print(f"{publish.unpack(args.archive, args.profile)} results added to published/{args.profile}/")
        return 0
    if args.cmd in ("run", "study", *GRIDS):
        rc = _train_commands(args)
        ddp.cleanup()  # not on an error: torchrun stops the other ranks, a barrier here would hang
        return rc

    if args.cmd == "publish":
        ctx = _context(args)
        t0 = time.time()
        done, left = publish.train_within(ctx, args.budget, out_dir=args.out)
        print(f"[publish] trained {done} runs in {time.time() - t0:.0f} s; {left} still missing", flush=True)
        publish.extras(ctx)
        publish.pack(args.profile, args.out)
        return 0
    if args.cmd == "data":
        cfg = make_config(args.profile, **_common(args))
        build_dataset(cfg.dataset, cfg.data_root, cfg.synth_size, verbose=True)  # checks a real data set
        return 0
    return 0


def _train_commands(args: argparse.Namespace) -> int:
    """run / study / one grid; under torchrun every rank executes this and rank 0 prints."""
    ddp.setup(args.device)
    ddp.check(args.sync_bn, args.device)
    main = ddp.is_main()
    if args.cmd == "run":
        cfg = make_config(args.profile, stripes=_ints(args.stripes), recovery=args.recovery, oim=not args.no_oim,
                          triplet=not args.no_triplet, mse=not args.no_mse, erasing=args.erasing,
                          erasing_p=args.erasing_p, rpe_n=args.rpe_n, seed=_ints(args.seeds)[0],
                          finetune=_finetune(args), **_common(args))
        res = cache.run(cfg, progress=main)
        if main:
            ranks = res.distributed.get("world_size", 1)
            print(f"{res.name}: " + ", ".join(f"{k}={v:.2f}" for k, v in res.metrics.items()
                                               if "_" not in k and isinstance(v, (int, float)))
                  + f"; {query_count_clause(res.per_query)}"
                  + f" ({res.images_per_second:.0f} img/s" + (f" on {ranks} ranks" if ranks > 1 else "")
                  + f", {res.train_seconds:.0f} s, result {res.folder})")
            if ranks != ddp.world_size():
                print(f"note: this is the cached result of the configuration, trained on {ranks} process(es) with a "
                      f"global batch of {cfg.p * ranks} x {cfg.k}; the key does not depend on the number of "
                      "processes (docs/SCALING.md)."
                      + ("" if res.published else f" Delete {res.folder} to train it again here."))
        return 0
    names = GRIDS if args.cmd == "study" else (args.cmd,)
    overrides = {k: v for k, v in _common(args).items() if k not in ("device", "dataset", "data_root")}
    ctx = _context(args, overrides)
    t0 = time.time()
    if args.cmd == "study" and (args.shard or args.list):
        index, count = grids.parse_shard(args.shard or "1/1")
        runs = grids.shard(ctx.runs(), index, count)
        if args.list:
            if main:
                for grid, cfg in runs:
                    ds = cache.dataset_for(cfg)
                    key = cache.result_key(cfg, ds)
                    done = "done" if cache.lookup(cfg, ds, key) is not None else "todo"
                    print(f"{done}  {key}  {grid:6s}  {cfg.name()}")
                print(f"shard {index}/{count}: {len(runs)} runs")
            return 0
        # Fig. 5's occlusion curves in the shard that trained the model, not serially after the shards
        results = tables.train_runs(ctx, runs, progress=main, curves=main)
        if main:
            print(f"shard {index}/{count}: {len(results)} runs ready in {time.time() - t0:.0f} s; results under "
                  f"{results_dir()}. Render the tables anywhere once every shard is done.", flush=True)
        return 0
    if ddp.world_size() > 1:
        # every rank trains the runs together; then rank 0 alone renders the tables from the cache
        todo = ctx.runs(names)
        cache.sweep([c for _, c in todo], progress=main)
        ddp.cleanup()
        if not main:
            return 0
    for name in names:
        t1 = time.time()
        df, results = getattr(tables, name)(ctx)
        print(df.round(2).to_string(index=False))
        print(f"{name}: {len(results)} runs ready in {time.time() - t1:.0f} s\n", flush=True)
    print(f"done in {time.time() - t0:.0f} s; results under {results_dir()}")
    return 0


def _noise(args: argparse.Namespace) -> int:
    """estimate (seeds 0-4 of every grid), check (a second seed of four configurations against the model), show."""
    if args.action == "estimate":
        m = noise.estimate(_context(args), train=not args.no_train)
        print(f"wrote {m.save()}")
        print(json.dumps(m.estimates, indent=1))
        return 0
    args.seeds = "0"
    ctx = _context(args)
    st = noise_model.status(ctx)
    if args.action == "show":
        print(st.note)
        if st.model:
            print(json.dumps(asdict(st.model), indent=1))
        return 0
    r = noise.check(ctx, train=not args.no_train, st=st, progress=True)
    print(json.dumps(r, indent=1))
    return 1 if r.get("drift") else 0


def cli(argv: list[str] | None = None) -> int:
    """``main`` with bad input reported as one clear line (exit 2) rather than a traceback."""
    try:
        return main(argv)
    except (DataError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

