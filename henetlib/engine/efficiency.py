"""Efficiency: feature dim (FD), model size (V), forward speed (S) and the Efficiency Score (section 4.5).

Eq. 10, for a metric T (R1 or mAP), a compared model Mc, the largest model M1 and the lowest-R1 model M2::

    Score^T(Mc) = [V_c * S_c^2 * (T_c - T_M2 + thr)^3 / FD_c] / [V_1 * S_1^2 * (T_1 - T_M2 + thr)^3 / FD_1]

Eq. 11: ES(Mc) = (Score^R1 + lam * Score^mAP) / (1 + lam), with thr = 30 and lam = 1 in the paper.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from henetlib import paper
from henetlib.method.model import HENet
from henetlib.method.model import inference_parameters as model_inference_parameters
from henetlib.method.peers import PEERS
from henetlib.system.files import atomic_write_json, results_dir, stable_hash
from henetlib.system.runtime import hardware_string, pick_device


@dataclass
class ModelStats:
    """The inputs of eq. 10 for one model: R1 and mAP in %, FD, V in MiB, S in frames per second.

    V is Table 1's model volume: the float32 parameters a test-time forward uses, in MiB (2^20 bytes);
    that unit gives the paper's MGN (263) and PCB (102) from their published structures.
    """

    r1: float
    mAP: float
    feature_dim: int
    size_mb: float
    fps: float

    def __post_init__(self) -> None:
        if self.size_mb <= 0:
            raise ValueError(f"size_mb must be positive, got {self.size_mb}.")
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}.")
        if self.feature_dim <= 0:
            raise ValueError(f"feature_dim must be positive, got {self.feature_dim}.")


def reference_models(stats: dict[str, ModelStats]) -> tuple[str, str]:
    """(M1, M2): the largest model and the model with the lowest R1, among those compared."""
    if not stats:
        raise ValueError("efficiency_scores needs at least one model.")
    m1 = max(sorted(stats), key=lambda k: stats[k].size_mb)
    m2 = min(sorted(stats), key=lambda k: stats[k].r1)
    return m1, m2


def _score(s: ModelStats, metric: float, floor: float, thr: float) -> float:
    base = metric - floor + thr
    if base <= 0:
        raise ValueError(f"metric {metric} - reference {floor} + thr {thr} is not positive; raise thr.")
    return s.size_mb * s.fps**2 * base**3 / s.feature_dim


def efficiency_scores(stats: dict[str, ModelStats], thr: float = 30.0, lam: float = 1.0) -> dict[str, float]:
    """ES of every model (eqs. 10-11); M1 scores 1 by construction."""
    m1, m2 = reference_models(stats)
    ref, low = stats[m1], stats[m2]
    out = {}
    for name, s in stats.items():
        r1 = _score(s, s.r1, low.r1, thr) / _score(ref, ref.r1, low.r1, thr)
        mp = _score(s, s.mAP, low.mAP, thr) / _score(ref, ref.mAP, low.mAP, thr)
        out[name] = (r1 + lam * mp) / (1.0 + lam)
    return out


@dataclass
class Measurement:
    feature_dim: int
    params: int
    inference_params: int
    size_mb: float  # float32 MiB of every parameter (the checkpoint, classifiers included)
    inference_size_mb: float  # Table 1's V: float32 MiB without the training-only classifiers and decoder
    fps_batch1: float  # the paper's S
    throughput: float  # images/s at a large batch
    batch: int
    device: str
    hardware: str
    dtype: str
    cuda_graphs: bool

    def as_dict(self) -> dict:
        return asdict(self)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


inference_parameters = model_inference_parameters  # Table 1's V counts these (defined beside HENet)


def _time_call(fn, device: torch.device, repeats: int, inner: int) -> float:
    """Median seconds per call over ``repeats`` timings of ``inner`` calls each, synchronised."""
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)


@torch.no_grad()
def measure(model: torch.nn.Module, input_size: tuple[int, int] = (384, 128),
            device: str | torch.device | None = None, batch: int = 64, repeats: int = 5, warmup: int = 3,
            inner: int = 5, dtype: torch.dtype = torch.float32, cuda_graphs: bool = False,
            channels_last: bool | None = None) -> Measurement:
    """FD, parameters, float32 size and speed of ``model`` in eval mode.

    Speed: batch-1 frames per second (the paper's S) and throughput at ``batch``, each the median of
    ``repeats`` synchronised timings after ``warmup`` calls. On CUDA, ``dtype`` may be bfloat16 (autocast)
    and ``cuda_graphs`` replays a captured graph for batch 1, which removes the launch overhead.
    """
    dev = pick_device(device)
    model = model.eval().to(dev)
    cl = dev.type == "cuda" if channels_last is None else channels_last
    if cl:
        model = model.to(memory_format=torch.channels_last)
    params = count_parameters(model)
    inf_params = inference_parameters(model)

    def make(b: int) -> torch.Tensor:
        x = torch.randn(b, 3, *input_size, device=dev)
        return x.to(memory_format=torch.channels_last) if cl else x

    def fwd(x):
        # autocast's weight cache must be off while a CUDA graph is captured
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype != torch.float32, cache_enabled=not cuda_graphs):
            return model(x)

    x1, xb = make(1), make(batch)
    feature_dim = int(fwd(x1).shape[1])
    call1 = lambda: fwd(x1)  # noqa: E731
    if cuda_graphs and dev.type == "cuda":
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(warmup):
                fwd(x1)
        torch.cuda.current_stream().wait_stream(s)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fwd(x1)
        call1 = graph.replay
    for _ in range(warmup):
        call1()
    t1 = _time_call(call1, dev, repeats, inner)
    for _ in range(warmup):
        fwd(xb)
    tb = _time_call(lambda: fwd(xb), dev, repeats, max(1, inner // 2))
    return Measurement(
        feature_dim=feature_dim, params=params, inference_params=inf_params, size_mb=params * 4 / 2**20,
        inference_size_mb=inf_params * 4 / 2**20, fps_batch1=1.0 / t1, throughput=batch / tb, batch=batch,
        device=dev.type, hardware=hardware_string(dev), dtype=str(dtype).removeprefix("torch."),
        cuda_graphs=bool(cuda_graphs and dev.type == "cuda"),
    )


def henet_variants(num_classes: int = 751) -> dict[str, torch.nn.Module]:
    """Table 1's HENet rows: Base and +RPE share G1+P4; +Losses and +Both add R16."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = HENet(num_classes, (1, 4), recovery=False)
        full = HENet(num_classes, (1, 4), recovery=True)
    return {"HENet(Base)": base, "HENet(+Losses)": full}


def measure_table1(device: str | torch.device | None = None, input_size: tuple[int, int] = (384, 128),
                   batch: int = 64, repeats: int = 5, warmup: int = 3, inner: int = 5,
                   dtype: torch.dtype = torch.float32, cuda_graphs: bool = False,
                   num_classes: int = 751, progress: bool = True, refresh: bool = False) -> dict[str, Measurement]:
    """Measure the peers and the HENet variants on this machine (random weights: speed and size only).

    Cached in ``results/efficiency/`` by hardware, settings and code, like training results; ``refresh``
    measures again.
    """
    dev = pick_device(device)
    package = Path(__file__).resolve().parents[1]
    code = hashlib.sha256(b"".join((package / f).read_bytes()
                                   for f in ("engine/efficiency.py", "method/peers.py", "method/model.py")))
    key = stable_hash([hardware_string(dev), list(input_size), batch, repeats, warmup, inner, str(dtype),
                       cuda_graphs, num_classes, code.hexdigest()[:12]])
    cache = results_dir() / "efficiency" / f"{key}.json"
    if cache.exists() and not refresh:
        return {k: Measurement(**v) for k, v in json.loads(cache.read_text()).items()}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = {name: ctor(num_classes) for name, ctor in PEERS.items()}
    models.update(henet_variants(num_classes))
    out = {}
    for name, m in tqdm(models.items(), desc="measure", disable=not progress):
        out[name] = measure(m, input_size, dev, batch, repeats, warmup, inner, dtype, cuda_graphs)
        m.cpu()
    # +RPE changes only training and +Both = +Losses + RPE: same graphs, same measurements
    out["HENet(+RPE)"] = out["HENet(Base)"]
    out["HENet(+Both)"] = out["HENet(+Losses)"]
    atomic_write_json(cache, {k: v.as_dict() for k, v in out.items()})
    return out


# ---------------------------------------------------------------------------------------------------------
# Table 1 and Fig. 1 as the notebooks print and draw them

# Table 1's methods that the paper reports without FD, V, S or ES: Market-1501 (R1, mAP) in %. They have no
# speed, so Fig. 1 draws them as horizontal lines (accuracy at any speed), not as points.
ACCURACY_ONLY = {"SVDNet": (82.3, 62.1), "PAN": (82.8, 63.4), "MultiScale": (88.9, 73.1), "HA-CNN": (91.2, 75.7)}
HENET_ROWS = ("HENet(Base)", "HENet(+RPE)", "HENet(+Losses)", "HENet(+Both)")


def paper_stats(names: tuple[str, ...] | None = None) -> dict[str, ModelStats]:
    """Table 1's published inputs of eq. 10 (V in the paper's MB, S at the paper's TITAN X)."""

    return {k: ModelStats(v["r1"], v["mAP"], v["fd"], v["v"], v["s"]) for k, v in paper.TABLE1.items()
            if names is None or k in names}


def henet_rows(ours, meas: dict[str, Measurement]):
    """Our four HENet rows (R1/mAP with intervals, from our runs) with our measured V and S, and ES among these
    four rows (eqs. 10-11) from our numbers and, beside it, from the paper's numbers for the same four rows."""
    out = ours.copy()
    out["V MiB"] = out["Method"].map(lambda m: meas[m].inference_size_mb)
    out["S fps"] = out["Method"].map(lambda m: meas[m].fps_batch1)
    stats = {r.Method: ModelStats(r.R1, r.mAP, int(r.FD), r["V MiB"], r["S fps"]) for _, r in out.iterrows()}
    out["ES (ours)"] = out["Method"].map(efficiency_scores(stats))
    out["ES (paper)"] = out["Method"].map(efficiency_scores(paper_stats(tuple(out["Method"]))))
    return out


def peers_table(meas: dict[str, Measurement]):
    """Table 1's efficiency columns: the paper's V, S and ES beside ours (V and S measured here on compact
    rebuilds with random weights; ES from the paper's R1/mAP with our V and S). FD is the same in both
    (checked), so it appears once."""
    import pandas as pd  # the engine needs pandas for this table only

    rows = []
    for name, p in paper.TABLE1.items():
        m = meas[name]
        if m.feature_dim != p["fd"]:
            raise ValueError(f"{name}: our rebuild has FD {m.feature_dim}, the paper's {p['fd']}.")
        rows.append({"Method": name, "R1 (paper)": p["r1"], "mAP (paper)": p["mAP"], "FD": m.feature_dim,
                     "V MiB (paper)": p["v"], "V MiB (ours)": m.inference_size_mb, "S fps (paper)": p["s"],
                     "S fps (ours)": m.fps_batch1, "img/s (ours)": m.throughput, "ES (paper)": p["es"]})
    df = pd.DataFrame(rows)
    stats = {r["Method"]: ModelStats(r["R1 (paper)"], r["mAP (paper)"], r["FD"], r["V MiB (ours)"], r["S fps (ours)"])
             for r in rows}
    df["ES (ours)"] = df["Method"].map(efficiency_scores(stats))
    return df


FIG1_DIFFERENCES = (
    "Differences from the paper's Fig. 1: speed S is the x axis (log scale) where the paper prints each frame "
    "rate in parentheses, and mAP gets its own row of panels. SVDNet, PAN, MultiScale and HA-CNN have no V or "
    "S in Table 1, so they are horizontal lines (their accuracy at any speed). The right panels hold only our "
    "four HENet rows: the other methods were not trained here, so we have no accuracy of ours for them, and "
    "our speeds (other hardware, batch 1, float32) are not comparable with the paper's TITAN X speeds, hence "
    "a panel of their own. +RPE and +Both change training only: they share V and S with Base and +Losses.")
