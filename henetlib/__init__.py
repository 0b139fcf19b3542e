"""henetlib: a reproducible study of HENet, "Hierarchical and Efficient Learning for Person Re-Identification".

The user API, one import away::

    import henetlib as hl
    model = hl.create_model("G1+P4+R16", num_classes=751)      # HENet by the paper's layout name
    cfg = hl.make_config("smoke", finetune=True, erasing="rpe")  # a training configuration
    result = hl.run(cfg)                                         # trained once, then read from the cache
    ctx = hl.StudyContext("smoke")
    table, results = hl.table4(ctx)                              # ours beside the paper's
    board = hl.scoreboard(ctx)                                   # the paper's claims, with verdicts

The package has six wings, each importing only the ones listed before it (``system``, ``paper`` and ``stats``
are leaves every wing may use):

* :mod:`henetlib.method` - the paper's method: HENet (G1, P(k), R16), the losses, RPE and RE; the peers of
  Table 1.
* :mod:`henetlib.data` - re-ID data sets, SynthReID, FractalDB-style images, data checks.
* :mod:`henetlib.engine` - configurations and profiles, training, evaluation, the result cache, pretraining,
  the regime check, efficiency (FD, V, S, ES).
* :mod:`henetlib.output` - for print: the figure style, plots, captions, LaTeX, CAM and the RPE lesson.
* :mod:`henetlib.study` - the tables and figures of the paper as grids of runs, derived results, the
  seed-noise model, publishing, ``make reproduce``.
* :mod:`henetlib.verdicts` - the paper's claims, their scores and the scoreboard; seed-noise estimation.

Names below are loaded on first use, so importing one wing does not import the others.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> module that defines it (config as data: the one list of the public API)
_API = {
    # the method
    "HENet": "henetlib.method.model", "create_model": "henetlib.method.model",
    "HENetLoss": "henetlib.method.losses", "LossConfig": "henetlib.method.losses",
    "ErasingConfig": "henetlib.method.rpe", "RandomPolygonErasing": "henetlib.method.rpe",
    "RandomRectangleErasing": "henetlib.method.rpe", "erase_batch": "henetlib.method.rpe",
    # data
    "build_dataset": "henetlib.data.datasets", "ReIDDataset": "henetlib.data.datasets",
    # the engine
    "TrainConfig": "henetlib.engine.config", "make_config": "henetlib.engine.config",
    "PROFILES": "henetlib.engine.config", "train": "henetlib.engine.train", "load_trained": "henetlib.engine.train",
    "run": "henetlib.engine.cache", "sweep": "henetlib.engine.cache", "load_result": "henetlib.engine.cache",
    "Result": "henetlib.engine.cache", "evaluate_ranking": "henetlib.engine.evaluation",
    # the study
    "StudyContext": "henetlib.study.tables", "table1": "henetlib.study.tables", "table2": "henetlib.study.tables",
    "table3": "henetlib.study.tables", "table4": "henetlib.study.tables", "fig4": "henetlib.study.tables",
    "fig5": "henetlib.study.tables",
    # verdicts
    "scoreboard": "henetlib.verdicts.scoreboard",
    # the process
    "clear_caches": "henetlib.system.caches",
}
_MODULES = ("method", "data", "engine", "output", "study", "verdicts", "system", "paper", "stats")

__all__ = sorted([*_API, *_MODULES])


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(f"henetlib.{name}")
    else:
        raise AttributeError(f"module 'henetlib' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return __all__
