"""HENet (Fig. 2): feature dimensions of Tables 1-3, the branches' outputs and gradients, layouts by name
(create_model / parse_layout), local pretrained weights, and the volume V of Table 1."""

import re

import pytest
import torch
import torchvision

from henetlib.method.model import HENet, HENetOutput, create_model, feature_dim_of, layout_name, parse_layout

# (stripes, recovery, FD from Tables 1-3 of the paper)
LAYOUTS = [
    ((1,), False, 512), ((1, 2), False, 1536), ((1, 2, 3), False, 2816), ((1, 2, 3, 4), False, 4352),
    ((1, 3), False, 1792), ((1, 4), False, 2048), ((1, 6), False, 2560), ((4,), False, 1536),
    ((), True, 512), ((1,), True, 1024), ((4,), True, 2048), ((1, 4), True, 2560),
]


@pytest.mark.parametrize("stripes,recovery,fd", LAYOUTS)
def test_feature_dim_matches_paper(stripes, recovery, fd):
    assert feature_dim_of(stripes, recovery) == fd
    m = HENet(7, stripes, recovery, backbone="resnet18", input_size=(64, 32)).eval()
    assert m.feature_dim == fd
    with torch.no_grad():
        y = m(torch.randn(2, 3, 64, 32))
    assert y.shape == (2, fd)


def test_train_output_structure():
    m = HENet(5, (1, 4), True, backbone="resnet18", input_size=(64, 32)).train()
    out = m(torch.randn(3, 3, 64, 32))
    assert isinstance(out, HENetOutput)
    assert [b.name for b in out.branches] == ["G1", "P4", "R16"]
    g1, p4, r = out.branches
    assert g1.global_feat.shape == (3, 512) and g1.global_logits.shape == (3, 5) and not g1.part_feats
    assert len(p4.part_feats) == 4 and all(p.shape == (3, 256) for p in p4.part_feats)
    assert all(lg.shape == (3, 5) for lg in p4.part_logits)
    assert r.global_feat.shape == (3, 512)
    assert out.reconstruction.shape == (3, 3, 16, 8)  # 1/4 of height and width: R16
    assert out.embedding().shape == (3, 2560)


@pytest.mark.parametrize("size", [(32, 16), (48, 24), (100, 40)])
def test_odd_input_sizes(size):
    m = HENet(3, (1, 3), True, backbone="resnet18", input_size=size)
    out = m.train()(torch.randn(2, 3, *size))
    assert out.reconstruction.shape[-2:] == (size[0] // 4, size[1] // 4)
    assert m.eval()(torch.randn(2, 3, *size)).shape == (2, m.feature_dim)


def test_gradients_reach_shared_encoder_from_every_branch():
    m = HENet(4, (1, 4), True, backbone="resnet18", input_size=(64, 32)).train()
    x = torch.randn(2, 3, 64, 32)
    for i in range(3):
        m.zero_grad()
        out = m(x)
        b = out.branches[i]
        loss = b.global_feat.sum() + sum(p.sum() for p in b.part_feats)
        loss.backward()
        g = m.encoder[0].weight.grad
        assert g is not None and g.abs().sum() > 0, b.name
        # the other branches' private layers get nothing
        for j, other in enumerate(m.branches):
            if j != i:
                assert all(p.grad is None or p.grad.abs().sum() == 0 for p in other.parameters())


def test_reconstruction_gradient_reaches_encoder():
    m = HENet(4, (), True, backbone="resnet18", input_size=(64, 32)).train()
    m(torch.randn(2, 3, 64, 32)).reconstruction.square().mean().backward()
    assert m.encoder[0].weight.grad.abs().sum() > 0


def test_layout_names():
    assert layout_name((1, 4), True) == "G1+P4+R16"
    assert layout_name((1, 2, 3), False) == "G1+P2+P3"


@pytest.mark.parametrize("stripes,recovery", [(s, r) for s, r, _ in LAYOUTS] + [((4, 1), True)])
def test_parse_layout_inverts_layout_name(stripes, recovery):
    name = layout_name(stripes, recovery)
    assert parse_layout(name) == (stripes, recovery)
    assert layout_name(*parse_layout(name)) == name


def test_parse_layout_reads_the_papers_names():
    assert parse_layout("G1+P4+R16") == ((1, 4), True)
    assert parse_layout(" G1 + P2 + P3 ") == ((1, 2, 3), False)  # spaces are ignored
    assert parse_layout("P4") == ((4,), False)
    assert parse_layout("R16") == ((), True)  # Table 3's R16 row: the recovery branch alone
    assert layout_name(*parse_layout("R16")) == "R16"


@pytest.mark.parametrize("name,problem", [
    ("G2", "unknown branch 'G2'"), ("G1+P1", "unknown branch 'P1'"), ("G1+X4", "unknown branch 'X4'"),
    ("G1++P4", "unknown branch ''"), ("P4+R8", "unknown branch 'R8'"), ("R32", "unknown branch 'R32'"),
])
def test_parse_layout_names_the_problem(name, problem):
    with pytest.raises(ValueError, match=re.escape(problem)) as e:
        parse_layout(name)
    assert repr(name) in str(e.value)  # the whole layout is quoted too


def test_create_model_builds_the_named_layout():
    m = create_model("G1+P4+R16", 5, backbone="resnet18", input_size=(64, 32))
    assert isinstance(m, HENet) and m.num_classes == 5
    assert (m.stripes, m.recovery) == ((1, 4), True) and m.branch_names() == ["G1", "P4", "R16"]
    assert m.feature_dim == feature_dim_of((1, 4), True) == 2560
    assert create_model("P4", 3, backbone="resnet18", input_size=(64, 32)).branch_names() == ["P4"]
    with pytest.raises(ValueError, match="unknown branch 'G4'"):
        create_model("G4", 3, backbone="resnet18")


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least one branch"):
        HENet(3, (), False, backbone="resnet18")
    with pytest.raises(ValueError, match="backbone"):
        HENet(3, (1,), False, backbone="vgg")
    with pytest.raises(ValueError, match="stripes"):
        HENet(3, (0,), False, backbone="resnet18")


def test_pretrained_missing_file_names_it(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        HENet(3, (1,), False, backbone="resnet18", pretrained=missing)


def test_pretrained_loads_local_checkpoint(tmp_path):
    ref = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save(ref.state_dict(), path)
    m = HENet(3, (1, 2), False, backbone="resnet18", pretrained=path)
    assert torch.equal(m.encoder[0].weight, ref.conv1.weight)
    assert torch.equal(m.branches[1].body[-1][1].conv1.weight, ref.layer4[1].conv1.weight)
    assert torch.equal(m.encoder[-1][1].conv1.weight, ref.layer3[1].conv1.weight)  # layer3 is shared


@pytest.mark.parametrize("split,base,both", [("layer3", 169, 224), ("mgn", 184.1, 266.5)])
def test_table1_volume_in_mib(split, base, both):
    """V (Table 1): float32 test-time parameters in MiB. The default split lands within 5% of the paper."""
    v_base = HENet(751, (1, 4), False, split=split).inference_size_mib()
    v_both = HENet(751, (1, 4), True, split=split).inference_size_mib()
    assert abs(v_base - base) / base < 0.05 and abs(v_both - both) / both < 0.05
    if split == "mgn":  # every branch owns layer3[1:] too: larger than the paper's sizes
        assert v_base > 180 and v_both > 260


def test_split_rejects_unknown():
    with pytest.raises(ValueError, match="split"):
        HENet(3, (1,), False, backbone="resnet18", split="layer2")


def test_pretrained_mismatched_file_names_it(tmp_path):
    path = tmp_path / "r50.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)
    with pytest.raises(ValueError, match="r50.pth"):
        HENet(3, (1,), False, backbone="resnet18", pretrained=path)


def test_stripe_branch_stride():
    m = HENet(3, (1, 4), False, backbone="resnet18", input_size=(128, 64)).eval()
    shared = m.encoder(torch.randn(1, 3, 128, 64))
    assert m.branches[0].body(shared).shape[-2:] == (4, 2)  # G1: stride 2
    assert m.branches[1].body(shared).shape[-2:] == (8, 4)  # P4: last_stride 1


def test_narrow_resnet18_widths():
    """resnet18-half and resnet18-quarter are torchvision's ResNet18 layout at 1/2 and 1/4 of its channels."""
    from henetlib.method.model import backbone_network

    for name, base in (("resnet18-half", 32), ("resnet18-quarter", 16)):
        net = backbone_network(name)
        assert net.conv1.out_channels == base
        assert [getattr(net, f"layer{i}")[-1].conv2.out_channels for i in range(1, 5)] == [base, 2 * base, 4 * base,
                                                                                         8 * base]
