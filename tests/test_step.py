"""The training step (issue 20): no host synchronisation, a bounded number of ATen operators, one graph.

The operators are counted with benchmarks/bench_step.py's TorchDispatchMode counter (deterministic: it
counts calls and measures no time). The step is henetlib.train.TrainStep, the one train() runs.
"""

import copy
import importlib.util
import sys
import warnings
from pathlib import Path

import pytest
import torch

from henetlib.engine.config import TrainConfig, make_config
from henetlib.method.losses import HENetLoss, LossConfig
from henetlib.method.model import HENet

_spec = importlib.util.spec_from_file_location("bench_step", Path(__file__).parents[1] / "benchmarks" / "bench_step.py")
bench_step = sys.modules.setdefault("bench_step", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(bench_step)

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


def test_compile_field_modes_and_old_values():
    assert TrainConfig().compile == "none"
    assert TrainConfig(compile=True).compile == "default"  # stored results from before hold a bool
    assert TrainConfig.from_dict({**TrainConfig().to_dict(), "compile": False}).compile == "none"
    assert "compile" not in TrainConfig(compile="cuda-graph").identity()
    with pytest.raises(ValueError, match="compile"):
        TrainConfig(compile="fast")
    with pytest.raises(ValueError, match="K >= 2"):
        make_config("test", k=1)
