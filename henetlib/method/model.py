"""HENet: a shared ResNet encoder split into a global branch G1, stripe branches P(k) and a recovery branch R16.

Section 3.1 of the paper (eqs. 1-4, Fig. 2). Where the shared encoder ends is a reading (docs/READINGS.md):

* ``split="layer3"`` (default): the encoder is the ResNet stem through all of ``layer3``; G1, every P(k) and
  R16 each own a copy of ``layer4``. This gives Table 1's V (HENet(Base) 163 MiB vs 169, HENet(+Both) 222 MiB
  vs 224) and its block count predicts the paper's 160 -> 138 fps step.
* ``split="mgn"``: MGN's split, the encoder stops at ``layer3[0]`` and every branch owns the rest of
  ``layer3`` and ``layer4`` (184 / 267 MiB). The MGN peer uses it.

Reading of the paper's names used here:

* ``stripes`` lists the branches by their bin count. ``1`` is the global branch G1 (one 512-d feature f_G1).
  ``k > 1`` is the partial branch P(k): a 512-d global feature f_Gk of the branch (eq. 2, i = k) plus k
  horizontal bins, each pooled (eq. 1) and reduced by a 1x1 conv to a 256-d feature f_Pk^j (eq. 2).
* R16 is the recovery branch: a 512-d feature f_R (eqs. 3-4) and a decoder of four conv-deconvolution
  groups that rebuilds the input at 1/4 of its height and width, i.e. 1/16 of its area. The paper never
  spells out "16"; 1/16 of the area is our reading.
* ``last_stride`` is the stride of ``layer4``'s first block in the partial branches P(k), which want a taller
  map to cut into bins (MGN does the same). G1 and R16 keep ResNet's stride 2.

The feature of a model (its FD in Tables 1-3) is the concatenation of every feature above, in branch order.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock

GLOBAL_DIM = 512  # f_G and f_R (eqs. 2 and 4)
PART_DIM = 256  # f_P^j (eq. 2)
RECOVERY_SCALE = 4  # the decoder output is H/4 x W/4: 1/16 of the area ("R16")
SPLITS = ("layer3", "mgn")  # where the shared encoder ends (see the module docstring)

def _resnet18_half(weights=None) -> nn.Module:
    """ResNet18 at half width (32-64-128-256 channels): a quarter of the FLOPs, for CPU smoke runs."""
    return _resnet18_narrow(32)


def _resnet18_quarter(weights=None) -> nn.Module:
    """ResNet18 at quarter width (16-32-64-128 channels): the smoke profile's backbone, sized so that its
    whole converged study fits the 10-minute CPU budget (docs/READINGS.md, "Smoke profile")."""
    return _resnet18_narrow(16)


def _resnet18_narrow(base: int) -> nn.Module:
    """ResNet18 with ``base``-``2 base``-``4 base``-``8 base`` channels (torchvision's is 64).

    Built from torchvision's BasicBlock; it exposes the same attributes as torchvision's ResNet.
    """
    net = nn.Module()
    net.conv1 = nn.Conv2d(3, base, 7, 2, 3, bias=False)
    net.bn1 = nn.BatchNorm2d(base)
    net.relu = nn.ReLU(inplace=True)
    net.maxpool = nn.MaxPool2d(3, 2, 1)
    cin = base
    for i, (w, stride) in enumerate(((base, 1), (2 * base, 2), (4 * base, 2), (8 * base, 2)), start=1):
        down = None if (stride == 1 and cin == w) else nn.Sequential(
            nn.Conv2d(cin, w, 1, stride, bias=False), nn.BatchNorm2d(w))
        setattr(net, f"layer{i}", nn.Sequential(BasicBlock(cin, w, stride, down), BasicBlock(w, w)))
        cin = w
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    net.fc = nn.Identity()
    return net


_BACKBONES = {"resnet18": torchvision.models.resnet18, "resnet34": torchvision.models.resnet34,
              "resnet50": torchvision.models.resnet50, "resnet18-half": _resnet18_half,
              "resnet18-quarter": _resnet18_quarter}

_warned_random_init = False


def backbone_network(name: str) -> nn.Module:
    """A randomly initialised backbone by name (torchvision layout: conv1 ... layer4, fc)."""
    if name not in _BACKBONES:
        raise ValueError(f"backbone={name!r} is not known; use one of {sorted(_BACKBONES)}.")
    return _BACKBONES[name](weights=None)


def feature_dim_of(stripes: Sequence[int], recovery: bool) -> int:
    """The FD column of Tables 1-3 for a layout, without building the network."""
    fd = sum(GLOBAL_DIM + (PART_DIM * k if k > 1 else 0) for k in stripes)
    return fd + (GLOBAL_DIM if recovery else 0)


def layout_name(stripes: Sequence[int], recovery: bool) -> str:
    """Paper-style name: ``G1+P4+R16``."""
    parts = [("G1" if k == 1 else f"P{k}") for k in stripes]
    if recovery:
        parts.append("R16")
    return "+".join(parts)


@dataclass
class BranchOutput:
    """What one branch gives in training mode."""

    name: str  # "G1", "P4", "R16"
    global_feat: torch.Tensor  # (B, 512): f_G (or f_R for R16)
    global_logits: torch.Tensor  # FC512 output, (B, C)
    part_feats: list[torch.Tensor] = field(default_factory=list)  # k x (B, 256): f_P^j
    part_logits: list[torch.Tensor] = field(default_factory=list)  # FC256 outputs


@dataclass
class HENetOutput:
    """Training-mode output: every branch's features and classifier scores, plus the reconstruction."""

    branches: list[BranchOutput]
    reconstruction: torch.Tensor | None

    def embedding(self) -> torch.Tensor:
        """The test-time representation: all features concatenated."""
        feats = []
        for b in self.branches:
            feats.append(b.global_feat)
            feats.extend(b.part_feats)
        return torch.cat(feats, dim=1)


class _Reduce(nn.Module):
    """Eq. 2 / eq. 4: a 1x1 convolution (with BN and ReLU, as MGN) from the pooled map to the feature."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_in")

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(pooled))).flatten(1)


def _classifier(dim: int, num_classes: int) -> nn.Linear:
    fc = nn.Linear(dim, num_classes)
    nn.init.normal_(fc.weight, std=0.001)
    nn.init.zeros_(fc.bias)
    return fc


class StripeBranch(nn.Module):
    """G1 (k = 1) or P(k): pooled global feature plus, for k > 1, k horizontal bins (eqs. 1-2)."""

    def __init__(self, body: nn.Module, in_ch: int, k: int, num_classes: int):
        super().__init__()
        self.k = k
        self.name = "G1" if k == 1 else f"P{k}"
        self.body = body
        self.reduce_global = _Reduce(in_ch, GLOBAL_DIM)
        self.fc_global = _classifier(GLOBAL_DIM, num_classes)  # FC512
        self.reduce_parts = nn.ModuleList(_Reduce(in_ch, PART_DIM) for _ in range(k if k > 1 else 0))
        self.fc_parts = nn.ModuleList(_classifier(PART_DIM, num_classes) for _ in range(len(self.reduce_parts)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        fmap = self.body(x)  # GM_k
        gi = F.adaptive_max_pool2d(fmap, 1)  # GI_k (eq. 1)
        g = self.reduce_global(gi)
        parts = []
        if self.k > 1:
            pi = F.adaptive_max_pool2d(fmap, (self.k, 1))  # PI_k^j: k equal horizontal bins (eq. 1)
            parts = [red(pi[:, :, j : j + 1]) for j, red in enumerate(self.reduce_parts)]
        return g, parts


class Decoder(nn.Module):
    """Four conv-deconvolution groups from f_R back to a low-resolution image (section 3.1, eq. 9)."""

    def __init__(self, in_dim: int, out_size: tuple[int, int], width: int = 256):
        super().__init__()
        self.out_size = out_size
        # Four x2 up-samplings: start at 1/16 of the output size (at least 1x1), resize at the end if needed.
        self.start = (max(1, round(out_size[0] / 16)), max(1, round(out_size[1] / 16)))
        self.width = width
        self.fc = nn.Linear(in_dim, width * self.start[0] * self.start[1])
        chans = [width, width // 2, width // 4, width // 8, width // 8]
        groups = []
        for cin, cout in zip(chans[:-1], chans[1:], strict=True):
            groups += [
                nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
        self.groups = nn.Sequential(*groups)
        self.to_rgb = nn.Conv2d(chans[-1], 3, 3, padding=1)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        x = self.fc(f).view(f.shape[0], self.width, *self.start)
        x = self.to_rgb(self.groups(x))
        if tuple(x.shape[-2:]) != self.out_size:
            x = F.interpolate(x, size=self.out_size, mode="bilinear", align_corners=False)
        return x


class RecoveryBranch(nn.Module):
    """R16: f_R (eqs. 3-4), its FC512 classifier and the decoder."""

    def __init__(self, body: nn.Module, in_ch: int, num_classes: int, input_size: tuple[int, int]):
        super().__init__()
        self.name = "R16"
        self.body = body
        self.reduce = _Reduce(in_ch, GLOBAL_DIM)
        self.fc = _classifier(GLOBAL_DIM, num_classes)
        self.decoder = Decoder(GLOBAL_DIM, (input_size[0] // RECOVERY_SCALE, input_size[1] // RECOVERY_SCALE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reduce(F.adaptive_max_pool2d(self.body(x), 1))  # RI (eq. 3), f_R (eq. 4)


def _load_backbone(name: str, pretrained: str | Path | None) -> nn.Module:
    global _warned_random_init
    net = backbone_network(name)
    if pretrained is None:
        if not _warned_random_init:
            warnings.warn(
                f"HENet: no pretrained weights given, the {name} backbone starts from random weights "
                "(pass pretrained='path/to/resnet.pth' to load a local torchvision checkpoint).",
                stacklevel=3,
            )
            _warned_random_init = True
        return net
    net.load_state_dict(read_backbone_state(pretrained, name, net), strict=False)
    return net


def read_backbone_state(pretrained: str | Path, name: str, net: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """The backbone weights of a local checkpoint, checked against a torchvision ``name`` before any training.

    Accepted: a bare torchvision ``state_dict``, or a training checkpoint holding it under ``state_dict`` or
    ``model`` (a ``module.`` prefix from DataParallel/DDP is dropped; the classifier ``fc.`` is never used).
    Anything else, and keys or shapes that do not fit the backbone, raise an error naming the file and the fix."""
    path = Path(pretrained).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained weights file {str(path)!r} does not exist. Give the path of a local torchvision "
            f"{name} state_dict (nothing is ever downloaded), or pretrained=None for random weights."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - re-raised with the file's name
        raise ValueError(f"could not read pretrained weights from {str(path)!r}: {e}") from e
    for nest in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(nest), dict):
            state = state[nest]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(
            f"{str(path)!r} holds a {type(state).__name__}, not a state_dict of tensors. Save the backbone with "
            "torch.save(model.state_dict(), path), or a dict with the state_dict under 'state_dict' or 'model'."
        )
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.removeprefix("module.").startswith("fc.")}
    own = {k: v for k, v in (net or backbone_network(name)).state_dict().items() if not k.startswith("fc.")}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        raise ValueError(
            f"pretrained weights in {str(path)!r} do not match a torchvision {name}: {len(missing)} missing "
            f"keys (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}), {len(wrong)} "
            f"of another shape (e.g. {wrong[:3]}). Is it a checkpoint of another backbone?"
        )
    return state


def _set_stride(layer: nn.Sequential, stride: int) -> None:
    block = layer[0]
    conv = block.conv2 if hasattr(block, "conv3") else block.conv1  # Bottleneck strides in conv2
    conv.stride = (stride, stride)
    if block.downsample is not None:
        block.downsample[0].stride = (stride, stride)


class HENet(nn.Module):
    """The Hierarchical and Efficient Network of Fig. 2.

    Args:
        num_classes: training identities (the classifiers' width).
        stripes: one entry per stripe branch: 1 is G1, k > 1 is P(k). ``(1, 4)`` is HENet(Base).
        recovery: add the recovery branch R16 (HENet(+Losses/+Both) use ``(1, 4)`` plus R16).
        backbone: "resnet50" (the paper), or "resnet18" / "resnet34" / "resnet18-half" / "resnet18-quarter" for fast CPU runs.
        pretrained: path to a local torchvision ResNet state_dict, loaded with ``weights_only=True``;
            ``None`` starts from random weights (said once, as a warning). Nothing is downloaded.
        last_stride: stride of layer4 in the P(k) branches (1 keeps a 24 x 8 map at 384 x 128).
        input_size: (H, W) the model is trained at; it sizes the decoder's output (H/4, W/4).
        split: "layer3" (the encoder shares all of layer3; each branch owns a layer4) or "mgn" (the encoder
            stops at layer3[0]; each branch owns layer3[1:] and layer4).

    In eval mode ``model(x)`` returns the concatenated feature, shape ``(B, model.feature_dim)``;
    in train mode it returns a :class:`HENetOutput`.
    """

    def __init__(
        self,
        num_classes: int,
        stripes: Sequence[int] = (1, 4),
        recovery: bool = True,
        backbone: str = "resnet50",
        pretrained: str | Path | None = None,
        last_stride: int = 1,
        input_size: tuple[int, int] = (384, 128),
        split: str = "layer3",
    ):
        super().__init__()
        stripes = tuple(int(k) for k in stripes)
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}.")
        if not stripes and not recovery:
            raise ValueError("HENet needs at least one branch: give stripes (e.g. (1, 4)) or recovery=True.")
        if any(k < 1 for k in stripes):
            raise ValueError(f"stripes entries must be >= 1 (1 = G1, k = P(k)), got {stripes}.")
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, got {last_stride}.")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
        if input_size[0] < 32 or input_size[1] < 16:
            raise ValueError(f"input_size must be at least 32 x 16, got {input_size}.")
        self.stripes = stripes
        self.recovery = recovery
        self.num_classes = num_classes
        self.backbone_name = backbone
        self.input_size = tuple(input_size)
        self.split = split
        # Training runs the decoder only when eq. 9's loss uses it (the engine turns it off otherwise): an
        # output no loss reads still counts as used for DDP, which then waits for gradients that never come.
        self.reconstruct = True

        net = _load_backbone(backbone, pretrained)
        shared_l3 = net.layer3 if split == "layer3" else net.layer3[0]
        self.encoder = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, shared_l3)
        out_ch = net.layer4[-1].conv3.out_channels if hasattr(net.layer4[-1], "conv3") else \
            net.layer4[-1].conv2.out_channels

        def branch_body(stride: int) -> nn.Module:
            layer4 = copy.deepcopy(net.layer4)
            _set_stride(layer4, stride)
            if split == "layer3":
                return nn.Sequential(layer4)
            return nn.Sequential(copy.deepcopy(net.layer3[1:]), layer4)

        self.branches = nn.ModuleList(
            StripeBranch(branch_body(2 if k == 1 else last_stride), out_ch, k, num_classes) for k in stripes
        )
        self.recovery_branch = (
            RecoveryBranch(branch_body(2), out_ch, num_classes, self.input_size) if recovery else None
        )
        self.feature_dim = feature_dim_of(stripes, recovery)
        self.name = layout_name(stripes, recovery)

    def branch_names(self) -> list[str]:
        return [b.name for b in self.branches] + (["R16"] if self.recovery else [])

    def forward(self, x: torch.Tensor) -> torch.Tensor | HENetOutput:
        shared = self.encoder(x)
        outs: list[BranchOutput] = []
        for branch in self.branches:
            g, parts = branch(shared)
            if self.training:
                outs.append(BranchOutput(branch.name, g, branch.fc_global(g), parts,
                                         [fc(p) for fc, p in zip(branch.fc_parts, parts, strict=True)]))
            else:
                outs.append(BranchOutput(branch.name, g, g[:, :0], parts))
        recon = None
        if self.recovery_branch is not None:
            fr = self.recovery_branch(shared)
            if self.training:
                outs.append(BranchOutput("R16", fr, self.recovery_branch.fc(fr)))
                recon = self.recovery_branch.decoder(fr) if self.reconstruct else None
            else:
                outs.append(BranchOutput("R16", fr, fr[:, :0]))
        out = HENetOutput(outs, recon)
        return out if self.training else out.embedding()

    def inference_parameters(self) -> int:
        """Parameters used at test time (the classifiers and the decoder are training-only)."""
        return inference_parameters(self)

    def inference_size_mib(self) -> float:
        """Table 1's V: the float32 parameters a test-time forward uses, in MiB (2^20 bytes)."""
        return self.inference_parameters() * 4 / 2**20


def inference_parameters(model: nn.Module) -> int:
    """Parameters a test-time forward uses: all but the identity classifiers (``nn.Linear``) and R16's decoder
    (Table 1's V counts these)."""
    skip = {id(p) for m in model.modules() if isinstance(m, (nn.Linear, Decoder)) for p in m.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in skip)


def parse_layout(name: str) -> tuple[tuple[int, ...], bool]:
    """The inverse of :func:`layout_name`: ``"G1+P4+R16"`` -> ``((1, 4), True)``."""
    stripes, recovery = [], False
    for part in name.replace(" ", "").split("+"):
        if part == "R16":
            recovery = True
        elif part == "G1":
            stripes.append(1)
        elif part[:1] == "P" and part[1:].isdigit() and int(part[1:]) > 1:
            stripes.append(int(part[1:]))
        else:
            raise ValueError(f"unknown branch {part!r} in {name!r}; a layout joins G1, P<k> (k > 1) and R16 with "
                             "'+', as in the paper: 'G1+P4+R16'.")
    return tuple(stripes), recovery


def create_model(layout: str = "G1+P4+R16", num_classes: int = 751, **kwargs) -> HENet:
    """HENet by the paper's name for its layout (Table 3): ``create_model("G1+P4+R16", 751)``. ``kwargs`` go to
    :class:`HENet` (``backbone``, ``pretrained``, ``input_size``, ``split``, ...)."""
    stripes, recovery = parse_layout(layout)
    return HENet(num_classes, stripes, recovery, **kwargs)
