"""Algorithm 1 (Random Polygon Erasing) one step at a time, for notebook 00's lesson, with the figures it draws.

Each step function does exactly what :func:`henetlib.method.rpe.sample_polygon` does for its lines of Algorithm 1,
drawing the same random numbers in the same order, so ``step_rectangle`` then ``step_points`` with one
generator give the very rectangle and points that ``sample_polygon`` gives with an equally seeded one (the
tests check it). The steps expose what ``sample_polygon`` keeps inside: S_e, r_e, W_e, H_e and P_c.
:class:`Walkthrough` replays the steps from a seed, so each of the lesson's cells gives the same draw however
often, and in whatever order, the cells before it ran.

Line 16 of Algorithm 1 reads ``while cnt <= p``: p is the erasing probability (0.5) and cnt starts at 1, so
read literally the loop never runs and no polygon could be formed. It means ``cnt <= n``, the number of points.
Line 22's ``Rand(0, 255)`` does not say whether one value fills the polygon, one per pixel or one per pixel
and channel; :func:`step_fill` (like the training code) draws one per pixel and channel (docs/READINGS.md,
"RPE's fill").
"""

from __future__ import annotations

import base64
import html
import inspect
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from henetlib.method import rpe
from henetlib.output import style

SL, SH, R = 0.02, 0.45, 0.35  # the paper's RPE settings (section 3.3): area ratio range and aspect bound
SETTINGS = f"sl = {SL}, sh = {SH}, r = {R}"  # for captions
DISPLAY_DPI = 160  # on screen: a 0.8 in print panel of a 384 x 128 image shows at its own 128 px width
STEP_PANEL = 1.6  # inches: one step's picture on screen (256 px wide at DISPLAY_DPI)

# Algorithm 1 as the paper prints it (section 3.3), line by line; None: the unnumbered header lines
ALGORITHM_1: tuple[tuple[int | None, str], ...] = (
    (None, "Algorithm 1: Random Polygon Erasing Procedure"),
    (None, "Input : Input image I, Image size W and H, Erasing probability p, Number of point n,"),
    (None, "        Erasing area ratio range sl and sh, Scale ratio r."),
    (None, "Output: Erased image I*."),
    (None, "Initialization: p1 ← Rand(0, 1), cnt ← 1."),
    (1, "if p1 ≥ p then"),
    (2, "    I* ← I;"),
    (3, "    return I*."),
    (4, "else"),
    (5, "    while True do"),
    (6, "        S_e ← Rand(sl, sh) × S;"),
    (7, "        r_e ← Rand(r, 1/r);"),
    (8, "        W_e = √(S_e / r_e), H_e = √(S_e × r_e);"),
    (9, "        if W_e ≤ W and H_e ≤ H then"),
    (10, "            P_c,x ← Rand(W_e/2, W − W_e/2);"),
    (11, "            P_c,y ← Rand(H_e/2, H − H_e/2);"),
    (12, "            w_min ← Max(P_c,x − W_e/2, 0);"),
    (13, "            w_max ← Min(P_c,x + W_e/2, W);"),
    (14, "            h_min ← Max(P_c,y − H_e/2, 0);"),
    (15, "            h_max ← Min(P_c,y + H_e/2, H);"),
    (16, "            while cnt ≤ p do"),
    (17, "                p_cnt,x ← Rand(w_min, w_max);"),
    (18, "                p_cnt,y ← Rand(h_min, h_max);"),
    (19, "                cnt ← cnt + 1;"),
    (20, "            end"),
    (21, "            mask ← MinPolygon([(p_i,x, p_i,y)]);"),
    (22, "            I(mask) ← Rand(0, 255);"),
    (23, "            I* ← I;"),
    (24, "            return I*."),
    (25, "        end"),
    (26, "    end"),
    (27, "end"),
)
STEP_LINES = {1: (5, 15), 2: (16, 20), 3: (21, 21), 4: (22, 22)}  # the lesson's steps -> Algorithm 1's lines


def listing(first: int | None = None, last: int | None = None) -> str:
    """Algorithm 1's lines ``first``..``last`` with their numbers, their common indent removed (all of it,
    header too, as printed, by default)."""
    if first is None:
        return "\n".join(f"{'' if k is None else k:>2} {text}" for k, text in ALGORITHM_1)
    last = first if last is None else last
    rows = [(k, text) for k, text in ALGORITHM_1 if k is not None and first <= k <= last]
    cut = min(len(text) - len(text.lstrip()) for _, text in rows)
    return "\n".join(f"{k:>2} {text[cut:]}" for k, text in rows)


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


def step_rectangle(h: int, w: int, sl: float = SL, sh: float = SH, r: float = R,
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
    """Line 22: (the erased copy of the uint8 CHW image, the boolean mask). ``"random"`` reads the paper's
    Rand(0, 255) as one uniform integer per pixel and channel (the paper does not say; docs/READINGS.md,
    "RPE's fill"); a number fills a constant grey."""
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


@dataclass(frozen=True)
class Walkthrough:
    """Algorithm 1 on an ``h`` x ``w`` image, every step replayed from ``seed``: lines 5-15 draw the rectangle,
    16-20 the n points, 22 the fill, all from one generator seeded afresh by each call, in
    ``rpe.sample_polygon``'s order. So a notebook cell that runs one step gives the same draw whatever ran
    before it (a rerun, a changed n), and ``points(n)`` are ``rpe.sample_polygon(h, w, n=n)``'s points."""

    h: int
    w: int
    seed: int = 0
    sl: float = SL
    sh: float = SH
    r: float = R

    def _rectangle(self, g: torch.Generator) -> Rectangle:
        rect = step_rectangle(self.h, self.w, self.sl, self.sh, self.r, g)
        if rect is None:
            raise ValueError(f"no rectangle fitted the {self.h}x{self.w} image in 100 draws of lines 6-9 "
                             f"(seed {self.seed}, sh {self.sh}, r {self.r}); choose another seed or a smaller sh.")
        return rect

    def rectangle(self) -> Rectangle:
        """Lines 5-15."""
        return self._rectangle(torch.Generator().manual_seed(self.seed))

    def points(self, n: int) -> np.ndarray:
        """Lines 16-20 (after lines 5-15, replayed): n points (x, y) in the rectangle."""
        g = torch.Generator().manual_seed(self.seed)
        return step_points(self._rectangle(g), n, g)

    def fill(self, img: torch.Tensor, n: int, value: float | str = "random") -> tuple[torch.Tensor, np.ndarray]:
        """Lines 21-22 (after lines 5-20, replayed): the erased copy of ``img`` and the mask."""
        self.check_image(img)
        g = torch.Generator().manual_seed(self.seed)
        return step_fill(img, step_points(self._rectangle(g), n, g), value, g)

    def check_image(self, img: torch.Tensor) -> None:
        """The one precondition left: ``img`` has the size the walkthrough draws for."""
        if tuple(img.shape[-2:]) != (self.h, self.w):
            raise ValueError(f"the image is {img.shape[-2]}x{img.shape[-1]} but the walkthrough draws for "
                             f"{self.h}x{self.w}: rerun the setup cell, then Step 1, so that both use H and W.")

    def library_check(self, n: int) -> str:
        """One sentence saying that ``rpe.sample_polygon`` with the same seed draws the same rectangle and points;
        a clear error (not a bare assert) naming what differs otherwise."""
        draw = rpe.sample_polygon(self.h, self.w, self.sl, self.sh, self.r, n, torch.Generator().manual_seed(self.seed))
        rect, pts = self.rectangle(), self.points(n)
        if draw is None or draw.rect != rect.rect or not np.array_equal(draw.points, pts):
            raise RuntimeError(f"rpe.sample_polygon (seed {self.seed}, n {n}) no longer draws what the lesson's steps "
                               "draw: henetlib/output/lesson.py's step functions must follow rpe.sample_polygon's "
                               "draws (tests/output/test_lesson.py checks it).")
        return (f"rpe.sample_polygon({self.h}, {self.w}, n={n}) with seed {self.seed} draws the same rectangle "
                f"{tuple(round(v, 1) for v in rect.rect)} and the same {n} points as the steps above.")


# ---------------------------------------------------------------------------------------------------------
# Figures of the lesson

_STEP_TITLES = (("1. rectangle", "lines 5-15"), ("2. points", "lines 16-20"), ("3. hull", "line 21"),
                ("4. fill", "line 22"))


def _show(ax, img: torch.Tensor) -> None:
    ax.imshow(img.permute(1, 2, 0).numpy())
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_axis_off()


def _outline(ax, rect: Rectangle | tuple[float, float, float, float], lw: float) -> None:
    """The rectangle of lines 12-15, dashed, in pixel coordinates (a pixel i spans i - 0.5 .. i + 0.5)."""
    from matplotlib.patches import Rectangle as Box

    x0, y0, x1, y1 = rect.rect if isinstance(rect, Rectangle) else rect
    ax.add_patch(Box((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec=style.PALETTE[6], lw=lw, ls="--"))


def _step_panel(ax, step: int, img: torch.Tensor, rect: Rectangle, points: np.ndarray | None,
                erased: torch.Tensor | None, panel_in: float) -> None:
    """Step ``step`` (1-4) drawn on ``ax``; marks scale with the panel's width, so they read in print and on screen."""
    from matplotlib.patches import Polygon

    k = panel_in / 0.8  # 1 for a print panel of a one-column figure
    _show(ax, erased if step == 4 else img)
    _outline(ax, rect, 0.8 * k)
    ax.plot(rect.P_c[0] - 0.5, rect.P_c[1] - 0.5, "+", color=style.PALETTE[6], ms=5 * k, mew=1.0 * k)
    if step >= 2:
        ax.scatter(points[:, 0] - 0.5, points[:, 1] - 0.5, s=3 * k * k, color=style.PALETTE[3], lw=0, zorder=3)
    if step >= 3:
        ax.add_patch(Polygon(step_hull(points) - 0.5, closed=True, fill=step == 3, alpha=0.45 if step == 3 else 1.0,
                             fc=style.PALETTE[5], ec=style.PALETTE[0], lw=0.7 * k))
    ax.set_title("\n".join(_STEP_TITLES[step - 1]), fontsize=8)


def draw_steps(img: torch.Tensor, rect: Rectangle, points: np.ndarray | None = None,
               erased: torch.Tensor | None = None, upto: int = 4, width: float = style.ONE_COLUMN):
    """Steps 1..``upto`` side by side, ``width`` inches wide (one column: printed at its own size, never
    scaled): rectangle with P_c, the points, the hull, the fill (``points`` needed from step 2 on, ``erased``
    for step 4)."""
    h, w = img.shape[-2:]
    panel = (width - 0.15) / upto
    fig, axes = style.figure(width, min(style.MAX_HEIGHT, panel * h / w + 0.4), 1, upto, squeeze=False)
    for i, ax in enumerate(axes[0], start=1):
        _step_panel(ax, i, img, rect, points, erased, panel)
    return fig


def draw_step(img: torch.Tensor, rect: Rectangle, step: int, points: np.ndarray | None = None,
              erased: torch.Tensor | None = None, panel_in: float = STEP_PANEL):
    """One step alone, for the screen (:func:`step_view`): a ``panel_in``-inch panel."""
    h, w = img.shape[-2:]
    fig, axes = style.figure(panel_in + 0.1, panel_in * h / w + 0.4, 1, 1, squeeze=False)
    _step_panel(axes[0, 0], step, img, rect, points, erased, panel_in)
    return fig


def png_html(fig, dpi: int = DISPLAY_DPI) -> str:
    """The figure as an inline PNG ``<img>`` at ``dpi`` (on screen; print copies go through export); closes the
    figure, so it is not drawn a second time below the cell."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}" alt="figure">'


def show(fig, dpi: int = DISPLAY_DPI) -> None:
    """Display a figure once, at ``dpi`` (the style's 100 dpi draws a one-column figure 330 px wide), then close
    it. Saved copies keep their print size: only the screen's pixels per inch change."""
    from IPython.display import HTML, display

    display(HTML(png_html(fig, dpi)))


# each step's own code: the lesson's function, then the library function it calls for the geometry
STEP_CODE: dict[int, tuple[Callable, ...]] = {1: (step_rectangle,), 2: (step_points,),
                                              3: (step_hull, rpe.convex_hull), 4: (step_fill, rpe.polygon_mask)}


def step_code(step: int) -> str:
    """The source of the functions that run step ``step`` (1-4), each headed by where it lives."""
    out = []
    for fn in STEP_CODE[step]:
        out.append(f"# {fn.__module__.replace('.', '/')}.py\n{inspect.getsource(fn).rstrip()}")
    return "\n\n".join(out)


def step_view(img: torch.Tensor, walk: Walkthrough, step: int, n: int, value: float | str = "random") -> str:
    """HTML: step ``step``'s picture on screen, beside Algorithm 1's lines for it (the paper's pseudocode) and
    the code that runs them. Every draw is replayed from ``walk``'s seed."""
    walk.check_image(img)
    rect = walk.rectangle()
    points = walk.points(n) if step >= 2 else None
    erased = walk.fill(img, n, value)[0] if step == 4 else None
    picture = png_html(draw_step(img, rect, step, points, erased))
    first, last = STEP_LINES[step]
    lines = f"line {first}" if first == last else f"lines {first}-{last}"
    pre = 'style="font-size:85%; line-height:1.25; margin:0.3em 0 0.8em 0; white-space:pre; overflow-x:auto"'
    return (f'<div style="display:flex; gap:1.5em; align-items:flex-start">'
            f'<div style="flex:0 0 auto">{picture}</div><div style="flex:1 1 auto; min-width:0">'
            f"<b>Algorithm 1, {lines}</b> (the paper's pseudocode, section 3.3)<pre {pre}>"
            f"{html.escape(listing(first, last))}</pre><b>The code that runs them</b><pre {pre}>"
            f"{html.escape(step_code(step))}</pre></div></div>")


def erase_examples(images: list[torch.Tensor], n_values: tuple[int, ...] = (10, 40), grey: int = 128,
                   seed: int = 0, sl: float = SL, sh: float = SH, r: float = R):
    """Fig. 3: each image as it is, then the SAME rectangle (lines 5-15, one per image, from ``seed`` + row)
    erased whole (RE) and as the hull of n points inside it (RPE, Algorithm 1) at each n, the rectangle
    outlined in every erased panel. One sequence of points per image: the n-point polygon uses its first n,
    so a larger n only adds points. The fill is the grey value itself, so only the erased region changes.

    Returns (figure, one row per image and method: the share of the image and of its rectangle erased; the
    rectangle's share as :func:`hull_stats` and :func:`area_table` compute it)."""
    h, w = images[0].shape[-2:]
    names = ["original", "RE"] + [f"RPE n={n}" for n in n_values]
    width = style.ONE_COLUMN if len(names) <= 4 else style.TWO_COLUMN  # one column, as the paper prints it
    cell = (width - 0.1) / len(names)
    fig, axes = style.figure(width, min(style.MAX_HEIGHT, cell * h / w * len(images) + 0.3), len(images),
                             len(names), squeeze=False)
    ys, xs = torch.arange(h)[:, None] + 0.5, torch.arange(w)[None, :] + 0.5  # pixel centres
    rows = []
    for i, im in enumerate(images):
        walk = Walkthrough(h, w, seed + i, sl, sh, r)
        rect = walk.rectangle()
        pts = walk.points(max(n_values))
        x0, y0, x1, y1 = rect.rect
        area = max((x1 - x0) * (y1 - y0), 1e-9)
        # RE's mask as RandomRectangleErasing takes it: pixel centres inside the rectangle
        masks = {"RE": ((ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)).numpy()}
        masks |= {f"RPE n={n}": rpe.polygon_mask(pts[:n], h, w) for n in n_values}
        for c, name in enumerate(names):
            out = im
            if name in masks:
                out = im.clone()
                out[:, torch.from_numpy(masks[name])] = grey
                rows.append({"image": i, "method": name, "share of image": float(masks[name].mean()),
                             "share of rectangle": float(masks[name].sum() / area)})
            _show(axes[i, c], out)
            if name in masks:
                _outline(axes[i, c], rect, 0.6)
            if i == 0:
                axes[i, c].set_title(name, fontsize=8)
    return fig, pd.DataFrame(rows)


def fig3_note(shares: pd.DataFrame, area: pd.DataFrame | None = None) -> str:
    """What Fig. 3 shows, from its own numbers (and, where ``area`` has the same n, :func:`area_table`'s)."""
    mean = shares.groupby("method", sort=False)[["share of image", "share of rectangle"]].mean()
    k = int(shares["image"].nunique())
    rpe_rows = [m for m in mean.index if m.startswith("RPE")]
    text = (f"Each row erases one rectangle whole (RE) and as the hull of n points inside it (RPE). Over these {k} "
            "images RE erases "
            f"{100 * mean.loc['RE', 'share of image']:.1f}% of the image; inside the same "
            "rectangles the polygons erase " + ", ".join(
                f"{100 * mean.loc[m, 'share of rectangle']:.0f}% of the rectangle at n = {m.split('=')[1]} "
                f"({100 * mean.loc[m, 'share of image']:.1f}% of the image)" for m in rpe_rows) + ".")
    if area is not None:
        same = [m for m in rpe_rows if int(m.split("=")[1]) in set(area["n"].astype(int))]
        if same:
            at = area.set_index(area["n"].astype(int))["erased share of rectangle"]
            text += (" Over the area table's draws the hull covers " + ", ".join(
                f"{100 * at.loc[int(m.split('=')[1])]:.0f}% at n = {m.split('=')[1]}" for m in same)
                + " of its rectangle; the difference from the figure's is these images' chance.")
    return text


_BUTTONS = {"fa-minus": "&minus;", "fa-fast-backward": "|&#9664;&#9664;", "fa-step-backward": "&#9664;|",
            "fa-play fa-flip-horizontal": "&#9664;", "fa-pause": "||", "fa-play": "&#9654;",
            "fa-step-forward": "|&#9654;", "fa-fast-forward": "&#9654;&#9654;|", "fa-plus": "+"}


def to_html(anim, dpi: int = 130, autoplay: bool = True) -> str:
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


def area_table(h: int, w: int, n_values, draws: int, seed: int = 0, sl: float = SL, sh: float = SH, r: float = R,
               n_boot: int = 1000) -> pd.DataFrame:
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
    walk = Walkthrough(h, w, seed)
    rect = walk.rectangle()
    # one sequence of points: frame n shows its first n, so each frame adds points to the last
    pts_all = walk.points(max(n_values))
    fig, axes = style.figure(3.3, 3.0, 1, 2)
    x0, y0, x1, y1 = rect.rect
    _show(axes[0], img)
    art_img = axes[1].imshow(img.permute(1, 2, 0).numpy())
    axes[1].set_axis_off()
    _outline(axes[0], rect, 1.0)
    scat = axes[0].scatter([], [], s=5, color=style.PALETTE[3], zorder=3)
    poly = Polygon(np.zeros((3, 2)), closed=True, fc=style.PALETTE[5], ec=style.PALETTE[0], alpha=0.5)
    axes[0].add_patch(poly)
    title = axes[0].set_title("")
    axes[1].set_title("erased")

    def frame(n: int):
        pts = pts_all[:n]
        scat.set_offsets(pts - 0.5)  # pixel j spans [j, j + 1); imshow centres it on j
        poly.set_xy(step_hull(pts) - 0.5)
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
