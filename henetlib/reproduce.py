"""``make reproduce``: fill the result cache, execute the study notebooks with papermill, export HTML.

Two phases. First every training run the selected notebooks need is trained (or found in the cache) in
this one process, so no two notebooks ever train the same configuration at once. Then the notebooks render
from the cache, ``jobs`` at a time; the efficiency notebook runs alone, because it times models and must
not share the CPU or GPU.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .utils import REPO_ROOT, figures_dir

REPORTS_DIR = REPO_ROOT / "reports"
# notebook -> the study function whose runs it reads (see henetlib.tables)
PREFILL = {"01_structure_analysis": ("table2",), "02_branch_ablation": ("table3",), "03_loss_ablation": ("table4",),
           "04_rpe_probability_sweep": ("fig4",), "05_occlusion_robustness": ("fig5",), "06_cam_heatmaps": ("table4",),
           "07_efficiency_score": ("table1",),
           "08_claims": ("table2", "table3", "table4", "fig4", "fig5", "table1")}
TIMES_MODELS = {"07_efficiency_score"}


def prefill(stems: list[str], params: dict) -> None:
    """Train (or load) every run the notebooks ``stems`` will read."""
    import warnings

    from . import tables

    warnings.filterwarnings("ignore", message="HENet: no pretrained weights")
    ctx = tables.StudyContext(params["profile"], params["device"], params.get("data_root"), params.get("dataset"),
                              tuple(params.get("seeds") or (0,)))
    for name in dict.fromkeys(g for s in stems if s in PREFILL for g in PREFILL[s]):
        t0 = time.time()
        _, results = getattr(tables, name)(ctx, progress=True)
        print(f"[train] {name}: {len(results)} runs ready in {time.time() - t0:.0f} s", flush=True)


def _kernel_manager_class():
    """Kernels talk over IPC sockets named after this worker process: two workers starting kernels at the
    same moment cannot pick the same TCP ports (which deadlocked parallel runs), and nothing is on TCP."""
    import os
    import tempfile

    from jupyter_client.manager import KernelManager

    class IPCKernelManager(KernelManager):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.transport = "ipc"
            self.ip = os.path.join(tempfile.gettempdir(), f"henet-kernel-{os.getpid()}")

    return IPCKernelManager


def _execute(nb: str, out: str, params: dict) -> tuple[str, float, str | None]:
    """Run one notebook (in a worker process); returns (name, seconds, error or None)."""
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter

    t0 = time.time()
    try:
        pm.execute_notebook(nb, out, parameters=params, cwd=str(Path(nb).parent), progress_bar=False,
                            kernel_name="python3", kernel_manager_class=_kernel_manager_class(),
                            start_timeout=120)
    except pm.PapermillExecutionError as e:
        return Path(nb).stem, time.time() - t0, f"cell {e.exec_count}: {e.ename}: {e.evalue}"
    html, _ = HTMLExporter().from_notebook_node(nbformat.read(out, as_version=4))
    Path(out).with_suffix(".html").write_text(html, encoding="utf-8")
    return Path(nb).stem, time.time() - t0, None


def run_notebooks(notebooks: list[Path], profile: str = "smoke", device: str = "auto",
                  data_root: Path | None = None, extra: dict | None = None,
                  reports_dir: Path | None = None, jobs: int = 2) -> bool:
    """Fill the cache, then run each notebook; stop at the first failure (papermill names the failing cell).

    Results finished before a failure stay in ``results/`` and are reused on the next run.
    """
    reports = reports_dir or REPORTS_DIR
    reports.mkdir(parents=True, exist_ok=True)
    params = {"profile": profile, "device": device, "data_root": str(data_root) if data_root else None,
              **(extra or {})}
    t0 = time.time()
    prefill([nb.stem for nb in notebooks], params)
    timings = [("training (cache fill)", time.time() - t0)]
    parallel = [nb for nb in notebooks if nb.stem not in TIMES_MODELS]
    alone = [nb for nb in notebooks if nb.stem in TIMES_MODELS]
    print(f"[render] {len(notebooks)} notebooks with {params}", flush=True)
    ok = True
    # spawn: the workers only drive papermill, and must not inherit this process's torch threads
    with ProcessPoolExecutor(max(1, jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        for batch, workers in ((parallel, jobs), (alone, 1)):
            futures = []
            for i, nb in enumerate(batch):
                futures.append(pool.submit(_execute, str(nb), str(reports / nb.name), params))
                if workers == 1 or (i + 1) % workers == 0 or i == len(batch) - 1:
                    for f in futures:
                        name, secs, err = f.result()
                        timings.append((name, secs))
                        if err:
                            print(f"[{name}] FAILED in {err}\n  executed notebook with the error: "
                                  f"{reports / (name + '.ipynb')}", flush=True)
                            ok = False
                        else:
                            print(f"[{name}] done in {secs:.0f} s -> {reports / name}.ipynb (+ .html)", flush=True)
                    futures = []
                    if not ok:
                        break
            if not ok:
                break
    _summary(timings, reports)
    return ok


def _summary(timings: list[tuple[str, float]], reports: Path) -> None:
    print("\nSummary")
    for name, secs in timings:
        print(f"  {name:<32} {secs:7.0f} s")
    figs = sorted(p.name for p in figures_dir().glob("*") if p.suffix in {".md", ".tex", ".pdf", ".png"})
    print(f"  figures/: {len(figs)} files" + (f" ({', '.join(figs[:12])}{' ...' if len(figs) > 12 else ''})"
                                              if figs else ""))
    print(f"  reports/: executed notebooks and HTML in {reports}")
