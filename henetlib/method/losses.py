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

from henetlib.method.model import HENetOutput
from henetlib.system import distributed as ddp


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Eq. 5, averaged over the labelled samples of the batch (label -1 is ignored; 0 if there are none)."""
    total = F.cross_entropy(logits.float(), labels, ignore_index=-1, label_smoothing=label_smoothing,
                            reduction="sum")
    return total / (labels >= 0).sum().clamp_min(1)


def pairwise_euclidean(x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Euclidean distances between the rows of ``x`` and those of ``y`` (default: ``x``); leading batch
    dimensions (several features at once, shape (T, n, d)) are kept."""
    x = x.float()
    if y is None:  # one squared norm used twice: the one-process gradients keep their rounding
        sq = (x * x).sum(-1)
        d2 = sq[..., :, None] + sq[..., None, :] - 2.0 * (x @ x.mT)
    else:
        y = y.float()
        d2 = (x * x).sum(-1)[..., :, None] + (y * y).sum(-1)[..., None, :] - 2.0 * (x @ y.mT)
    return d2.clamp_min(1e-12).sqrt()


def check_triplet_batch(labels: torch.Tensor) -> None:
    """Raise ValueError when no anchor of ``labels`` has both a positive and a negative (eq. 6 would be NaN).

    A host sync: the training step never calls it. Training checks the batch structure once instead
    (P >= 2 identities and K >= 2 images each: :class:`~henetlib.data.datasets.RandomIdentitySampler` and
    ``TrainConfig``); on a bad batch the loss becomes NaN and the loop stops at the end of the epoch."""
    _, _, valid = _triplet_masks(labels, labels, 0)
    if not bool(valid.any()):
        raise ValueError(
            "batch_hard_triplet: no anchor in the batch has both a positive and a negative. Use a P x K "
            "sampler with P >= 2 identities and K >= 2 images each."
        )


def _triplet_masks(labels: torch.Tensor, cand_labels: torch.Tensor, offset: int):
    """(anchor, candidate) pairs that are positives and negatives among labelled samples, and the anchors
    having both."""
    both = (labels >= 0)[:, None] & (cand_labels >= 0)[None, :]
    same = labels[:, None] == cand_labels[None, :]
    neg = both & ~same
    pos = both & (same > _eye(len(labels), len(cand_labels), offset, labels.device))  # same and not itself
    return pos, neg, pos.any(1) & neg.any(1)


def _eye(n: int, m: int, offset: int, device: torch.device) -> torch.Tensor:
    """(n, m) bool: anchor i is candidate i + offset."""
    if offset == 0:
        return torch.eye(n, m, dtype=torch.bool, device=device)
    return torch.arange(n, device=device)[:, None] + offset == torch.arange(m, device=device)[None, :]


def batch_hard_triplet(features: torch.Tensor, labels: torch.Tensor, margin: float = 0.3,
                       gather: bool = False, check: bool = True, pk_batch: bool = False) -> torch.Tensor:
    """Eq. 6: for each anchor, the hardest positive and hardest negative in the P x K batch.

    Averaged over the anchors that have at least one positive and one negative. ``features`` is (n, d), or
    (T, n, d) for T features of the same samples at once (the stripe branches' f_G): the mean of the T
    losses, in one set of kernels. ``check`` raises ValueError when no anchor has both (for example a
    batch of K = 1), at the cost of a host sync; the training step passes ``check=False``. ``pk_batch``
    says the batch is a P x K sampler's with P, K >= 2 and no unlabeled sample, so every anchor has both
    (fewer kernels, same loss).
    Under DDP the anchors are this rank's samples; ``gather`` mines their positives and negatives among
    every rank's features (the global batch) instead of this rank's alone (fast-reid's default).
    """
    if check:
        check_triplet_batch(labels)
    feats = features if features.dim() == 3 else features.unsqueeze(0)
    cand, cand_labels, offset = feats, labels, 0
    if gather and ddp.world_size() > 1:
        cand, offset = ddp.all_gather_keep_grad(feats, dim=1)
        cand_labels = ddp.all_gather_cat(labels)
    d = pairwise_euclidean(feats) if cand is feats else pairwise_euclidean(feats, cand)
    if pk_batch:
        same = labels[:, None] == cand_labels[None, :]
        hardest_pos = (d * (same > _eye(len(labels), len(cand_labels), offset, labels.device))).amax(-1)
        hardest_neg = d.masked_fill(same, float("inf")).amin(-1)
        return F.relu(margin + hardest_pos - hardest_neg).mean()
    pos, neg, valid = _triplet_masks(labels, cand_labels, offset)
    hardest_pos = (d * pos).amax(-1)  # d >= 0: the same as the largest positive distance
    hardest_neg = d.masked_fill(~neg, float("inf")).amin(-1)  # no negative: inf, relu gives 0
    per_anchor = F.relu(margin + hardest_pos - hardest_neg)
    return (per_anchor * valid).sum() / valid.sum() / feats.shape[0]


def _normalize(x: torch.Tensor) -> torch.Tensor:
    """F.normalize(x, dim=-1), bit for bit, one kernel fewer (the divisor broadcasts, no expand)."""
    return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(1e-12)


class OIMLoss(nn.Module):
    """Online Instance Matching (Xiao et al. 2017; eqs. 7-8), for one feature or several stacked ones.

    A lookup table ``lut`` (one L2-normalised centre v_j per labelled class) and a circular queue ``queue``
    (the Q most recent unlabeled features u_k). The softmax of eq. 7 runs over both with temperature tau
    (scale 1/tau = 30); eq. 8's expectation is over the labelled samples. After each forward in training
    mode the table moves towards the batch's features and unlabeled features are pushed into the queue,
    overwriting the oldest. Until an unlabeled sample arrives, the queue term of eq. 7 is empty.

    ``parts=None``: one feature (B, D), tables ``lut`` (C, D) and ``queue`` (Q, D). ``parts=P``: P features
    stacked (P, B, D) (HENet's partial features f_P^j), each with its own table and queue, stacked as
    (P, C, D) and (P, Q, D): the same as P independent modules (bit for bit, tables and queues), in one set
    of kernels. The loss is the mean of the P losses. All parts share one queue pointer (they see the same
    samples).

    ``update="sample"`` (default) is OIM's authors' rule: once per sample, in batch order,
    v_y <- m v_y + (1 - m) x, then re-normalised; the K samples of an identity update it K times in a row.
    ``update="identity-mean"`` updates each identity once per batch with the mean of its samples (our
    earlier reading; kept as an option).
    """

    def __init__(self, num_features: int, num_classes: int, queue_size: int = 5000, tau: float = 1 / 30,
                 momentum: float = 0.5, update: str = "sample", parts: int | None = None):
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"OIM momentum must be in [0, 1), got {momentum}.")
        if tau <= 0:
            raise ValueError(f"OIM temperature tau must be positive, got {tau}.")
        if queue_size < 0:
            raise ValueError(f"OIM queue_size must be >= 0, got {queue_size}.")
        if update not in OIM_UPDATES:
            raise ValueError(f"OIM update must be one of {OIM_UPDATES}, got {update!r}.")
        if parts is not None and parts < 1:
            raise ValueError(f"OIM parts must be >= 1 or None, got {parts}.")
        self.update_rule = update
        self.rounds_hint: int | None = None  # most samples one identity has in a batch (K); None: counted
        self.unlabeled_hint: int | None = None  # 0: no batch has an unlabeled sample; None: any may
        self.tau = tau
        self.momentum = momentum
        self.queue_size = queue_size
        self.num_classes = num_classes
        self.parts = parts
        p = parts or 1
        # One block of rows per part: [0, C) the table, [C, C + Q) the queue, and a spare row C + Q that
        # takes the writes of samples that update nothing (fixed shapes, no boolean indexing). Kept out of
        # the state dict, which holds ``lut`` and ``queue`` as before (see _save_to_state_dict).
        self.register_buffer("bank", torch.zeros(p, num_classes + queue_size + 1, num_features), persistent=False)
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))
        self.register_buffer("_columns", torch.arange(num_classes + queue_size), persistent=False)
        self.register_buffer("_part_rows", torch.arange(p)[:, None] * (num_classes + queue_size + 1),
                             persistent=False)

    @property
    def spare(self) -> int:
        return self.num_classes + self.queue_size

    @property
    def lut(self) -> torch.Tensor:
        """The lookup table, a view: (C, D), or (P, C, D) with ``parts``."""
        v = self.bank[:, : self.num_classes]
        return v if self.parts else v[0]

    @property
    def queue(self) -> torch.Tensor:
        """The circular queue, a view: (Q, D), or (P, Q, D) with ``parts``."""
        v = self.bank[:, self.num_classes : self.spare]
        return v if self.parts else v[0]

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        for name in ("lut", "queue"):
            v = getattr(self, name)
            destination[prefix + name] = v if keep_vars else v.detach()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        for name in ("lut", "queue"):
            key = prefix + name
            if key not in state_dict:
                missing_keys.append(key)
                continue
            v, own = state_dict.pop(key), getattr(self, name)
            if tuple(v.shape) != tuple(own.shape):
                error_msgs.append(f"size mismatch for {key}: copying a param with shape {tuple(v.shape)}, the "
                                  f"shape in current model is {tuple(own.shape)}.")
                continue
            with torch.no_grad():
                own.copy_(v)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        f = features if self.parts else features.unsqueeze(0)  # (P, B, D)
        x = _normalize(f.float())
        k = self.spare
        # a copy: the update below writes into the bank, and the gradient needs the tables before it
        logits = x @ self.bank[:, :k].clone().mT / self.tau
        if self.queue_size:  # queue slots not yet written take no part in eq. 7's denominator
            logits = logits.masked_fill(self._columns >= self.num_classes + self.queue_filled, float("-inf"))
        n_lab = len(labels) if self.unlabeled_hint == 0 else (labels >= 0).sum().clamp_min(1)
        total = F.cross_entropy(logits.flatten(0, 1), labels.repeat(x.shape[0]), ignore_index=-1,
                                reduction="sum")
        if self.training:
            self.update(x.detach(), labels)
        return total / (n_lab * x.shape[0])

    @torch.no_grad()
    def update(self, x: torch.Tensor, labels: torch.Tensor) -> None:
        """Momentum update of the tables (labelled samples) and push into the queues (label -1).

        ``x``: normalised features, (P, B, D) (or (B, D) without ``parts``). Under DDP every rank's features
        and labels are gathered first (in rank order, which is the global batch's order), so all ranks apply
        the same update and keep the same tables and queues."""
        if x.dim() == 2:
            x = x.unsqueeze(0)
        if ddp.world_size() > 1:
            x, labels = ddp.all_gather_cat(x, dim=1), ddp.all_gather_cat(labels)
        flat = self.bank.view(-1, self.bank.shape[-1])  # every part's rows, for one index_copy_
        y = labels if self.unlabeled_hint == 0 else torch.where(labels >= 0, labels, self.spare)
        if self.update_rule == "identity-mean":
            self._update_identity_mean(x, y, flat)
        else:
            self._update_per_sample(x, y, flat)
        if self.queue_size and self.unlabeled_hint != 0:
            self._push(x, labels, flat)

    def _update_per_sample(self, x: torch.Tensor, y: torch.Tensor, flat: torch.Tensor) -> None:
        """Xiao et al.'s sequential rule, exactly, in as many vectorised rounds as an identity has samples.

        Round r applies the r-th sample (in batch order) of every identity at once, in every part;
        identities are distinct within a round, so each round is one gather and one scatter. Unlabeled
        samples and samples of other rounds write the spare row."""
        n = len(y)
        if n == 0:
            return
        # occurrence index of each sample among the earlier samples of its label
        occ = ((y[:, None] == y[None, :]) & torch.ones(n, n, dtype=torch.bool, device=y.device).tril(-1)).sum(1)
        rounds = self.rounds_hint if self.rounds_hint is not None else int(occ.max()) + 1  # sync: direct calls
        r = torch.arange(rounds, device=y.device)[:, None]
        rows = torch.where(occ == r, y, self.spare)  # (rounds, n)
        rows = (rows[:, None, :] + self._part_rows).flatten(1)  # (rounds, P * n): rows of ``flat``
        xw = ((1.0 - self.momentum) * x).flatten(0, 1)
        for rows_r in rows.unbind(0):
            upd = _normalize(self.momentum * flat.index_select(0, rows_r) + xw)
            flat.index_copy_(0, rows_r, upd)  # duplicates only ever hit the spare rows

    def _update_identity_mean(self, x: torch.Tensor, y: torch.Tensor, flat: torch.Tensor) -> None:
        rows = (y[None, :] + self._part_rows).flatten()
        sums = torch.zeros_like(flat).index_add_(0, rows, x.flatten(0, 1))
        counts = torch.zeros(flat.shape[0], device=flat.device).index_add_(0, rows, torch.ones_like(rows, dtype=flat.dtype))
        mean = sums / counts.clamp_min(1)[:, None]
        new = _normalize(self.momentum * flat + (1.0 - self.momentum) * mean)
        flat.copy_(torch.where((counts > 0)[:, None], new, flat))  # counted rows: the batch's identities

    def _push(self, x: torch.Tensor, labels: torch.Tensor, flat: torch.Tensor) -> None:
        """The unlabeled samples, in batch order, into the queue (the last Q of them if there are more),
        overwriting the oldest; fixed shapes: the other samples write the spare row."""
        q = self.queue_size
        unl = labels < 0
        pos = unl.cumsum(0) - 1  # position among the batch's unlabeled samples
        n_unl = pos[-1] + 1
        n_kept = n_unl.clamp_max(q)
        drop = n_unl - n_kept
        slot = (self.queue_ptr + pos - drop) % q + self.num_classes
        rows = (torch.where(unl & (pos >= drop), slot, self.spare)[None, :] + self._part_rows).flatten()
        flat.index_copy_(0, rows, x.flatten(0, 1))
        self.queue_ptr.copy_((self.queue_ptr + n_kept) % q)
        self.queue_filled.copy_((self.queue_filled + n_kept).clamp_max(q))


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
    names: tuple[str, ...]  # the terms that are on: "ce", "triplet", "oim", "mse"
    values: torch.Tensor  # detached (1 + len(names),): total, then each term; float() only when logging (a sync)

    @property
    def terms(self) -> dict[str, torch.Tensor]:
        return dict(zip(self.names, self.values[1:].unbind(0), strict=True))


def _sum(terms: list[torch.Tensor]) -> torch.Tensor:
    """t0 + t1 + ... in order (Python's sum() would add 0 first: one more kernel)."""
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total


def _stacked_groups(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """The tensors stacked (T, ...) by shape: one batched loss call per group."""
    groups: dict[tuple, list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault(tuple(t.shape), []).append(t)
    return [torch.stack(g) for g in groups.values()]


class HENetLoss(nn.Module):
    """Fig. 2's loss combination: G: triplet + CE, P: OIM + CE, R: MSE + CE, each switchable.

    Each kind of term runs once over all the branches that have it (a constant number of kernels, whatever
    the layout): the CE terms of every classifier output in one cross-entropy, the triplet terms of G1's and
    each P(k)'s global feature in one batched mining, the OIM terms of every partial feature f_P^j in one
    stacked :class:`OIMLoss`. Each term is the mean over its branches, as the per-branch sums were."""

    def __init__(self, num_classes: int, stripes: tuple[int, ...] = (1, 4), config: LossConfig | None = None,
                 part_dim: int = 256):
        super().__init__()
        self.config = config or LossConfig()
        n_parts = sum(k for k in stripes if k > 1)
        c = self.config
        self.oim = OIMLoss(part_dim, num_classes, c.oim_queue, c.oim_tau, c.oim_momentum, c.oim_update,
                           parts=n_parts) if (c.oim and n_parts) else None
        self.pk_batch = False  # see set_batch_structure

    def set_batch_structure(self, k: int | None, unlabeled: int | None = None) -> None:
        """The batches are the P x K sampler's (P >= 2 identities, K = ``k`` >= 2 samples each), followed by
        ``unlabeled`` samples of label -1 (None: unknown). OIM then runs K update rounds (no host sync to
        count them); with ``unlabeled=0`` every sample is labelled and every triplet anchor has a positive
        and a negative, which saves kernels. None, None: any batch (direct calls)."""
        self.pk_batch = k is not None and unlabeled == 0
        if self.oim is not None:
            self.oim.rounds_hint = k
            self.oim.unlabeled_hint = unlabeled

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # checkpoints written before the stacked OIM hold one module per part: oims.<j>.lut, ...
        old = sorted({int(k[len(prefix) + 5 :].split(".")[0]) for k in state_dict if k.startswith(prefix + "oims.")})
        if old:
            for name in ("lut", "queue"):
                state_dict[f"{prefix}oim.{name}"] = torch.stack([state_dict[f"{prefix}oims.{j}.{name}"] for j in old])
            for name in ("queue_ptr", "queue_filled"):  # every part saw the same samples
                state_dict[f"{prefix}oim.{name}"] = state_dict[f"{prefix}oims.{old[0]}.{name}"]
            for k in [k for k in state_dict if k.startswith(prefix + "oims.")]:
                del state_dict[k]
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def forward(self, out: HENetOutput, labels: torch.Tensor, images: torch.Tensor,
                clean: torch.Tensor | None = None) -> LossOutput:
        """``images``: the network's input; ``clean``: the same images before erasing (R16's target when
        ``recon_target="clean"``; defaults to ``images``)."""
        c = self.config
        names: list[str] = []
        terms: list[torch.Tensor] = []
        # CE (eq. 5) of every classifier output: mean over the T outputs of each one's mean over the
        # labelled samples, as one sum over the T x B rows
        logits = [b.global_logits for b in out.branches] + [lg for b in out.branches for lg in b.part_logits]
        n_lab = len(labels) if self.pk_batch else (labels >= 0).sum().clamp_min(1)
        ce = _sum([F.cross_entropy(g.float().flatten(0, 1), labels.repeat(len(g)), ignore_index=-1,
                                   label_smoothing=c.label_smoothing, reduction="sum")
                   for g in _stacked_groups(logits)])
        names.append("ce")
        terms.append(ce / (n_lab * len(logits)))
        feats = [b.global_feat for b in out.branches if b.name != "R16"]
        if c.triplet and feats:
            groups = _stacked_groups(feats)
            tri = [batch_hard_triplet(g, labels, c.margin, c.triplet_gather, False, self.pk_batch) for g in groups]
            names.append("triplet")  # the mean over the T features, whatever their grouping
            terms.append(tri[0] if len(tri) == 1 else _sum([t * len(g) for t, g in zip(tri, groups, strict=True)]) / len(feats))
        parts = [f for b in out.branches for f in b.part_feats]
        if self.oim is not None and parts:
            names.append("oim")
            terms.append(self.oim(torch.stack(parts), labels))
        if c.mse and out.reconstruction is not None:
            target = clean if (c.recon_target == "clean" and clean is not None) else images
            names.append("mse")
            mse = reconstruction_loss(out.reconstruction, target)
            terms.append(mse if c.mse_weight == 1.0 else c.mse_weight * mse)
        total = _sum(terms)
        return LossOutput(total, tuple(names), torch.stack([total, *terms]).detach())
