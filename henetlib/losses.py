"""The losses of section 3.2: CE (eq. 5), batch-hard triplet (eq. 6), OIM (eqs. 7-8), reconstruction (eq. 9).

:class:`HENetLoss` combines them per branch as Fig. 2 does:

* global features f_G (G1's and each P(k)'s): triplet + CE,
* partial features f_P^j: OIM + CE,
* the recovery feature f_R: reconstruction (MSE) + CE.

Each of OIM, triplet and MSE can be switched off, so each row of Table 4 is one :class:`LossConfig`.
Samples labelled -1 are unlabeled: they feed OIM's circular queue and are ignored by every other term.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import distributed as ddp
from .model import HENetOutput


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Eq. 5, averaged over the labelled samples of the batch (label -1 is ignored; 0 if there are none)."""
    total = F.cross_entropy(logits.float(), labels, ignore_index=-1, label_smoothing=label_smoothing,
                            reduction="sum")
    return total / (labels >= 0).sum().clamp_min(1)


def pairwise_euclidean(x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Euclidean distances between the rows of ``x`` and those of ``y`` (default: ``x``)."""
    x = x.float()
    if y is None:  # one squared norm used twice: the one-process gradients keep their rounding
        sq = (x * x).sum(1)
        d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.t())
    else:
        y = y.float()
        d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * (x @ y.t())
    return d2.clamp_min(1e-12).sqrt()


def batch_hard_triplet(features: torch.Tensor, labels: torch.Tensor, margin: float = 0.3,
                       gather: bool = False) -> torch.Tensor:
    """Eq. 6: for each anchor, the hardest positive and hardest negative in the P x K batch.

    Averaged over the anchors that have at least one positive and one negative. Raises ValueError when
    no anchor has both (for example a batch of K = 1), since the loss would otherwise be NaN.
    Under DDP the anchors are this rank's samples; ``gather`` mines their positives and negatives among
    every rank's features (the global batch) instead of this rank's alone (fast-reid's default).
    """
    cand, cand_labels, offset = features, labels, 0
    if gather and ddp.world_size() > 1:
        cand, offset = ddp.all_gather_keep_grad(features)
        cand_labels = ddp.all_gather_cat(labels)
    keep = labels >= 0
    both = keep[:, None] & (cand_labels >= 0)[None, :]
    d = pairwise_euclidean(features) if cand is features else pairwise_euclidean(features, cand)
    same = labels[:, None] == cand_labels[None, :]
    n, m = len(labels), len(cand_labels)
    eye = torch.arange(n, device=labels.device)[:, None] + offset == torch.arange(m, device=labels.device)[None, :]
    pos = same & ~eye & both
    neg = ~same & both
    valid = pos.any(1) & neg.any(1)
    # checked on the CPU only: on a GPU the check would stall every step (a bad batch gives NaN there,
    # which the training loop reports at the end of the epoch)
    if valid.device.type == "cpu" and not bool(valid.any()):
        raise ValueError(
            "batch_hard_triplet: no anchor in the batch has both a positive and a negative. Use a P x K "
            "sampler with P >= 2 identities and K >= 2 images each."
        )
    hardest_pos = torch.where(pos, d, torch.zeros_like(d)).max(1).values
    hardest_neg = torch.where(neg, d, torch.full_like(d, float("inf"))).min(1).values
    per_anchor = F.relu(margin + hardest_pos - hardest_neg.clamp_max(torch.finfo(d.dtype).max))
    return (per_anchor * valid).sum() / valid.sum()


class OIMLoss(nn.Module):
    """Online Instance Matching (Xiao et al. 2017; eqs. 7-8).

    A lookup table ``lut`` (one L2-normalised centre v_j per labelled class) and a circular queue ``queue``
    (the Q most recent unlabeled features u_k). The softmax of eq. 7 runs over both with temperature tau
    (scale 1/tau = 30); eq. 8's expectation is over the labelled samples. After each forward in training
    mode the table moves towards the batch's features and unlabeled features are pushed into the queue,
    overwriting the oldest. Until an unlabeled sample arrives, the queue term of eq. 7 is empty.

    ``update="sample"`` (default) is OIM's authors' rule: once per sample, in batch order,
    v_y <- m v_y + (1 - m) x, then re-normalised; the K samples of an identity update it K times in a row.
    ``update="identity-mean"`` updates each identity once per batch with the mean of its samples (our
    earlier reading; kept as an option).
    """

    def __init__(self, num_features: int, num_classes: int, queue_size: int = 5000, tau: float = 1 / 30,
                 momentum: float = 0.5, update: str = "sample"):
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"OIM momentum must be in [0, 1), got {momentum}.")
        if tau <= 0:
            raise ValueError(f"OIM temperature tau must be positive, got {tau}.")
        if queue_size < 0:
            raise ValueError(f"OIM queue_size must be >= 0, got {queue_size}.")
        if update not in OIM_UPDATES:
            raise ValueError(f"OIM update must be one of {OIM_UPDATES}, got {update!r}.")
        self.update_rule = update
        self.rounds_hint: int | None = None  # most samples one identity has in a batch (K); None: counted
        self.tau = tau
        self.momentum = momentum
        self.queue_size = queue_size
        self.register_buffer("lut", torch.zeros(num_classes, num_features))
        self.register_buffer("queue", torch.zeros(queue_size, num_features))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = F.normalize(features.float(), dim=1)
        logits = x @ torch.cat([self.lut, self.queue], dim=0).t() / self.tau
        # Queue slots not yet written take no part in eq. 7's denominator (masked, so no host sync).
        empty = torch.arange(self.queue_size, device=x.device) >= self.queue_filled
        logits[:, self.lut.shape[0] :] = logits[:, self.lut.shape[0] :].masked_fill(empty, float("-inf"))
        loss = cross_entropy(logits, labels)
        if self.training:
            self.update(x.detach(), labels)
        return loss

    @torch.no_grad()
    def update(self, x: torch.Tensor, labels: torch.Tensor) -> None:
        """Momentum update of the table (labelled samples) and push into the queue (label -1).

        Under DDP every rank's features and labels are gathered first (in rank order, which is the global
        batch's order), so all ranks apply the same update and keep the same table and queue."""
        if ddp.world_size() > 1:
            x, labels = ddp.all_gather_cat(x), ddp.all_gather_cat(labels)
        lab = labels >= 0
        if self.update_rule == "identity-mean":
            ys, inv = labels[lab].unique(return_inverse=True)
            if len(ys):
                mean = torch.zeros(len(ys), x.shape[1], device=x.device).index_add_(0, inv, x[lab])
                mean /= torch.bincount(inv, minlength=len(ys)).unsqueeze(1).to(mean.dtype)
                self.lut[ys] = F.normalize(self.momentum * self.lut[ys] + (1.0 - self.momentum) * mean, dim=1)
        else:
            self._update_per_sample(x, labels)
        unl = x[~lab]
        if self.queue_size == 0 or len(unl) == 0:
            return
        unl = unl[-self.queue_size :]
        idx = (self.queue_ptr + torch.arange(len(unl), device=unl.device)) % self.queue_size
        self.queue[idx] = unl
        self.queue_ptr.copy_((self.queue_ptr + len(unl)) % self.queue_size)
        self.queue_filled.copy_(torch.clamp(self.queue_filled + len(unl), max=self.queue_size))


    def _update_per_sample(self, x: torch.Tensor, labels: torch.Tensor) -> None:
        """Xiao et al.'s sequential rule, exactly, in as many vectorised rounds as an identity has samples.

        Round r applies the r-th sample (in batch order) of every identity at once; identities are distinct
        within a round, so each round is one scatter. Unlabeled samples and padding go to a spare row.
        """
        n = len(labels)
        if n == 0:
            return
        c = self.lut.shape[0]
        y = torch.where(labels >= 0, labels, torch.full_like(labels, c))  # row c: the spare row
        # occurrence index of each sample among the earlier samples of its label
        same = (y[:, None] == y[None, :]) & torch.ones(n, n, dtype=torch.bool, device=y.device).tril(-1)
        occ = same.sum(1)
        rounds = self.rounds_hint if self.rounds_hint is not None else int(occ.max()) + 1
        table = torch.cat([self.lut, self.lut.new_zeros(1, self.lut.shape[1])])
        for r in range(rounds):
            rows = torch.where(occ == r, y, torch.full_like(y, c))
            upd = F.normalize(self.momentum * table[rows] + (1.0 - self.momentum) * x, dim=1)
            table.index_copy_(0, rows, upd)  # duplicates only ever hit the spare row
        self.lut.copy_(table[:c])


def reconstruction_loss(reconstruction: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Eq. 9 against the target image (R16's: the un-erased input) down-sampled (area average) to the
    decoder's size.

    Eq. 9 is a sum over pixels; we take the mean, which only rescales the term and keeps its weight
    independent of the input size.
    """
    target = F.interpolate(images.float(), size=reconstruction.shape[-2:], mode="area")
    return F.mse_loss(reconstruction.float(), target)


def loss_names(oim: bool, triplet: bool, mse: bool) -> str:
    """The switchable terms that are on, in Table 4's order: "OIM+Tri+MSE" ("" when only CE is on)."""
    return "+".join(n for n, on in (("OIM", oim), ("Tri", triplet), ("MSE", mse)) if on)


OIM_UPDATES = ("sample", "identity-mean")
RECON_TARGETS = ("clean", "input")


@dataclass
class LossConfig:
    """Which terms are on. All three on is HENet(+Losses); all off is CE alone (Table 4, first row).

    ``margin`` is eq. 6's m: 1.2 on unnormalised features, as in MGN's code line (docs/READINGS.md).
    ``recon_target``: "clean" rebuilds the un-erased image (what "recovery" means); "input" the erased one.
    """

    oim: bool = True
    triplet: bool = True
    mse: bool = True
    margin: float = 1.2
    triplet_gather: bool = False  # under DDP: mine over every rank's features, not this rank's
    label_smoothing: float = 0.0
    oim_queue: int = 5000
    oim_tau: float = 1 / 30
    oim_momentum: float = 0.5
    oim_update: str = "sample"
    mse_weight: float = 1.0
    recon_target: str = "clean"

    def __post_init__(self) -> None:
        if self.margin < 0:
            raise ValueError(f"triplet margin must be >= 0, got {self.margin}.")
        if self.oim_update not in OIM_UPDATES:
            raise ValueError(f"oim_update must be one of {OIM_UPDATES}, got {self.oim_update!r}.")
        if self.recon_target not in RECON_TARGETS:
            raise ValueError(f"recon_target must be one of {RECON_TARGETS}, got {self.recon_target!r}.")


@dataclass
class LossOutput:
    total: torch.Tensor
    terms: dict[str, torch.Tensor]  # detached; convert with float() only when logging (a host sync)


class HENetLoss(nn.Module):
    """Fig. 2's loss combination: G: triplet + CE, P: OIM + CE, R: MSE + CE, each switchable."""

    def __init__(self, num_classes: int, stripes: tuple[int, ...] = (1, 4), config: LossConfig | None = None,
                 part_dim: int = 256):
        super().__init__()
        self.config = config or LossConfig()
        n_parts = sum(k for k in stripes if k > 1)
        c = self.config
        self.oims = nn.ModuleList(
            OIMLoss(part_dim, num_classes, c.oim_queue, c.oim_tau, c.oim_momentum, c.oim_update)
            for _ in range(n_parts)
        ) if c.oim else nn.ModuleList()

    def set_batch_structure(self, k: int | None) -> None:
        """Tell OIM that no identity has more than ``k`` samples in a batch (P x K): no host sync per step."""
        for oim in self.oims:
            oim.rounds_hint = k

    def forward(self, out: HENetOutput, labels: torch.Tensor, images: torch.Tensor,
                clean: torch.Tensor | None = None) -> LossOutput:
        """``images``: the network's input; ``clean``: the same images before erasing (R16's target when
        ``recon_target="clean"``; defaults to ``images``)."""
        c = self.config
        ce_terms, tri_terms, oim_terms = [], [], []
        part_idx = 0
        for b in out.branches:
            ce_terms.append(cross_entropy(b.global_logits, labels, c.label_smoothing))
            if c.triplet and b.name != "R16":
                tri_terms.append(batch_hard_triplet(b.global_feat, labels, c.margin, c.triplet_gather))
            for feat, logits in zip(b.part_feats, b.part_logits, strict=True):
                ce_terms.append(cross_entropy(logits, labels, c.label_smoothing))
                if c.oim:
                    oim_terms.append(self.oims[part_idx](feat, labels))
                part_idx += 1
        terms: dict[str, torch.Tensor] = {"ce": torch.stack(ce_terms).mean()}
        if tri_terms:
            terms["triplet"] = torch.stack(tri_terms).mean()
        if oim_terms:
            terms["oim"] = torch.stack(oim_terms).mean()
        if c.mse and out.reconstruction is not None:
            target = clean if (c.recon_target == "clean" and clean is not None) else images
            terms["mse"] = c.mse_weight * reconstruction_loss(out.reconstruction, target)
        total = sum(terms.values())
        return LossOutput(total, {k: v.detach() for k, v in terms.items()})
