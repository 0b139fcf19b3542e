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
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from henetlib.engine.cache import Result, dataset_for, lookup, published_root
from henetlib.study import tables
from henetlib.study.grids import regime_name
from henetlib.study.pages import SUMMARY, update_headline, write_index
from henetlib.system.files import REPO_ROOT, atomic_write_json, atomic_write_text, figures_dir, results_dir

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
    import warnings

    from henetlib.study.grids import ORDER

    warnings.filterwarnings("ignore", message="HENet: no pretrained weights")
    ctx = _context(params)
    grids = list(dict.fromkeys(g for s in stems if s in PREFILL for g in PREFILL[s]))
    if jobs > 1 and set(grids) >= set(ORDER) and _on_cpu(params["device"]):
        missing = _missing_runs(ctx)
        if missing:
            logger.info("[train] %d runs of the study to train in %d shards", missing, jobs)
            _train_shards(params, jobs)
    out = {}
    for name in grids:
        t0 = time.time()
        _, out[name] = getattr(tables, name)(ctx, progress=True)
        logger.info("[train] %s: %d runs ready in %.0f s", name, len(out[name]), time.time() - t0)
    return out


def _context(params: dict) -> tables.StudyContext:
    return tables.StudyContext(params["profile"], params["device"], params.get("data_root"), params.get("dataset"),
                               tuple(params.get("seeds") or (0,)), finetune=params.get("finetune"))


def _missing_runs(ctx: tables.StudyContext) -> int:
    """How many of the study's runs are neither cached nor published."""
    return sum(lookup(cfg, dataset_for(cfg)) is None for _, cfg in ctx.runs())


def _on_cpu(device: str) -> bool:
    from henetlib.system.runtime import pick_device

    return pick_device(device).type == "cpu"


def _train_shards(params: dict, jobs: int) -> None:
    """``jobs`` processes of ``python -m henetlib study --shard i/jobs``; raises if one fails."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "henetlib", "study", "--profile", params["profile"], "--device", params["device"],
           "--seeds", ",".join(str(s) for s in params.get("seeds") or (0,))]
    if params.get("data_root"):
        cmd += ["--data-root", str(params["data_root"])] + (["--dataset", params["dataset"]] if params.get("dataset")
                                                             else [])
    if params.get("finetune") is not None:  # the regime explicit: the shards must train what this process reads
        cmd.append("--finetune" if params["finetune"] else "--from-scratch")
    threads = str(max(1, (os.cpu_count() or jobs) // jobs))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
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


def _kernel_manager_class():
    """Kernels talk over IPC sockets named after this worker process: two workers starting kernels at the
    same moment cannot pick the same TCP ports (which deadlocked parallel runs), and nothing is on TCP."""
    import tempfile

    from jupyter_client.manager import KernelManager

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
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter

    t0 = time.time()
    before = _figure_files()
    # a notebook's sliders need a kernel: executed here, it draws its static figure instead (unless asked)
    if "interactive" in pm.inspect_notebook(nb) and "interactive" not in params:
        params = {**params, "interactive": False}
    try:
        pm.execute_notebook(nb, out, parameters=params, cwd=str(Path(nb).parent), progress_bar=False,
                            kernel_name="python3", kernel_manager_class=_kernel_manager_class(),
                            start_timeout=120)
    except pm.PapermillExecutionError as e:
        return Path(nb).stem, time.time() - t0, f"cell {e.exec_count}: {e.ename}: {e.evalue}", []
    html, _ = HTMLExporter().from_notebook_node(nbformat.read(out, as_version=4))
    atomic_write_text(Path(out).with_suffix(".html"), html)
    written = [name for name, mtime in _figure_files().items() if before.get(name) != mtime]
    return Path(nb).stem, time.time() - t0, None, written


def run_notebooks(notebooks: list[Path], profile: str = DEFAULT_PROFILE, device: str = "auto",
                  data_root: Path | None = None, extra: dict | None = None,
                  reports_dir: Path | None = None, jobs: int = 2, force: bool = False,
                  readme: Path | None = None) -> bool:
    """Fill the cache, then run each notebook whose inputs changed (every one with ``force``); stop at the
    first failure (papermill names the failing cell).

    Results finished before a failure stay in ``results/`` and are reused on the next run. ``readme``: the
    README whose headline the default study rewrites (default: the repository's)."""
    params = {"profile": profile, "device": device, "data_root": str(data_root) if data_root else None,
              **(extra or {})}
    t0 = time.time()
    regime = regime_name(profile, params["finetune"]) if params.get("finetune") is not None else "default"
    reports = reports_dir or default_reports_dir()
    if regime != "default":  # the profile's other regime: its own figures and reports beside the default's
        reports = reports_dir or default_reports_dir() / regime
        with _figures_in(figures_dir() / regime):
            return _run(notebooks, params, reports, jobs, t0, force, None)
    headline = None if params.get("data_root") or profile != DEFAULT_PROFILE else (readme or README)
    return _run(notebooks, params, reports, jobs, t0, force, headline)


@contextlib.contextmanager
def _figures_in(folder: Path):
    """Point figures_dir() (and the notebook kernels, which inherit the environment) at ``folder``."""
    old = os.environ.get("HENET_FIGURES_DIR")
    os.environ["HENET_FIGURES_DIR"] = str(folder)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("HENET_FIGURES_DIR", None)
        else:
            os.environ["HENET_FIGURES_DIR"] = old


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
