"""``make reproduce``: fill the result cache, execute the study notebooks with papermill, export HTML.

Two phases. First every training run the selected notebooks need is trained (or found in the cache): on a
CPU by ``jobs`` shard processes, then in this process, so no two notebooks ever train the same configuration
at once. Then the notebooks render from the cache: the efficiency notebook first and alone, because it times
models and must not share the CPU or GPU (and 08_claims reads its measurements), then the rest ``jobs`` at a
time.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from henetlib.study import tables
from henetlib.system.files import REPO_ROOT, figures_dir

REPORTS_DIR = REPO_ROOT / "reports"
# notebook -> the study function whose runs it reads (see henetlib.tables)
PREFILL = {"01_structure_analysis": ("table2",), "02_branch_ablation": ("table3",), "03_loss_ablation": ("table4",),
           "04_rpe_probability_sweep": ("fig4",), "05_occlusion_robustness": ("fig5",), "06_cam_heatmaps": ("table4",),
           "07_efficiency_score": ("table1",),
           "08_claims": ("table2", "table3", "table4", "fig4", "fig5", "table1")}
TIMES_MODELS = {"07_efficiency_score"}


def prefill(stems: list[str], params: dict, jobs: int = 2) -> None:
    """Train (or load) every run the notebooks ``stems`` will read.

    On a CPU with the whole study to train, ``jobs`` processes train disjoint shards of it first
    (``study --shard``, one thread each; the run locks keep them apart): small models on few cores waste
    much of a second thread (one step: 253 ms with 2 threads, 416 ms with 1, so two one-thread processes
    train 1.2x faster). This process then finds the runs cached and adds what needs the models."""
    import warnings

    from henetlib.study.grids import ORDER

    warnings.filterwarnings("ignore", message="HENet: no pretrained weights")
    ctx = tables.StudyContext(params["profile"], params["device"], params.get("data_root"), params.get("dataset"),
                              tuple(params.get("seeds") or (0,)), finetune=params.get("finetune"))
    grids = list(dict.fromkeys(g for s in stems if s in PREFILL for g in PREFILL[s]))
    if jobs > 1 and set(grids) >= set(ORDER) and _on_cpu(params["device"]):
        _train_shards(params, jobs)
    for name in grids:
        t0 = time.time()
        _, results = getattr(tables, name)(ctx, progress=True)
        print(f"[train] {name}: {len(results)} runs ready in {time.time() - t0:.0f} s", flush=True)


def _on_cpu(device: str) -> bool:
    from henetlib.system.runtime import pick_device

    return pick_device(device).type == "cpu"


def _train_shards(params: dict, jobs: int) -> None:
    """``jobs`` processes of ``python -m henetlib study --shard i/jobs``; raises if one fails."""
    import os
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
    print(f"[train] {jobs} shards of the study ready in {time.time() - t0:.0f} s", flush=True)


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
    # a notebook's sliders need a kernel: executed here, it draws its static figure instead (unless asked)
    if "interactive" in pm.inspect_notebook(nb) and "interactive" not in params:
        params = {**params, "interactive": False}
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
    from henetlib.study.grids import regime_name

    regime = regime_name(profile, params["finetune"]) if params.get("finetune") is not None else "default"
    if regime != "default":  # the profile's other regime: its own figures and reports beside the default's
        reports = reports_dir or REPORTS_DIR / regime
        reports.mkdir(parents=True, exist_ok=True)
        with _figures_in(figures_dir() / regime):
            return _run(notebooks, params, reports, jobs, t0)
    return _run(notebooks, params, reports, jobs, t0)


@contextlib.contextmanager
def _figures_in(folder: Path):
    """Point figures_dir() (and the notebook kernels, which inherit the environment) at ``folder``."""
    import os

    old = os.environ.get("HENET_FIGURES_DIR")
    os.environ["HENET_FIGURES_DIR"] = str(folder)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("HENET_FIGURES_DIR", None)
        else:
            os.environ["HENET_FIGURES_DIR"] = old


def _run(notebooks: list[Path], params: dict, reports: Path, jobs: int, t0: float) -> bool:
    prefill([nb.stem for nb in notebooks], params, jobs)
    timings = [("training (cache fill)", time.time() - t0)]
    parallel = [nb for nb in notebooks if nb.stem not in TIMES_MODELS]
    alone = [nb for nb in notebooks if nb.stem in TIMES_MODELS]
    print(f"[render] {len(notebooks)} notebooks with {params}", flush=True)
    ok = True
    # spawn: the workers only drive papermill, and must not inherit this process's torch threads
    with ProcessPoolExecutor(max(1, jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        # the timing notebook first, alone: it must not share the CPU, and 08_claims reads its measurements;
        # then the rest, each started as soon as a worker is free (not in lockstep pairs: 00 takes 3x 01)
        for batch in ([[nb] for nb in alone] + [parallel]):
            futures = [pool.submit(_execute, str(nb), str(reports / nb.name), params) for nb in batch]
            for f in as_completed(futures):
                name, secs, err = f.result()
                timings.append((name, secs))
                if err:
                    print(f"[{name}] FAILED in {err}\n  executed notebook with the error: "
                          f"{reports / (name + '.ipynb')}", flush=True)
                    ok = False
                    for other in futures:
                        other.cancel()  # not started yet: stop at the first failure
                else:
                    print(f"[{name}] done in {secs:.0f} s -> {reports / name}.ipynb (+ .html)", flush=True)
            if not ok:
                break
    _summary(timings, reports)
    index = write_index(reports, [nb.stem for nb in notebooks], dict(timings), params)
    print(f"  index: {index}")
    return ok


def _summary(timings: list[tuple[str, float]], reports: Path) -> None:
    print("\nSummary")
    for name, secs in timings:
        print(f"  {name:<32} {secs:7.0f} s")
    figs = sorted(p.name for p in figures_dir().glob("*") if p.suffix in {".md", ".tex", ".pdf", ".png"})
    print(f"  figures/: {len(figs)} files" + (f" ({', '.join(figs[:12])}{' ...' if len(figs) > 12 else ''})"
                                              if figs else ""))
    print(f"  reports/: executed notebooks and HTML in {reports}")


# ---------------------------------------------------------------------------------------------------------
# reports/index.html: one page for the whole run, readable offline


def _md_table_html(md: str) -> str:
    """A Markdown pipe table (as ``report.save_table`` writes it) -> an HTML table; other lines -> paragraphs."""
    import html

    out, rows = [], []

    def flush() -> None:
        if rows:
            head, body = rows[0], [r for r in rows[1:] if not set("".join(r)) <= set(":- ")]
            out.append("<table><thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + "</tr></thead><tbody>"
                       + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)
                       + "</tbody></table>")
            rows.clear()

    for line in md.splitlines():
        if line.strip().startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        else:
            flush()
            if line.strip():
                out.append(f"<p>{html.escape(line.strip())}</p>")
    flush()
    return "\n".join(out)


def write_index(reports: Path, stems: list[str], timings: dict[str, float] | None = None,
                params: dict | None = None, figures: Path | None = None) -> Path:
    """``reports/index.html``: a link to every executed notebook (HTML and .ipynb), the claims summary from
    ``figures/claims.md`` (verdict counts, then the whole table folded), and a thumbnail of every figure with
    its caption, linking the PDF. Only relative links and local files: it works offline and when copied with
    ``reports/`` and ``figures/`` side by side."""
    import html
    import os
    from collections import Counter

    figures = figures or figures_dir()
    rel = Path(os.path.relpath(figures, reports)).as_posix()
    timings = timings or {}
    nb_rows = []
    for stem in stems:
        ok = (reports / f"{stem}.html").exists()
        t = f"{timings[stem]:.0f} s" if stem in timings else ""
        nb_rows.append(f"<tr><td>{html.escape(stem)}</td><td>"
                       + (f'<a href="{stem}.html">HTML</a> · <a href="{stem}.ipynb">notebook</a>' if ok
                          else "not rendered (failed or not run)") + f"</td><td>{t}</td></tr>")
    claims = figures / "claims.md"
    if claims.exists():
        text = claims.read_text(encoding="utf-8")
        verdicts = Counter()
        # the first table with a "verdict" column: one row per claim when the scoreboard has a claim-level
        # table first (08_claims), else one per row
        header: list[str] | None = None
        for line in text.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not line.startswith("|"):
                if verdicts:
                    break
                header = None
            elif header is None:
                header = cells
            elif "verdict" in header and not set("".join(cells)) <= set(":- ") and len(cells) == len(header):
                v = cells[header.index("verdict")]
                verdicts[v.split(" ", 1)[-1] if v[:1] in "✓✗?–" else v] += 1
        summary = ", ".join(f"<b>{n}</b> {html.escape(v)}" for v, n in verdicts.most_common())
        claims_html = (f"<p>Verdicts: {summary}.</p>"
                       f"<details><summary>The whole scoreboard</summary>{_md_table_html(text)}</details>")
    else:
        claims_html = "<p>No scoreboard yet: notebook 08_claims writes figures/claims.md.</p>"
    thumbs = []
    def order(p: Path) -> tuple[str, int]:  # a figure's parts (<name>-2.png ...) follow its first page
        base, _, part = p.stem.partition("-")
        return base, int(part) if part.isdigit() else 1

    for png in sorted(figures.glob("*.png"), key=order):
        cap_file = figures / f"{png.stem.split('-')[0]}.caption.txt"
        cap = cap_file.read_text(encoding="utf-8").strip() if cap_file.exists() else ""
        pdf = figures / f"{png.stem.split('-')[0]}.pdf"
        link = f"{rel}/{pdf.name}" if pdf.exists() else f"{rel}/{png.name}"
        thumbs.append(f'<figure><a href="{link}"><img src="{rel}/{png.name}" alt="{png.stem}" loading="lazy"></a>'
                      f"<figcaption><b>{html.escape(png.stem)}</b> {html.escape(cap[:300])}"
                      f"{'...' if len(cap) > 300 else ''}</figcaption></figure>")
    tables = [f'<li><a href="{rel}/{md.name}">{md.stem}</a>'
              + (f' (<a href="{rel}/{md.stem}.tex">LaTeX</a>)' if (figures / f"{md.stem}.tex").exists() else "")
              + "</li>" for md in sorted(figures.glob("*.md"))]
    run = html.escape(", ".join(f"{k}={v}" for k, v in (params or {}).items() if v is not None))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>henet-study: reproduction report</title>
<style>
body {{ font-family: sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.9rem; }} td, th {{ border-bottom: 1px solid #ddd; padding: 0.2rem 0.6rem; text-align: left; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(16rem, 1fr)); gap: 1rem; }}
figure {{ margin: 0; }} figure img {{ width: 100%; border: 1px solid #ddd; }} figcaption {{ font-size: 0.8rem; }}
</style></head><body>
<h1>henet-study: reproduction report</h1>
<p>Run: {run}</p>
<h2>Notebooks</h2>
<table><thead><tr><th>notebook</th><th>executed</th><th>time</th></tr></thead><tbody>
{"".join(nb_rows)}
</tbody></table>
<h2>Which of the paper's claims hold</h2>
{claims_html}
<h2>Figures</h2>
<div class="grid">
{"".join(thumbs)}
</div>
<h2>Tables</h2>
<ul>{"".join(tables)}</ul>
</body></html>
"""
    from henetlib.system.files import atomic_write_text

    atomic_write_text(reports / "index.html", page)
    return reports / "index.html"
