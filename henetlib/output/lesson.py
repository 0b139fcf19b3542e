"""Algorithm 1 (Random Polygon Erasing) one step at a time, for notebook 00's lesson, with the figures it draws.

Each step function does exactly what :func:`henetlib.method.rpe.sample_polygon` does for its lines of Algorithm 1,
drawing the same random numbers in the same order, so ``step_rectangle`` then ``step_points`` with one
generator give the very rectangle and points that ``sample_polygon`` gives with an equally seeded one (the
tests check it). The steps expose what ``sample_polygon`` keeps inside: S_e, r_e, W_e, H_e and P_c.

Line 16 of Algorithm 1 reads ``while cnt <= p``: p is the erasing probability (0.5), so read literally the
loop would draw one point and no polygon could be formed. It means ``cnt <= n``, the number of points.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from henetlib.method import rpe
from henetlib.output import style


@dataclass
class Rectangle:
    """Algorithm 1, lines 5-15: the erasing rectangle and the numbers that made it.

    ``S`` = H x W is the image area, ``s_e`` ~ U(sl, sh) the area ratio, ``S_e`` = s_e x S the erased area
    (line 6), ``r_e`` ~ U(r, 1/r) the aspect ratio (line 7), ``W_e`` = sqrt(S_e / r_e) and ``H_e`` =
    sqrt(S_e x r_e) its width and height (line 8), ``P_c`` = (x, y) its centre (lines 10-11), and ``rect`` =
    (w_min, h_min, w_max, h_max) its corners clipped to the image (lines 12-15). ``attempts``: draws of lines
    6-8 until the rectangle fitted (line 9).
    """

    S: float
    s_e: float
    S_e: float
    r_e: float
    W_e: float
    H_e: float
    P_c: tuple[float, float]
    rect: tuple[float, float, float, float]
    attempts: int

    def table(self) -> pd.DataFrame:
        """The variables of this step, one per row, for printing."""
        x0, y0, x1, y1 = self.rect
        rows = [("S = H x W", "image area (px)", self.S), ("s_e", "area ratio, Rand(sl, sh)", self.s_e),
                ("S_e = s_e x S", "erased area (px), line 6", self.S_e), ("r_e", "aspect ratio, Rand(r, 1/r), line 7",
                                                                          self.r_e),
                ("W_e = sqrt(S_e / r_e)", "width (px), line 8", self.W_e),
                ("H_e = sqrt(S_e x r_e)", "height (px), line 8", self.H_e),
                ("P_c,x", "centre x, Rand(W_e/2, W - W_e/2), line 10", self.P_c[0]),
                ("P_c,y", "centre y, Rand(H_e/2, H - H_e/2), line 11", self.P_c[1]),
                ("w_min, w_max", "x range, lines 12-13", f"{x0:.1f} .. {x1:.1f}"),
                ("h_min, h_max", "y range, lines 14-15", f"{y0:.1f} .. {y1:.1f}"),
                ("attempts", "draws until it fitted, line 9", self.attempts)]
        return pd.DataFrame(rows, columns=["variable", "meaning", "value"])


def _rand(generator: torch.Generator | None, lo: float, hi: float) -> float:
    # the draw rpe.sample_polygon makes: one float64 uniform, scaled
    return float(lo + (hi - lo) * torch.rand(1, generator=generator, dtype=torch.float64).item())


def step_rectangle(h: int, w: int, sl: float = 0.02, sh: float = 0.45, r: float = 0.35,
                   generator: torch.Generator | None = None, max_attempts: int = 100) -> Rectangle | None:
    """Lines 5-15: draw S_e and r_e until the rectangle fits (bounded, like ``rpe.sample_polygon``), then its
    centre P_c. None when nothing fitted in ``max_attempts`` draws."""
    area = h * w
    for attempt in range(1, max_attempts + 1):
        s_e = _rand(generator, sl, sh)
        r_e = _rand(generator, r, 1.0 / r)
        S_e = s_e * area
        W_e, H_e = math.sqrt(S_e / r_e), math.sqrt(S_e * r_e)
        if W_e <= w and H_e <= h:
            cx = _rand(generator, W_e / 2, w - W_e / 2)
            cy = _rand(generator, H_e / 2, h - H_e / 2)
            rect = (max(cx - W_e / 2, 0.0), max(cy - H_e / 2, 0.0), min(cx + W_e / 2, float(w)),
                    min(cy + H_e / 2, float(h)))
            return Rectangle(float(area), s_e, S_e, r_e, W_e, H_e, (cx, cy), rect, attempt)
    return None


def step_points(rect: Rectangle, n: int, generator: torch.Generator | None = None) -> np.ndarray:
    """Lines 16-20 (with ``cnt <= n``, see the module docstring): n points uniform in the rectangle, (n, 2) as
    (x, y)."""
    x0, y0, x1, y1 = rect.rect
    u = torch.rand(n, 2, generator=generator, dtype=torch.float64).numpy()
    return np.stack([x0 + (x1 - x0) * u[:, 0], y0 + (y1 - y0) * u[:, 1]], axis=1)


def step_hull(points: np.ndarray) -> np.ndarray:
    """Line 21, MinPolygon: the convex hull of the points (its vertices in order)."""
    return rpe.convex_hull(points)


def step_fill(img: torch.Tensor, points: np.ndarray, value: float | str = "random",
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """Line 22: (the erased copy of the uint8 CHW image, the boolean mask). ``"random"`` is the paper's
    Rand(0, 255) per pixel and channel; a number fills a constant grey."""
    h, w = img.shape[-2:]
    mask = rpe.polygon_mask(points, h, w)
    out = img.clone()
    m = torch.from_numpy(mask)
    if value == "random":
        out[:, m] = torch.randint(0, 256, (img.shape[0], int(mask.sum())), generator=generator, dtype=torch.uint8)
    else:
        out[:, m] = torch.tensor(float(value)).to(img.dtype)
    return out, mask


def hull_stats(rect: Rectangle, points: np.ndarray, h: int, w: int) -> dict[str, float]:
    """Numbers to read off a drawn step: hull vertices, erased pixels, share of the rectangle and image."""
    mask = rpe.polygon_mask(points, h, w)
    x0, y0, x1, y1 = rect.rect
    return {"n": len(points), "hull vertices": len(step_hull(points)), "erased px": int(mask.sum()),
            "share of rectangle": float(mask.sum() / max((x1 - x0) * (y1 - y0), 1e-9)),
            "share of image": float(mask.mean())}


# ---------------------------------------------------------------------------------------------------------
# Figures of the lesson


def _show(ax, img: torch.Tensor) -> None:
    ax.imshow(img.permute(1, 2, 0).numpy())
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_axis_off()


def draw_steps(img: torch.Tensor, rect: Rectangle, points: np.ndarray | None = None,
               erased: torch.Tensor | None = None, upto: int = 4):
    """The steps 1..``upto`` side by side: rectangle with P_c, the points, the hull, the fill (``points`` is
    needed from step 2 on, ``erased`` for step 4)."""
    from matplotlib.patches import Polygon
    from matplotlib.patches import Rectangle as Box


    titles = ["1. rectangle\n(lines 5-15)", "2. n points\n(lines 16-20)", "3. convex hull\n(line 21)",
              "4. fill\n(line 22)"]
    fig, axes = style.figure(min(style.TWO_COLUMN, 1.15 * upto + 0.3), 3.0, 1, upto, squeeze=False)
    x0, y0, x1, y1 = rect.rect
    for i, ax in enumerate(axes[0]):
        _show(ax, erased if i == 3 else img)
        ax.add_patch(Box((x0, y0), x1 - x0, y1 - y0, fill=False, ec=style.PALETTE[6], lw=1.2, ls="--"))
        ax.plot(*rect.P_c, "+", color=style.PALETTE[6], ms=8, mew=1.5)
        if i >= 1:
            ax.scatter(points[:, 0], points[:, 1], s=6, color=style.PALETTE[3], zorder=3)
        if i >= 2:
            ax.add_patch(Polygon(step_hull(points), closed=True, fill=i == 2, alpha=0.45 if i == 2 else 1.0,
                                 fc=style.PALETTE[5], ec=style.PALETTE[0], lw=1.0))
        ax.set_title(titles[i], fontsize=8)
    return fig


def erase_examples(images: list[torch.Tensor], n_values: tuple[int, ...] = (10, 40), grey: int = 128,
                   seed: int = 0):
    """Fig. 3: each image as it is, with RE, and with RPE at each n; the erased area filled with the grey
    value itself (so no pixel outside the erased region changes). Returns (figure, erased share of each image
    per method)."""

    g = torch.Generator().manual_seed(seed)
    cols = [("original", None), ("RE", rpe.RandomRectangleErasing(p=1.0, value=grey, generator=g))]
    cols += [(f"RPE n={n}", rpe.RandomPolygonErasing(p=1.0, n=n, value=grey, generator=g)) for n in n_values]
    h, w = images[0].shape[-2:]
    width = style.ONE_COLUMN if len(cols) <= 4 else style.TWO_COLUMN  # one column, as the paper prints it
    cell = (width - 0.1) / len(cols)
    fig, axes = style.figure(width, min(style.MAX_HEIGHT, cell * h / w * len(images) + 0.3), len(images),
                              len(cols), squeeze=False)
    shares: dict[str, list[float]] = {name: [] for name, t in cols if t is not None}
    for r, im in enumerate(images):
        for c, (name, t) in enumerate(cols):
            out = im if t is None else t(im)
            _show(axes[r, c], out)
            if t is not None:
                shares[name].append(float((out != im).any(dim=0).float().mean()))
            if r == 0:
                axes[r, c].set_title(name, fontsize=8)
    return fig, pd.DataFrame(shares)


_BUTTONS = {"fa-minus": "&minus;", "fa-fast-backward": "|&#9664;&#9664;", "fa-step-backward": "&#9664;|",
            "fa-play fa-flip-horizontal": "&#9664;", "fa-pause": "||", "fa-play": "&#9654;",
            "fa-step-forward": "|&#9654;", "fa-fast-forward": "&#9654;&#9654;|", "fa-plus": "+"}


def to_html(anim, dpi: int = 100, autoplay: bool = True) -> str:
    """The animation as a self-contained HTML player (frames inlined as PNG, JavaScript controls): it plays in
    an exported notebook with no kernel and no network. matplotlib's player draws its buttons with an icon
    font from a CDN; offline they would be blank, so they get text labels instead. ``autoplay`` starts it
    when the page loads. Closes the animation's figure, so it is not drawn again below."""
    import matplotlib.pyplot as plt

    with plt.rc_context({"savefig.dpi": dpi}):
        html = anim.to_jshtml(default_mode="loop")
    plt.close(anim._fig)
    html = re.sub(r'<link[^>]*font-awesome[^>]*>', "", html)
    for icon, label in _BUTTONS.items():
        html = html.replace(f'<i class="fa {icon}"></i>', label)
    name = re.search(r"(anim[0-9a-f]+) = new Animation", html)
    if autoplay and name:
        html += f"<script>setTimeout(function() {{ {name.group(1)}.play_animation(); }}, 300);</script>"
    return html


def area_table(h: int, w: int, n_values, draws: int, seed: int = 0, sl: float = 0.02, sh: float = 0.45,
               r: float = 0.35, n_boot: int = 1000) -> pd.DataFrame:
    """Per n over ``draws`` draws of Algorithm 1: the mean erased share of the image and of the rectangle,
    each with a 95% bootstrap interval of the mean (percentile, ``n_boot`` resamples), clipped at 0."""
    rows = []
    rng = np.random.default_rng(seed)
    for n in n_values:
        g = torch.Generator().manual_seed(seed)
        img, rect_share = [], []
        for _ in range(draws):
            rect = step_rectangle(h, w, sl, sh, r, g)
            if rect is None:
                continue
            pts = step_points(rect, int(n), g)
            s = hull_stats(rect, pts, h, w)
            img.append(s["share of image"])
            rect_share.append(s["share of rectangle"])
        row = {"n": int(n)}
        for name, vals in (("image", np.array(img)), ("rectangle", np.array(rect_share))):
            boots = vals[rng.integers(0, len(vals), (n_boot, len(vals)))].mean(axis=1)
            lo, hi = np.percentile(boots, [2.5, 97.5])
            row.update({f"erased share of {name}": vals.mean(), f"{name}_lo": max(0.0, lo), f"{name}_hi": hi})
        rows.append(row)
    return pd.DataFrame(rows)


def draw_area(stats: pd.DataFrame):
    """Erased share of the image and of the rectangle against n (log axis, ticks at the n drawn), 95% bars."""
    from matplotlib.ticker import FixedLocator, NullLocator


    fig, axes = style.figure("two", 2.4, 1, 2)
    for ax, name, ylabel in ((axes[0], "image", "erased share of the image"),
                             (axes[1], "rectangle", "erased share of the rectangle")):
        y = stats[f"erased share of {name}"]
        err = np.vstack([y - stats[f"{name}_lo"], stats[f"{name}_hi"] - y])
        ax.errorbar(stats["n"], y, yerr=err, capsize=2, label="mean, 95% interval", **style.series_style(0))
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(stats["n"].tolist()))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter("{x:g}")
        ax.set_xlabel("n (points)")
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
    axes[1].axhline(1.0, color="0.4", lw=0.8, ls=":", label="RE (the whole rectangle)")
    axes[1].set_ylim(0, 1.05)
    axes[1].legend(loc="lower right")
    return fig


def area_note(stats: pd.DataFrame) -> str:
    """What to look at in the area plot, from its numbers."""
    a, b = stats.iloc[0], stats.iloc[-1]
    return (f"The hull covers {100 * a['erased share of rectangle']:.0f}% of the rectangle at n = {int(a['n'])} and "
            f"{100 * b['erased share of rectangle']:.0f}% at n = {int(b['n'])}: as n grows RPE approaches RE. The erased "
            f"share of the image goes from {100 * a['erased share of image']:.1f}% to "
            f"{100 * b['erased share of image']:.1f}%.")


def animate_n(img: torch.Tensor, n_values=tuple(range(3, 81)), seed: int = 0, grey: int = 128, interval: int = 120):
    """One rectangle, n growing from 3 to 80: the points, the hull and the erased image at every n. A
    ``matplotlib.animation.FuncAnimation``; ``.to_jshtml()`` plays it in a browser without a kernel."""
    from matplotlib.animation import FuncAnimation
    from matplotlib.patches import Polygon


    h, w = img.shape[-2:]
    g = torch.Generator().manual_seed(seed)
    rect = step_rectangle(h, w, generator=g)
    # one sequence of points: frame n shows its first n, so each frame adds points to the last
    pts_all = step_points(rect, max(n_values), g)
    fig, axes = style.figure(3.3, 3.0, 1, 2)
    x0, y0, x1, y1 = rect.rect
    _show(axes[0], img)
    art_img = axes[1].imshow(img.permute(1, 2, 0).numpy())
    axes[1].set_axis_off()
    axes[0].plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], "--", color=style.PALETTE[6], lw=1)
    scat = axes[0].scatter([], [], s=5, color=style.PALETTE[3], zorder=3)
    poly = Polygon(np.zeros((3, 2)), closed=True, fc=style.PALETTE[5], ec=style.PALETTE[0], alpha=0.5)
    axes[0].add_patch(poly)
    title = axes[0].set_title("")
    axes[1].set_title("erased")

    def frame(n: int):
        pts = pts_all[:n]
        scat.set_offsets(pts)
        poly.set_xy(step_hull(pts))
        out, mask = step_fill(img, pts, grey)
        art_img.set_data(out.permute(1, 2, 0).numpy())
        title.set_text(f"n = {n}: {100 * mask.sum() / max((x1 - x0) * (y1 - y0), 1e-9):.0f}% of box")
        return scat, poly, art_img, title

    return FuncAnimation(fig, frame, frames=list(n_values), interval=interval, blit=False)


def animate_p(images: list[torch.Tensor], p_values=(0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0), n: int = 20,
              seed: int = 0, grey: int = 128, interval: int = 700):
    """A batch at each erasing probability p: on average a share p of the images is erased (line 1)."""
    from matplotlib.animation import FuncAnimation


    k = len(images)
    fig, axes = style.figure(style.TWO_COLUMN, 2.2, 1, k, squeeze=False)
    arts = []
    for ax, im in zip(axes[0], images, strict=True):
        arts.append(ax.imshow(im.permute(1, 2, 0).numpy()))
        ax.set_axis_off()
    title = fig.suptitle("")

    def frame(p: float):
        t = rpe.RandomPolygonErasing(p=p, n=n, value=grey, generator=torch.Generator().manual_seed(seed))
        erased = 0
        for a, im in zip(arts, images, strict=True):
            out = t(im)
            erased += bool((out != im).any())
            a.set_data(out.permute(1, 2, 0).numpy())
        title.set_text(f"p = {p:g}: {erased} of {k} images erased")
        return [*arts, title]

    return FuncAnimation(fig, frame, frames=list(p_values), interval=interval, blit=False)
