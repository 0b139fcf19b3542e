"""The training loop (engine/train.py): a run on the tiny test profile, its data paths, checkpoints and resume,
and the training step (issue 20): no host synchronisation, a bounded number of ATen operators, one graph.

The step's operators are counted with benchmarks/bench_step.py's TorchDispatchMode counter (deterministic: it
counts calls and measures no time). The step is henetlib.engine.train.TrainStep, the one train() runs.
"""

import copy
import importlib.util
import sys
import warnings
from pathlib import Path

import pytest
import torch

from henetlib.data.datasets import RandomIdentitySampler
from henetlib.engine import evaluator
from henetlib.engine import train as train_module
from henetlib.engine.config import make_config
from henetlib.engine.train import TrainStep, _lr_at, train
from henetlib.method.losses import HENetLoss, LossConfig
from henetlib.method.model import HENet

_spec = importlib.util.spec_from_file_location("bench_step", Path(__file__).parents[2] / "benchmarks" / "bench_step.py")
bench_step = sys.modules.setdefault("bench_step", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(bench_step)


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, isolated_env):
    """The test profile trained twice from the same seed (one epoch each, a second each)."""
    with isolated_env(tmp_path_factory.mktemp("tiny-runs")):
        return [train(make_config("test", device="cpu"), progress=False) for _ in range(2)]


def test_train_tiny_and_metrics(tiny_runs):
    out = tiny_runs[0]
    assert len(out.history) == 1 and out.train_images > 0
    for k in ("R1", "R5", "R10", "mAP", "mINP"):
        assert 0.0 <= out.metrics[k] <= 100.0
    assert out.metrics["R1"] <= out.metrics["R5"] <= out.metrics["R10"]  # a CMC curve never falls
    assert set(out.history[0].terms) == {"ce", "oim", "triplet", "mse"}
    assert len(out.per_query["first_rank"]) == len(out.per_query["ap"]) == len(out.dataset.query)
    assert not out.model.training  # returned ready for evaluation


def test_training_is_reproducible_bit_for_bit(tiny_runs):
    """The same configuration and seed on the same machine: the same losses, weights, metrics and per-query
    results (what lets the cache stand for a run, and a redone run replace a damaged one)."""
    a, b = tiny_runs
    assert [(h.loss, h.terms) for h in a.history] == [(h.loss, h.terms) for h in b.history]
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.metrics == b.metrics and a.per_query == b.per_query


def test_dataloader_path_with_per_image_erasing(isolated_dirs, monkeypatch):
    """The path for data sets too large for memory: DataLoader workers decode each image, then the run's
    erasing is applied to each batch (as on the device path, so R16 still sees the clean images)."""
    monkeypatch.setattr(train_module, "cached_store", lambda *a, **k: pytest.fail("the device store was used"))
    erased = []
    real = train_module.erase_batch

    def spy(x, cfg, gen):
        erased.append((cfg.mode, len(x)))
        return real(x, cfg, gen)

    monkeypatch.setattr(train_module, "erase_batch", spy)
    cfg = make_config("test", device="cpu", data_path="loader", erasing="re+rpe")
    out = train(cfg, progress=False)
    steps = len(RandomIdentitySampler(out.dataset.train, cfg.p, cfg.k, cfg.num_unlabeled, cfg.seed))
    assert erased == [("re+rpe", cfg.p * cfg.k)] * steps  # every batch erased, in RE+RPE mode
    assert out.train_images == steps * cfg.p * cfg.k == out.history[0].images
    for k in ("R1", "R5", "R10", "mAP", "mINP"):
        assert 0.0 <= out.metrics[k] <= 100.0
    assert len(out.per_query["first_rank"]) == len(out.per_query["ap"]) == len(out.dataset.query)
    again = train(cfg, progress=False)  # the workers' flips are seeded too: the same run, bit for bit
    assert again.history[0].loss == out.history[0].loss and again.per_query == out.per_query


def test_interrupted_run_resumes(isolated_dirs, monkeypatch):
    cfg = make_config("test", device="cpu", epochs=2, checkpoint_every=1)
    folder = isolated_dirs / "run"

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluator.Evaluator, "__call__", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, out_dir=folder, progress=False)
    saved = torch.load(folder / "last.pt", weights_only=True)  # checkpoints hold no pickled objects
    assert saved["epoch"] == 0
    monkeypatch.undo()
    calls = []
    real = evaluator.Evaluator.__call__
    monkeypatch.setattr(evaluator.Evaluator, "__call__", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    out = train(cfg, out_dir=folder, progress=False)
    assert [h.epoch for h in out.history] == [0, 1]  # epoch 0 came from the checkpoint
    assert out.history[0].loss == saved["history"][0]["loss"]
    assert calls == [1]
    assert out.history[1].loss < out.history[0].loss  # the resumed epoch goes on learning from the checkpoint


def test_damaged_checkpoint_restarts_the_run(isolated_dirs):
    folder = isolated_dirs / "run"
    folder.mkdir()
    (folder / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="last.pt cannot be read"):
        out = train(make_config("test", device="cpu"), out_dir=folder, progress=False)
    assert [h.epoch for h in out.history] == [0]
    assert list(folder.glob("broken-*/last.pt"))


def test_lr_schedule_steps_and_warms_up():
    cfg = make_config("test", lr=1e-3, epochs=10, milestones=(4, 8), warmup_epochs=2)
    lrs = [_lr_at(cfg, e) for e in range(10)]
    assert lrs == pytest.approx([5e-4, 1e-3, 1e-3, 1e-3, 1e-4, 1e-4, 1e-4, 1e-4, 1e-5, 1e-5])


def test_train_step_refuses_unknown_and_cpu_graph_modes(isolated_dirs):
    model, crit = _tiny()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with pytest.raises(ValueError, match="compile mode must be one of"):
        TrainStep(model, crit, opt, mode="fast")
    with pytest.raises(ValueError, match="capturable=True"):
        TrainStep(model, crit, opt, mode="cuda-graph")
    with pytest.raises(ValueError, match="needs a CUDA device"):
        train(make_config("test", device="cpu", compile="cuda-graph"), progress=False, evaluate=False)


# ---------------------------------------------------------------------------------------------------------
# The training step (issue 20)

# The smoke step (HENet(+Both), all losses, RE+RPE(20), batch 32 = P 8 x K 4, 64 x 32, resnet18-quarter)
# without the optimizer, in ATen operator calls, as reached by issue 20 (2,989 before it; the breakdown is
# in docs/BENCHMARKS.md). The guard allows 10% above it: a change that adds launches to the step fails here.
SMOKE_STEP_OPS = 1017
SMOKE_LOSSES_GOAL = 150  # issue 20's goal for the losses' forward


@pytest.fixture(scope="module")
def smoke_count():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bench_step.count_step(make_config("smoke", erasing="re+rpe", device="cpu"), "cpu")


def test_step_has_no_host_sync(smoke_count):
    """Data (flip), erasing, forward, losses and backward: no operator that waits for the device. The
    optimizer (Adam's per-parameter step count on CPU) is left out: fused on the GPU."""
    assert smoke_count.n_syncs == 0, smoke_count.syncs
    assert all(smoke_count.ops[p] > 0 for p in ("data", "erasing", "forward", "losses", "backward"))


def test_step_operator_count_guard(smoke_count):
    assert smoke_count.ops["losses"] <= SMOKE_LOSSES_GOAL, smoke_count.table()
    assert smoke_count.step <= 1.1 * SMOKE_STEP_OPS, smoke_count.table()


def test_sync_detector_catches_boolean_indexing_and_scalar_reads():
    counter = bench_step.OpCounter()
    counter.phase = "x"
    x = torch.arange(6.0)
    with counter:
        _ = x[x > 2]
        _ = float(x.sum())
        _ = torch.unique(x)
    kinds = set(counter.syncs["x"])
    assert {"aten.index.Tensor", "aten._local_scalar_dense.default"} <= kinds
    assert any("unique" in k for k in kinds)


def _tiny():
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HENet(8, (1, 4), True, backbone="resnet18-half", input_size=(64, 32)).train()
    crit = HENetLoss(8, (1, 4), LossConfig()).train()
    crit.set_batch_structure(2, 0)
    return model, crit


def test_model_and_losses_trace_as_one_graph():
    """torch.compile(fullgraph=True) of the model and every loss (OIM's in-place update included) traces with
    no graph break; aot_eager runs the traced graph, forward and backward, and agrees with eager."""
    model, crit = _tiny()
    model2, crit2 = copy.deepcopy(model), copy.deepcopy(crit)
    x = torch.randn(8, 3, 64, 32)
    y = torch.arange(4).repeat_interleave(2)

    def step(m, c):
        def f(x, clean, y):
            res = c(m(x), y, x, clean)
            return res.total, res.values
        return f

    torch._dynamo.reset()
    total, values = torch.compile(step(model, crit), fullgraph=True, backend="aot_eager")(x, x, y)
    total.backward()
    ref_total, ref_values = step(model2, crit2)(x, x, y)
    ref_total.backward()
    assert torch.allclose(values, ref_values, rtol=1e-4, atol=1e-5)
    assert torch.equal(crit.oim.lut, crit2.oim.lut)  # the traced in-place OIM update ran, bit for bit
    g, g2 = model.branches[1].reduce_parts[0].conv.weight.grad, model2.branches[1].reduce_parts[0].conv.weight.grad
    assert torch.allclose(g, g2, rtol=1e-3, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------
# CUDA paths (pytest -m gpu)

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


@pytest.mark.gpu
def test_device_resident_training_and_evaluation(isolated_dirs):
    out = train(make_config("test", device="cuda", data_path="device", erasing="re+rpe"), progress=False)
    assert out.train_images > 0
    assert 0 <= out.metrics["R1"] <= 100 and set(out.metrics["protocols"]) == {"flip-l2", "raw"}
    assert len(out.per_query["first_rank"]) == len(out.dataset.query)


@pytest.mark.gpu
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


@pytest.mark.gpu
def test_cuda_graph_step_matches_eager():
    """20 steps through one captured CUDA graph (forward, losses, backward, fused capturable Adam) give the
    eager path's losses within bf16 tolerance, from the same start on the same batches; the lr set between
    steps reaches the captured Adam."""
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


@pytest.mark.gpu
def test_cuda_graph_training_run_matches_eager(isolated_dirs):
    """train() with compile="cuda-graph" (capture in the first epoch, lr decayed at epoch 1) logs the eager
    run's losses within bf16 tolerance."""
    runs = {m: train(make_config("test", device="cuda", epochs=3, compile=m), progress=False) for m in
            ("none", "cuda-graph")}
    for a, b in zip(runs["none"].history, runs["cuda-graph"].history, strict=True):
        assert a.lr == b.lr
        assert b.loss == pytest.approx(a.loss, rel=0.05)
    out = runs["cuda-graph"]
    assert 0 <= out.metrics["R1"] <= 100 and len(out.per_query["ap"]) == len(out.dataset.query)
