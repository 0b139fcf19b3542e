"""``make reproduce``: execute the study notebooks with papermill, export HTML, summarise."""

from __future__ import annotations

import time
from pathlib import Path

from .utils import REPO_ROOT, figures_dir

REPORTS_DIR = REPO_ROOT / "reports"


def run_notebooks(notebooks: list[Path], profile: str = "smoke", device: str = "auto",
                  data_root: Path | None = None, extra: dict | None = None,
                  reports_dir: Path | None = None) -> bool:
    """Run each notebook in order; stop at the first failure (papermill names the failing cell).

    Results finished before a failure stay in ``results/`` and are reused on the next run.
    """
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter

    reports = reports_dir or REPORTS_DIR
    reports.mkdir(parents=True, exist_ok=True)
    params = {"profile": profile, "device": device, "data_root": str(data_root) if data_root else None,
              **(extra or {})}
    timings = []
    for nb in notebooks:
        out = reports / nb.name
        t0 = time.time()
        print(f"[{nb.stem}] running with {params} ...", flush=True)
        try:
            pm.execute_notebook(str(nb), str(out), parameters=params, cwd=str(nb.parent), progress_bar=False,
                                kernel_name="python3")
        except pm.PapermillExecutionError as e:
            print(f"[{nb.stem}] FAILED in cell {e.exec_count}: {e.ename}: {e.evalue}\n"
                  f"  executed notebook with the error: {out}")
            _summary(timings, reports)
            return False
        html, _ = HTMLExporter().from_notebook_node(nbformat.read(out, as_version=4))
        out.with_suffix(".html").write_text(html, encoding="utf-8")
        timings.append((nb.stem, time.time() - t0))
        print(f"[{nb.stem}] done in {timings[-1][1]:.0f} s -> {out} (+ .html)", flush=True)
    _summary(timings, reports)
    return True


def _summary(timings: list[tuple[str, float]], reports: Path) -> None:
    print("\nSummary")
    for name, secs in timings:
        print(f"  {name:<32} {secs:7.0f} s")
    figs = sorted(p.name for p in figures_dir().glob("*") if p.suffix in {".md", ".tex", ".pdf", ".png"})
    print(f"  figures/: {len(figs)} files" + (f" ({', '.join(figs[:12])}{' ...' if len(figs) > 12 else ''})"
                                              if figs else ""))
    print(f"  reports/: executed notebooks and HTML in {reports}")
