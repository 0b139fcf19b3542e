"""DDP on CPU with the gloo backend: the pieces (sampler, OIM all-gather, gathered triplet) against one
process, and one torchrun run end to end (2 processes, resumed from a one-process checkpoint)."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp

from henetlib.engine import cache, evaluator
from henetlib.engine.config import make_config
from henetlib.engine.train import train
from henetlib.method.losses import OIMLoss, batch_hard_triplet
from henetlib.system import distributed as system_distributed

P, K, DIM, CLASSES = 3, 2, 8, 10


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    """A global batch of 2 ranks x P identities x K images, identities distinct across ranks."""
    g = torch.Generator().manual_seed(3)
    feats = torch.randn(2 * P * K, DIM, generator=g)
    labels = torch.tensor([pid for pid in (1, 4, 7, 2, 5, 9) for _ in range(K)])
    return feats, labels


def _worker(rank: int, init_file: str, out_file: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    feats, labels = _batch()
    mine = slice(rank * P * K, (rank + 1) * P * K)
    x = feats[mine].clone().requires_grad_(True)
    local = batch_hard_triplet(x, labels[mine], margin=0.3)
    gathered = batch_hard_triplet(x, labels[mine], margin=0.3, gather=True)
    gathered.backward()
    oim = OIMLoss(DIM, CLASSES, queue_size=0)
    oim.lut.copy_(torch.nn.functional.normalize(torch.randn(CLASSES, DIM, generator=torch.Generator().manual_seed(5)), dim=1))
    oim.rounds_hint = K
    oim_loss = oim(feats[mine], labels[mine])
    try:
        system_distributed.check(True, "cpu")
        sync_bn_error = ""
    except ValueError as e:
        sync_bn_error = str(e)
    out = {"local": float(local), "gathered": float(gathered), "oim_loss": float(oim_loss),
           "lut": oim.lut.tolist(), "grad_rows": int((x.grad.abs().sum(1) > 0).sum()), "sync_bn_error": sync_bn_error}
    with open(f"{out_file}.{rank}", "w") as f:
        json.dump(out, f)
    dist.barrier()
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gloo")
    mp.spawn(_worker, args=(str(tmp / "init"), str(tmp / "out")), nprocs=2, join=True)
    return [json.loads((tmp / f"out.{r}").read_text()) for r in range(2)]


def test_gathered_triplet_equals_one_process(two_ranks):
    feats, labels = _batch()
    whole = float(batch_hard_triplet(feats, labels, margin=0.3))
    # DDP averages the ranks' gradients, so the loss it optimises is the mean of the ranks' losses
    assert sum(r["gathered"] for r in two_ranks) / 2 == pytest.approx(whole, rel=1e-6)
    # mining within a rank sees fewer negatives: never a harder one
    assert all(r["local"] <= r["gathered"] + 1e-6 for r in two_ranks)
    assert all(r["grad_rows"] > 0 for r in two_ranks)


def test_oim_tables_identical_across_ranks_and_equal_one_process(two_ranks):
    feats, labels = _batch()
    oim = OIMLoss(DIM, CLASSES, queue_size=0)
    oim.lut.copy_(torch.nn.functional.normalize(torch.randn(CLASSES, DIM, generator=torch.Generator().manual_seed(5)), dim=1))
    oim.rounds_hint = K
    whole = float(oim(feats, labels))
    assert two_ranks[0]["lut"] == two_ranks[1]["lut"]
    assert torch.allclose(torch.tensor(two_ranks[0]["lut"]), oim.lut, atol=1e-6)
    assert sum(r["oim_loss"] for r in two_ranks) / 2 == pytest.approx(whole, rel=1e-6)


def test_sync_bn_on_cpu_is_refused_before_work(two_ranks):
    assert "--sync-bn needs CUDA" in two_ranks[0]["sync_bn_error"]


def test_torchrun_two_processes_resume_a_one_process_run(isolated_dirs, monkeypatch):
    """torchrun --standalone --nproc_per_node=2 -m henetlib run --profile test --device cpu: it resumes
    a checkpoint written by one process, writes one result, and its loss is near one process's."""
    cfg = make_config("test", device="cpu", epochs=2, stripes=(1, 4), recovery=False)
    ds = cache.dataset_for(cfg)
    folder = isolated_dirs / "results" / cache.result_key(cfg, ds)

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    with monkeypatch.context() as m, pytest.raises(KeyboardInterrupt):
        m.setattr(evaluator.Evaluator, "__call__", interrupt)
        train(cfg, out_dir=folder, progress=False, dataset=ds)
    assert torch.load(folder / "last.pt", weights_only=True)["epoch"] == 0
    # the reference: one process with the same global batch (2 x P identities), from the same checkpoint
    ref_dir = isolated_dirs / "reference"
    ref_dir.mkdir()
    shutil.copy(folder / "last.pt", ref_dir / "last.pt")
    ref = train(make_config("test", device="cpu", epochs=2, stripes=(1, 4), recovery=False, p=2 * cfg.p),
                out_dir=ref_dir, progress=False, dataset=ds, evaluate=False)

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "henetlib",
           "run", "--profile", "test", "--device", "cpu", "--epochs", "2"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.count("on 2 ranks") == 1  # rank 0 alone prints
    written = list((isolated_dirs / "results").glob("*/result.json"))
    assert [f.parent for f in written] == [folder]
    assert not (folder / "last.pt").exists() and (folder / "model.pt").exists()
    res = json.loads((folder / "result.json").read_text())
    d = res["distributed"]
    assert d["world_size"] == 2 and d["backend"] == "gloo" and d["global_batch"] == 2 * cfg.p * cfg.k
    assert len(set(d["criterion_digest_per_rank"])) == 1  # the ranks' OIM tables are identical
    assert [h["world_size"] for h in res["history"]] == [1, 2]  # epoch 0 from the one-process checkpoint
    assert 0 <= res["metrics"]["R1"] <= 100 and len(res["per_query"]["ap"]) == len(ds.query)
    # Same start, same identities per global step; what differs is each rank's BatchNorm statistics,
    # its own flips and triplet mining within 2 x 4 images instead of 16: a few per cent on this tiny set
    ddp_epoch, one_epoch = res["history"][1], ref.history[1]
    assert ddp_epoch["images"] == one_epoch.images
    assert ddp_epoch["loss"] == pytest.approx(one_epoch.loss, rel=0.10)
    assert ddp_epoch["terms"]["ce"] == pytest.approx(one_epoch.terms["ce"], rel=0.02)
    assert ddp_epoch["terms"]["oim"] == pytest.approx(one_epoch.terms["oim"], rel=0.05)


def test_torchrun_sweeps_a_table_then_rank_zero_renders_it(isolated_dirs):
    """A table under torchrun: every rank trains each run (Table 4 has runs whose R16 decoder no loss
    uses), then rank 0 alone renders the table from the cache."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "henetlib",
           "table4", "--profile", "test", "--device", "cpu"]
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    results = [json.loads(f.read_text()) for f in (isolated_dirs / "results").glob("*/result.json")]
    assert len(results) == 8 and all(r["distributed"]["world_size"] == 2 for r in results)
    assert proc.stdout.count("table4: 8 runs ready") == 1 and proc.stdout.count("OIM+Tri+MSE") == 1


def test_a_world_of_one_outside_torchrun(monkeypatch):
    """Outside torchrun every helper acts for one process, so the single-process path is unchanged."""
    for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(v, raising=False)
    assert not system_distributed.launched() and not system_distributed.setup("cpu")
    assert (system_distributed.rank(), system_distributed.world_size(), system_distributed.is_main()) == (0, 1, True)
    t = torch.arange(3.0)
    assert system_distributed.broadcast(t) is t and system_distributed.gather_objects(5) == [5]
    assert system_distributed.all_gather_cat(t) is t and system_distributed.all_gather_keep_grad(t) == (t, 0)
    assert system_distributed.all_reduce_mean(t) is t and system_distributed.backend() is None
    m = torch.nn.Linear(2, 2)
    assert system_distributed.wrap(m, torch.device("cpu"), sync_bn=True, find_unused=False) is m
    system_distributed.check(True, "cpu")  # --sync-bn with one process: nothing to refuse


def test_state_digest_tells_modules_apart():
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    assert system_distributed.state_digest(a) == system_distributed.state_digest(b)
    assert len(system_distributed.state_digest(a)) == 16
    with torch.no_grad():
        b.bias[0] += 1e-3
    assert system_distributed.state_digest(a) != system_distributed.state_digest(b)


@pytest.mark.gpu
def test_ddp_nccl_world_size_one(tmp_path):
    """torchrun with the NCCL backend on one GPU (world size 1): DDP wraps, trains and writes one result.
    Several GPUs cannot be tested on a one-GPU machine."""
    env = {**os.environ, **{k: str(tmp_path / v) for k, v in (("HENET_RESULTS_DIR", "results"),
                                                               ("HENET_DATA_DIR", "data"))}}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "-m", "henetlib",
           "run", "--profile", "test", "--device", "cuda", "--sync-bn", "--triplet-gather"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    (f,) = (tmp_path / "results").glob("*/result.json")
    d = json.loads(f.read_text())["distributed"]
    assert d["backend"] == "nccl" and d["world_size"] == 1
