"""One run on several processes: torchrun + DistributedDataParallel (docs/SCALING.md).

``torchrun --nproc_per_node=N -m henetlib run ...`` starts N processes and sets RANK, WORLD_SIZE, LOCAL_RANK
and MASTER_ADDR/PORT; :func:`setup` turns them into a process group: NCCL when the ranks use CUDA, gloo on
CPUs. Outside torchrun every helper acts for a world of one, so the single-process path is unchanged.

What each rank does (the training engine and the result cache call these):

* the P x K sampler gives each rank P distinct identities of one global batch of P*N x K;
* DDP averages the gradients; BatchNorm is synchronised with ``sync_bn`` (CUDA only, as torch's
  SyncBatchNorm is);
* OIM all-gathers features and labels before its update, so every rank holds the same table and queue;
* the batch-hard triplet mines within the rank's batch, or over all ranks' features with ``triplet_gather``;
* rank 0 alone evaluates and writes checkpoints and results; the others receive rank 0's result.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from henetlib.system.runtime import pick_device

_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def launched() -> bool:
    """True in a process that torchrun (or another launcher setting its variables) started."""
    return all(v in os.environ for v in _ENV)


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0)) if active() else 0


def _uses_cuda(device: str | torch.device | None) -> bool:
    d = "auto" if device is None else str(device)
    return (d == "auto" and torch.cuda.is_available()) or d.startswith("cuda")


_closed = False  # the group was left on purpose (cleanup): do not join again


def setup(device: str | torch.device | None = "auto") -> bool:
    """Join torchrun's process group (once per process; the training engine calls it, so a script run by
    torchrun needs no code of its own). Returns whether a group is active. The backend follows the
    device: NCCL for CUDA, gloo for CPU."""
    if active() or not launched() or _closed:
        return active()
    cuda = _uses_cuda(device)
    if cuda:
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was asked for but CUDA is not available here; use --device cpu "
                             "(the gloo backend) or run where there are GPUs.")
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    # long enough for rank 0 to wait on another job's run lock or to evaluate while the others wait;
    # torchrun stops every rank as soon as one fails, so a crash does not hang for this long
    minutes = float(os.environ.get("HENET_DIST_TIMEOUT_MIN", "60"))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(minutes=minutes))
    return True


def device_for(device: str | torch.device | None) -> torch.device:
    """This rank's device: ``cuda:LOCAL_RANK`` when the ranks use CUDA, else what ``device`` names."""
    dev = pick_device(device)
    if active() and dev.type == "cuda":
        return torch.device("cuda", local_rank())
    return dev


def backend() -> str | None:
    return dist.get_backend() if active() else None


def cleanup() -> None:
    """Leave the group: after this the process works alone (rank 0 renders tables from the cache)."""
    global _closed
    if active():
        dist.barrier()
        dist.destroy_process_group()
        _closed = True


def broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (pickled; for small objects and CPU tensors)."""
    if world_size() == 1:
        return obj
    buf = [obj]
    dist.broadcast_object_list(buf, src=0)
    return buf[0]


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if world_size() == 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def all_gather_cat(t: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Every rank's ``t`` (equal shapes) concatenated along ``dim`` in rank order; no gradient flows back."""
    if world_size() == 1:
        return t
    parts = [torch.empty_like(t, memory_format=torch.contiguous_format) for _ in range(world_size())]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts, dim)


def all_gather_keep_grad(t: torch.Tensor, dim: int = 0) -> tuple[torch.Tensor, int]:
    """Like :func:`all_gather_cat`, but this rank's slot is ``t`` itself, so its gradient flows (the other
    ranks' features are constants here; DDP brings their gradients in through their own ranks).
    Returns the concatenation and this rank's offset in it along ``dim``."""
    if world_size() == 1:
        return t, 0
    parts = [torch.empty_like(t, memory_format=torch.contiguous_format) for _ in range(world_size())]
    dist.all_gather(parts, t.detach().contiguous())
    parts[rank()] = t
    return torch.cat(parts, dim), rank() * t.shape[dim]


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    if world_size() == 1:
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t / world_size()


def state_digest(module: torch.nn.Module) -> str:
    """A short hash of a module's state (parameters and buffers), to check that ranks agree."""
    h = hashlib.sha256()
    for name, v in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(v.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def wrap(model: torch.nn.Module, dev: torch.device, sync_bn: bool, find_unused: bool) -> torch.nn.Module:
    """``model`` in DDP (with SyncBatchNorm when asked); the model itself when there is one process."""
    if not active():
        return model
    if sync_bn and world_size() > 1:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None,
                                   find_unused_parameters=find_unused)


def check(sync_bn: bool, device: str | torch.device | None) -> None:
    """Options that cannot work here, refused before any data is loaded."""
    if sync_bn and world_size() > 1 and not _uses_cuda(device):
        raise ValueError("--sync-bn needs CUDA: torch's SyncBatchNorm does not run on CPU tensors. Drop "
                         "--sync-bn for a CPU (gloo) run, or run on GPUs.")
