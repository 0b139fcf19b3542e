"""Compact inference graphs of the methods HENet is compared with in Table 1, for measuring FD, V and S.

Only the test-time structure is rebuilt, plus one identity classifier per feature so that the full parameter
count is what a trained checkpoint holds; V (Table 1) leaves the classifiers out. Accuracy columns for these
methods always come from the paper. How each graph's V compares with Table 1, and why HPM's does not:
``henetlib.engine.efficiency.peer_size_check``.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from henetlib.method.model import HENet


def _resnet50_trunk(last_stride: int) -> nn.Sequential:
    net = torchvision.models.resnet50(weights=None)
    if last_stride == 1:
        net.layer4[0].conv2.stride = (1, 1)
        net.layer4[0].downsample[0].stride = (1, 1)
    return nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4)


class GlobalResNet50(nn.Module):
    """AlignedReID's global branch (Zhang et al. 2017): ResNet50, global average pooling, FD 2048."""

    def __init__(self, num_classes: int = 751):
        super().__init__()
        self.trunk = _resnet50_trunk(2)
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.trunk(x), 1).flatten(1)


def _bin_heads(n: int, num_classes: int) -> tuple[nn.ModuleList, nn.ModuleList]:
    """HPM's per-bin heads: a 1x1 conv from 2048 to 256 channels (BN, ReLU) and a classifier, for each of ``n``
    bins."""
    reduce = nn.ModuleList(nn.Sequential(nn.Conv2d(2048, 256, 1, bias=False), nn.BatchNorm2d(256),
                                         nn.ReLU(inplace=True)) for _ in range(n))
    return reduce, nn.ModuleList(nn.Linear(256, num_classes) for _ in range(n))


class _BinnedResNet50(nn.Module):
    """ResNet50 at last stride 1 whose map is pooled into horizontal bins, each reduced to 256-d."""

    def __init__(self, bins: list[int], num_classes: int, pool_max: bool):
        super().__init__()
        self.bins = bins
        self.pool_max = pool_max
        self.trunk = _resnet50_trunk(1)
        self.reduce, self.fc = _bin_heads(sum(bins), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmap = self.trunk(x)
        pooled = []
        for b in self.bins:
            p = F.adaptive_avg_pool2d(fmap, (b, 1))
            if self.pool_max:
                p = p + F.adaptive_max_pool2d(fmap, (b, 1))
            pooled.extend(p[:, :, j : j + 1] for j in range(b))
        return torch.cat([r(p).flatten(1) for r, p in zip(self.reduce, pooled, strict=True)], dim=1)


class PCB(_BinnedResNet50):
    """PCB (Sun et al. 2018): 6 horizontal stripes, each reduced to 256-d: FD 1536."""

    def __init__(self, num_classes: int = 751):
        super().__init__([6], num_classes, pool_max=False)


class HPM(_BinnedResNet50):
    """HPM (Fu et al. 2018) as published: one ResNet50 at last stride 1 whose final map is cut into a horizontal
    pyramid of 1, 2, 4 and 8 bins (15 bins), each average + max pooled and reduced by its own 1x1 conv to 256-d,
    with one classifier per bin: FD 3840. V 119.7 MiB, far below Table 1's 356 (see :class:`HPMPerScale`)."""

    def __init__(self, num_classes: int = 751):
        super().__init__([1, 2, 4, 8], num_classes, pool_max=True)


class HPMPerScale(nn.Module):
    """Not the published HPM: a reading that gives Table 1's HPM row, kept to explain it (not in :data:`PEERS`).

    Each pyramid scale owns a branch cut as MGN cuts its branches (``layer3[1:]`` and ``layer4`` at last stride
    1, the stem through ``layer3[0]`` shared), then HPM's 15 average + max pooled bins reduced to 256-d. Its
    354.9 MiB matches the paper's 356 to 0.3%, and four such branches against MGN's three fit the paper's
    S (82 against MGN's 112 fps); the published HPM pools every scale from one map, at PCB's MACs.
    """

    def __init__(self, num_classes: int = 751):
        super().__init__()
        net = torchvision.models.resnet50(weights=None)
        self.bins = (1, 2, 4, 8)
        self.encoder = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3[0])

        def branch() -> nn.Sequential:
            layer4 = copy.deepcopy(net.layer4)
            layer4[0].conv2.stride = (1, 1)
            layer4[0].downsample[0].stride = (1, 1)
            return nn.Sequential(copy.deepcopy(net.layer3[1:]), layer4)

        self.branches = nn.ModuleList(branch() for _ in self.bins)
        self.reduce, self.fc = _bin_heads(sum(self.bins), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shared = self.encoder(x)
        pooled = []
        for b, body in zip(self.bins, self.branches, strict=True):
            fmap = body(shared)
            p = F.adaptive_avg_pool2d(fmap, (b, 1)) + F.adaptive_max_pool2d(fmap, (b, 1))
            pooled.extend(p[:, :, j : j + 1] for j in range(b))
        return torch.cat([r(p).flatten(1) for r, p in zip(self.reduce, pooled, strict=True)], dim=1)


def MGN(num_classes: int = 751) -> HENet:  # noqa: N802 - the method's name
    """MGN (Wang et al. 2018) as the paper counts it: three branches G1, P2, P3 on a shared ResNet50 encoder
    (our HENet graph with stripes (1, 2, 3), no R16 and MGN's own split), FD 2816 as in Table 1."""
    return HENet(num_classes, stripes=(1, 2, 3), recovery=False, backbone="resnet50", split="mgn")


PEERS = {"AlignedReID": GlobalResNet50, "PCB": PCB, "HPM": HPM, "MGN": MGN}

# Graphs that reproduce a Table 1 V which the published design does not (engine.efficiency.peer_size_check)
PAPER_COUNT_READINGS = {"HPM": HPMPerScale}
