"""Class activation maps per HENet branch (Fig. 2, right), with the grad-cam package.

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

from .data import IMAGENET_MEAN, IMAGENET_STD
from .model import HENet

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
