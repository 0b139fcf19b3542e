"""The regime check: the rule that says whether a run converged, the training-fit subset, and the fit itself."""

import pytest
import torch

from henetlib.data.datasets import build_dataset
from henetlib.engine import regime
from henetlib.method.model import HENet


def test_check_epoch_is_eighty_percent_of_the_schedule():
    assert regime.RULE.check_epoch(10) == 7  # after epoch 8 of 10
    assert regime.RULE.check_epoch(200) == 159  # the paper's lr step at 160
    assert regime.RULE.check_epoch(1) == -1  # no plateau can be seen in one epoch


@pytest.mark.parametrize(("check", "final", "pretrained", "want"), [
    ({"mAP": 80.0}, {"mAP": 81.5}, True, "paper"),
    ({"mAP": 80.0}, {"mAP": 81.5}, False, "from scratch"),
    ({"mAP": 60.0}, {"mAP": 70.0}, True, "not converged"),
    ({"mAP": 80.0}, {"mAP": 82.0}, True, "not converged"),  # the threshold itself is not a plateau
    (None, {"mAP": 90.0}, True, "not converged"),  # no check point: convergence not shown
])
def test_assess_applies_the_stated_rule(check, final, pretrained, want):
    rec = regime.assess(final, check, pretrained, final_loss=1.0)
    assert rec["regime"] == want
    assert rec["converged"] == (want != "not converged")
    assert "2 points" in rec["rule"]["text"]


def test_fit_subset_is_deterministic_cross_camera_and_from_training_ids(isolated_dirs):
    ds = build_dataset("synthreid", None, "tiny", verbose=False)
    q, g = regime.fit_subset(ds, max_ids=5)
    assert (q, g) == regime.fit_subset(ds, max_ids=5)
    train_paths = {s.path for s in ds.train}
    assert {s.path for s in q + g} <= train_paths and not {s.path for s in q} & {s.path for s in g}
    assert len({s.pid for s in q}) == 5
    for s in q:  # every query has a match under another camera
        assert any(t.pid == s.pid and t.camid != s.camid for t in g)


def test_training_fit_of_a_random_model(isolated_dirs):
    ds = build_dataset("synthreid", None, "tiny", verbose=False)
    model = HENet(ds.num_train_pids, (1,), False, "resnet18-half", input_size=(64, 32))
    fit = regime.training_fit(model, ds, (64, 32), torch.device("cpu"), max_ids=6)
    assert set(fit) >= {"R1", "mAP", "classifier_acc"} and 0 <= fit["mAP"] <= 100
    assert model.training  # left as it was found
    assert fit["identities"] == 6


def test_summarise_counts_regimes():
    assert regime.summarise(["paper", "paper", "not converged"]) == "2 of 3 runs in the paper regime (1 not converged)"


@pytest.mark.parametrize("stripes,recovery", [((1, 4), True), ((4,), False), ((), True)])
def test_fit_features_and_logits_come_from_one_forward(stripes, recovery):
    """The regime fit's single forward gives the eval feature and the same logits as running the classifier
    branch again on the encoder's output."""
    from henetlib.engine.regime import _features_and_logits
    from henetlib.method.model import HENet

    torch.manual_seed(0)
    m = HENet(10, stripes, recovery, "resnet18-quarter", input_size=(64, 32)).eval()
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        f, logits = _features_and_logits(m, x)
        shared = m.encoder(x)
        if stripes:
            g, _ = m.branches[0](shared)
            ref = m.branches[0].fc_global(g)
        else:
            ref = m.recovery_branch.fc(m.recovery_branch(shared))
        assert torch.equal(f, m(x))
    assert torch.allclose(logits, ref, atol=1e-6)
    assert not m.branches[0]._forward_hooks if stripes else not m.recovery_branch._forward_hooks  # hook removed
