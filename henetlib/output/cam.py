"""Class activation maps per HENet branch (Fig. 2, right: "CAM (Selvaraju et al., 2017) from three branches"),
with the grad-cam package, their figure, summary and note.

What a branch's map is. The branches share the encoder up to ``layer3`` and each owns a copy of ``layer4``
(:mod:`henetlib.method.model`), so a map taken in the encoder would be the same for every branch by
construction. Each branch's map is taken at the last block of its *own* ``layer4`` copy, for that branch's
own identity score: the FC512 logit of the image's identity (G1, P(k): ``fc_global``; R16: ``fc``).

What is kept. :func:`branch_cams` returns the signed map at the grid of that block (before any ReLU, scaling
or upsampling), because the usual post-processing makes coarse maps lie: grad-cam clips at 0, min-max scales
each map and resizes it bilinearly. At 64x32 px, G1's and R16's last block is a 2x1 grid (stride 32; P4 keeps
stride 1 in ``layer4``: 4x2); min-max turns any two cells into [0, 1] or [1, 0], so G1 and R16 drew the same
map whenever they favoured the same half (a 10% difference became full contrast), a map with no positive
cell became blank, and the bilinear resize painted a smooth band no 2x1 map contains. Here a map is divided
by its largest cell (no minimum is subtracted), drawn as its cells, and a map with no positive cell
("none") or with cells within :data:`FLAT_TOL` of each other ("flat") is flagged, never shown as a finding.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM, XGradCAM
from pytorch_grad_cam.base_cam import BaseCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from henetlib.engine.config import PROFILES
from henetlib.method.model import HENet
from henetlib.method.rpe import IMAGENET_MEAN, IMAGENET_STD
from henetlib.output import style

MAPS_FORMAT = "grid-v2"  # cached maps are signed and at the block's grid since this format
FLAT_TOL = 0.01  # cells within 1% of the largest: the map prefers no region
MIN_ROWS = 4  # fewer rows than P4's 4 stripes cannot say which stripe a branch relies on
PAPER_INPUT = (PROFILES["paper"]["height"], PROFILES["paper"]["width"])  # 384 x 128, section 4.1


def cache_name(method: str = "gradcam", num_images: int = 4) -> str:
    """The file beside a result that caches its maps: named by :data:`MAPS_FORMAT`, so that maps cached in an
    earlier format (min-max scaled, resized) are never read as these."""
    return f"cams-{method}-{num_images}-{MAPS_FORMAT}.npz"


class _RawMaps:
    """Mixed in before a grad-cam method: its ``get_cam_image`` (the method's own weighting) at the target
    layer's grid, without grad-cam's ReLU, min-max scaling and resize."""

    def compute_cam_per_layer(self, input_tensor: torch.Tensor, targets: list, eigen_smooth: bool) -> list:
        acts = [a.cpu().data.numpy() for a in self.activations_and_grads.activations]
        grads = [g.cpu().data.numpy() for g in self.activations_and_grads.gradients]
        return [self.get_cam_image(input_tensor, self.target_layers[0], targets, acts[0],
                                   grads[0] if grads else None, eigen_smooth)]

    def aggregate_multi_layers(self, cam_per_target_layer: list) -> np.ndarray:
        return np.asarray(cam_per_target_layer[0], dtype=np.float32)


def _raw(cls: type[BaseCAM]) -> type[BaseCAM]:
    return type(f"Raw{cls.__name__}", (_RawMaps, cls), {})


METHODS = {name: _raw(cls) for name, cls in {
    "gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "scorecam": ScoreCAM, "xgradcam": XGradCAM,
    "layercam": LayerCAM, "hirescam": HiResCAM}.items()}


class BranchScores(nn.Module):
    """Image -> one branch's identity scores (its FC512 classifier), so a CAM method sees a plain classifier."""

    def __init__(self, model: HENet, branch: str):
        super().__init__()
        self.model = model
        self.branch = branch
        names = model.branch_names()
        if branch not in names:
            raise ValueError(f"branch {branch!r} is not in this model; it has {names}.")

    def _stripe(self) -> nn.Module:
        return self.model.branches[self.model.branch_names().index(self.branch)]

    def target_layer(self) -> nn.Module:
        """The last block of the branch's own ``layer4`` copy (the encoder, shared, would give one map for all)."""
        own = self.model.recovery_branch if self.branch == "R16" else self._stripe()
        return own.body[-1][-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shared = self.model.encoder(x)
        if self.branch == "R16":
            rb = self.model.recovery_branch
            return rb.fc(rb(shared))
        b = self._stripe()
        g, _ = b(shared)
        return b.fc_global(g)


def branch_cams(model: HENet, images: torch.Tensor, labels: torch.Tensor | list[int], method: str = "gradcam",
                trained: bool = True) -> dict[str, np.ndarray]:
    """{branch name: (B, h, w) signed float32 maps} for every branch of ``model``, at the grid of the branch's
    own last block (h x w: the input's size over that block's stride), as the method weights it, unscaled.

    ``labels`` are training-identity indices (the classifiers' classes). Pass ``trained=False`` for a model
    that has not been trained: the maps are computed all the same, with a warning that they mean little.
    :func:`normalise` turns them into what the figure draws.
    """
    if method not in METHODS:
        raise ValueError(f"CAM method {method!r} is not offered; use one of {sorted(METHODS)}.")
    if not trained:
        warnings.warn("branch_cams: the model is untrained, so its class activation maps mean little.",
                      stacklevel=2)
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    images = images.to(dev)
    labels = [int(y) for y in (labels.tolist() if isinstance(labels, torch.Tensor) else labels)]
    maps = {}
    try:
        for name in model.branch_names():
            wrapper = BranchScores(model, name)
            with METHODS[method](model=wrapper, target_layers=[wrapper.target_layer()]) as cam:
                m = cam(input_tensor=images, targets=[ClassifierOutputTarget(y) for y in labels])
            maps[name] = np.nan_to_num(np.asarray(m, dtype=np.float32))
    finally:
        model.train(was_training)
    return maps


def map_status(raw: np.ndarray) -> np.ndarray:
    """Per map of a (B, h, w) stack: "none" (no cell above 0: no region raises the score, so nothing to
    draw), "flat" (every cell within :data:`FLAT_TOL` of the largest: no region preferred) or "ok"."""
    raw = np.asarray(raw, dtype=np.float32)
    pos = np.maximum(raw, 0.0).reshape(len(raw), -1)
    top = pos.max(axis=1)
    spread = top - pos.min(axis=1)
    return np.where(top <= 0, "none", np.where(spread <= FLAT_TOL * top, "flat", "ok"))


def normalise(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(maps in [0, 1], :func:`map_status`) for a (B, h, w) stack: cells at or below 0 become 0 and each map
    is divided by its largest cell. No minimum is subtracted, so a flat map stays flat (all 1, flagged) and
    two cells 10% apart stay 10% apart; a map with no positive cell is all 0 and flagged "none"."""
    raw = np.asarray(raw, dtype=np.float32)
    pos = np.maximum(raw, 0.0)
    top = pos.reshape(len(pos), -1).max(axis=1).reshape(-1, 1, 1)
    return np.where(top > 0, pos / np.where(top > 0, top, 1.0), 0.0).astype(np.float32), map_status(raw)


def check_maps(data: dict) -> None:
    """Refuse maps cached by the former code (min-max scaled and resized to the image: G1 and R16 come out
    identical or blank, see the module docstring), with the fix."""
    h, w = np.asarray(data["clean"]).shape[1:3]
    for kind in ("clean", "occluded"):
        for b in data["branches"]:
            if np.asarray(data["maps"][kind][b]).shape[1:] == (h, w):
                raise ValueError(
                    f"the {kind} {b} CAM maps are {h}x{w}, the image's size: they were cached by the former CAM code "
                    "(each map min-max scaled and resized, which makes G1 and R16 identical or blank). Delete "
                    "cams-*.npz beside the run's result.json to recompute them (a published result, which has no "
                    "weights, must recompute them where its model is).")


def grids(data: dict) -> dict[str, tuple[int, int]]:
    """{branch: (rows, columns)} of its maps' grid."""
    return {b: tuple(int(s) for s in np.asarray(data["maps"]["clean"][b]).shape[1:]) for b in data["branches"]}


def cam_figure(data: dict, images_per_part: int = 4, cmap: str = "inferno", alpha: float = 0.6):
    """Fig. 2 (right) as a page-sized grid: one row per image, the clean image and its branch maps beside the
    occluded image and its maps. Each map (:func:`normalise`) is drawn as its cells (no interpolation, thin
    lines between cells) over a grey copy of the image, with the grid in the column title; a map flagged
    "none" or "flat" says so in its panel. ``data`` is ``henetlib.study.derived.cam_data``'s dictionary. More
    than ``images_per_part`` images give a list of figures (page-sized parts)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    check_maps(data)
    branches = list(data["branches"])
    grid = grids(data)
    n = len(data["pids"])
    ncols = 2 * (1 + len(branches))
    h, w = data["clean"].shape[1:3]
    shown = {k: {b: normalise(data["maps"][k][b]) for b in branches} for k in ("clean", "occluded")}
    extent = (-0.5, w - 0.5, h - 0.5, -0.5)  # the image's own pixel extent: a cell covers its pixels
    parts = []
    for start in range(0, n, images_per_part):
        idx = list(range(start, min(n, start + images_per_part)))
        cell_w = (style.TWO_COLUMN - 0.9) / ncols  # less the colorbar and its label
        height = min(style.MAX_HEIGHT, len(idx) * cell_w * h / w + 0.5)
        fig, axes = style.figure("two", height, len(idx), ncols, squeeze=False,
                                 gridspec_kw={"wspace": 0.02, "hspace": 0.02})
        for r, i in enumerate(idx):
            for k, kind in enumerate(("clean", "occluded")):
                base = k * (1 + len(branches))
                rgb = np.asarray(data[kind][i], dtype=np.float32)
                rgb = rgb / 255 if rgb.max() > 1 else rgb
                axes[r, base].imshow(rgb)
                for c, b in enumerate(branches, start=1):
                    ax = axes[r, base + c]
                    ax.imshow(rgb.mean(axis=-1), cmap="gray", vmin=0, vmax=1)
                    maps, status = shown[kind][b]
                    if status[i] != "none":
                        ax.imshow(maps[i], cmap=cmap, vmin=0, vmax=1, alpha=alpha, extent=extent,
                                  interpolation="nearest")
                    gh, gw = grid[b]
                    for y in np.arange(1, gh) * h / gh - 0.5:
                        ax.axhline(y, color="white", lw=0.3, alpha=0.6)
                    for x in np.arange(1, gw) * w / gw - 0.5:
                        ax.axvline(x, color="white", lw=0.3, alpha=0.6)
                    if status[i] != "ok":
                        ax.text(0.5, 0.5, "no cell > 0" if status[i] == "none" else "flat", transform=ax.transAxes,
                                ha="center", va="center", fontsize=8, color="white",
                                bbox={"fc": "black", "alpha": 0.6, "lw": 0, "pad": 1.5})
                if r == 0:
                    axes[r, base].set_title(f"{kind}\nimage", fontsize=8)
                    for c, b in enumerate(branches, start=1):
                        axes[r, base + c].set_title(f"{b}\n{grid[b][0]}x{grid[b][1]} cells", fontsize=8)
            axes[r, 0].set_ylabel(f"id {data['pids'][i]}", fontsize=8)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
        # the colorbar shows the colormap at full strength, not at the overlay's transparency
        solid = ScalarMappable(norm=Normalize(0, 1), cmap=cmap)
        fig.colorbar(solid, ax=axes, shrink=0.6, label="share of the map's largest cell", fraction=0.03, pad=0.01)
        parts.append(fig)
    return parts[0] if len(parts) == 1 else parts


def cam_caption(data: dict) -> str:
    """What :func:`cam_figure` draws, for its caption (beside the figure, not in it)."""
    g = ", ".join(f"{b} {r}x{c}" for b, (r, c) in grids(data).items())
    h, w = data["clean"].shape[1:3]
    return ("Class activation maps of each branch's own identity score (the FC512 logit of the image's identity) at "
            f"the last block of the branch's own layer4; {h}x{w} px input, so the maps have {g} cells. Each map is "
            "divided by its largest cell (cells at or below 0 are 0) and drawn as its cells over a grey copy of the "
            "image; 'no cell > 0': no cell raises the score, nothing drawn; 'flat': all cells within "
            f"{100 * FLAT_TOL:.0f}% of the largest. Right: the same images erased by RPE (Algorithm 1, p = 1).")


def _centre(maps: np.ndarray) -> np.ndarray:
    """Vertical centre of mass of each (h, w) map, 0 top and 1 bottom, from its cells' centres."""
    ys = (np.arange(maps.shape[1]) + 0.5) / maps.shape[1]
    mass = maps.sum(axis=(1, 2))
    return (maps.sum(axis=2) * ys).sum(axis=1) / np.where(mass > 0, mass, 1.0)


def cam_summary(data: dict) -> pd.DataFrame:
    """Per image kind and branch: the maps' grid and the pixels one cell covers, how many maps have no
    positive cell or are flat, and the vertical centre of the others (0 top, 1 bottom; mean over those maps,
    NaN when there are none). ``attrs`` keep the image size and whether the grids can compare branches."""
    check_maps(data)
    h, w = data["clean"].shape[1:3]
    grid = grids(data)
    rows = []
    for kind in ("clean", "occluded"):
        for b in data["branches"]:
            maps, status = normalise(data["maps"][kind][b])
            ok = status == "ok"
            gh, gw = grid[b]
            rows.append({"image": kind, "branch": b, "grid": f"{gh}x{gw}", "cell (px)": f"{h // gh}x{w // gw}",
                         "maps": len(status), "no cell > 0": int((status == "none").sum()),
                         "flat": int((status == "flat").sum()), "vertical centre": float(_centre(maps[ok]).mean())
                         if ok.any() else np.nan})
    out = pd.DataFrame(rows)
    out.attrs.update(image_size=(int(h), int(w)), grids=grid,
                     comparable=all(r >= MIN_ROWS for r, _ in grid.values()))
    return out


def cam_note(summary: pd.DataFrame) -> str:
    """What the CAM grid can and cannot say, from :func:`cam_summary`: the grids and what a cell covers, the
    flagged maps, and (only where every grid has :data:`MIN_ROWS` rows) the vertical centres, with what they
    rest on."""
    h, w = summary.attrs["image_size"]
    grid = summary.attrs["grids"]
    ph, pw = PAPER_INPUT
    n = int(summary["maps"].iloc[0])
    cells = ", ".join(f"{b} {r}x{c} ({h // r}x{w // c} px a cell)" for b, (r, c) in grid.items())
    paper = ", ".join(f"{b} {ph * r // h}x{pw * c // w}" for b, (r, c) in grid.items())
    flagged = "; ".join(f"{kind}: " + ", ".join(f"{r['branch']} {r['no cell > 0']} blank, {r['flat']} flat"
                                                 for _, r in part.iterrows())
                        for kind, part in summary.groupby("image", sort=False))
    text = (f"At {h}x{w} px the last block of each branch gives {cells}; the same network at the paper's {ph}x{pw} "
            f"would give {paper}. Of the {n} maps per branch and image kind ({flagged}), a blank map has no cell "
            "that raises the branch's score for the image's identity.")
    if not summary.attrs["comparable"]:
        return text + (f" With fewer than {MIN_ROWS} rows a map can at most say which horizontal band of the image "
                       "raises a branch's score, not which body part: at this input size the figure cannot show "
                       "whether the branches attend to different regions, and draws no conclusion about them.")
    parts = []
    for kind, part in summary.groupby("image", sort=False):
        vals = [f"{r['branch']} {r['vertical centre']:.2f} ({r['maps'] - r['no cell > 0'] - r['flat']} maps)"
                for _, r in part.iterrows() if np.isfinite(r["vertical centre"])]
        parts.append(f"{kind}: " + (", ".join(vals) if vals else "no map to measure"))
    return text + (" Vertical centre of the maps neither blank nor flat (0 top, 1 bottom; mean over those maps): "
                   f"{'; '.join(parts)}. These describe {n} images, not a measured property of the branches.")


def denormalize(images: torch.Tensor) -> np.ndarray:
    """Normalised (B, 3, H, W) -> float RGB (B, H, W, 3) in [0, 1] for display."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = (images.detach().cpu().float() * std + mean).clamp(0, 1)
    return x.permute(0, 2, 3, 1).numpy()
