"""Random Polygon Erasing (section 3.3, Algorithm 1), Random Erasing, and RE+RPE.

RPE picks a rectangle as Random Erasing does (area ratio in [sl, sh], aspect ratio in [r, 1/r], centre so
that it fits), draws ``n`` points uniformly inside it and erases their convex hull ("minimum external
polygon"). Two readings of Algorithm 1 are ours: line 16 reads ``cnt <= p`` where ``n`` is meant, and the
``while True`` retry loop is bounded (``max_attempts``), leaving the image unchanged when nothing fits, as
torchvision's RandomErasing does. The aspect ratio is uniform in [r, 1/r] as Algorithm 1 line 7 writes it.

Fill values: ``"random"`` is the paper's Rand(0, 255) (Algorithm 1, line 22): uniform integers 0-255 per
pixel and channel. uint8 images take them as they are; float images, which in this project are normalised
with the ImageNet mean and std, take them through the same normalisation ((v / 255 - mean) / std), so the
fill is what an erased uint8 image would have become. ``"normal"`` is N(0, 1) noise in normalised space,
torchvision's RandomErasing fill (an option). A number or per-channel tuple fills a constant.

Random Erasing (Zhong et al. 2017b) is built the same way: a rectangle with area ratio in [sl, sh] and aspect
ratio uniform in [r, 1/r], filled like RPE, so RE and RPE differ only in the shape they erase.
``re_impl="torchvision"`` switches to torchvision's RandomErasing (log-uniform ratio, N(0, 1) fill).

:func:`erase_batch` (and :func:`random_polygon_erasing_batch`, :func:`random_erasing_batch`) does the same
for a BCHW batch on any device, every image with its own draw, in a fixed number of tensor operations with no
host synchronisation, split into :func:`draw_erasing` (the random numbers, plain torch.rand/randint
calls in a fixed order) and :func:`apply_erasing` (a pure function of them that
``torch.compile(fullgraph=True)`` traces and a CUDA graph can replay):

- lines 1-3 (apply with probability p): one uniform per image;
- lines 5-15 (the rectangle): all ``attempts`` draws of the bounded retry loop at once, plus a sentinel row;
  the first row that fits and is applied is taken by one min and one gather, the sentinel (a NaN box) when
  none is; RE's and RPE's rectangles in one pass, as (x0, y0, -x1, -y1). NaN fails every later comparison, so
  an image that is not erased needs no further test;
- RE's mask: x0 <= x < x1 and y0 <= y < y1 as one ``>=`` against an (H, W, 4) grid of x, y, -next(x),
  -next(y) (x < x1 iff the next float above x is <= x1);
- lines 16-20 (the n points): one (B, n, 2) draw;
- line 21 (the minimum external polygon) without a walk: edge i -> j is a candidate when every point lies
  left of or on it (a (B, n, n, n) cross-product test in float64 on the exact differences of the float32
  points, tolerance 1e-12 x the larger image side squared); each point's edge goes to its farthest
  candidate. Hull vertices get hull edges, points inside a zero edge, points on a hull edge that edge's line,
  so the hull is the intersection of the n half-planes: a pixel centre is inside when it lies left of or on
  every edge, one (B, n, H, W) comparison in float32;
- line 22 (the fill): one select per pixel, one fill draw shared by RE and RPE.

RE+RPE is 60 ATen operators, whatever B, H, W and n. On the same draws the masks and images are bit for bit
those of the reference loop implementation (tests/method/rpe_reference.py, 1,459 operators): each float
operation is the reference's or an exact rewrite of it (a negation, x * 1 + 0, a - b as the sum of a and -b,
an exact float64 difference rounded to float32). Two things differ from the reference, both recorded in
docs/READINGS.md: which uniform plays which part (one draw per kind for all erasings, a sentinel row, one
shared fill), and the hull on degenerate point sets. The reference's hull walk takes float32 cross products
with a tolerance far below their rounding, so on points along a line it can stop early and erase a half-plane
(half the image) where the hull has almost no area; the float64 test gives the exact hull there (checked
against rational arithmetic). Algorithm 1's own draws never hit that case: 20,000 images give the reference's
masks bit for bit.

This module is one concern over 500 lines on purpose: Algorithm 1 per image and its batched form must stay
draw-for-draw equal, and the module's source is part of every result's cache key
(:data:`henetlib.engine.cache.RESULT_MODULES`), so it is kept whole rather than split.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torchvision.transforms import RandomErasing

from henetlib.system.caches import CACHES

FillValue = str | float | Sequence[float]
FILLS = ("random", "normal")
RE_IMPLS = ("zhong", "torchvision")
# The normalisation every float image in this project carries (henetlib.data.datasets.preprocess).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _check_args(p: float, sl: float, sh: float, r: float, n: int | None = None) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p (erasing probability) must be in [0, 1], got {p}.")
    if not 0.0 < sl:
        raise ValueError(f"sl (smallest area ratio) must be > 0, got {sl}.")
    if sh > 1.0:
        raise ValueError(f"sh (largest area ratio) must be <= 1, got {sh}.")
    if sl > sh:
        raise ValueError(f"sl must be <= sh, got sl={sl} > sh={sh}.")
    if not 0.0 < r <= 1.0:
        raise ValueError(f"r (aspect ratio bound, ratios in [r, 1/r]) must be in (0, 1], got {r}.")
    if n is not None and n < 3:
        raise ValueError(f"n (number of polygon points) must be >= 3, got {n}.")


def _check_value(value: FillValue) -> None:
    if isinstance(value, str):
        if value not in FILLS:
            raise ValueError(f"value must be one of {FILLS}, a number or a per-channel tuple, got {value!r}.")


def random_fill(shape: Sequence[int], dtype: torch.dtype, device: torch.device | str, value: str = "random",
                generator: torch.Generator | None = None, channel_dim: int = 0) -> torch.Tensor:
    """Noise for an erased region. ``"random"``: Rand(0, 255) per pixel (normalised for float images);
    ``"normal"``: N(0, 1). ``channel_dim`` names the axis of ``shape`` that holds the 3 colour channels."""
    if dtype == torch.uint8:
        return torch.randint(0, 256, tuple(shape), generator=generator, device=device, dtype=torch.uint8)
    if value == "normal":
        return torch.randn(tuple(shape), generator=generator, device=device, dtype=torch.float32).to(dtype)
    v = torch.randint(0, 256, tuple(shape), generator=generator, device=device, dtype=torch.uint8).float() / 255
    view = [1] * len(shape)
    view[channel_dim] = -1
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(view)
    std = torch.tensor(IMAGENET_STD, device=device).view(view)
    return ((v - mean) / std).to(dtype)


@dataclass
class PolygonDraw:
    """One draw of Algorithm 1: the rectangle (x0, y0, x1, y1) in pixels and the n points (x, y)."""

    rect: tuple[float, float, float, float]
    points: np.ndarray  # (n, 2) float


def _uniform(generator: torch.Generator | None, lo: float, hi: float, size: int = 1) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(size, generator=generator, dtype=torch.float64)


def sample_polygon(h: int, w: int, sl: float = 0.02, sh: float = 0.45, r: float = 0.35, n: int = 20,
                   generator: torch.Generator | None = None, max_attempts: int = 100) -> PolygonDraw | None:
    """Algorithm 1, lines 5-20: the rectangle and the points, or ``None`` if nothing fit."""
    area = h * w
    for _ in range(max_attempts):
        se = _uniform(generator, sl, sh).item() * area
        re = _uniform(generator, r, 1.0 / r).item()
        we, he = math.sqrt(se / re), math.sqrt(se * re)
        if we <= w and he <= h:
            cx = _uniform(generator, we / 2, w - we / 2).item()
            cy = _uniform(generator, he / 2, h - he / 2).item()
            x0, x1 = max(cx - we / 2, 0.0), min(cx + we / 2, float(w))
            y0, y1 = max(cy - he / 2, 0.0), min(cy + he / 2, float(h))
            u = torch.rand(n, 2, generator=generator, dtype=torch.float64).numpy()
            pts = np.stack([x0 + (x1 - x0) * u[:, 0], y0 + (y1 - y0) * u[:, 1]], axis=1)
            return PolygonDraw((x0, y0, x1, y1), pts)
    return None


_SUBPIXEL = 4  # OpenCV's fixed-point shift: vertices at 1/16 px


def polygon_mask(points: np.ndarray, h: int, w: int) -> np.ndarray:
    """Boolean (h, w) mask of the convex hull of ``points`` (x, y), pixel (i, j) covering [j, j+1) x [i, i+1)."""
    hull = cv2.convexHull(np.asarray(points, dtype=np.float32))
    # Pixel centres sit at +0.5; OpenCV fills pixels whose integer coordinates lie inside, so shift by -0.5.
    fixed = np.round((hull.reshape(-1, 2) - 0.5) * (1 << _SUBPIXEL)).astype(np.int32)
    mask = np.zeros((h, w), dtype=np.uint8)
    cv2.fillConvexPoly(mask, fixed, 1, lineType=cv2.LINE_8, shift=_SUBPIXEL)
    return mask.astype(bool)


def _fill(img: torch.Tensor, mask: torch.Tensor, value: FillValue, generator: torch.Generator | None) -> None:
    """Write the fill into ``img`` (C, H, W) where ``mask`` (H, W) is set, in place."""
    c = img.shape[0]
    if isinstance(value, str):
        k = int(mask.sum())
        noise = random_fill((c, k), img.dtype, "cpu", value, generator, channel_dim=0)
        img[:, mask] = noise.to(img.device)
    else:
        vals = torch.as_tensor(value, dtype=torch.float32).reshape(-1)
        if vals.numel() not in (1, c):
            raise ValueError(f"value has {vals.numel()} entries but the image has {c} channels.")
        img[:, mask] = vals.reshape(-1, 1).expand(c, 1).to(img.dtype).to(img.device)


class RandomPolygonErasing(torch.nn.Module):
    """RPE as a torchvision-style transform on a CHW tensor (float or uint8); the input is not modified.

    Args (the paper's defaults): p = 0.5 erasing probability, sl = 0.02 and sh = 0.45 the area-ratio range,
    r = 0.35 the aspect-ratio bound, n = 20 points, value = "random" (see the module docstring).
    """

    def __init__(self, p: float = 0.5, sl: float = 0.02, sh: float = 0.45, r: float = 0.35, n: int = 20,
                 value: FillValue = "random", generator: torch.Generator | None = None):
        super().__init__()
        _check_args(p, sl, sh, r, n)
        _check_value(value)
        self.p, self.sl, self.sh, self.r, self.n, self.value = p, sl, sh, r, n, value
        self.generator = generator

    def get_params(self, h: int, w: int) -> PolygonDraw | None:
        return sample_polygon(h, w, self.sl, self.sh, self.r, self.n, self.generator)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if img.ndim != 3:
            raise ValueError(f"RandomPolygonErasing expects a CHW tensor, got shape {tuple(img.shape)}.")
        if torch.rand(1, generator=self.generator).item() >= self.p:
            return img
        draw = self.get_params(img.shape[-2], img.shape[-1])
        if draw is None:
            return img
        out = img.clone()
        mask = torch.from_numpy(polygon_mask(draw.points, img.shape[-2], img.shape[-1]))
        _fill(out, mask.to(img.device), self.value, self.generator)
        return out

    def extra_repr(self) -> str:
        return f"p={self.p}, sl={self.sl}, sh={self.sh}, r={self.r}, n={self.n}, value={self.value!r}"


class RandomRectangleErasing(torch.nn.Module):
    """Random Erasing as Zhong et al. (2017b) define it: area ratio in [sl, sh], aspect ratio uniform in
    [r, 1/r], Rand(0, 255) fill; the rectangle of Algorithm 1 (lines 5-15), erased whole."""

    def __init__(self, p: float = 0.5, sl: float = 0.02, sh: float = 0.4, r: float = 0.3,
                 value: FillValue = "random", generator: torch.Generator | None = None):
        super().__init__()
        _check_args(p, sl, sh, r)
        _check_value(value)
        self.p, self.sl, self.sh, self.r, self.value, self.generator = p, sl, sh, r, value, generator

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if img.ndim != 3:
            raise ValueError(f"RandomRectangleErasing expects a CHW tensor, got shape {tuple(img.shape)}.")
        if torch.rand(1, generator=self.generator).item() >= self.p:
            return img
        h, w = img.shape[-2:]
        draw = sample_polygon(h, w, self.sl, self.sh, self.r, 3, self.generator)
        if draw is None:
            return img
        x0, y0, x1, y1 = draw.rect
        ys = torch.arange(h) + 0.5
        xs = torch.arange(w) + 0.5
        mask = ((ys[:, None] >= y0) & (ys[:, None] < y1) & (xs[None, :] >= x0) & (xs[None, :] < x1))
        out = img.clone()
        _fill(out, mask.to(img.device), self.value, self.generator)
        return out

    def extra_repr(self) -> str:
        return f"p={self.p}, sl={self.sl}, sh={self.sh}, r={self.r}, value={self.value!r}"


def random_erasing(p: float = 0.5, sl: float = 0.02, sh: float = 0.4, r: float = 0.3,
                   value: FillValue = "random", impl: str = "zhong") -> torch.nn.Module:
    """Random Erasing (Zhong et al. 2017b) with Zhong's area range.

    ``impl="zhong"`` (default): uniform aspect ratio and the same fill as RPE. ``impl="torchvision"``:
    torchvision's RandomErasing (log-uniform aspect ratio; its "random" fill is N(0, 1)).
    """
    _check_args(p, sl, sh, r)
    if impl not in RE_IMPLS:
        raise ValueError(f"impl must be one of {RE_IMPLS}, got {impl!r}.")
    if impl == "torchvision":
        return RandomErasing(p=p, scale=(sl, sh), ratio=(r, 1.0 / r), value="random" if value == "normal" else value)
    return RandomRectangleErasing(p, sl, sh, r, value)


class REandRPE(torch.nn.Module):
    """RE+RPE: Random Erasing, then Random Polygon Erasing, each with its own probability."""

    def __init__(self, p_re: float = 0.5, p_rpe: float = 0.5, n: int = 20, re_impl: str = "zhong", **rpe_kwargs):
        super().__init__()
        self.re = random_erasing(p_re, value=rpe_kwargs.get("value", "random"), impl=re_impl)
        self.rpe = RandomPolygonErasing(p=p_rpe, n=n, **rpe_kwargs)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.rpe(self.re(img))


# ---------------------------------------------------------------------------------------------------------
# Batched versions: what the GPU training loop uses. A fixed number of tensor operations whatever the draws,
# no host synchronisation and no data-dependent shape: draw_erasing makes the random draws, apply_erasing is
# a pure function of them that torch.compile(fullgraph=True) traces and a CUDA graph replays.


@dataclass
class _Erasing:
    """One erasing of a batch: RE (``polygon=False``) or RPE, with its parameters."""

    polygon: bool
    p: float
    sl: float
    sh: float
    r: float
    n: int
    value: FillValue
    attempts: int
    log_ratio: bool  # torchvision's RandomErasing draws the aspect ratio log-uniformly


@dataclass
class ErasingDraws:
    """The random numbers of one batched erasing of K erasings (RE before RPE), drawn in this order:

    - ``apply``: (K, B, 1, 1, 1, 1) uniforms; image b is erased by erasing k when its draw is < p_k
      (Algorithm 1, lines 1-3).
    - ``rects``: (K, B, 1, 1, attempts + 1, 4) uniforms: area ratio, aspect ratio, centre x, centre y of every
      attempt (lines 6-11); the first attempt that fits is taken. The last row is a sentinel that no rectangle
      comes from: an image takes it (and is left unchanged) when it is not erased or nothing fits.
    - ``points``: per erasing, (B, n, 1, 1, 2) uniforms, the n points in the rectangle (RPE; lines 16-20),
      else None.
    - ``fills``: per erasing, the raw fill of the images' shape, Rand(0, 255) (uint8 for uint8 images, int64
      for float ones) or N(0, 1) noise (line 22), else None. Erasings with the same random fill share one
      draw (the same tensor): a pixel is filled once whichever erasing covers it.
    """

    apply: torch.Tensor
    rects: torch.Tensor
    points: list[torch.Tensor | None]
    fills: list[torch.Tensor | None]


_CONSTS = CACHES.cache("constant tensors", 256)


def _cached(key: tuple, make) -> torch.Tensor:
    """A constant tensor made once per key and device, so that a step makes no host-to-device copy (which a
    CUDA graph cannot capture); under torch.compile it is made in the graph."""
    if torch.compiler.is_compiling():
        return make()
    return _CONSTS.get(key, make)


def _const(values: Sequence, shape: Sequence[int], device: torch.device,
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    vals = tuple(values)
    return _cached(("const", vals, tuple(shape), str(device), dtype),
                   lambda: torch.tensor(vals, dtype=dtype, device=device).view(tuple(shape)))


def _centres(h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates x (1, 1, 1, w) and y (1, 1, h, 1): pixel (i, j) covers [j, j+1) x [i, i+1)."""
    x = _cached(("x", w, str(device)), lambda: (torch.arange(w, device=device) + 0.5).view(1, 1, 1, w))
    y = _cached(("y", h, str(device)), lambda: (torch.arange(h, device=device) + 0.5).view(1, 1, h, 1))
    return x, y


def _rect_grid(h: int, w: int, device: torch.device) -> torch.Tensor:
    """(h, w, 4): x, y, -next(x), -next(y) of every pixel centre, next() the next float up. Against a box
    (x0, y0, -x1, -y1), ``>=`` on all four is x0 <= x < x1 and y0 <= y < y1 (x < x1 iff next(x) <= x1), RE's
    half-open rectangle, in one comparison."""
    def make() -> torch.Tensor:
        x, y = _centres(h, w, device)
        inf = torch.tensor(math.inf, device=device)
        g = [x, y, -torch.nextafter(x, inf), -torch.nextafter(y, inf)]
        return torch.stack([t.expand(1, 1, h, w)[0, 0] for t in g], -1)
    return _cached(("grid4", h, w, str(device)), make)


def _draw(erasings: Sequence[_Erasing], shape: Sequence[int], dtype: torch.dtype, device: torch.device | str,
          generator: torch.Generator | None) -> ErasingDraws:
    if len({e.attempts for e in erasings}) > 1:
        raise ValueError("the erasings of one batch must make the same number of attempts; got "
                         f"{[e.attempts for e in erasings]}.")
    b, k = shape[0], len(erasings)
    if not k:
        return ErasingDraws(torch.empty(0, device=device), torch.empty(0, device=device), [], [])
    attempts = erasings[0].attempts
    apply = torch.rand(k, b, 1, 1, 1, 1, generator=generator, device=device)
    rects = torch.rand(k, b, 1, 1, attempts + 1, 4, generator=generator, device=device)
    points = [torch.rand(b, e.n, 1, 1, 2, generator=generator, device=device) if e.polygon else None
              for e in erasings]
    fills: list[torch.Tensor | None] = []
    shared: dict[str, torch.Tensor] = {}
    for e in erasings:
        raw = None
        if isinstance(e.value, str):
            raw = shared.get(e.value)
            if raw is None and (dtype == torch.uint8 or e.value == "random"):
                # int64 for float images (the same numbers: a range of 256 takes one 32-bit draw per value
                # whatever the dtype), so that the normalisation is one table lookup
                raw = torch.randint(0, 256, tuple(shape), generator=generator, device=device,
                                    dtype=torch.uint8 if dtype == torch.uint8 else torch.int64)
            elif raw is None:
                raw = torch.randn(tuple(shape), generator=generator, device=device, dtype=torch.float32)
            shared[e.value] = raw
        fills.append(raw)
    return ErasingDraws(apply, rects, points, fills)


def _sample_rects(u: torch.Tensor, a: torch.Tensor, erasings: Sequence[_Erasing], h: int, w: int) -> torch.Tensor:
    """Algorithm 1, lines 1-15, for K erasings at once: u (K, B, 1, 1, attempts + 1, 4) rectangle draws and a
    (K, B, 1, 1, 1, 1) apply draws -> the first rectangle that fits, (K, B, 1, 1, 1, 4) as (x0, y0, -x1, -y1),
    or NaN where the image is not erased (its draw >= p, or no attempt fits): every comparison with NaN fails,
    so neither the rectangle test nor the hull test needs the condition again. The last row of ``u`` is a
    sentinel scaled to NaN: it is never blocked, so the first unblocked row is the rectangle taken, or the
    sentinel's NaN box, in one gather."""
    dev, k, rows = u.device, len(erasings), u.shape[-2]
    scale, off, p = [], [], []
    for e in erasings:
        lo, hi = (math.log(e.r), math.log(1 / e.r)) if e.log_ratio else (e.r, 1 / e.r)  # line 7
        row = [e.sh - e.sl, hi - lo, 1.0, 1.0]  # the centre draws pass through unchanged (x * 1 + 0 == x)
        scale += row * (rows - 1) + [math.nan] * 4
        off += [e.sl, lo, 0.0, 0.0] * rows
        p += [e.p] * 4 * (rows - 1) + [2.0] * 4  # the sentinel row is never blocked by the apply draw
    shape = (k, 1, 1, 1, rows, 4)
    v = u * _const(scale, shape, dev) + _const(off, shape, dev)  # area ratio, aspect ratio (or its log), centre
    if any(e.log_ratio for e in erasings):
        is_log = _const([x for e in erasings for x in (False, e.log_ratio, False, False)],
                        (k, 1, 1, 1, 1, 4), dev, torch.bool)
        v = torch.where(is_log, v.exp(), v)
    se, re, u23 = (v * _const((h * w, 1, 1, 1), (4,), dev)).split([1, 1, 2], -1)  # target area Se, ratio re
    wh = torch.cat([se / re, se * re], -1).sqrt()  # We, He
    size = _const((w, h), (2,), dev)
    # blocked: too large or not applied (broadcast to the 4 box columns, so that min gives gather's index)
    blocked = (wh > size).any(-1, keepdim=True) | (a >= _const(p, shape, dev))
    first = blocked.min(-2, keepdim=True)[1]  # the first unblocked row: a fitting attempt, or the sentinel
    nhalf = wh / -2
    c = (size - wh) * u23 - nhalf  # centre We/2 + (W - We) u, so that the rectangle fits
    box = torch.cat([c + nhalf, nhalf - c], -1).clamp_min(_const((0, 0, -w, -h), (4,), dev))  # x0, y0, -x1, -y1
    return box.gather(-2, first)


def _hull_eps(h: float, w: float) -> float:
    """The collinearity tolerance of the hull test, in squared pixels: 1e-12 x the image's larger side squared.
    The cross products are taken in float64 from exact differences of the float32 points (rounding error
    below 1e-15 x side^2), so the tolerance only has to absorb that rounding; it decides nothing else."""
    return 1e-12 * max(h, w, 1.0) ** 2


def _hull_edges(p: torch.Tensor, eps: float) -> torch.Tensor:
    """Every point's hull edge: p (B, n, 1, 1, 2) -> (B, 2, n, 1, 1), P_succ(i) - P_i in p's dtype.

    Edge i -> r is a candidate when every point lies left of or on it (cross product >= -eps, a (B, n, n, n)
    test in float64); a point's successor is its farthest candidate. A hull vertex's is the next vertex
    counter-clockwise (y up), so its edge is a hull edge; a point inside has only itself (and its duplicates)
    as candidates and gets a zero edge, which every pixel passes; a point between two vertices on a hull edge
    gets that edge's line. The hull is the intersection of these half-planes. The differences are exact in
    float64 (the points are float32), so the test is exact up to ``eps`` and consistent: collinear points get
    both directions of their line, where a float32 walk can lose one (docs/READINGS.md).
    """
    dev = p.device
    # coordinate-major (B, 2, n, 1, 1): the sums over the two coordinates add two blocks instead of reducing a
    # size-2 innermost dimension, which is 4-6x slower on the CPU in float64
    q = p.permute(0, 4, 1, 2, 3).to(torch.float64, memory_format=torch.contiguous_format)
    d = q.transpose(2, 3) - q  # (B, 2, i, r, 1): P_r - P_i, exact
    # |P_r - P_i|: orders the candidates as their squared length does (distinct float32 points differ far
    # beyond the square root's rounding), in one operator
    dist = torch.linalg.vector_norm(d, dim=1, keepdim=True)  # (B, 1, i, r, 1)
    js = d.transpose(3, 4).flip(1) * _const((-1.0, 1.0), (1, 2, 1, 1, 1), dev, torch.float64)  # (B, 2, i, 1, s)
    neg_cross = (d * js).sum(1, keepdim=True)  # (B, 1, i, r, s): -(d_r x d_s), s right of i -> r when > 0
    valid = (neg_cross <= eps).all(4, keepdim=True)  # r = i is always a candidate, of length 0
    # -1 for a non-candidate, broadcast to (B, 2, n, n, 1) so that the argmax is gather's index twice
    succ = torch.where(valid, dist, _const((-1.0, -1.0), (1, 2, 1, 1, 1), dev, torch.float64)).argmax(3, keepdim=True)
    return d.gather(3, succ).to(p.dtype)  # (B, 2, n, 1, 1): the float32 difference, rounded from the exact one


def _hull_mask(p: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, n, 1, 1, 2) points -> (B, 1, h, w) mask of their convex hull: a pixel is inside when it lies left of
    or on every point's hull edge, one (B, n, h, w) comparison."""
    ex, ey = _hull_edges(p, _hull_eps(h, w)).unbind(1)  # edge vectors (B, n, 1, 1)
    ax, ay = p.unbind(-1)
    xs, ys = _centres(h, w, p.device)
    return (ex * (ys - ay) >= ey * (xs - ax)).all(1, keepdim=True)


def convex_hull_edges(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Points (B, n, 2) -> edge starts and ends (B, n, 2): point i -> its hull successor, counter-clockwise
    with y up (clockwise on screen); points inside get a zero-length edge (start == end), points between two
    vertices on a hull edge an edge along it. For drawing: the tolerance comes from the points' extent."""
    b, n, _ = points.shape
    p = points.reshape(b, n, 1, 1, 2)
    side = float(points.abs().amax()) if points.numel() else 1.0
    return points, (p + _hull_edges(p, _hull_eps(side, side)).permute(0, 2, 3, 4, 1)).view(b, n, 2)


def polygon_masks(points: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, n, 2) points -> (B, h, w) bool masks of their convex hulls, pixel centres at +0.5."""
    b, n, _ = points.shape
    return _hull_mask(points.reshape(b, n, 1, 1, 2), h, w).squeeze(1)


def _fill_values(raw: torch.Tensor | None, value: FillValue, dtype: torch.dtype, c: int,
                 device: torch.device) -> torch.Tensor:
    """The fill from its raw draw: Rand(0, 255) through the normalisation for float images (see the module
    docstring), N(0, 1), or a constant (1, C, 1, 1)."""
    if raw is None:
        vals = [float(value)] if isinstance(value, (int, float)) else [float(v) for v in value]
        if len(vals) not in (1, c):
            raise ValueError(f"value has {len(vals)} entries but the images have {c} channels.")
        return _const(vals, (1, -1, 1, 1), device, dtype)
    if dtype == torch.uint8:
        return raw
    if raw.dtype == torch.int64:  # Rand(0, 255): (v / 255 - mean) / std, looked up in a (C, 256) table
        b, _, h, _ = raw.shape

        def make() -> torch.Tensor:
            v = torch.arange(256, device=device, dtype=torch.uint8)
            mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, -1, 1, 1)
            std = torch.tensor(IMAGENET_STD, device=device).view(1, -1, 1, 1)
            return ((v / 255 - mean) / std).expand(b, -1, h, 256)  # the same float operations per value

        raw = _cached(("lut", b, h, str(device)), make).gather(3, raw)
    return raw.to(dtype)


def _apply(images: torch.Tensor, erasings: Sequence[_Erasing], draws: ErasingDraws, return_mask: bool):
    """The pure part: masks from the draws and the erased images (later erasings overwrite earlier ones)."""
    _, c, h, w = images.shape
    dev = images.device
    if not erasings:
        out = images
        mask = torch.zeros(images.shape[0], 1, h, w, dtype=torch.bool, device=dev)
        return (out, mask.squeeze(1)) if return_mask else out
    boxes = _sample_rects(draws.rects, draws.apply, erasings, h, w).unbind(0)  # RE's and RPE's in one pass
    masks = []
    for e, box, u in zip(erasings, boxes, draws.points, strict=True):  # box (B, 1, 1, 1, 4), NaN: no erasing
        if e.polygon:  # Algorithm 1 lines 16-21: n points in the rectangle, their hull (MinPolygon)
            lo, nhi = box.split(2, -1)  # x0, y0 and -x1, -y1
            masks.append(_hull_mask(lo - (nhi + lo) * u, h, w))  # x0 + (x1 - x0) u, bit for bit
        else:  # x0 <= x < x1 and y0 <= y < y1: one comparison against the (h, w, 4) grid
            masks.append((_rect_grid(h, w, dev) >= box).all(-1))
    values = [e.value for e in erasings]
    if len(masks) > 1 and all(isinstance(v, str) for v in values) and len(set(values)) == 1:
        # one fill for all (one shared draw): where any erasing covers a pixel, it takes the fill
        any_mask = masks[0]
        for m in masks[1:]:
            any_mask = any_mask | m
        out = torch.where(any_mask, _fill_values(draws.fills[-1], values[0], images.dtype, c, dev), images)
    else:
        out, any_mask = images, None
        for e, m, f in zip(erasings, masks, draws.fills, strict=True):
            out = torch.where(m, _fill_values(f, e.value, images.dtype, c, dev), out)
            if return_mask:
                any_mask = m if any_mask is None else any_mask | m
    return (out, any_mask.squeeze(1)) if return_mask else out


def random_polygon_erasing_batch(images: torch.Tensor, p: float = 0.5, sl: float = 0.02, sh: float = 0.45,
                                 r: float = 0.35, n: int = 20, value: FillValue = "random",
                                 generator: torch.Generator | None = None, attempts: int = 10,
                                 return_mask: bool = False):
    """RPE on a BCHW batch, each image with its own draw; returns a new tensor (and the masks if asked).

    ``generator`` must live on the images' device. An image none of whose ``attempts`` rectangle draws
    fits is left unchanged (with the defaults at 384 x 128 that happens with probability below 1e-6).
    """
    _check_args(p, sl, sh, r, n)
    _check_value(value)
    e = [_Erasing(True, p, sl, sh, r, n, value, attempts, False)]
    return _apply(images, e, _draw(e, images.shape, images.dtype, images.device, generator), return_mask)


def random_erasing_batch(images: torch.Tensor, p: float = 0.5, sl: float = 0.02, sh: float = 0.4,
                         r: float = 0.3, value: FillValue = "random", generator: torch.Generator | None = None,
                         attempts: int = 10, return_mask: bool = False, impl: str = "zhong"):
    """Random Erasing on a BCHW batch, one draw per image.

    ``impl="zhong"``: aspect ratio uniform in [r, 1/r] (Zhong et al.); ``"torchvision"``: log-uniform ratio
    and N(0, 1) fill, as torchvision's RandomErasing.
    """
    _check_args(p, sl, sh, r)
    _check_value(value)
    if impl not in RE_IMPLS:
        raise ValueError(f"impl must be one of {RE_IMPLS}, got {impl!r}.")
    e = [_rect_erasing(p, value, impl, sl, sh, r, attempts)]
    return _apply(images, e, _draw(e, images.shape, images.dtype, images.device, generator), return_mask)


def _rect_erasing(p: float, value: FillValue, impl: str, sl: float = 0.02, sh: float = 0.4, r: float = 0.3,
                  attempts: int = 10) -> _Erasing:
    if impl == "torchvision" and value == "random":
        value = "normal"
    return _Erasing(False, p, sl, sh, r, 3, value, attempts, impl == "torchvision")


@dataclass
class ErasingConfig:
    """The augmentation of a run: ``mode`` is "none", "re", "rpe" or "re+rpe" (Fig. 4's settings)."""

    mode: str = "none"
    p: float = 0.5
    n: int = 20
    p_re: float | None = None  # RE's probability in "re+rpe"; None: same as p
    fill: str = "random"  # "random": Rand(0, 255) (Algorithm 1); "normal": N(0, 1) in normalised space
    re_impl: str = "zhong"  # "zhong": uniform aspect ratio, RPE's fill; "torchvision": its RandomErasing

    def __post_init__(self) -> None:
        if self.mode not in ("none", "re", "rpe", "re+rpe"):
            raise ValueError(f"erasing mode must be 'none', 're', 'rpe' or 're+rpe', got {self.mode!r}.")
        if self.fill not in FILLS:
            raise ValueError(f"erasing fill must be one of {FILLS}, got {self.fill!r}.")
        if self.re_impl not in RE_IMPLS:
            raise ValueError(f"re_impl must be one of {RE_IMPLS}, got {self.re_impl!r}.")
        _check_args(self.p, 0.02, 0.45, 0.35, self.n)

    def label(self) -> str:
        return {"none": "none", "re": "RE", "rpe": f"RPE({self.n})", "re+rpe": f"RE+RPE({self.n})"}[self.mode]


def _erasings(cfg: ErasingConfig) -> list[_Erasing]:
    out = []
    if cfg.mode in ("re", "re+rpe"):
        p = cfg.p if (cfg.mode == "re" or cfg.p_re is None) else cfg.p_re
        out.append(_rect_erasing(p, cfg.fill, cfg.re_impl))
    if cfg.mode in ("rpe", "re+rpe"):
        out.append(_Erasing(True, cfg.p, 0.02, 0.45, 0.35, cfg.n, cfg.fill, 10, False))
    return out


def draw_erasing(shape: Sequence[int], cfg: ErasingConfig, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> ErasingDraws:
    """The random draws of a run's erasing for images of ``shape`` (B, C, H, W): plain torch.rand / randint /
    randn calls in a fixed order (see :class:`ErasingDraws`)."""
    return _draw(_erasings(cfg), shape, dtype, device, generator)


def apply_erasing(images: torch.Tensor, draws: ErasingDraws, cfg: ErasingConfig, return_mask: bool = False):
    """The pure part of :func:`erase_batch`: no generator, no host synchronisation, a fixed set of tensor
    operations (torch.compile(fullgraph=True) traces it; a CUDA graph replays it)."""
    return _apply(images, _erasings(cfg), draws, return_mask)


def erase_batch(images: torch.Tensor, cfg: ErasingConfig, generator: torch.Generator | None = None,
                return_mask: bool = False):
    """Apply a run's erasing to a batch (the GPU-resident training path); masks are OR-ed for RE+RPE.
    Equal to ``apply_erasing(images, draw_erasing(images.shape, cfg, generator, ...), cfg)``."""
    draws = draw_erasing(images.shape, cfg, generator, images.device, images.dtype)
    return apply_erasing(images, draws, cfg, return_mask)


def erasing_transform(cfg: ErasingConfig) -> torch.nn.Module | None:
    """The per-image transform of a run's erasing (the DataLoader path)."""
    if cfg.mode == "none":
        return None
    if cfg.mode == "re":
        return random_erasing(cfg.p, value=cfg.fill, impl=cfg.re_impl)
    if cfg.mode == "rpe":
        return RandomPolygonErasing(p=cfg.p, n=cfg.n, value=cfg.fill)
    return REandRPE(p_re=cfg.p if cfg.p_re is None else cfg.p_re, p_rpe=cfg.p, n=cfg.n, re_impl=cfg.re_impl,
                    value=cfg.fill)


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Vertices (k, 2) of the convex hull of ``points`` (x, y), in order (for drawing Algorithm 1's steps)."""
    return cv2.convexHull(np.asarray(points, dtype=np.float32)).reshape(-1, 2)
