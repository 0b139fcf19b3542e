"""The batched erasing of henetlib/method/rpe.py as it was before issue 20 (commit 0f47ba5), copied verbatim but
for names: the reference tests/method/test_rpe.py checks the lean version against bit for bit, and
benchmarks/bench_rpe.py counts the operators of (``_reference_erase_batch``). Not a test module: it imports
nothing of tests/, so a script can load it by path."""

import math
from fractions import Fraction

import torch

from henetlib.method.rpe import _erasings

# ---------------------------------------------------------------------------------------------------------
# Reference: the batched path of henetlib/rpe.py as it was before issue 20 (commit 0f47ba5), copied verbatim
# but for names, so that the lean version can be checked bit for bit against it. Its arithmetic is split into
# helpers (rectangles, points, rectangle mask, pixel test, normalisation) that the former functions call on
# their own draws and _reference_from_draws calls on the lean version's.

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def _reference_random_fill(shape, dtype, device, value="random", generator=None, channel_dim=0):
    if dtype == torch.uint8:
        return torch.randint(0, 256, tuple(shape), generator=generator, device=device, dtype=torch.uint8)
    if value == "normal":
        return torch.randn(tuple(shape), generator=generator, device=device, dtype=torch.float32).to(dtype)
    v = torch.randint(0, 256, tuple(shape), generator=generator, device=device, dtype=torch.uint8)
    return _reference_normalise(v, dtype, channel_dim)


def _reference_normalise(v, dtype, channel_dim):
    """Rand(0, 255) (uint8) through the ImageNet normalisation, as the former fill did it."""
    v = v.float() / 255
    view = [1] * v.dim()
    view[channel_dim] = -1
    mean = torch.tensor(_MEAN, device=v.device).view(view)
    std = torch.tensor(_STD, device=v.device).view(view)
    return ((v - mean) / std).to(dtype)


def _reference_sample_rects(b, h, w, sl, sh, r, device, generator, attempts, log_ratio):
    u = torch.rand(b, attempts, 4, generator=generator, device=device)
    return _reference_rects(u, h, w, sl, sh, r, log_ratio)


def _reference_rects(u, h, w, sl, sh, r, log_ratio):
    """The former rectangle arithmetic on given uniforms u (B, attempts, 4) (split out of the function above
    so that it can be fed the lean version's draws)."""
    area = h * w
    se = (sl + (sh - sl) * u[..., 0]) * area
    if log_ratio:
        re = torch.exp(math.log(r) + (math.log(1 / r) - math.log(r)) * u[..., 1])
    else:
        re = r + (1 / r - r) * u[..., 1]
    we, he = torch.sqrt(se / re), torch.sqrt(se * re)
    fits = (we <= w) & (he <= h)
    first = torch.argmax(fits.to(torch.uint8), dim=1)
    ok = fits.any(1)
    take = lambda t: t.gather(1, first[:, None]).squeeze(1)  # noqa: E731
    we, he, u2, u3 = take(we), take(he), take(u[..., 2]), take(u[..., 3])
    cx = we / 2 + (w - we) * u2
    cy = he / 2 + (h - he) * u3
    x0, x1 = (cx - we / 2).clamp_min(0), (cx + we / 2).clamp_max(w)
    y0, y1 = (cy - he / 2).clamp_min(0), (cy + he / 2).clamp_max(h)
    return x0, y0, x1, y1, ok


def _reference_convex_hull_edges(points):
    b, n, _ = points.shape
    ar = torch.arange(b, device=points.device)
    key = points[..., 0] * 1e6 + points[..., 1]
    cur = key.argmin(1)
    starts, ends = [], []
    scale = (points.amax(1) - points.amin(1)).abs().amax(1).clamp_min(1e-6)
    eps = 1e-9 * scale * scale
    for _ in range(n):
        p = points[ar, cur]
        d = points - p[:, None]
        cross = d[:, :, None, 0] * d[:, None, :, 1] - d[:, :, None, 1] * d[:, None, :, 0]
        len2 = (d * d).sum(-1)
        valid = (cross >= -eps[:, None, None]).all(2) & (len2 > eps[:, None])
        score = torch.where(valid, len2, torch.full_like(len2, -1.0))
        nxt = score.argmax(1)
        nxt = torch.where(valid.any(1), nxt, cur)
        starts.append(p)
        ends.append(points[ar, nxt])
        cur = nxt
    return torch.stack(starts, 1), torch.stack(ends, 1)


def _reference_polygon_masks(points, h, w):
    return _reference_edge_masks(*_reference_convex_hull_edges(points), h, w)


def _reference_edge_masks(a, e, h, w):
    """The former pixel test: left of or on every edge a[:, k] -> e[:, k] (B, K, 2)."""
    dev = a.device
    ys = torch.arange(h, device=dev, dtype=a.dtype) + 0.5
    xs = torch.arange(w, device=dev, dtype=a.dtype) + 0.5
    inside = torch.ones(a.shape[0], h, w, dtype=torch.bool, device=dev)
    for k in range(a.shape[1]):
        ex = (e[:, k, 0] - a[:, k, 0])[:, None, None]
        ey = (e[:, k, 1] - a[:, k, 1])[:, None, None]
        px = xs[None, None, :] - a[:, k, 0, None, None]
        py = ys[None, :, None] - a[:, k, 1, None, None]
        inside &= ex * py - ey * px >= 0
    return inside


def _reference_fill_batch(images, mask, value, generator):
    m = mask[:, None]
    if isinstance(value, str):
        fill = _reference_random_fill(images.shape, images.dtype, images.device, value, generator, channel_dim=1)
    else:
        fill = _reference_constant_fill(images, value)
    return torch.where(m, fill, images)


def _reference_constant_fill(images, value):
    return torch.as_tensor(value, dtype=images.dtype, device=images.device).reshape(1, -1, 1, 1).expand_as(images)


def _reference_points(x0, y0, x1, y1, u):
    """RPE's n points in the rectangle from uniforms u (B, n, 2)."""
    return torch.stack([x0[:, None] + (x1 - x0)[:, None] * u[..., 0],
                        y0[:, None] + (y1 - y0)[:, None] * u[..., 1]], dim=-1)


def _reference_rect_mask(x0, y0, x1, y1, live, h, w):
    """RE's half-open rectangle, where ``live`` (applied and fitted)."""
    ys = torch.arange(h, device=x0.device)[None, :, None] + 0.5
    xs = torch.arange(w, device=x0.device)[None, None, :] + 0.5
    return ((xs >= x0[:, None, None]) & (xs < x1[:, None, None]) & (ys >= y0[:, None, None])
            & (ys < y1[:, None, None]) & live[:, None, None])


def _reference_rpe_batch(images, p=0.5, sl=0.02, sh=0.45, r=0.35, n=20, value="random", generator=None,
                         attempts=10, return_mask=False):
    b, _, h, w = images.shape
    dev = images.device
    apply = torch.rand(b, generator=generator, device=dev) < p
    x0, y0, x1, y1, ok = _reference_sample_rects(b, h, w, sl, sh, r, dev, generator, attempts, log_ratio=False)
    u = torch.rand(b, n, 2, generator=generator, device=dev)
    mask = _reference_polygon_masks(_reference_points(x0, y0, x1, y1, u), h, w) & (apply & ok)[:, None, None]
    out = _reference_fill_batch(images, mask, value, generator)
    return (out, mask) if return_mask else out


def _reference_re_batch(images, p=0.5, sl=0.02, sh=0.4, r=0.3, value="random", generator=None, attempts=10,
                        return_mask=False, impl="zhong"):
    if impl == "torchvision" and value == "random":
        value = "normal"
    b, _, h, w = images.shape
    dev = images.device
    apply = torch.rand(b, generator=generator, device=dev) < p
    x0, y0, x1, y1, ok = _reference_sample_rects(b, h, w, sl, sh, r, dev, generator, attempts,
                                                 log_ratio=impl == "torchvision")
    mask = _reference_rect_mask(x0, y0, x1, y1, apply & ok, h, w)
    out = _reference_fill_batch(images, mask, value, generator)
    return (out, mask) if return_mask else out


def _reference_erase_batch(images, cfg, generator=None, return_mask=False):
    mask = torch.zeros(images.shape[0], *images.shape[-2:], dtype=torch.bool, device=images.device)
    if cfg.mode in ("re", "re+rpe"):
        p = cfg.p if (cfg.mode == "re" or cfg.p_re is None) else cfg.p_re
        images, m = _reference_re_batch(images, p=p, value=cfg.fill, generator=generator, return_mask=True,
                                        impl=cfg.re_impl)
        mask |= m
    if cfg.mode in ("rpe", "re+rpe"):
        images, m = _reference_rpe_batch(images, p=cfg.p, n=cfg.n, value=cfg.fill, generator=generator,
                                         return_mask=True)
        mask |= m
    return (images, mask) if return_mask else images


def _reference_fill_from_raw(raw, images, value):
    """The former fill's values from its raw draw (randint: uint8, or int64 for float images; randn)."""
    if isinstance(value, str):
        if images.dtype == torch.uint8:
            return raw
        if raw.dtype == torch.int64:
            return _reference_normalise(raw.to(torch.uint8), images.dtype, 1)
        return raw.to(images.dtype)
    return _reference_constant_fill(images, value)


def _reference_erase_from_draws(images, cfg, draws):
    """The former erase_batch computed on the lean version's draws (issue 20 changed only which random number
    plays which part): apply, the rectangle attempts (the sentinel row dropped), the points and the fill."""
    return _reference_from_draws(images, _erasings(cfg), draws)


def _reference_from_draws(images, erasings, draws):
    b, _, h, w = images.shape
    mask = torch.zeros(b, h, w, dtype=torch.bool)
    for k, e in enumerate(erasings):
        apply = draws.apply[k].reshape(b) < e.p
        u = draws.rects[k].reshape(b, -1, 4)[:, :-1]
        x0, y0, x1, y1, ok = _reference_rects(u, h, w, e.sl, e.sh, e.r, e.log_ratio)
        if e.polygon:
            pts = _reference_points(x0, y0, x1, y1, draws.points[k].reshape(b, -1, 2))
            m = _reference_polygon_masks(pts, h, w) & (apply & ok)[:, None, None]
        else:
            m = _reference_rect_mask(x0, y0, x1, y1, apply & ok, h, w)
        images = torch.where(m[:, None], _reference_fill_from_raw(draws.fills[k], images, e.value), images)
        mask |= m
    return images, mask


def _exact_hull_masks(points, h, w):
    """The exact convex hull (rational arithmetic, Andrew's monotone chain, strict vertices only,
    counter-clockwise with y up), then the former float32 pixel test on its edges (zero edges after the last
    vertex, which every pixel passes): what the masks must be."""
    b, n, _ = points.shape
    starts = points.clone()
    ends = points.clone()
    for i in range(b):
        pts = sorted({(Fraction(float(x)), Fraction(float(y))) for x, y in points[i].tolist()})
        def cross(o, a, c):
            return (a[0] - o[0]) * (c[1] - o[1]) - (a[1] - o[1]) * (c[0] - o[0])
        lower, upper = [], []
        for q in pts:
            while len(lower) >= 2 and cross(lower[-2], lower[-1], q) <= 0:
                lower.pop()
            lower.append(q)
        for q in reversed(pts):
            while len(upper) >= 2 and cross(upper[-2], upper[-1], q) <= 0:
                upper.pop()
            upper.append(q)
        hull = lower[:-1] + upper[:-1] if len(pts) > 1 else []
        for k, v in enumerate(hull):
            nxt = hull[(k + 1) % len(hull)]
            starts[i, k] = torch.tensor([float(v[0]), float(v[1])])
            ends[i, k] = torch.tensor([float(nxt[0]), float(nxt[1])])
        starts[i, len(hull):] = 0.0
        ends[i, len(hull):] = 0.0
    return _reference_edge_masks(starts, ends, h, w)
