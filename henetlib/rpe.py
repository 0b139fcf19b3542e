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
torchvision's RandomErasing fill (our earlier default; kept as an option). A number or per-channel tuple
fills a constant.

Random Erasing (Zhong et al. 2017b) is built the same way: a rectangle with area ratio in [sl, sh] and aspect
ratio uniform in [r, 1/r], filled like RPE, so RE and RPE differ only in the shape they erase.
``re_impl="torchvision"`` switches to torchvision's RandomErasing (log-uniform ratio, N(0, 1) fill).

:func:`random_polygon_erasing_batch` does the same for a BCHW batch on any device, every image with its own
draw, without a Python loop over images: hulls by a batched gift-wrapping over the n points, membership of
every pixel by the sign of its cross product with every hull edge, the fill as one masked write.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torchvision.transforms import RandomErasing

FillValue = str | float | Sequence[float]
FILLS = ("random", "normal")
RE_IMPLS = ("zhong", "torchvision")
# The normalisation every float image in this project carries (henetlib.data.preprocess).
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
# Batched versions: what the GPU training loop uses.


def _sample_rects(b: int, h: int, w: int, sl: float, sh: float, r: float, device: torch.device,
                  generator: torch.Generator | None, attempts: int, log_ratio: bool) -> tuple[torch.Tensor, ...]:
    """Per image: the first of ``attempts`` rectangle draws that fits. Returns (x0, y0, x1, y1, ok)."""
    area = h * w
    u = torch.rand(b, attempts, 4, generator=generator, device=device)
    se = (sl + (sh - sl) * u[..., 0]) * area
    if log_ratio:  # torchvision's RandomErasing draws the ratio log-uniformly
        re = torch.exp(math.log(r) + (math.log(1 / r) - math.log(r)) * u[..., 1])
    else:  # Algorithm 1 line 7: uniform in [r, 1/r]
        re = r + (1 / r - r) * u[..., 1]
    we, he = torch.sqrt(se / re), torch.sqrt(se * re)
    fits = (we <= w) & (he <= h)
    first = torch.argmax(fits.to(torch.uint8), dim=1)  # index of the first fitting draw (0 if none)
    ok = fits.any(1)
    take = lambda t: t.gather(1, first[:, None]).squeeze(1)  # noqa: E731
    we, he, u2, u3 = take(we), take(he), take(u[..., 2]), take(u[..., 3])
    cx = we / 2 + (w - we) * u2
    cy = he / 2 + (h - he) * u3
    x0, x1 = (cx - we / 2).clamp_min(0), (cx + we / 2).clamp_max(w)
    y0, y1 = (cy - he / 2).clamp_min(0), (cy + he / 2).clamp_max(h)
    return x0, y0, x1, y1, ok


def convex_hull_edges(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched gift wrapping: points (B, n, 2) -> edge starts and ends (B, n, 2), counter-clockwise.

    The walk takes n steps; once it has closed the hull it goes round again, so every hull edge appears at
    least once and repeats are harmless for the inside test. O(B n^3) work, tiny for n <= 64.
    """
    b, n, _ = points.shape
    ar = torch.arange(b, device=points.device)
    # Start at the lowest-x point (ties: lowest y): always a hull vertex.
    key = points[..., 0] * 1e6 + points[..., 1]
    cur = key.argmin(1)
    starts, ends = [], []
    scale = (points.amax(1) - points.amin(1)).abs().amax(1).clamp_min(1e-6)  # (B,)
    eps = 1e-9 * scale * scale
    for _ in range(n):
        p = points[ar, cur]  # (B, 2)
        d = points - p[:, None]  # (B, n, 2): candidate directions
        # cross[b, r, s] = (r - p) x (s - p): s lies right of p -> r when negative
        cross = d[:, :, None, 0] * d[:, None, :, 1] - d[:, :, None, 1] * d[:, None, :, 0]
        len2 = (d * d).sum(-1)
        valid = (cross >= -eps[:, None, None]).all(2) & (len2 > eps[:, None])
        # among valid candidates (all points left of or on p -> r), the farthest handles collinear points
        score = torch.where(valid, len2, torch.full_like(len2, -1.0))
        nxt = score.argmax(1)
        nxt = torch.where(valid.any(1), nxt, cur)
        starts.append(p)
        ends.append(points[ar, nxt])
        cur = nxt
    return torch.stack(starts, 1), torch.stack(ends, 1)


def polygon_masks(points: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, n, 2) points -> (B, h, w) bool masks of their convex hulls, pixel centres at +0.5."""
    a, e = convex_hull_edges(points)
    dev = points.device
    ys = torch.arange(h, device=dev, dtype=points.dtype) + 0.5
    xs = torch.arange(w, device=dev, dtype=points.dtype) + 0.5
    inside = torch.ones(points.shape[0], h, w, dtype=torch.bool, device=dev)
    for k in range(a.shape[1]):  # loop over edges, each a (B, h, w) comparison
        ex = (e[:, k, 0] - a[:, k, 0])[:, None, None]
        ey = (e[:, k, 1] - a[:, k, 1])[:, None, None]
        px = xs[None, None, :] - a[:, k, 0, None, None]
        py = ys[None, :, None] - a[:, k, 1, None, None]
        inside &= ex * py - ey * px >= 0
    return inside


def _fill_batch(images: torch.Tensor, mask: torch.Tensor, value: FillValue,
                generator: torch.Generator | None) -> torch.Tensor:
    m = mask[:, None]  # (B, 1, H, W)
    if isinstance(value, str):
        fill = random_fill(images.shape, images.dtype, images.device, value, generator, channel_dim=1)
    else:
        vals = torch.as_tensor(value, dtype=images.dtype, device=images.device).reshape(1, -1, 1, 1)
        fill = vals.expand_as(images)
    return torch.where(m, fill, images)


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
    b, _, h, w = images.shape
    dev = images.device
    apply = torch.rand(b, generator=generator, device=dev) < p
    x0, y0, x1, y1, ok = _sample_rects(b, h, w, sl, sh, r, dev, generator, attempts, log_ratio=False)
    u = torch.rand(b, n, 2, generator=generator, device=dev)
    pts = torch.stack([x0[:, None] + (x1 - x0)[:, None] * u[..., 0],
                       y0[:, None] + (y1 - y0)[:, None] * u[..., 1]], dim=-1)
    mask = polygon_masks(pts, h, w) & (apply & ok)[:, None, None]
    out = _fill_batch(images, mask, value, generator)
    return (out, mask) if return_mask else out


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
    if impl == "torchvision" and value == "random":
        value = "normal"
    b, _, h, w = images.shape
    dev = images.device
    apply = torch.rand(b, generator=generator, device=dev) < p
    x0, y0, x1, y1, ok = _sample_rects(b, h, w, sl, sh, r, dev, generator, attempts,
                                       log_ratio=impl == "torchvision")
    ys = torch.arange(h, device=dev)[None, :, None] + 0.5
    xs = torch.arange(w, device=dev)[None, None, :] + 0.5
    mask = ((xs >= x0[:, None, None]) & (xs < x1[:, None, None]) & (ys >= y0[:, None, None])
            & (ys < y1[:, None, None]) & (apply & ok)[:, None, None])
    out = _fill_batch(images, mask, value, generator)
    return (out, mask) if return_mask else out


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


def erase_batch(images: torch.Tensor, cfg: ErasingConfig, generator: torch.Generator | None = None,
                return_mask: bool = False):
    """Apply a run's erasing to a batch (the GPU-resident training path); masks are OR-ed for RE+RPE."""
    mask = torch.zeros(images.shape[0], *images.shape[-2:], dtype=torch.bool, device=images.device)
    if cfg.mode in ("re", "re+rpe"):
        p = cfg.p if (cfg.mode == "re" or cfg.p_re is None) else cfg.p_re
        images, m = random_erasing_batch(images, p=p, value=cfg.fill, generator=generator, return_mask=True,
                                         impl=cfg.re_impl)
        mask |= m
    if cfg.mode in ("rpe", "re+rpe"):
        images, m = random_polygon_erasing_batch(images, p=cfg.p, n=cfg.n, value=cfg.fill, generator=generator,
                                                 return_mask=True)
        mask |= m
    return (images, mask) if return_mask else images


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


def area_statistics(h: int = 384, w: int = 128, n_values: Sequence[int] = (3, 5, 10, 20, 40, 80),
                    draws: int = 500, seed: int = 0, sl: float = 0.02, sh: float = 0.45,
                    r: float = 0.35) -> list[dict[str, float]]:
    """Per n, over ``draws`` draws of Algorithm 1: the mean erased fraction of the image and the mean share of
    the sampled rectangle the polygon covers (which tends to 1 as n grows: RPE approaches RE)."""
    rows = []
    for n in n_values:
        g = torch.Generator().manual_seed(seed)
        fracs, fills = [], []
        for _ in range(draws):
            d = sample_polygon(h, w, sl, sh, r, int(n), g)
            if d is None:
                continue
            m = polygon_mask(d.points, h, w)
            x0, y0, x1, y1 = d.rect
            fracs.append(m.mean())
            fills.append(m.sum() / max((x1 - x0) * (y1 - y0), 1e-9))
        rows.append({"n": int(n), "erased_fraction": float(np.mean(fracs)),
                     "erased_fraction_sd": float(np.std(fracs)), "rectangle_coverage": float(np.mean(fills))})
    return rows
