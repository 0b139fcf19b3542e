"""One name for the study's user API: ``from henetlib import experiments as ex; ex.run(cfg)``,
``ex.table4(ex.StudyContext("smoke"))``.

Nothing is defined here; the code lives in three modules, each importing only the ones below it:

* :mod:`henetlib.tables` - :class:`StudyContext` and the study's tables (``table1`` .. ``table4``, ``fig4``,
  ``fig5``), ours beside the paper's;
* :mod:`henetlib.derived` - what is computed from a trained model and cached beside its result (occlusion
  curves, ranked lists, CAM maps);
* :mod:`henetlib.runner` - the result cache: keys, :class:`Result`, the published lookup, ``run``, ``sweep``.

The package's own modules import from those directly; this facade keeps notebooks and user code working.
To change what a function does (or to monkeypatch it), use the module that defines it.
"""

from __future__ import annotations

from . import paper
from .derived import cam_data, evaluator_for, occlusion_curve, protocols_frame, ranked_lists
from .runner import (
    Result,
    code_version,
    dataset_for,
    find_published,
    identity_key,
    load_result,
    lookup,
    profile_of,
    published_index,
    published_provenance,
    published_root,
    result_key,
    run,
    sweep,
    too_slow_here,
)
from .tables import (
    StudyContext,
    add_intervals,
    all_losses_config,
    all_losses_result,
    fig4,
    fig5,
    paper_rows,
    results_frame,
    summarise,
    table1,
    table2,
    table3,
    table4,
)
from .train import TrainConfig, make_config
from .utils import results_dir

__all__ = [
    "Result", "StudyContext", "TrainConfig", "add_intervals", "all_losses_config", "all_losses_result", "cam_data",
    "code_version", "dataset_for", "evaluator_for", "fig4", "fig5", "find_published", "identity_key", "load_result",
    "lookup", "make_config", "occlusion_curve", "paper", "paper_rows", "profile_of", "protocols_frame",
    "published_index", "published_provenance", "published_root", "ranked_lists", "result_key", "results_dir",
    "results_frame", "run", "summarise", "sweep", "table1", "table2", "table3", "table4", "too_slow_here",
]
