"""What the study notebooks (``notebooks/*.ipynb``) call: one setup call, then one call per shared cell.

A study notebook is a typed ``parameters`` cell, ``ctx = setup(...)``, calls into henetlib (most of them here)
and its plots, with Markdown between them; no logic lives only in a notebook. The calls display what they
compute (tables, figures, captions) and save it with the same file names as always: under ``figures/`` when
``make reproduce`` runs them (or with ``HENET_FIGURES=paper``), under the git-ignored ``figures/interactive/``
in JupyterLab (:func:`henetlib.output.export.choose_figures_dir`).

This module sits on top of the library (beside :mod:`henetlib.cli`): it may import every wing, and nothing in
the library imports it.
"""

from __future__ import annotations

import logging
import sys
import warnings
from dataclasses import dataclass
from typing import Any

import pandas as pd

from henetlib.data.images import read_image
from henetlib.engine import efficiency
from henetlib.engine.cache import Result
from henetlib.method import rpe
from henetlib.output import export, formats, plots, prose, style
from henetlib.output.plots import plot_ranked_results
from henetlib.output.prose import readable
from henetlib.study import derived, noise_model, pages, publish, tables
from henetlib.study.grids import regime_name
from henetlib.study.tables import StudyContext
from henetlib.system.files import atomic_write_json, atomic_write_text, figures_dir
from henetlib.system.runtime import hardware_string
from henetlib.verdicts import claims, controls, noise, regimes, reproduction, scoreboard, stability
from henetlib.verdicts.scores import collect

logger = logging.getLogger(__name__)

# the claims summary beside figures/claims.md: what reports/index.html and the README headline read
VERDICTS = scoreboard.VERDICTS


# ---------------------------------------------------------------------------------------------------------
# Setup


class _CellHandler(logging.Handler):
    """Log records as plain lines on the current ``sys.stdout`` (in a kernel: the cell that is running)."""
    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record) + "\n")
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 - logging must never break a cell
            self.handleError(record)


def log_to_notebook(level: int = logging.INFO) -> None:
    """Show the library's log messages (``henetlib.*``, INFO and up) as plain lines under the cell that
    logs them. Calling it again changes nothing."""
    log = logging.getLogger("henetlib")
    if not any(isinstance(h, _CellHandler) for h in log.handlers):
        handler = _CellHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False  # a root handler (the kernel's or the user's) would print every line twice


def setup(profile: str = "smoke", device: str = "auto", data_root: str | None = "", dataset: str | None = "",
          seeds: Any = (0,), regime: str = "default", pretrained: str | None = "",
          overrides: dict[str, Any] | None = None, *, quiet: bool = False, summary: bool = True) -> StudyContext:
    """The one setup call of every study notebook: filter the expected warnings, show the library's log
    messages in the notebook, resolve the notebook's parameters into a :class:`StudyContext`
    (:meth:`StudyContext.from_parameters`: ``pretrained`` reaches every run; the weights are checked first) and
    log the data set's summary (``summary=False``: don't). Logs where tables and figures go
    (:func:`henetlib.output.export.choose_figures_dir`: ``figures/interactive/`` unless make reproduce runs the
    notebook or ``HENET_FIGURES=paper`` asks for the paper's ``figures/``).

    ``quiet``: hide every warning, for the rest of the kernel's life (a filter cannot be scoped to one
    notebook's cells); otherwise only the one about a model built without pretrained weights, which every
    from-scratch run would repeat."""
    if quiet:
        warnings.filterwarnings("ignore")
    else:
        warnings.filterwarnings("ignore", message="HENet: no pretrained weights")
    log_to_notebook()
    if isinstance(seeds, (list, tuple)):
        seeds = tuple(seeds)
    ctx = StudyContext.from_parameters(profile, device, data_root, dataset, seeds, regime, pretrained, overrides)
    export.choose_figures_dir(regime_name(ctx.profile, bool(ctx.finetune)))
    if summary:
        logger.info(ctx.dataset().summary())
    return ctx


def _display(obj: Any) -> None:
    from IPython.display import display

    display(obj)


def _show_figure() -> None:
    import matplotlib.pyplot as plt

    plt.show()


# ---------------------------------------------------------------------------------------------------------
# Tables 2-4: the table, its bar chart, its claims

# grid -> (the table's file name, the label column); the bar chart is fig_<file name>
ABLATIONS = {"table2": ("table2_structure", "Structure"), "table3": ("table3_branches", "Branches"),
             "table4": ("table4_losses", "Losses")}


@dataclass
class Shown:
    """What a ``show_*`` call computed: the frame, the runs behind it and its caption."""
    df: pd.DataFrame
    results: list[Result]
    cap: str


def show_table(ctx: StudyContext, grid: str) -> Shown:
    """One of Tables 2-4 (``grid``: table2, table3, table4): computed from the run cache (trained first if
    missing), displayed with its 95% intervals, saved as ``figures/<table>.md|.tex``, then its bar chart beside
    the paper's (``figures/fig_<table>.pdf|.png``) with its caption and what to look at."""
    if grid not in ABLATIONS:
        raise ValueError(f"show_table draws {', '.join(ABLATIONS)}; not {grid!r}.")
    name, label = ABLATIONS[grid]
    df, results = getattr(tables, grid)(ctx)
    cap = ctx.caption(results)
    shown = formats.with_intervals(df)
    _display(shown.round(2))
    export.save_table(formats.drop_constant(shown), name, cap)
    fig = plots.bar_chart(df, label)
    export.save_figure(fig, f"fig_{name}", cap)
    _show_figure()
    prose.show_caption(cap, prose.bars_note(df, label))
    return Shown(df, results, cap)


def save_shown_table(table: pd.DataFrame, name: str, cap: str, digits: int | None = 2) -> None:
    """Display a finished table (rounded to ``digits``; None: as it is) and save it as
    ``figures/<name>.md|.tex`` with its caption."""
    _display(table.round(digits) if digits is not None else table)
    export.save_table(table, name, cap)


def show_claims(ctx: StudyContext, grid: str, cap: str) -> pd.DataFrame:
    """The paper's claims about one table or figure (``grid``: table1 ... fig5), scored on this study's runs:
    displays the row-level verdicts, saves ``figures/<grid>_claims.md|.tex`` with ``cap``, prints the headline
    and returns the scoreboard."""
    board = scoreboard.scoreboard(ctx, claims=claims.for_grid(grid))
    _display(formats.claims_table(board))
    scoreboard.save(board, f"{grid}_claims", cap)
    logger.info(scoreboard.summary_line(board, ctx.profile))
    return board


def loss_labels(results: list[Result]) -> list[str]:
    """Each Table 4 run's losses (``CE+OIM+Tri+MSE``...): the second part of its name."""
    return [r.name.split(" | ")[1] for r in results]


# ---------------------------------------------------------------------------------------------------------
# Notebook 03: test-time protocols and ranked lists of the all-losses model


def show_protocols(ctx: StudyContext) -> Result:
    """The all-losses model (Table 4's last row) under each test-time protocol, side by side: displayed, saved
    as ``figures/table4_protocols.md|.tex`` and described. Returns the model's result."""
    best = tables.all_losses_result(ctx)
    prot = formats.protocols_table(derived.protocols_frame(best))
    cap = ctx.caption([best], f"Model: {best.name}; one seed's run, both protocols from the same features.")
    save_shown_table(prot, "table4_protocols", cap)
    prose.show_caption(cap, prose.compare_rows(prot, "protocol", "R1"))
    return best


def show_ranked_lists(ctx: StudyContext, rows: int = 6, topk: int = 10) -> None:
    """The all-losses model's ranked lists for ``rows`` queries spread over the query set, each with its
    ``topk`` nearest gallery images (``figures/fig_ranked_lists``). They are cached beside the run; a damaged
    model is retrained once (:func:`henetlib.study.tables.retrain_if_damaged`)."""
    import matplotlib.pyplot as plt

    ranked, query, gallery = tables.retrain_if_damaged(derived.ranked_lists, tables.all_losses_result(ctx))
    best = tables.all_losses_result(ctx)  # after a retrain: the new run's result
    picked = list(range(0, len(query), max(1, len(query) // rows)))[:rows]
    qp, gp = [s.pid for s in query], [s.pid for s in gallery]
    qc, gc = [s.camid for s in query], [s.camid for s in gallery]
    with plt.rc_context({"axes.spines.top": True, "axes.spines.right": True}):  # the frames need all four sides
        fig = plot_ranked_results(None, [s.path for s in query], [s.path for s in gallery], qp, gp, qc, gc,
                                  query_indices=picked, topk=min(topk, ranked.shape[1]), ranked=ranked)
    cap = ctx.caption([best], f"Model: {best.name}.")
    export.save_figure(fig, "fig_ranked_lists", cap)
    _show_figure()
    prose.show_caption(cap, prose.ranked_lists_note(ranked, qp, gp, qc, gc, picked))


# ---------------------------------------------------------------------------------------------------------
# Notebook 05: the data set's own occluded queries


def occluded_queries(results: list[Result]) -> pd.DataFrame:
    """Per run: what it was trained with, and its R1/mAP on the clean and on the occluded queries (SynthReID
    marks which queries carry an occluder)."""
    return pd.DataFrame([{"trained with": r.train_config.erasing_config.label(),
                          **{readable(k): r.metrics.get(k) for k in ("R1_clean", "R1_occluded", "mAP_clean",
                                                                     "mAP_occluded")}}
                         for r in results])


# ---------------------------------------------------------------------------------------------------------
# Notebook 06: CAM maps


def cam_maps(ctx: StudyContext, num_images: int = 4, method: str = "gradcam") -> tuple[dict, str]:
    """The all-losses model's per-branch CAM maps on ``num_images`` training images, clean and RPE-occluded
    (cached beside the run; a damaged model is retrained once), and their caption."""
    data = tables.retrain_if_damaged(derived.cam_data, tables.all_losses_result(ctx), num_images, method)
    res = tables.all_losses_result(ctx)  # after a retrain: the new run's result
    cap = ctx.caption([res], f"Model: {res.name}, R1 {res.metrics['R1']:.1f}%. CAM method: {method}.")
    return data, cap


# ---------------------------------------------------------------------------------------------------------
# Notebook 07: efficiency


@dataclass
class Efficiency:
    """Table 1's measurements on this machine and how they were taken."""
    meas: dict
    hardware: str
    size: tuple[int, int]
    batch: int


def measure_efficiency(device: str = "auto", input_height: int = 384, input_width: int = 128,
                       batch: int | None = None, repeats: int = 3, cuda_graphs: bool = False,
                       refresh: bool = False, profile: str | None = None) -> Efficiency:
    """V, S and throughput of Table 1's models on this machine (cached per machine and settings unless
    ``refresh``). ``batch`` None: 256 on CUDA, 8 on a CPU; on CUDA more warm-up and inner repeats.

    With ``profile``, the measurement published with that profile's study is used where it exists (the same
    numbers on every clone, like the rest of the study), unless ``refresh`` asks to measure here."""
    import torch

    pub = efficiency.published_measurement(profile) if profile and not refresh else None
    if pub is not None and tuple(pub["input_size"]) == (input_height, input_width):
        meas = {k: efficiency.Measurement(**v) for k, v in pub["measurements"].items()}
        return Efficiency(meas, pub["hardware"], tuple(pub["input_size"]), pub["batch"])
    on_cuda = torch.cuda.is_available() and device != "cpu"
    batch = batch or (256 if on_cuda else 8)
    meas = efficiency.measure_table1(device, (input_height, input_width), batch=batch, repeats=repeats,
                                     warmup=3 if on_cuda else 1, inner=5 if on_cuda else 1, cuda_graphs=cuda_graphs,
                                     refresh=refresh)
    efficiency.save_latest(meas, hardware_string(device), (input_height, input_width), batch)
    return Efficiency(meas, hardware_string(device), (input_height, input_width), batch)


def show_henet_rows(ctx: StudyContext, eff: Efficiency) -> Shown:
    """Table 1's four HENet rows trained here (our R1/mAP beside the paper's) with ES among them from our
    V and S: displayed, saved as ``figures/table1_henet_rows.md|.tex`` and described."""
    ours, results = tables.table1(ctx)
    rows = efficiency.henet_rows(ours, eff.meas)
    h, w = eff.size
    cap = ctx.caption(results, f"V and S measured on {eff.hardware} at {h}x{w}, batch 1, float32. "
                      "ES (eqs. 10-11) among these four rows only: the peers have no accuracy on our data. "
                      "ES among 4 (paper): the same four rows' ES recomputed from the paper's numbers.")
    shown = formats.with_intervals(rows)
    _display(shown.round(2))
    export.save_table(formats.drop_constant(shown), "table1_henet_rows", cap)
    prose.show_caption(cap, prose.compare_rows(rows, "Method", "ES (ours)", paper="ES (paper)", unit="", digits=2))
    return Shown(rows, results, cap)


def show_peers(eff: Efficiency) -> None:
    """FD, V, S and ES of the compared architectures measured here beside the paper's: displayed, saved as
    ``figures/table1_efficiency.md|.tex`` and described."""
    df = efficiency.peers_table(eff.meas)
    h, w = eff.size
    cap = (f"Ours: V (float32 MiB of test-time parameters) and S measured on {eff.hardware} at {h}x{w}, batch 1 (S) "
           f"and batch {eff.batch} (img/s), float32, random weights, 751 classes; R1/mAP are the paper's "
           "(Market-1501). ES (ours) uses the paper's R1/mAP with our V and S; FD is the same in both.")
    save_shown_table(df, "table1_efficiency", cap)
    prose.show_caption(cap, prose.compare_rows(df, "Method", "ES (ours)", paper="ES (paper)", unit="", digits=2))


# ---------------------------------------------------------------------------------------------------------
# Notebook 08: the scoreboard of every claim


@dataclass
class Scoreboard:
    """The whole scoreboard: one row per claim row and metric (``board``), one per claim (``per_claim``), its
    headline and caption."""
    board: pd.DataFrame
    per_claim: pd.DataFrame
    line: str
    cap: str


def claims_summary(ctx: StudyContext, board: pd.DataFrame, n_boot: int | None = None) -> dict[str, Any]:
    """The scoreboard in numbers (what ``figures/claims_summary.json`` holds): claim-level and row-level
    verdict counts (each distinct comparison once), how many verdicts are stable under seed resampling, the
    positive controls, the headline, and the profile, regime, data set and seeds the verdicts rest on."""
    per_claim = scoreboard.claim_verdicts(board)
    claim_counts = per_claim["verdict"].value_counts()
    row_counts = scoreboard.row_counts(board)
    stab = per_claim["stability"].dropna()
    off = int((per_claim["regime"] == "NOT the paper's regime").sum()) if "regime" in per_claim else 0
    return {
        "profile": ctx.profile,
        "finetune": bool(ctx.finetune),
        "regime": "fine-tuned" if ctx.finetune else "from scratch",
        "regime_folder": regime_name(ctx.profile, bool(ctx.finetune)),
        "dataset": ctx.dataset().name,
        "seeds": list(ctx.seeds),
        "n_boot": n_boot,
        "claims": {v: int(claim_counts.get(v, 0)) for v in VERDICTS} | {"total": len(per_claim)},
        "rows": {v: int(row_counts.get(v, 0)) for v in (*VERDICTS, "calibration")} | {"total": int(row_counts.sum())},
        "stable": {"claims": int((stab >= scoreboard.STABLE).sum()), "of": int(len(stab)),
                   "threshold": scoreboard.STABLE},
        "stability": {k: float(v) for k, v in board.attrs.get("stability", {}).items()},
        "controls": {k: v.get("state", "") for k, v in board.attrs.get("controls", {}).items()},
        "claims_off_regime": off,
        "noise": board.attrs.get("noise_note", ""),
        "headline": scoreboard.summary_line(board, ctx.profile),
    }


def save_claims_summary(ctx: StudyContext, board: pd.DataFrame, n_boot: int | None = None):
    """Write :func:`claims_summary` to ``figures/claims_summary.json`` (atomically); returns its path."""
    path = figures_dir() / pages.SUMMARY
    atomic_write_json(path, claims_summary(ctx, board, n_boot))
    return path


def show_scoreboard(ctx: StudyContext, n_boot: int = 1000) -> Scoreboard:
    """Every claim of the paper scored on this study (or on the published runs where the profile's runs cannot
    be trained here): one verdict per claim displayed with its evidence, the headline, and
    ``figures/claims.md|.tex`` and ``figures/claims_summary.json`` saved."""
    from IPython.display import Markdown

    # where the profile's runs cannot be trained here (ResNet50 on a CPU), score what is published
    data = collect(ctx, train=publish.can_train(ctx))
    board = scoreboard.scoreboard(ctx, n_boot=n_boot, data=data)
    if len(ctx.seeds) > 1:  # how often each verdict holds when the seeds are resampled
        stability.stability(ctx, board, data, n=STABILITY_RESAMPLES)
    per_claim = scoreboard.claim_verdicts(board)
    line = scoreboard.summary_line(board, ctx.profile)
    cap = ctx.caption(publish.available_results(ctx), line + ". " + board.attrs.get("noise_note", "") + ".")
    _display(controls.controls_table(board).style.hide(axis="index"))
    with pd.option_context("display.max_rows", 100, "display.max_colwidth", 120):
        _display(per_claim[["claim", "sentence", "verdict", "stability", "control", "evidence"]]
                 .style.hide(axis="index").format({"stability": "{:.0%}"}, na_rep="-"))
    _display(Markdown(f"**{line}**"))
    scoreboard.save(board, "claims", cap)
    save_claims_summary(ctx, board, n_boot)
    return Scoreboard(board, per_claim, line, cap)


STABILITY_RESAMPLES = 50  # seed resamples behind each verdict's stability (notebook 08)


def show_reproduction(ctx: StudyContext, n_boot: int = 1000) -> dict[str, Any]:
    """The reproduction check (:mod:`henetlib.verdicts.reproduction`): this machine's fresh seed-0 runs against
    the published study's prediction intervals, and the one-seed verdicts against the published ones; shown and
    saved as ``figures/reproduction.md|.json`` (the index page and the README read the sentence)."""
    from IPython.display import Markdown

    res = reproduction.check(ctx, n_boot=n_boot)
    text = reproduction.sentence(res)
    _display(Markdown(f"**{text}**"))
    summary = {k: v for k, v in res.items() if k not in ("table", "verdicts")} | {"sentence": text}
    atomic_write_json(figures_dir() / "reproduction.json", summary)
    md = f"# Reproduction check\n\n{text}\n"
    if res.get("available"):
        _display(res["table"].round(2))
        _display(res["verdicts"])
        md += ("\n## Fresh runs against the published prediction intervals\n\n"
               + res["table"].to_markdown(index=False, floatfmt=".2f")
               + "\n\n## One-seed verdicts of the fresh runs against the published ones (before the controls)\n\n"
               + res["verdicts"].to_markdown(index=False) + "\n")
    atomic_write_text(figures_dir() / "reproduction.md", md)
    return summary


def show_regimes(ctx: StudyContext, sb: Scoreboard, n_boot: int = 1000) -> None:
    """The same claims from scratch and fine-tuned, side by side (the other regime from its cached or
    published runs; nothing is trained), saved as ``figures/claims_regimes.md|.tex``; or why not."""
    from IPython.display import Markdown

    both = regimes.compare_regimes(ctx, n_boot=n_boot, board=sb.board)
    if both.attrs["comparable"]:
        with pd.option_context("display.max_colwidth", 80):
            _display(both.drop(columns=["sentence"]).style.hide(axis="index"))
        _display(Markdown(f"**{both.attrs['summary']}**"))
        regimes.save_regimes(both, ctx)
    else:
        logger.info("The other regime has no cached or published runs: nothing to compare. Train it with "
                    "`make reproduce REGIME=%s`.", "scratch" if ctx.finetune else "finetune")


def show_noise(ctx: StudyContext, check: bool = False) -> None:
    """The profile's seed-noise model: its estimates and equal-variance tests; with ``check``, train a second
    seed of its check configurations and test for drift."""
    st = noise_model.status(ctx)
    logger.info(st.note)
    if st.model is not None:
        for group, by_metric in st.model.estimates.items():
            for metric, e in by_metric.items():
                eq = st.model.equal_variance.get(group, {}).get(metric, {})
                logger.info(f"  {group:9s} {metric:3s}: seed sd {e['sd']:.2f} points (df {e['df']:.0f}, variance 95% CI "
                            f"{e['var_ci95'][0]:.2f}-{e['var_ci95'][1]:.2f}); equal variance across configurations: "
                            f"{eq.get('test', '-')} p = {eq.get('p', float('nan')):.3f}")
    if check and st.usable:
        chk = noise.check(ctx, train=publish.can_train(ctx))
        if "skipped" in chk:
            logger.info("drift check skipped: %s", chk["skipped"])
        else:
            logger.info("drift check: %s %s", "DRIFT: recalibrate the noise model" if chk["drift"] else "no drift", {
                m: f"observed sd {v['observed_sd']:.2f} vs predicted {v['predicted_sd']:.2f}, p = {v['p']:.3f}"
                for m, v in chk["metrics"].items()})


def show_rows(sb: Scoreboard) -> None:
    """Every row of the scoreboard: the contrast, its interval, the paper's value, the test, the verdict, the
    noise it carries and the seeds it would take."""
    with pd.option_context("display.max_rows", 400, "display.max_colwidth", 60):
        _display(scoreboard.rows_table(sb.board))


def show_untested(sb: Scoreboard) -> None:
    """The paper's sentences not tested here and why, then how each tested claim was read."""
    with pd.option_context("display.max_colwidth", 200):
        _display(scoreboard.out_of_scope_table().style.hide(axis="index"))
        _display(sb.per_claim[["claim", "kind", "reading"]].style.hide(axis="index"))


# ---------------------------------------------------------------------------------------------------------
# Notebook 00: the RPE lesson


@dataclass
class LessonImages:
    """Training images resized to the paper's input size: ``images`` for the figures, ``batch`` for the
    erasing-probability animation, and the caption part that says where they come from."""
    images: list
    batch: list
    size: tuple[int, int]
    cap: str


def lesson_images(ctx: StudyContext, num_images: int = 4, batch_size: int = 8, size: tuple[int, int] = (384, 128),
                  seed: int = 0) -> LessonImages:
    """``num_images`` and ``batch_size`` training images spread over the data set, resized (bilinear) to
    ``size``; ``seed`` only enters the caption (the lesson's draws use it)."""
    import torch

    ds = ctx.dataset()
    h, w = size

    def resize(im: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(im[None].float(), size=(h, w), mode="bilinear")[0].round().byte()

    pick = ds.train[:: max(1, len(ds.train) // max(num_images, batch_size))]
    images = [resize(read_image(s.path)) for s in pick[:num_images]]
    batch = [resize(read_image(s.path)) for s in pick[:batch_size]]
    logger.info("%d images for Fig. 3 and %d for the batch, %dx%d, from %s", len(images), len(batch), h, w, ds.name)
    return LessonImages(images, batch, size, f"Images from {ds.name}, resized to {h}x{w}; seed {seed}.")


def rpe_demo(images: list, p: float = 1.0, n: int = 20, sl: float = 0.02, sh: float = 0.45, r: float = 0.35,
             seed: int = 0) -> list[float]:
    """Erase every image with these RPE settings (grey fill) and draw them in a row; returns each image's
    erased share. What the lesson's sliders redraw."""
    import torch

    t = rpe.RandomPolygonErasing(p=p, sl=sl, sh=min(max(sh, sl), 1.0), r=r, n=n, value=128,
                                 generator=torch.Generator().manual_seed(seed))
    fig, axes = style.figure("two", 2.4, 1, len(images), squeeze=False)
    shares = []
    for ax, im in zip(axes[0], images, strict=True):
        out = t(im)
        shares.append(float((out != im).any(dim=0).float().mean()))
        ax.imshow(out.permute(1, 2, 0))
        ax.set_axis_off()
    _show_figure()
    return shares


def rpe_sliders(images: list, n: int = 20, seed: int = 0) -> None:
    """ipywidgets sliders under :func:`rpe_demo` that redraw it live (they need a running kernel)."""
    from ipywidgets import FloatSlider, IntSlider, interact

    def redraw(**kw: Any) -> None:  # interact would print rpe_demo's return value
        rpe_demo(images, **kw)

    interact(redraw, p=FloatSlider(value=1.0, min=0, max=1, step=0.05),
             n=IntSlider(value=n, min=3, max=100), sl=FloatSlider(value=0.02, min=0.01, max=0.5, step=0.01),
             sh=FloatSlider(value=0.45, min=0.02, max=1.0, step=0.01), r=FloatSlider(value=0.35, min=0.1, max=1.0, step=0.05),
             seed=IntSlider(value=seed, min=0, max=100))
