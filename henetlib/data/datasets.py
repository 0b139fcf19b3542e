"""Re-ID data sets (read from a user's folder, never downloaded), the P x K sampler and the loaders.

Layouts:

* Market-1501 and DukeMTMC-reID: ``bounding_box_train/``, ``bounding_box_test/``, ``query/`` with file names
  ``PPPP_cXsY_FFFFFF_NN.jpg`` (Duke: ``PPPP_cX_fFFFFFFF.jpg``). Training identities are relabelled 0..N-1;
  junk images (pid -1) are dropped; gallery distractors (pid 0000) are kept. In a training folder pid 0000
  marks unlabeled images (SynthReID's passers-by), which get label -1 and feed OIM's queue.
* CUHK03-NP (the 767/700 protocol of Zhong et al. 2017): ``<root>/{detected,labeled}/`` each in the layout
  above (file names ``PPPP_cX_N.png``).
* SynthReID: the embedded procedural set (:mod:`henetlib.data.synth`), generated on first use.

Two loading paths share one preprocessing function (:func:`preprocess`), so they give the same tensors:
a standard DataLoader with workers, and a device-resident store that decodes every image once into a
uint8 tensor on the device and does resize, flip, normalisation and erasing there in batches.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from torch.utils.data import DataLoader, Dataset, Sampler

from henetlib.data.check import verify
from henetlib.data.images import DataError, read_image
from henetlib.data.synth import generate, occluded_queries
from henetlib.method.rpe import IMAGENET_MEAN, IMAGENET_STD, ErasingConfig, erase_batch, erasing_transform
from henetlib.system.caches import CACHES
from henetlib.system.files import data_dir, stable_hash

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^(-?\d+)_c(\d+)")
_EXTS = {".jpg", ".jpeg", ".png", ".bmp"}
SPLITS = ("bounding_box_train", "query", "bounding_box_test")
LAYOUT_HELP = """expected layout (Market-1501 style):
  {root}/
    bounding_box_train/   0002_c1s1_000451_03.jpg ...   (identity_cCAMERA...)
    query/                0001_c1s1_001051_00.jpg ...
    bounding_box_test/    0001_c1s1_000151_01.jpg ...   (0000_... distractors, -1_... junk)"""


class Sample(NamedTuple):
    path: str
    pid: int  # relabelled 0..N-1 in the training split; -1 for unlabeled training images
    camid: int  # 0-based


@dataclass
class ReIDDataset:
    name: str
    root: Path
    train: list[Sample]
    query: list[Sample]
    gallery: list[Sample]
    occluded_query: set[str] = field(default_factory=set)  # file names of occluded queries, when known
    # files in the split folders whose names do not follow the layout's pattern: {path: problem}
    unparsed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # unusable files left out (skip_bad_images)
    _fingerprint: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def num_train_pids(self) -> int:
        return len({s.pid for s in self.train if s.pid >= 0})

    @property
    def num_train_cams(self) -> int:
        return len({s.camid for s in self.train})

    def summary(self) -> str:
        """A torchreid-style table of identities, images and cameras per split."""
        lines = [f"=> {self.name} loaded from {self.root}", "  " + "-" * 42,
                 f"  {'subset':<9}| {'# ids':>6} | {'# images':>9} | {'# cameras':>9}", "  " + "-" * 42]
        for name, split in (("train", self.train), ("query", self.query), ("gallery", self.gallery)):
            ids = len({s.pid for s in split if s.pid >= 0})
            cams = len({s.camid for s in split})
            lines.append(f"  {name:<9}| {ids:>6} | {len(split):>9} | {cams:>9}")
        n_unl = sum(s.pid < 0 for s in self.train)
        lines.append("  " + "-" * 42)
        if n_unl:
            lines.append(f"  ({n_unl} unlabeled training images for OIM's queue)")
        if self.occluded_query:
            lines.append(f"  ({len(self.occluded_query)} of the queries are occluded)")
        return "\n".join(lines)

    def fingerprint(self) -> str:
        """Changes when any file list changes: cached results are keyed by it. Computed once (about 0.1 s on
        the full SynthReID); the splits are not changed after loading (``dataclasses.replace`` makes a new
        data set, with its own fingerprint)."""
        if self._fingerprint is None:
            self._fingerprint = stable_hash([self.name, [(Path(s.path).name, s.pid, s.camid)
                                                         for s in self.train + self.query + self.gallery]])
        return self._fingerprint


def _parse_folder(folder: Path, relabel: bool, unlabeled_zero: bool,
                  unparsed: dict[str, str] | None = None) -> list[Sample]:
    """Samples of one split folder. Files whose names do not follow the pattern, and files that are not
    images, go to ``unparsed`` (reported by the data check, never silently dropped); without ``unparsed``
    the first one raises."""
    if not folder.is_dir():
        raise DataError(f"missing folder {folder}")
    entries = sorted(f for f in folder.iterdir() if not f.name.startswith(".") and f.is_file())
    files = [f for f in entries if f.suffix.lower() in _EXTS]
    if not files:
        raise DataError(f"folder {folder} holds no images (.jpg, .png)")
    problems = {str(f): f"not an image file ({f.suffix or 'no extension'})" for f in entries if f not in files}
    raw = []
    for f in files:
        m = _NAME.match(f.name)
        if m is None:
            problems[str(f)] = "name does not follow the pattern 0002_c1s1_000451_03.jpg (identity_cCAMERA...)"
            continue
        pid, cam = int(m.group(1)), int(m.group(2))
        if pid == -1:
            continue  # junk
        if cam < 1:
            problems[str(f)] = "camera index must start at 1 (..._c1...)"
            continue
        raw.append((str(f), pid, cam - 1))
    if problems and unparsed is None:
        p, why = next(iter(problems.items()))
        raise DataError(f"{p}: {why}")
    if unparsed is not None:
        unparsed.update(problems)
    if not raw:
        raise DataError(f"folder {folder} holds only junk images (pid -1)")
    if relabel:
        pids = sorted({p for _, p, _ in raw if not (unlabeled_zero and p == 0)})
        mapping = {p: i for i, p in enumerate(pids)}
        return [Sample(path, -1 if (unlabeled_zero and p == 0) else mapping[p], c) for path, p, c in raw]
    return [Sample(path, p, c) for path, p, c in raw]


def market_style(root: str | Path, name: str = "market1501") -> ReIDDataset:
    """Market-1501 / DukeMTMC-reID / CUHK03-NP layout from ``root`` (never downloaded)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"data set folder {root} does not exist.\n{LAYOUT_HELP.format(root=root)}\n"
                        "Point --data-root (or DATA_ROOT=) at the folder that holds these three folders.")
    missing = [s for s in SPLITS if not (root / s).is_dir()]
    if missing:
        found = sorted(p.name for p in root.iterdir() if p.is_dir())[:8]
        raise DataError(f"{root} is not in Market-1501 layout: missing {', '.join(missing)} "
                        f"(found folders: {found or 'none'}).\n{LAYOUT_HELP.format(root=root)}")
    unparsed: dict[str, str] = {}
    try:
        train = _parse_folder(root / "bounding_box_train", relabel=True, unlabeled_zero=True, unparsed=unparsed)
        query = _parse_folder(root / "query", relabel=False, unlabeled_zero=False, unparsed=unparsed)
        gallery = _parse_folder(root / "bounding_box_test", relabel=False, unlabeled_zero=False, unparsed=unparsed)
    except DataError as e:
        raise DataError(f"{e}.\n{LAYOUT_HELP.format(root=root)}") from None
    if not any(s.pid >= 0 for s in train):
        raise DataError(f"{root / 'bounding_box_train'} has no labelled identity (only pid 0000 images).")
    return ReIDDataset(name, root, train, query, gallery, occluded_queries(root), unparsed)


def cuhk03_np(root: str | Path, kind: str = "detected") -> ReIDDataset:
    """CUHK03-NP (767 training / 700 test identities): ``root/detected`` or ``root/labeled``."""
    if kind not in ("detected", "labeled"):
        raise ValueError(f"CUHK03-NP kind must be 'detected' or 'labeled', got {kind!r}.")
    root = Path(root).expanduser()
    sub = root / kind
    if not sub.is_dir():
        raise DataError(f"CUHK03-NP folder {sub} does not exist: expected {root}/{{detected,labeled}}/ each with "
                        "bounding_box_train/, query/, bounding_box_test/.")
    return market_style(sub, f"cuhk03-np-{kind}")


KNOWN_DATASETS = ("synthreid", "market1501", "market", "dukemtmc", "duke", "dukemtmcreid", "cuhk03", "cuhk03-detected",
                  "cuhk03-labeled")


def check_dataset_name(name: str) -> str:
    """The lower-case key of a data set name this package reads; a ValueError naming the choices otherwise."""
    key = name.lower()
    if key not in KNOWN_DATASETS:
        raise ValueError(f"unknown data set {name!r}; use synthreid, market1501, dukemtmc, cuhk03-detected "
                         "or cuhk03-labeled.")
    return key


def build_dataset(name: str = "synthreid", root: str | Path | None = None, synth_size: str = "small",
                  verbose: bool = True, skip_bad_images: bool = False) -> ReIDDataset:
    """``synthreid`` (generated into ``data/synthreid/`` on first use), ``market1501``, ``dukemtmc``,
    ``cuhk03-detected`` or ``cuhk03-labeled`` from ``root``.

    A real data set is checked before anything trains (:mod:`henetlib.data.check`): every image decoded once,
    every name parsed; unusable files give one clear error, or are left out with ``skip_bad_images``."""
    key = check_dataset_name(name)
    if key == "synthreid":
        folder = generate(root or data_dir() / "synthreid", synth_size, verbose=verbose)
        ds = market_style(folder, f"synthreid-{synth_size}")
    elif root is None:
        raise DataError(f"data set {name!r} needs a root folder (--data-root); nothing is downloaded.")
    elif key in ("market1501", "market", "dukemtmc", "duke", "dukemtmcreid"):
        ds = market_style(root, "dukemtmc" if key.startswith("duke") else "market1501")
    else:  # cuhk03, cuhk03-detected, cuhk03-labeled
        ds = cuhk03_np(root, "labeled" if key.endswith("labeled") else "detected")
    if key != "synthreid" or ds.unparsed:
        ds = verify(ds, skip_bad_images, progress=verbose)
    if verbose:
        logger.info("%s", ds.summary())
    return ds


# ---------------------------------------------------------------------------------------------------------
# Images and preprocessing


def preprocess(images: torch.Tensor, size: tuple[int, int], flip: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 (B)CHW -> float, resized to ``size`` (antialiased bilinear), optionally flipped, normalised.

    The one preprocessing used by both loading paths.
    """
    x = images.float().div_(255.0)
    if tuple(x.shape[-2:]) != tuple(size):
        x = TF.resize(x, list(size), antialias=True)
    if flip is not None:
        if x.ndim == 3:
            x = torch.flip(x, dims=[-1]) if bool(flip) else x
        else:
            x = torch.where(flip.view(-1, 1, 1, 1).to(x.device), torch.flip(x, dims=[-1]), x)
    mean, std = _normalisation(x.device)
    return (x - mean) / std


_NORMALISATION = CACHES.cache("normalisation tensors", 8)


def _normalisation(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet's mean and std as (3, 1, 1) tensors on ``device``, made once: a host-to-device copy in every
    training step would wait for the GPU."""
    return _NORMALISATION.get(device, lambda: (torch.tensor(IMAGENET_MEAN, device=device).view(-1, 1, 1),
                                               torch.tensor(IMAGENET_STD, device=device).view(-1, 1, 1)))


class ImageDataset(Dataset):
    """Samples -> (image, pid, camid, index). ``train`` adds random flip and the run's erasing."""

    def __init__(self, samples: Sequence[Sample], size: tuple[int, int], train: bool = False,
                 erasing: ErasingConfig | None = None):
        self.samples = list(samples)
        self.size = tuple(size)
        self.train = train
        self.erase = erasing_transform(erasing) if (train and erasing is not None) else None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        s = self.samples[i]
        flip = torch.rand(()) < 0.5 if self.train else None
        x = preprocess(read_image(s.path), self.size, flip)
        if self.erase is not None:
            x = self.erase(x)
        return x, s.pid, s.camid, i


class RandomIdentitySampler(Sampler[list[int]]):
    """P x K batches: P identities, K images each (sampled with replacement when an identity has fewer).

    Every labelled identity is visited once per epoch, with K of its images: an epoch is one P x K pass
    over the identities (MGN-pytorch's definition; docs/READINGS.md). ``num_unlabeled`` extra unlabeled images (label -1)
    are appended to each batch when the split has some (they feed OIM's queue). Deterministic from seed
    and epoch; call :meth:`set_epoch` between epochs.
    """

    def __init__(self, samples: Sequence[Sample], p: int = 4, k: int = 4, num_unlabeled: int = 0, seed: int = 0,
                 rank: int = 0, world_size: int = 1):
        if p < 2 or k < 2:
            raise ValueError(f"the P x K sampler needs P >= 2 and K >= 2 for the triplet loss, got P={p}, K={k}.")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in a world of {world_size} processes.")
        self.by_pid: dict[int, list[int]] = defaultdict(list)
        self.unlabeled = []
        for i, s in enumerate(samples):
            (self.by_pid[s.pid] if s.pid >= 0 else self.unlabeled).append(i)
        if len(self.by_pid) < p * world_size:
            raise ValueError(f"P={p} identities per batch on each of {world_size} process(es) needs {p * world_size} "
                             f"identities, but the training split has only {len(self.by_pid)}; lower P or the "
                             "number of processes.")
        self.p, self.k, self.seed, self.epoch = p, k, seed, 0
        self.rank, self.world_size = rank, world_size
        self.num_unlabeled = num_unlabeled if self.unlabeled else 0
        if self.num_unlabeled * world_size > len(self.unlabeled):
            raise ValueError(f"{self.num_unlabeled} unlabeled images per batch on {world_size} process(es) needs "
                             f"{self.num_unlabeled * world_size}, but the split has {len(self.unlabeled)}.")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        groups = []
        for pid in sorted(self.by_pid):
            idx = self.by_pid[pid]
            sel = rng.permutation(idx) if len(idx) >= self.k else rng.choice(idx, self.k, replace=True)
            # one group of K per identity per epoch, as MGN-pytorch's sampler does (torchreid's
            # RandomIdentitySampler instead cuts each identity's images into groups of K and uses them all)
            groups.append((pid, [int(i) for i in sel[: self.k]]))
        order = rng.permutation(len(groups))
        # Every rank draws the same global batches of P * world_size identities and keeps its own P, so the
        # ranks see distinct identities; with one process this is the plain P x K sampler.
        per, mine = self.p * self.world_size, slice(self.rank * self.p, (self.rank + 1) * self.p)
        nu = self.num_unlabeled
        out = []
        for b in range(len(order) // per):
            batch = [i for g in order[b * per : (b + 1) * per][mine] for i in groups[g][1]]
            if nu:
                extra = rng.choice(self.unlabeled, nu * self.world_size, replace=False)
                batch += [int(i) for i in extra[self.rank * nu : (self.rank + 1) * nu]]
            out.append(batch)
        return out

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return len(self.by_pid) // (self.p * self.world_size)


def build_train_loader(ds: ReIDDataset, size: tuple[int, int], p: int, k: int, erasing: ErasingConfig | None,
                 seed: int = 0, workers: int = 2, num_unlabeled: int = 0, rank: int = 0,
                 world_size: int = 1) -> DataLoader:
    sampler = RandomIdentitySampler(ds.train, p, k, num_unlabeled, seed, rank, world_size)
    return DataLoader(ImageDataset(ds.train, size, train=True, erasing=erasing), batch_sampler=sampler,
                      num_workers=workers, persistent_workers=workers > 0, pin_memory=torch.cuda.is_available())


def build_test_loader(samples: Sequence[Sample], size: tuple[int, int], batch_size: int = 128,
                workers: int = 2) -> DataLoader:
    return DataLoader(ImageDataset(samples, size), batch_size=batch_size, shuffle=False, num_workers=workers)


# ---------------------------------------------------------------------------------------------------------
# Device-resident path


class DeviceStore:
    """Every image of a split decoded once into one uint8 tensor on ``device``.

    Images of differing sizes are resized to ``size`` while loading; when they all share one size they are
    stored as they are and resized per batch on the device.
    """

    def __init__(self, samples: Sequence[Sample], size: tuple[int, int], device: torch.device | str):
        self.samples = list(samples)
        self.size = tuple(size)
        self.device = torch.device(device)
        imgs = [read_image(s.path) for s in self.samples]
        shapes = {tuple(i.shape[-2:]) for i in imgs}
        if len(shapes) > 1:
            imgs = [TF.resize(i, list(size), antialias=True) for i in imgs]
        self.images = torch.stack(imgs).to(self.device)
        self.pids = torch.tensor([s.pid for s in self.samples], device=self.device)
        self.camids = torch.tensor([s.camid for s in self.samples], device=self.device)

    def __len__(self) -> int:
        return len(self.samples)

    def nbytes(self) -> int:
        return self.images.numel()

    def batch(self, index: Sequence[int] | torch.Tensor, train: bool = False, erasing: ErasingConfig | None = None,
              generator: torch.Generator | None = None, return_clean: bool = False):
        """Preprocessed images; ``train`` adds a random flip and the run's erasing. ``return_clean`` also
        returns the flipped images before erasing (R16's reconstruction target)."""
        idx = torch.as_tensor(index, device=self.device)
        imgs = self.images[idx]
        # the flips drawn as a tensor on the device, from the run's generator (no host round trip)
        flip = torch.rand(len(idx), generator=generator, device=self.device) < 0.5 if train else None
        clean = x = preprocess(imgs, self.size, flip)
        if train and erasing is not None and erasing.mode != "none":
            x = erase_batch(x, erasing, generator)
        return (x, clean) if return_clean else x

    def test_batches(self, batch_size: int = 256):
        """(images, pids, camids, index) batches in order, like the test DataLoader."""
        for s in range(0, len(self), batch_size):
            idx = torch.arange(s, min(s + batch_size, len(self)), device=self.device)
            yield self.batch(idx), self.pids[idx].cpu().numpy(), self.camids[idx].cpu().numpy(), idx
