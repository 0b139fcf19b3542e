"""FractalDB-style formula-driven images: a pretraining set with no people in it.

Kataoka et al. (ACCV 2020) pretrain on images of fractals drawn by iterated function systems (IFS) and reach
much of ImageNet pretraining's benefit. This is a small version of their recipe, written from the paper's
description: a *category* is an IFS of 2-8 random affine maps ``x -> A x + b`` (entries uniform in [-1, 1]),
each map chosen with probability proportional to ``|det A|``; a category is kept when its attractor fills
at least ``min_fill`` of its bounding box (their filling-rate filter, which drops degenerate point clouds).
Its *instances* scale one map's parameters by a factor in [0.8, 1.2] (their intra-category variation) and
are flipped at random. Points come from the chaos game, run for every image at once, and are drawn white
on black, fitted into the image with their aspect kept.

The set is written in the Market-1501 layout, so :func:`henetlib.data.datasets.market_style` reads it and
:mod:`henetlib.engine.pretrain` trains on it as on SynthReID's pretraining set: categories take the place of
identities (camera 1 for training images; held-out categories as query, camera 1, and gallery, camera 2,
for the pretraining's own retrieval check).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from henetlib.data.staging import staging_folder, swap_in
from henetlib.system.files import RunLock

logger = logging.getLogger(__name__)

MAX_MAPS = 8


@dataclass(frozen=True)
class FractalProfile:
    """Sizes of one FractalDB-style set."""

    name: str
    categories: int  # training categories ("identities")
    per_category: int  # training images per category
    test_categories: int = 100  # held out: one query and ``gallery_per_category`` gallery images each
    gallery_per_category: int = 5
    height: int = 128
    width: int = 64
    points: int = 3000  # chaos-game points per image
    min_fill: float = 0.12  # share of the bounding box the attractor must cover
    seed: int = 2  # SynthReID uses 0 (study) and 1 (pretraining)


PROFILES = {"fractaldb-600": FractalProfile("fractaldb-600", categories=600, per_category=10)}


def _sample_ifs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random IFS: maps (n, MAX_MAPS, 6) as (a, b, c, d, e, f) and cumulative probabilities (n, MAX_MAPS)."""
    maps = rng.uniform(-1, 1, (n, MAX_MAPS, 6))
    k = rng.integers(2, MAX_MAPS + 1, n)
    used = np.arange(MAX_MAPS)[None, :] < k[:, None]
    det = np.abs(maps[..., 0] * maps[..., 3] - maps[..., 1] * maps[..., 2]) * used
    prob = det / np.maximum(det.sum(1, keepdims=True), 1e-12)
    return maps, np.cumsum(prob, axis=1)


def _pick_map(cum: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One map index per IFS, drawn by its cumulative probabilities (never an unused, zero-probability map)."""
    return np.minimum((rng.random((len(cum), 1)) > cum).sum(1), MAX_MAPS - 1)


def _chaos(maps: np.ndarray, cum: np.ndarray, points: int, rng: np.random.Generator) -> np.ndarray:
    """(n, points, 2) chaos-game points of every IFS at once (after 20 burn-in steps)."""
    n = len(maps)
    xy = np.zeros((n, 2))
    out = np.empty((n, points, 2), dtype=np.float32)
    rows = np.arange(n)
    for t in range(points + 20):
        j = _pick_map(cum, rng)
        m = maps[rows, j]
        xy = np.stack([m[:, 0] * xy[:, 0] + m[:, 1] * xy[:, 1] + m[:, 4],
                       m[:, 2] * xy[:, 0] + m[:, 3] * xy[:, 1] + m[:, 5]], 1)
        xy = np.clip(np.nan_to_num(xy), -1e6, 1e6)
        if t >= 20:
            out[:, t - 20] = xy
    return out


def _raster(pts: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, h, w) images of the points fitted into h x w (aspect kept, 2 px margin), and each image's
    filling rate of its own bounding box."""
    n = len(pts)
    lo, hi = np.percentile(pts, 1, axis=1), np.percentile(pts, 99, axis=1)
    span = np.maximum(hi - lo, 1e-9)
    scale = np.minimum((w - 4) / span[:, 0], (h - 4) / span[:, 1])
    off = np.stack([(w - span[:, 0] * scale) / 2, (h - span[:, 1] * scale) / 2], 1)
    px = (pts - lo[:, None]) * scale[:, None, None] + off[:, None]
    x, y = np.floor(px[..., 0]).astype(int), np.floor(px[..., 1]).astype(int)
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)  # the 2% of outliers fall off, not onto the border
    img = np.zeros((n, h, w), dtype=np.uint8)
    img[np.broadcast_to(np.arange(n)[:, None], x.shape)[inside], y[inside], x[inside]] = 255
    box = np.maximum(span[:, 0] * scale, 1) * np.maximum(span[:, 1] * scale, 1)
    return img, (img > 0).sum((1, 2)) / box


def _categories(p: FractalProfile, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` IFS that pass the filling-rate filter."""
    keep_m, keep_c = [], []
    while sum(len(m) for m in keep_m) < n:
        maps, cum = _sample_ifs(rng, 4 * n)
        _, fill = _raster(_chaos(maps, cum, p.points, rng), p.height, p.width)
        ok = fill >= p.min_fill
        keep_m.append(maps[ok])
        keep_c.append(cum[ok])
    return np.concatenate(keep_m)[:n], np.concatenate(keep_c)[:n]


def _instances(maps: np.ndarray, cum: np.ndarray, per: int, p: FractalProfile,
               rng: np.random.Generator) -> np.ndarray:
    """``per`` images of every category: one map's parameters scaled by a factor in [0.8, 1.2], a random flip."""
    m = np.repeat(maps, per, axis=0).copy()
    c = np.repeat(cum, per, axis=0)
    first = _pick_map(c, rng)
    m[np.arange(len(m)), first] *= rng.uniform(0.8, 1.2, (len(m), 1))
    img, _ = _raster(_chaos(m, c, p.points, rng), p.height, p.width)
    flip = rng.random(len(img)) < 0.5
    img[flip] = img[flip, :, ::-1]
    return img


def generate(root: str | Path, profile: str | FractalProfile = "fractaldb-600", verbose: bool = True) -> Path:
    """Write the set into ``root/<profile>`` (Market-1501 layout) unless it is complete; atomic like SynthReID."""
    if isinstance(profile, str) and profile not in PROFILES:
        raise ValueError(f"unknown FractalDB-style set {profile!r}; use one of {sorted(PROFILES)}.")
    p = PROFILES[profile] if isinstance(profile, str) else profile
    dest = Path(root) / p.name
    if _complete(dest, p):
        return dest
    Path(root).mkdir(parents=True, exist_ok=True)
    with RunLock(root, f".{p.name}.lock"):  # two processes on one folder: one writes, the other finds it done
        return dest if _complete(dest, p) else _write(root, dest, p, verbose)


def _complete(dest: Path, p: FractalProfile) -> bool:
    stamp = dest / "fractaldb.json"
    return stamp.exists() and json.loads(stamp.read_text()).get("profile") == asdict(p)


def _write(root: str | Path, dest: Path, p: FractalProfile, verbose: bool) -> Path:
    rng = np.random.default_rng(p.seed)
    maps, cum = _categories(p, p.categories + p.test_categories, rng)
    tmp = staging_folder(root, p.name)
    train = _instances(maps[: p.categories], cum[: p.categories], p.per_category, p, rng)
    test = _instances(maps[p.categories:], cum[p.categories:], 1 + p.gallery_per_category, p, rng)

    def write(folder: str, pid: int, cam: int, idx: int, img: np.ndarray) -> None:
        ok, buf = cv2.imencode(".png", np.repeat(img[..., None], 3, axis=2))
        (tmp / folder / f"{pid:04d}_c{cam}s1_{idx:06d}_00.png").write_bytes(buf.tobytes())

    for i, img in enumerate(train):
        write("bounding_box_train", 1 + i // p.per_category, 1, i % p.per_category, img)
    per = 1 + p.gallery_per_category
    for i, img in enumerate(test):
        pid, j = p.categories + 1 + i // per, i % per
        write("query" if j == 0 else "bounding_box_test", pid, 1 if j == 0 else 2, j, img)
    (tmp / "fractaldb.json").write_text(json.dumps({"profile": asdict(p), "images": len(train) + len(test)}))
    swap_in(tmp, dest)
    if verbose:
        logger.info("FractalDB: wrote %d images of %d categories into %s", len(train) + len(test), len(maps), dest)
    return dest
