"""Class activation maps per HENet branch (Fig. 2, right), with the grad-cam package, and their figure.

For each branch (G1, each P(k), R16) the target is that branch's classifier score (FC512) for the image's
identity, and the target layer is the branch's last convolutional block. Maps are in [0, 1] at the input's
spatial size.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM, XGradCAM
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from henetlib.method.model import HENet
from henetlib.method.rpe import IMAGENET_MEAN, IMAGENET_STD
from henetlib.output import style

METHODS = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "scorecam": ScoreCAM, "xgradcam": XGradCAM,
           "layercam": LayerCAM, "hirescam": HiResCAM}


class BranchScores(nn.Module):
    """Image -> one branch's identity scores, so a CAM method sees a plain classifier."""

    def __init__(self, model: HENet, branch: str):
        super().__init__()
        self.model = model
        self.branch = branch
        names = model.branch_names()
        if branch not in names:
            raise ValueError(f"branch {branch!r} is not in this model; it has {names}.")

    def target_layer(self) -> nn.Module:
        if self.branch == "R16":
            return self.model.recovery_branch.body[-1][-1]
        return self.model.branches[self.model.branch_names().index(self.branch)].body[-1][-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shared = self.model.encoder(x)
        if self.branch == "R16":
            rb = self.model.recovery_branch
            return rb.fc(rb(shared))
        b = self.model.branches[self.model.branch_names().index(self.branch)]
        g, _ = b(shared)
        return b.fc_global(g)


def branch_cams(model: HENet, images: torch.Tensor, labels: torch.Tensor | list[int], method: str = "gradcam",
                trained: bool = True) -> dict[str, np.ndarray]:
    """{branch name: (B, H, W) maps in [0, 1]} for every branch of ``model``.

    ``labels`` are training-identity indices (the classifier's classes). Pass ``trained=False`` for a model
    that has not been trained: the maps are computed all the same, with a warning that they mean little.
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
            maps[name] = np.clip(np.nan_to_num(m.astype(np.float32)), 0.0, 1.0)
    finally:
        model.train(was_training)
    return maps


def denormalize(images: torch.Tensor) -> np.ndarray:
    """Normalised (B, 3, H, W) -> float RGB (B, H, W, 3) in [0, 1] for display."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = (images.detach().cpu().float() * std + mean).clamp(0, 1)
    return x.permute(0, 2, 3, 1).numpy()


def overlay(image_rgb: np.ndarray, cam_map: np.ndarray) -> np.ndarray:
    """A heatmap over the image (uint8 RGB), via grad-cam's helper."""
    return show_cam_on_image(image_rgb.astype(np.float32), cam_map, use_rgb=True)


def cam_figure(data: dict, images_per_part: int = 4, cmap: str = "inferno", alpha: float = 0.55):
    """Fig. 2 (right) as a page-sized grid: one row per image, the clean image and its branch maps beside
    the occluded image and its maps, in a perceptual colormap with a colorbar. ``data`` is
    ``cam_data``'s dictionary. More than ``images_per_part`` images give a list of figures (page-sized parts)."""

    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize


    branches = list(data["branches"])
    n = len(data["pids"])
    ncols = 2 * (1 + len(branches))
    h, w = data["clean"].shape[1:3]
    parts = []
    for start in range(0, n, images_per_part):
        idx = list(range(start, min(n, start + images_per_part)))
        cell_w = (style.TWO_COLUMN - 0.9) / ncols  # less the colorbar and its label
        height = min(style.MAX_HEIGHT, len(idx) * cell_w * h / w + 0.35)
        fig, axes = style.figure("two", height, len(idx), ncols, squeeze=False,
                                  gridspec_kw={"wspace": 0.02, "hspace": 0.02})
        im = None
        for r, i in enumerate(idx):
            for k, kind in enumerate(("clean", "occluded")):
                base = k * (1 + len(branches))
                rgb = data[kind][i]
                axes[r, base].imshow(rgb)
                for c, b in enumerate(branches, start=1):
                    axes[r, base + c].imshow(rgb.mean(axis=-1), cmap="gray", vmin=0, vmax=1 if rgb.max() <= 1 else 255)
                    im = axes[r, base + c].imshow(data["maps"][kind][b][i].astype("float32"), cmap=cmap, vmin=0,
                                                  vmax=1, alpha=alpha)
                if r == 0:
                    axes[r, base].set_title(f"{kind} image", fontsize=8)
                    for c, b in enumerate(branches, start=1):
                        axes[r, base + c].set_title(b, fontsize=8)
            axes[r, 0].set_ylabel(f"id {data['pids'][i]}", fontsize=8)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
        # the colorbar shows the colormap at full strength, not at the overlay's transparency
        solid = ScalarMappable(norm=Normalize(0, 1), cmap=im.get_cmap())
        fig.colorbar(solid, ax=axes, shrink=0.6, label="class activation (0-1)", fraction=0.03, pad=0.01)
        parts.append(fig)
    return parts[0] if len(parts) == 1 else parts


def cam_summary(data: dict, threshold: float = 0.5):
    """Per branch and image kind: the share of pixels whose map exceeds ``threshold`` (how spread the
    attention is) and the map's vertical centre of mass (0 top, 1 bottom), averaged over the images."""
    import pandas as pd

    rows = []
    for kind in ("clean", "occluded"):
        for b in data["branches"]:
            m = np.asarray(data["maps"][kind][b], dtype=np.float32)
            ys = (np.arange(m.shape[1]) + 0.5) / m.shape[1]
            mass = m.sum(axis=(1, 2))
            centre = np.where(mass > 0, (m.sum(axis=2) * ys).sum(axis=1) / np.maximum(mass, 1e-9), np.nan)
            rows.append({"image": kind, "branch": b, "share above": float((m > threshold).mean()),
                         "vertical centre": float(np.nanmean(centre)) if np.isfinite(centre).any() else np.nan})
    return pd.DataFrame(rows)


def cam_note(summary, threshold: float = 0.5) -> str:
    """What to look at in the CAM grid, from :func:`cam_summary`."""
    clean = summary[summary["image"] == "clean"].set_index("branch")["share above"]
    occ = summary[summary["image"] == "occluded"].set_index("branch")["share above"]
    change = (occ - clean) * 100
    return (f"On clean images {clean.idxmax()}'s map is the most spread ({100 * clean.max():.0f}% of pixels above "
            f"{threshold}) and {clean.idxmin()}'s the most focused ({100 * clean.min():.0f}%). Under RPE occlusion "
            f"{change.abs().idxmax()}'s spread changes most ({change.loc[change.abs().idxmax()]:+.0f} points).")
