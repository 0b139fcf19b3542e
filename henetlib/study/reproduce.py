"""``make reproduce``: fill the result cache, execute the study notebooks with papermill, export HTML.

Two phases. First every training run the selected notebooks need is trained (or found in the cache): on a
CPU by ``jobs`` shard processes when runs are missing, then in this process, so no two notebooks ever train
the same configuration at once. Then the notebooks render from the cache: the efficiency notebook first and
alone, because it times models and must not share the CPU or GPU (and 08_claims reads its measurements), then
the rest ``jobs`` at a time.

A notebook whose inputs did not change since its last successful execution is not executed again
(:func:`notebook_inputs`: its file, its papermill parameters, the library's source, the result files it
reads, the figures folder), as long as its executed copy, its HTML and every figure file it wrote are still
there; ``force=True`` (``--force``, ``make reproduce FORCE=1``) executes every notebook. Last, the default
study (profile smoke, its default regime, SynthReID) rewrites the README's generated headline from
``figures/claims_summary.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from henetlib.engine.cache import (
    Result,
    dataset_for,
    local_only,
    lookup,
    published_root,
    published_seeds,
)
from henetlib.study import dryrun, tables
from henetlib.study.grids import ORDER, regime_name
from henetlib.study.pages import SUMMARY, update_headline, write_index
from henetlib.system.files import REPO_ROOT, atomic_write_json, atomic_write_text, figures_dir, results_dir
from henetlib.system.runtime import pick_device

logger = logging.getLogger(__name__)

REPORTS_DIR = REPO_ROOT / "reports"
README = REPO_ROOT / "README.md"
DEFAULT_PROFILE = "smoke"  # make reproduce's and the command line's: the study the README's headline reports
# notebook -> the study function whose runs it reads (see henetlib.tables)
PREFILL = {"01_structure_analysis": ("table2",), "02_branch_ablation": ("table3",), "03_loss_ablation": ("table4",),
           "04_rpe_probability_sweep": ("fig4",), "05_occlusion_robustness": ("fig5",), "06_cam_heatmaps": ("table4",),
           "07_efficiency_score": ("table1",),
           "08_claims": ("table2", "table3", "table4", "fig4", "fig5", "table1")}
TIMES_MODELS = {"07_efficiency_score"}
# notebooks that read more than their grids' runs: every cached run (the other regime's, compared side by
# side) and the efficiency measurements notebook 07 caches (its own output, so not an input of 07 itself)
READS_EVERY_RESULT = {"08_claims"}


def default_reports_dir() -> Path:
    """``reports/``, or ``$HENET_REPORTS_DIR`` (checks point it at a temp folder)."""
    return Path(os.environ.get("HENET_REPORTS_DIR") or REPORTS_DIR)


# ---------------------------------------------------------------------------------------------------------
# Phase 1: the training runs


def prefill(stems: list[str], params: dict, jobs: int = 2) -> dict[str, list[Result]]:
    """Train (or load) every run the notebooks ``stems`` will read; returns each grid's results.

    On a CPU with runs of the whole study missing, ``jobs`` processes train disjoint shards of it first
    (``study --shard``, one thread each; the run locks keep them apart): small models on few cores waste
    much of a second thread (one step: 253 ms with 2 threads, 416 ms with 1, so two one-thread processes
    train 1.2x faster). This process then finds the runs cached and adds what needs the models. With every
    run cached, no shard process starts (they cost 20 s of imports and look-ups to find nothing to do)."""

    warnings.filterwarnings("ignore", message="HENet: no pretrained weights")
    ctx = _context(params)
    grids = list(dict.fromkeys(g for s in stems if s in PREFILL for g in PREFILL[s]))
    shardable = set(ctx.overrides) <= {"pretrained", *SHARD_FLAGS}
    if jobs > 1 and shardable and set(grids) >= set(ORDER) and _on_cpu(params["device"]):
        missing = _missing_runs(ctx)
        if missing:
            logger.info("[train] %d runs of the study to train in %d shards", missing, jobs)
            _train_shards(params, jobs)
    if set(grids) >= set(ORDER):
        train_fresh(params, jobs)
    out = {}
    for name in grids:
        t0 = time.time()
        _, out[name] = getattr(tables, name)(ctx, progress=True)
        logger.info("[train] %s: %d runs ready in %.0f s", name, len(out[name]), time.time() - t0)
    return out


def train_fresh(params: dict, jobs: int = 2) -> int:
    """Train this machine's own seed 0 of every configuration where a published multi-seed study exists (the
    notebooks render the published one; the reproduction check compares these fresh runs with it). Returns
    how many runs were missing here."""
    ctx = _context(params)
    if not published_seeds(ctx.profile) or ctx.overrides or ctx.data_root:
        return 0
    fresh = {**params, "seeds": [0]}
    fctx = _context(fresh)
    with local_only():
        missing = _missing_runs(fctx)
        if missing:
            logger.info("[train] %d fresh runs (seed 0) for the reproduction check", missing)
            if jobs > 1 and _on_cpu(params["device"]):
                _train_shards(fresh, jobs, local=True)
            else:
                tables.train_runs(fctx, fctx.runs())
    return missing


def _context(params: dict) -> tables.StudyContext:
    """The study the notebooks will see: the same resolution of the same parameters as their setup call."""
    return tables.StudyContext.from_parameters(
        params["profile"], params["device"], params.get("data_root") or "", params.get("dataset") or "",
        params.get("seeds") or (0,), params.get("regime") or "default", params.get("pretrained") or "",
        params.get("overrides") or {})


# TrainConfig overrides the training shards take as `study` flags (others: the study trains in this process)
SHARD_FLAGS = {"epochs": "--epochs", "max_steps": "--max-steps", "backbone": "--backbone", "height": "--height",
               "width": "--width", "synth_size": "--synth-size", "p": "--p", "k": "--k"}


def _missing_runs(ctx: tables.StudyContext) -> int:
    """How many of the study's runs are neither cached nor published."""
    return sum(lookup(cfg, dataset_for(cfg)) is None for _, cfg in ctx.runs())


def _on_cpu(device: str) -> bool:
    return pick_device(device).type == "cpu"


def _train_shards(params: dict, jobs: int, local: bool = False) -> None:
    """``jobs`` processes of ``python -m henetlib study --shard i/jobs``; raises if one fails. ``local``: they
    ignore published results (train this machine's own runs)."""

    ctx = _context(params)
    cmd = [sys.executable, "-m", "henetlib", "study", "--profile", ctx.profile, "--device", ctx.device,
           "--seeds", ",".join(str(s) for s in ctx.seeds)]
    if ctx.data_root:
        cmd += ["--data-root", str(ctx.data_root)] + (["--dataset", ctx.dataset_name] if ctx.dataset_name else [])
    # the regime explicit: the shards must train what this process reads
    cmd.append("--finetune" if ctx.finetune else "--from-scratch")
    for key, value in ctx.overrides.items():
        cmd += ["--pretrained", str(value)] if key == "pretrained" else [SHARD_FLAGS[key], str(value)]
    threads = str(max(1, (os.cpu_count() or jobs) // jobs))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
           **({"HENET_NO_PUBLISHED": "1"} if local else {})}
    t0 = time.time()
    procs = [subprocess.Popen([*cmd, "--shard", f"{i}/{jobs}"], env=env, cwd=str(REPO_ROOT))
             for i in range(1, jobs + 1)]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise RuntimeError(f"training shard(s) failed (exit codes {codes}); their finished runs are cached. "
                           f"Rerun to continue, or train one shard by hand: {' '.join(cmd)} --shard 1/{jobs}")
    logger.info("[train] %d shards of the study ready in %.0f s", jobs, time.time() - t0)


# ---------------------------------------------------------------------------------------------------------
# What a notebook's output depends on: executed again only when it changed


def code_hash() -> str:
    """A hash of every ``henetlib/**/*.py`` source (paths and contents)."""
    h = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for f in sorted(package.rglob("*.py")):
        h.update(f.relative_to(package).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _stat(f: Path) -> list:
    """[path, size, mtime in ns] of a file, or [path, None, None] when it is missing."""
    try:
        st = f.stat()
    except OSError:
        return [str(f), None, None]
    return [str(f), st.st_size, st.st_mtime_ns]


def _listing(folder: Path, pattern: str) -> list[list]:
    return [_stat(f) for f in sorted(folder.glob(pattern)) if f.is_file()]


def results_read(stem: str, grid_results: dict[str, list[Result]]) -> dict[str, list]:
    """The result files notebook ``stem`` reads, each as [path, size, mtime]: the ``result.json`` of every
    run of its grids (cached or published), the published folder (noise models, provenance), and for 08 every
    cached run and the efficiency measurements. Derived caches beside a run (occlusion curves, ranked lists,
    CAM maps) are left out: they are computed from the run's model, whose retraining rewrites its
    ``result.json``. A notebook that reads no run (00) reads none of them."""
    if stem not in PREFILL:
        return {}
    runs = sorted({str(r.folder / "result.json") for g in PREFILL[stem] for r in grid_results.get(g, [])})
    out = {"runs": [_stat(Path(f)) for f in runs], "published": _listing(published_root(), "**/*")}
    if stem in READS_EVERY_RESULT:
        out["every run"] = _listing(results_dir(), "*/result.json")
        out["efficiency"] = _listing(results_dir() / "efficiency", "*.json")
    return out


def notebook_inputs(nb: Path, params: dict, code: str, results: dict) -> dict[str, Any]:
    """Everything an executed notebook's output depends on, hashed: the notebook file, the papermill
    parameters, the library's code (:func:`code_hash`), the result files it reads (:func:`results_read`) and
    the figures folder it writes to."""
    return {"notebook": hashlib.sha256(nb.read_bytes()).hexdigest()[:16],
            "parameters": json.loads(json.dumps(params, sort_keys=True, default=str)),
            "code": code,
            "results": hashlib.sha256(json.dumps(results, sort_keys=True).encode()).hexdigest()[:16],
            "figures": str(figures_dir())}


def inputs_hash(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def inputs_file(reports: Path, stem: str) -> Path:
    return reports / f"{stem}.inputs.json"


def up_to_date(reports: Path, stem: str, digest: str, figures: Path | None = None) -> bool:
    """True when ``stem`` last executed successfully with inputs of hash ``digest``, and its executed
    notebook, its HTML and every figure file it wrote are still there."""
    try:
        rec = json.loads(inputs_file(reports, stem).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(rec, dict) or rec.get("hash") != digest:
        return False
    figures = figures or figures_dir()
    needed = [reports / f"{stem}.ipynb", reports / f"{stem}.html", *(figures / f for f in rec.get("outputs", []))]
    return all(p.exists() for p in needed)


def record(reports: Path, stem: str, inputs: dict, outputs: list[str], seconds: float) -> None:
    """Store the inputs of a successful execution beside the executed notebook (atomically)."""
    atomic_write_json(inputs_file(reports, stem), {"hash": inputs_hash(inputs), "inputs": inputs,
                                                   "outputs": sorted(outputs), "seconds": round(seconds, 1),
                                                   "executed": time.strftime("%Y-%m-%dT%H:%M:%S")})


# ---------------------------------------------------------------------------------------------------------
# Phase 2: the notebooks


# the notebooks' kernel (their kernelspec's name; make env installs it into .venv): not "python3", which a
# Jupyter outside .venv maps to its own Python, without henetlib
KERNEL = "henet-study"
KERNEL_DISPLAY_NAME = "Python 3.11 (henet-study)"


def _kernel() -> str:
    """:data:`KERNEL`, installed into this Python's prefix first where it is missing (an environment built
    without make env, or before the kernel had its own name)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        from ipykernel.kernelspec import install

        logger.info("installing the notebooks' kernel %r into %s", KERNEL, sys.prefix)
        install(kernel_name=KERNEL, display_name=KERNEL_DISPLAY_NAME, prefix=sys.prefix)
    return KERNEL


def _kernel_manager_class():
    """Kernels talk over IPC sockets named after this worker process: two workers starting kernels at the
    same moment cannot pick the same TCP ports (which deadlocked parallel runs), and nothing is on TCP."""

    from jupyter_client.manager import KernelManager  # heavy, and only the notebook workers need it

    class IPCKernelManager(KernelManager):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.transport = "ipc"
            self.ip = os.path.join(tempfile.gettempdir(), f"henet-kernel-{os.getpid()}")

    return IPCKernelManager


def _figure_files() -> dict[str, int]:
    folder = figures_dir()
    return {f.name: f.stat().st_mtime_ns for f in folder.iterdir() if f.is_file()} if folder.is_dir() else {}


def _execute(nb: str, out: str, params: dict) -> tuple[str, float, str | None, list[str]]:
    """Run one notebook (in a worker process); returns (name, seconds, error or None, the figure files written
    while it ran: its own, and any a notebook running beside it wrote)."""
    import nbformat  # heavy: in the notebook worker processes only
    import papermill as pm
    from nbconvert import HTMLExporter

    t0 = time.time()
    before = _figure_files()
    # a notebook's sliders need a kernel: executed here, it draws its static figure instead (unless asked)
    if "interactive" in pm.inspect_notebook(nb) and "interactive" not in params:
        params = {**params, "interactive": False}
    # the kernel writes where this study reads; a kernel without the variable (JupyterLab's) writes into
    # figures/interactive/ (henetlib.output.export.choose_figures_dir)
    os.environ["HENET_FIGURES_DIR"] = str(figures_dir())
    try:
        pm.execute_notebook(nb, out, parameters=params, cwd=str(Path(nb).parent), progress_bar=False,
                            kernel_name=_kernel(), kernel_manager_class=_kernel_manager_class(),
                            start_timeout=120)
    except pm.PapermillExecutionError as e:
        return Path(nb).stem, time.time() - t0, f"cell {e.exec_count}: {e.ename}: {e.evalue}", []
    html, _ = HTMLExporter().from_notebook_node(nbformat.read(out, as_version=4))
    atomic_write_text(Path(out).with_suffix(".html"), html)
    written = [name for name, mtime in _figure_files().items() if before.get(name) != mtime]
    return Path(nb).stem, time.time() - t0, None, written


# QUICK: every notebook end to end on the user's data and weights, each run cut to one epoch of this many steps
# (a ResNet50 step at 384 x 128 takes 10-15 s on one core of the 2-core CPU; 51 runs make the dry run)
QUICK_STEPS = 1
DRY_RUN = "dry-run"  # its own sub-folder of results/, figures/ and reports/


def notebook_parameters(profile: str = DEFAULT_PROFILE, device: str = "auto", data_root: Path | str | None = None,
                        extra: dict | None = None) -> dict[str, Any]:
    """The parameters every study notebook takes (what papermill passes; see their ``parameters`` cells)."""
    params = {"profile": profile, "device": device, "data_root": str(data_root) if data_root else "", "dataset": "",
              "seeds": "published", "regime": "default", "pretrained": "", "overrides": {}, **(extra or {})}
    if isinstance(params["seeds"], tuple):
        params["seeds"] = list(params["seeds"])  # papermill passes lists (the StudyContext checks the values)
    return params


def quick_parameters(params: dict) -> dict[str, Any]:
    """A dry run's parameters: the first seed, and every run cut to one epoch of :data:`QUICK_STEPS` steps."""
    return {**params, "seeds": [0],
            "overrides": {**params["overrides"], "epochs": 1, "max_steps": QUICK_STEPS}}


def run_notebooks(notebooks: list[Path], profile: str = DEFAULT_PROFILE, device: str = "auto",
                  data_root: Path | None = None, extra: dict | None = None,
                  reports_dir: Path | None = None, jobs: int = 2, force: bool = False,
                  readme: Path | None = None, quick: bool = False) -> bool:
    """Fill the cache, then run each notebook whose inputs changed (every one with ``force``); stop at the
    first failure (papermill names the failing cell). ``extra``: more notebook parameters (seeds, regime,
    pretrained, overrides, dataset).

    Results finished before a failure stay in ``results/`` and are reused on the next run. ``readme``: the
    README whose headline the default study rewrites (default: the repository's).

    ``quick``: a dry run of the whole study on this setup (:func:`quick_parameters`), into its own
    ``results/dry-run/``, ``figures/dry-run/`` and ``reports/dry-run/``, never over the study's; it ends with
    :func:`henetlib.study.dryrun.report` (the data, the weights, the device, memory, time per step and the
    full study's estimated time)."""
    params = notebook_parameters(profile, device, data_root, extra)
    ctx = _context(params)  # bad parameters (regime, weights, overrides) fail here, before any work
    try:
        ctx.runs()  # every configuration of the study can be made (the paper profile needs weights)
    except ValueError as e:
        raise ValueError(f"{e} (make reproduce: PRETRAINED=path/to/resnet50.pth)" if "pretrained" in str(e)
                         else str(e)) from e
    t0 = time.time()
    regime = regime_name(profile, ctx.finetune)
    reports = reports_dir or default_reports_dir()
    if quick:
        sub = DRY_RUN if regime == "default" else f"{DRY_RUN}/{regime}"
        reports = reports_dir or default_reports_dir() / sub
        with _env(HENET_RESULTS_DIR=results_dir() / DRY_RUN, HENET_FIGURES_DIR=figures_dir() / sub):
            ok = _run(notebooks, quick_parameters(params), reports, jobs, t0, force, None)
            if ok:
                dryrun.report(ctx, _context(quick_parameters(params)), reports, time.time() - t0)
        return ok
    if regime != "default":  # the profile's other regime: its own figures and reports beside the default's
        reports = reports_dir or default_reports_dir() / regime
        with _figures_in(figures_dir() / regime):
            return _run(notebooks, params, reports, jobs, t0, force, None)
    default_study = profile == DEFAULT_PROFILE and not (params["data_root"] or params["pretrained"]
                                                        or params["overrides"])
    return _run(notebooks, params, reports, jobs, t0, force, (readme or README) if default_study else None)


@contextlib.contextmanager
def _env(**variables: Path | str):
    """Set environment variables (folders: the notebook kernels and shards inherit them) for a block."""
    old = {k: os.environ.get(k) for k in variables}
    os.environ.update({k: str(v) for k, v in variables.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _figures_in(folder: Path):
    """Point figures_dir() (and the notebook kernels, which inherit the environment) at ``folder``."""
    return _env(HENET_FIGURES_DIR=folder)


def _run(notebooks: list[Path], params: dict, reports: Path, jobs: int, t0: float, force: bool,
         readme: Path | None) -> bool:
    reports.mkdir(parents=True, exist_ok=True)
    grid_results = prefill([nb.stem for nb in notebooks], params, jobs)
    timings: list[tuple[str, float]] = [("training (cache fill)", time.time() - t0)]
    code = code_hash()
    parallel = [nb for nb in notebooks if nb.stem not in TIMES_MODELS]
    alone = [nb for nb in notebooks if nb.stem in TIMES_MODELS]
    logger.info("[render] %d notebooks with %s%s", len(notebooks), params, " (--force: every one)" if force else "")
    ok, skipped = True, set()
    pool = None
    try:
        # the timing notebook first, alone: it must not share the CPU, and 08_claims reads its measurements;
        # then the rest, each started as soon as a worker is free (not in lockstep pairs: 00 takes 3x 01).
        # Each batch decides what to run when it starts, so 08 sees what 07 has just measured.
        for batch in ([[nb] for nb in alone] + [parallel]):
            todo = {}
            for nb in batch:
                inputs = notebook_inputs(nb, params, code, results_read(nb.stem, grid_results))
                if not force and up_to_date(reports, nb.stem, inputs_hash(inputs)):
                    skipped.add(nb.stem)
                    logger.info("[%s] unchanged, not re-run (%s)", nb.stem, reports / f"{nb.stem}.ipynb")
                    continue
                inputs_file(reports, nb.stem).unlink(missing_ok=True)  # a failed run leaves no record
                todo[nb] = inputs
            if not todo:
                continue
            if pool is None:  # spawn: the workers only drive papermill, and must not inherit torch's threads
                pool = ProcessPoolExecutor(max(1, jobs), mp_context=multiprocessing.get_context("spawn"))
            futures = {pool.submit(_execute, str(nb), str(reports / nb.name), params): nb for nb in todo}
            for f in as_completed(futures):
                name, secs, err, written = f.result()
                timings.append((name, secs))
                if err:
                    logger.error("[%s] FAILED in %s\n  executed notebook with the error: %s", name, err,
                                 reports / f"{name}.ipynb")
                    ok = False
                    for other in futures:
                        other.cancel()  # not started yet: stop at the first failure
                else:
                    record(reports, name, todo[futures[f]], written, secs)
                    logger.info("[%s] done in %.0f s -> %s.ipynb (+ .html)", name, secs, reports / name)
            if not ok:
                break
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    _summary(timings, skipped, reports)
    index = write_index(reports, [nb.stem for nb in notebooks], dict(timings), params, unchanged=skipped)
    logger.info("  index: %s", index)
    if ok and readme is not None and "08_claims" in {nb.stem for nb in notebooks}:
        update_headline(readme, figures_dir() / SUMMARY, params["profile"])
    return ok


def _summary(timings: list[tuple[str, float]], skipped: set[str], reports: Path) -> None:
    lines = ["", "Summary"] + [f"  {name:<32} {secs:7.0f} s" for name, secs in timings]
    lines += [f"  {name:<32} unchanged" for name in sorted(skipped)]
    figs = sorted(p.name for p in figures_dir().glob("*") if p.suffix in {".md", ".tex", ".pdf", ".png"})
    lines.append(f"  figures/: {len(figs)} files" + (f" ({', '.join(figs[:12])}{' ...' if len(figs) > 12 else ''})"
                                                    if figs else ""))
    lines.append(f"  reports/: executed notebooks and HTML in {reports}")
    logger.info("\n".join(lines))
