"""GPU paths (``pytest -m gpu``): skipped where CUDA is absent, run on the lent H100 (docs/BENCHMARKS.md).

Each test checks a CUDA path against its CPU twin or against finiteness, on tiny inputs.
"""

import copy
import warnings

import numpy as np
import pytest
import torch

from henetlib.engine.efficiency import measure
from henetlib.engine.evaluation import evaluate_ranking
from henetlib.method.losses import HENetLoss, LossConfig
from henetlib.method.model import HENet
from henetlib.method.rpe import ErasingConfig, erase_batch, polygon_masks, random_erasing_batch

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run on the lent GPU)")]
CUDA = torch.device("cuda")


def _model(recovery=True, size=(64, 32)):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return HENet(8, (1, 4), recovery, backbone="resnet18-half", input_size=size)


def _step(model, crit, x, y, opt, compiled=None):
    fwd = compiled if compiled is not None else model  # bool() of a compiled module calls len()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        res = crit(fwd(x), y, x, x)
    opt.zero_grad(set_to_none=True)
    res.total.backward()
    opt.step()
    return res


def test_bf16_channels_last_step_with_every_loss():
    model = _model().to(CUDA).to(memory_format=torch.channels_last).train()
    crit = HENetLoss(8, (1, 4), LossConfig()).to(CUDA)
    crit.set_batch_structure(2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    x = torch.randn(8, 3, 64, 32, device=CUDA).contiguous(memory_format=torch.channels_last)
    y = torch.arange(4, device=CUDA).repeat_interleave(2)
    res = _step(model, crit, x, y, opt)
    assert set(res.terms) == {"ce", "triplet", "oim", "mse"}
    assert torch.isfinite(res.total)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    # OIM's table moved for every identity of the batch, and nothing else
    lut = crit.oim.lut[0]
    assert (lut[:4].norm(dim=1) > 0.99).all() and (lut[4:].abs().sum() == 0)


def test_device_resident_training_and_evaluation(isolated_dirs):
    from henetlib.engine.config import make_config
    from henetlib.engine.train import train

    out = train(make_config("test", device="cuda", data_path="device", erasing="re+rpe"), progress=False)
    assert out.train_images > 0
    assert 0 <= out.metrics["R1"] <= 100 and set(out.metrics["protocols"]) == {"flip-l2", "raw"}
    assert len(out.per_query["first_rank"]) == len(out.dataset.query)


def test_device_store_matches_cpu(isolated_dirs):
    from henetlib.data.datasets import DeviceStore, build_dataset

    ds = build_dataset("synthreid", synth_size="tiny")
    a = DeviceStore(ds.query[:16], (64, 32), "cpu").batch(range(16))
    b = DeviceStore(ds.query[:16], (64, 32), CUDA).batch(range(16)).cpu()
    assert torch.allclose(a, b, atol=1e-4)


def test_batched_masks_cuda_equal_cpu():
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(64, 20, 2, generator=g, dtype=torch.float64) * torch.tensor([128.0, 384.0], dtype=torch.float64)
    cpu = polygon_masks(pts, 384, 128)
    gpu = polygon_masks(pts.to(CUDA), 384, 128).cpu()
    assert (cpu != gpu).float().mean() < 1e-4  # float64 on both: identical but for exact edge ties
    x = torch.randn(32, 3, 384, 128, device=CUDA)
    for cfg in (ErasingConfig("rpe", 1.0), ErasingConfig("re", 1.0), ErasingConfig("re+rpe", 1.0)):
        out, mask = erase_batch(x, cfg, torch.Generator(device=CUDA).manual_seed(1), return_mask=True)
        assert mask.any(dim=(1, 2)).float().mean() > 0.9
        assert torch.equal(out[~mask[:, None].expand_as(x)], x[~mask[:, None].expand_as(x)])
    _, m = random_erasing_batch(x, p=1.0, generator=torch.Generator(device=CUDA).manual_seed(2), return_mask=True)
    assert m.device.type == "cuda"


def test_cuda_graph_measure_matches_eager():
    model = _model(size=(128, 64))
    m = measure(model, (128, 64), CUDA, batch=8, repeats=2, warmup=2, inner=2, cuda_graphs=True)
    assert m.cuda_graphs and m.fps_batch1 > 0 and m.feature_dim == model.feature_dim


def test_torch_compile_step_matches_eager():
    torch.manual_seed(0)
    model = _model().to(CUDA).train()
    crit = HENetLoss(8, (1, 4), LossConfig(oim=False)).to(CUDA)
    x = torch.randn(8, 3, 64, 32, device=CUDA)
    y = torch.arange(4, device=CUDA).repeat_interleave(2)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        eager = crit(model(x), y, x, x).total.float().item()
    compiled = torch.compile(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    res = _step(model, crit, x, y, opt, compiled)
    assert abs(float(res.total) - eager) < 0.05 * abs(eager) + 1e-3


def test_evaluation_cuda_equals_cpu():
    rng = np.random.default_rng(0)
    d = rng.random((200, 900), dtype=np.float32)
    qp, gp = rng.integers(0, 50, 200), rng.integers(0, 50, 900)
    qc, gc = rng.integers(0, 6, 200), rng.integers(0, 6, 900)
    d -= 0.3 * (qp[:, None] == gp[None, :])
    a = evaluate_ranking(d, qp, gp, qc, gc)
    b = evaluate_ranking(torch.from_numpy(d).to(CUDA), qp, gp, qc, gc)
    assert np.allclose(a.cmc, b.cmc) and abs(a.mAP - b.mAP) < 1e-6
    assert np.array_equal(a.query_first_rank, b.query_first_rank)


def test_ddp_nccl_world_size_one(tmp_path):
    """torchrun with the NCCL backend on one GPU (world size 1): DDP wraps, trains and writes one result.
    Several GPUs cannot be tested on a one-GPU machine."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, **{k: str(tmp_path / v) for k, v in (("HENET_RESULTS_DIR", "results"),
                                                               ("HENET_DATA_DIR", "data"))}}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "-m", "henetlib",
           "run", "--profile", "test", "--device", "cuda", "--sync-bn", "--triplet-gather"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    (f,) = (tmp_path / "results").glob("*/result.json")
    d = json.loads(f.read_text())["distributed"]
    assert d["backend"] == "nccl" and d["world_size"] == 1


def test_cuda_graph_step_matches_eager():
    """20 steps through one captured CUDA graph (forward, losses, backward, fused capturable Adam) give the
    eager path's losses within bf16 tolerance, from the same start on the same batches; the lr set between
    steps reaches the captured Adam."""
    from henetlib.engine.train import TrainStep

    torch.manual_seed(0)
    model = _model().to(CUDA).to(memory_format=torch.channels_last).train()
    crit = HENetLoss(8, (1, 4), LossConfig()).to(CUDA)
    crit.set_batch_structure(2, 0)
    losses, crits = {}, {}
    for mode in ("none", "cuda-graph"):
        m, c = copy.deepcopy(model), copy.deepcopy(crit)
        graphed = mode == "cuda-graph"
        opt = torch.optim.Adam(m.parameters(), lr=torch.tensor(1e-3, device=CUDA) if graphed else 1e-3,
                               weight_decay=5e-4, fused=True, capturable=graphed)
        step = TrainStep(m, c, opt, torch.bfloat16, channels_last=True, mode=mode)
        g = torch.Generator(device=CUDA).manual_seed(1)
        y = torch.arange(4, device=CUDA).repeat_interleave(2)
        out = []
        for i in range(20):
            if i == 12:
                step.set_lr(2e-4)
            x = torch.randn(8, 3, 64, 32, device=CUDA, generator=g)
            out.append(step(x, x, y))
        assert step.names == ("ce", "triplet", "oim", "mse")
        if graphed:
            assert step.graph is not None and step._eager_steps == step.warmup
        losses[mode], crits[mode] = torch.stack(out).float().cpu(), c
    eager, graph = losses["none"], losses["cuda-graph"]
    assert torch.isfinite(graph).all()
    assert graph[-1, 0] < graph[0, 0]  # it trains
    assert torch.allclose(graph, eager, rtol=0.03, atol=0.02), (eager[:, 0], graph[:, 0])
    assert torch.allclose(crits["none"].oim.lut, crits["cuda-graph"].oim.lut, atol=0.05)


def test_cuda_graph_training_run_matches_eager(isolated_dirs):
    """train() with compile="cuda-graph" (capture in the first epoch, lr decayed at epoch 1) logs the eager
    run's losses within bf16 tolerance."""
    from henetlib.engine.config import make_config
    from henetlib.engine.train import train

    runs = {m: train(make_config("test", device="cuda", epochs=3, compile=m), progress=False) for m in
            ("none", "cuda-graph")}
    for a, b in zip(runs["none"].history, runs["cuda-graph"].history, strict=True):
        assert a.lr == b.lr
        assert b.loss == pytest.approx(a.loss, rel=0.05)
    assert runs["cuda-graph"].metrics["R1"] >= 0
