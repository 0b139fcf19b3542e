"""The losses (eqs. 5-9): batch-hard triplet against brute force, OIM's lookup table and queue, the
reconstruction target, Table 4's terms, and the stacked OIM against per-part modules."""

import warnings

import pytest
import torch

from henetlib.method.losses import (
    HENetLoss,
    LossConfig,
    OIMLoss,
    batch_hard_triplet,
    cross_entropy,
    reconstruction_loss,
)
from henetlib.method.model import HENet


def brute_force_triplet(x, y, margin):
    losses = []
    for a in range(len(y)):
        pos = [torch.dist(x[a], x[p]) for p in range(len(y)) if p != a and y[p] == y[a]]
        neg = [torch.dist(x[a], x[n]) for n in range(len(y)) if y[n] != y[a]]
        if pos and neg:
            losses.append(torch.clamp(margin + max(pos) - min(neg), min=0))
    return torch.stack(losses).mean()


def test_triplet_matches_brute_force():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 8, generator=g)
    y = torch.arange(4).repeat_interleave(4)
    for m in (0.0, 0.3, 5.0):
        assert torch.allclose(batch_hard_triplet(x, y, m), brute_force_triplet(x, y, m), atol=1e-5)


def test_triplet_ignores_unlabeled_and_errors_without_pairs():
    x = torch.randn(6, 4)
    y = torch.tensor([0, 0, 1, 1, -1, -1])
    assert torch.allclose(batch_hard_triplet(x, y, 0.3), brute_force_triplet(x[:4], y[:4], 0.3), atol=1e-5)
    with pytest.raises(ValueError, match="P x K"):
        batch_hard_triplet(torch.randn(4, 3), torch.arange(4))


def test_cross_entropy_ignores_unlabeled():
    logits = torch.randn(4, 3)
    y = torch.tensor([0, 2, -1, 1])
    ref = torch.nn.functional.cross_entropy(logits[[0, 1, 3]], y[[0, 1, 3]])
    assert torch.allclose(cross_entropy(logits, y), ref)


def test_oim_lookup_table_momentum():
    oim = OIMLoss(4, 3, queue_size=2, momentum=0.5).train()
    x = torch.nn.functional.normalize(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]), dim=1)
    oim(x, torch.tensor([0, 2]))
    assert torch.allclose(oim.lut[0], torch.tensor([1.0, 0, 0, 0]))  # 0.5*0 + 0.5*x, re-normalised
    assert torch.allclose(oim.lut[1], torch.zeros(4))
    x2 = torch.tensor([[0.0, 1.0, 0, 0]])
    oim(x2, torch.tensor([0]))
    expect = torch.nn.functional.normalize(torch.tensor([0.5, 0.5, 0, 0]), dim=0)
    assert torch.allclose(oim.lut[0], expect, atol=1e-6)


def test_oim_queue_wraps_around():
    oim = OIMLoss(2, 2, queue_size=3).train()
    feats = torch.nn.functional.normalize(torch.randn(5, 2), dim=1)
    unl = torch.full((5,), -1)
    oim(feats[:2], unl[:2])
    assert int(oim.queue_filled) == 2 and int(oim.queue_ptr) == 2
    oim(feats[2:], unl[2:])  # three more: slots 2, 0, 1
    assert int(oim.queue_filled) == 3 and int(oim.queue_ptr) == 2
    assert torch.allclose(oim.queue[2], feats[2]) and torch.allclose(oim.queue[0], feats[3])
    assert torch.allclose(oim.queue[1], feats[4])


def test_oim_finite_with_empty_queue_and_matches_formula():
    oim = OIMLoss(3, 4, queue_size=10, tau=0.1).eval()
    oim.lut.copy_(torch.nn.functional.normalize(torch.randn(4, 3), dim=1))
    x = torch.randn(2, 3)
    y = torch.tensor([1, 3])
    loss = oim(x, y)
    assert torch.isfinite(loss)
    ref = torch.nn.functional.cross_entropy(torch.nn.functional.normalize(x, dim=1) @ oim.lut.t() / 0.1, y)
    assert torch.allclose(loss, ref, atol=1e-5)
    # one queued feature joins the denominator of eq. 7
    oim.train()(torch.nn.functional.normalize(torch.randn(1, 3), dim=1), torch.tensor([-1]))
    oim.eval()
    u = oim.queue[:1]
    xn = torch.nn.functional.normalize(x, dim=1)
    ref2 = torch.nn.functional.cross_entropy(torch.cat([xn @ oim.lut.t(), xn @ u.t()], 1) / 0.1, y)
    assert torch.allclose(oim(x, y), ref2, atol=1e-5)


def test_reconstruction_loss_zero_on_downsampled_input():
    img = torch.randn(2, 3, 32, 16)
    target = torch.nn.functional.avg_pool2d(img, 4)
    assert reconstruction_loss(target, img).item() < 1e-10


@pytest.mark.parametrize("oim,tri,mse", [(a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1)])
def test_table4_rows_have_their_terms(oim, tri, mse):
    m = HENet(4, (1, 4), True, backbone="resnet18", input_size=(64, 32)).train()
    crit = HENetLoss(4, (1, 4), LossConfig(oim=bool(oim), triplet=bool(tri), mse=bool(mse)))
    x = torch.randn(8, 3, 64, 32)
    y = torch.arange(4).repeat_interleave(2)
    out = crit(m(x), y, x)
    assert set(out.terms) == {"ce"} | {k for k, on in (("oim", oim), ("triplet", tri), ("mse", mse)) if on}
    assert torch.isfinite(out.total)


def test_combined_loss_drops_on_tiny_batch():
    torch.manual_seed(0)
    m = HENet(4, (1, 4), True, backbone="resnet18", input_size=(64, 32)).train()
    crit = HENetLoss(4, (1, 4), LossConfig())
    opt = torch.optim.Adam(list(m.parameters()), lr=3e-4)
    x = torch.randn(8, 3, 64, 32)
    y = torch.arange(4).repeat_interleave(2)
    losses = []
    for _ in range(30):
        out = crit(m(x), y, x)
        opt.zero_grad()
        out.total.backward()
        opt.step()
        losses.append(out.total.item())
    assert losses[-1] < 0.5 * losses[0], losses


def _sequential_oim(lut, x, labels, m):
    """OIM's authors' rule, one sample at a time, as a reference."""
    lut = lut.clone()
    for xi, y in zip(torch.nn.functional.normalize(x, dim=1), labels.tolist(), strict=True):
        if y >= 0:
            lut[y] = torch.nn.functional.normalize(m * lut[y] + (1 - m) * xi, dim=0)
    return lut


@pytest.mark.parametrize("hint", [None, 4])
def test_oim_per_sample_update_equals_sequential_rule(hint):
    g = torch.Generator().manual_seed(3)
    oim = OIMLoss(8, 5, queue_size=4, momentum=0.5).train()
    oim.lut.copy_(torch.nn.functional.normalize(torch.randn(5, 8, generator=g), dim=1))
    oim.rounds_hint = hint
    x = torch.randn(14, 8, generator=g)
    labels = torch.tensor([0, 0, 1, 0, 2, 1, -1, 0, 2, 1, 3, -1, 3, 1])  # at most 4 per identity
    ref = _sequential_oim(oim.lut, x, labels, 0.5)
    oim(x, labels)
    assert torch.allclose(oim.lut, ref, atol=1e-6)
    assert torch.equal(oim.lut[4], ref[4])  # an identity absent from the batch is untouched


def test_oim_identity_mean_option_differs():
    x = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    y = torch.tensor([0, 0])
    a = OIMLoss(3, 1, 0, update="sample").train()
    b = OIMLoss(3, 1, 0, update="identity-mean").train()
    for o in (a, b):
        o.lut[0] = torch.tensor([0.0, 0.0, 1.0])
    a(x, y), b(x, y)
    assert torch.allclose(b.lut[0], torch.nn.functional.normalize(torch.tensor([0.25, 0.25, 0.5]), dim=0))
    assert not torch.allclose(a.lut[0], b.lut[0])  # per sample: the later sample weighs more
    with pytest.raises(ValueError, match="update"):
        OIMLoss(3, 1, update="batch")


def test_reconstruction_target_is_the_clean_image():
    model = HENet(4, (1,), True, backbone="resnet18-half", input_size=(64, 32)).train()
    x_clean = torch.randn(4, 3, 64, 32)
    x_erased = x_clean.clone()
    x_erased[:, :, 10:40] = 3.0
    out = model(x_erased)
    y = torch.tensor([0, 0, 1, 1])
    clean = HENetLoss(4, (1,), LossConfig(oim=False, triplet=False))(out, y, x_erased, x_clean).terms["mse"]
    same = HENetLoss(4, (1,), LossConfig(oim=False, triplet=False, recon_target="input"))(out, y, x_erased, x_clean)
    assert torch.allclose(clean, reconstruction_loss(out.reconstruction, x_clean))
    assert torch.allclose(same.terms["mse"], reconstruction_loss(out.reconstruction, x_erased))
    assert not torch.allclose(clean, same.terms["mse"])


def test_margin_is_a_config_field():
    assert LossConfig().margin == 1.2
    with pytest.raises(ValueError, match="margin"):
        LossConfig(margin=-1)


class _PerPartOIM(torch.nn.Module):
    """The per-part OIM module as it was before the stacked one (issue 20), as a reference: a table and a
    queue of its own, boolean-mask queue push, one module per partial feature."""

    def __init__(self, dim, classes, queue, m=0.5, tau=1 / 30):
        super().__init__()
        self.m, self.tau, self.q = m, tau, queue
        self.lut, self.queue = torch.zeros(classes, dim), torch.zeros(queue, dim)
        self.ptr, self.filled = 0, 0

    def forward(self, f, labels):
        x = torch.nn.functional.normalize(f.float(), dim=1)
        logits = x @ torch.cat([self.lut, self.queue]).t() / self.tau
        logits[:, len(self.lut) + self.filled :] = float("-inf")
        loss = cross_entropy(logits, labels)
        x, lab, c = x.detach(), labels >= 0, len(self.lut)
        y = torch.where(lab, labels, torch.full_like(labels, c))
        n = len(y)
        occ = ((y[:, None] == y[None, :]) & torch.ones(n, n, dtype=torch.bool).tril(-1)).sum(1)
        table = torch.cat([self.lut, self.lut.new_zeros(1, self.lut.shape[1])])
        for r in range(int(occ.max()) + 1):
            rows = torch.where(occ == r, y, torch.full_like(y, c))
            table.index_copy_(0, rows, torch.nn.functional.normalize(self.m * table[rows] + (1 - self.m) * x, dim=1))
        self.lut = table[:c].clone()
        unl = x[~lab][-self.q :]
        self.queue[(self.ptr + torch.arange(len(unl))) % self.q] = unl
        self.ptr, self.filled = (self.ptr + len(unl)) % self.q, min(self.filled + len(unl), self.q)
        return loss


@pytest.mark.parametrize("update_hint", [None, 3])
def test_stacked_oim_equals_independent_per_part_modules(update_hint):
    """One OIMLoss for P parts gives, bit for bit, the tables and queues of P per-part modules (and their
    mean loss up to rounding), over batches with repeated identities and unlabeled samples that wrap the
    queue."""
    g = torch.Generator().manual_seed(11)
    parts, dim, classes, q = 4, 16, 7, 5
    ref = [_PerPartOIM(dim, classes, q) for _ in range(parts)]
    oim = OIMLoss(dim, classes, queue_size=q, parts=parts).train()
    oim.rounds_hint = update_hint
    for step in range(4):
        labels = torch.randint(-1, classes, (18,), generator=g)
        if update_hint is not None:  # at most K = 3 samples per identity
            labels = torch.tensor([0, 0, 1, -1, 0, 2, 1, -1, 3, 3, -1, 5, 3, 6, -1, -1, 2, 6])[torch.randperm(18, generator=g)]
        feats = torch.randn(parts, 18, dim, generator=g)
        losses = [r(f, labels) for r, f in zip(ref, feats, strict=True)]
        loss = oim(feats, labels)
        assert torch.allclose(loss, torch.stack(losses).mean(), atol=1e-5), step
        for j, r in enumerate(ref):
            assert torch.equal(oim.lut[j], r.lut), (step, j)
            assert torch.equal(oim.queue[j], r.queue), (step, j)
        assert int(oim.queue_ptr) == ref[0].ptr and int(oim.queue_filled) == ref[0].filled


def test_old_per_part_checkpoint_loads_into_the_stacked_oim():
    crit = HENetLoss(5, (1, 4), LossConfig(oim_queue=3))
    g = torch.Generator().manual_seed(2)
    old = {}
    for j in range(4):
        old[f"oims.{j}.lut"] = torch.randn(5, 256, generator=g)
        old[f"oims.{j}.queue"] = torch.randn(3, 256, generator=g)
        old[f"oims.{j}.queue_ptr"] = torch.tensor(2)
        old[f"oims.{j}.queue_filled"] = torch.tensor(3)
    crit.load_state_dict(old)
    assert torch.equal(crit.oim.lut, torch.stack([old[f"oims.{j}.lut"] for j in range(4)]))
    assert torch.equal(crit.oim.queue[3], old["oims.3.queue"])
    assert int(crit.oim.queue_ptr) == 2 and int(crit.oim.queue_filled) == 3
    again = HENetLoss(5, (1, 4), LossConfig(oim_queue=3))
    again.load_state_dict(crit.state_dict())  # the new layout round-trips
    assert set(crit.state_dict()) == {"oim.lut", "oim.queue", "oim.queue_ptr", "oim.queue_filled"}
    assert torch.equal(again.oim.lut, crit.oim.lut) and torch.equal(again.oim.queue, crit.oim.queue)
    with pytest.raises(RuntimeError, match="size mismatch"):
        HENetLoss(6, (1, 4), LossConfig(oim_queue=3)).load_state_dict(old)


def test_batched_losses_equal_per_branch_terms():
    """HENetLoss batches the CE terms, the triplet terms and the OIM parts; each term equals the mean of the
    per-branch terms, with or without the P x K structure hint."""
    torch.manual_seed(4)
    m = HENet(6, (1, 4), True, backbone="resnet18-half", input_size=(64, 32)).train()
    x = torch.randn(8, 3, 64, 32)
    y = torch.arange(4).repeat_interleave(2)
    out = m(x)
    for hint in (None, 0):
        crit = HENetLoss(6, (1, 4), LossConfig(oim=False))
        crit.set_batch_structure(2 if hint == 0 else None, hint)
        t = crit(out, y, x).terms
        ce = [cross_entropy(b.global_logits, y) for b in out.branches]
        ce += [cross_entropy(lg, y) for b in out.branches for lg in b.part_logits]
        assert torch.allclose(t["ce"], torch.stack(ce).mean(), atol=1e-6)
        tri = [batch_hard_triplet(b.global_feat, y, 1.2) for b in out.branches if b.name != "R16"]
        assert torch.allclose(t["triplet"], torch.stack(tri).mean(), atol=1e-5)
    feats = torch.randn(3, 8, 5)
    ref = torch.stack([brute_force_triplet(f, y, 0.3) for f in feats]).mean()
    assert torch.allclose(batch_hard_triplet(feats, y, 0.3, pk_batch=True), ref, atol=1e-5)
    assert torch.allclose(batch_hard_triplet(feats, y, 0.3), ref, atol=1e-5)


@pytest.mark.gpu
def test_bf16_channels_last_step_with_every_loss():
    cuda = torch.device("cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HENet(8, (1, 4), True, backbone="resnet18-half", input_size=(64, 32))
    model = model.to(cuda).to(memory_format=torch.channels_last).train()
    crit = HENetLoss(8, (1, 4), LossConfig()).to(cuda)
    crit.set_batch_structure(2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    x = torch.randn(8, 3, 64, 32, device=cuda).contiguous(memory_format=torch.channels_last)
    y = torch.arange(4, device=cuda).repeat_interleave(2)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        res = crit(model(x), y, x, x)
    opt.zero_grad(set_to_none=True)
    res.total.backward()
    opt.step()
    assert set(res.terms) == {"ce", "triplet", "oim", "mse"}
    assert torch.isfinite(res.total)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    # OIM's table moved for every identity of the batch, and nothing else
    lut = crit.oim.lut[0]
    assert (lut[:4].norm(dim=1) > 0.99).all() and (lut[4:].abs().sum() == 0)
