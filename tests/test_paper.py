"""The paper's published numbers as data: consistent with each other and with the layouts they describe (the
FD columns are HENet's feature dimensions, Table 2's P(1) and P(1,4) rows are Table 3's G1 and G1+P4)."""

from henetlib import paper
from henetlib.method.model import feature_dim_of
from henetlib.study.grids import table3_stripes


def test_table2_fd_is_the_feature_dimension_of_each_structure():
    for stripes, (fd, r1, r5, r10, mAP) in paper.TABLE2.items():
        assert fd == feature_dim_of(stripes, False), stripes
        assert r1 <= r5 <= r10 <= 100 and 0 < mAP < r1


def test_table3_fd_and_its_shared_rows_with_table2():
    for (g1, p4, r16), (r1, r5, r10, mAP, fd) in paper.TABLE3.items():
        assert fd == feature_dim_of(table3_stripes(g1, p4), r16), (g1, p4, r16)
        assert 0 < mAP < r1 <= r5 <= r10
    assert paper.TABLE3[(True, False, False)][:4] == paper.TABLE2[(1,)][1:]  # G1 is P(1)
    assert paper.TABLE3[(True, True, False)][:4] == paper.TABLE2[(1, 4)][1:]  # G1+P4 is P(1,4)


def test_table4_has_every_loss_combination_once():
    assert len(paper.TABLE4) == 8 and set(paper.TABLE4) == {(a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1)}
    assert paper.TABLE4[(True, True, True)][0] == max(v[0] for v in paper.TABLE4.values())  # all losses: best R1


def test_table1_and_the_figure4_point():
    henet = {k: v for k, v in paper.TABLE1.items() if k.startswith("HENet")}
    assert len(paper.TABLE1) == 8 and len(henet) == 4
    assert henet["HENet(+Both)"]["fd"] == feature_dim_of((1, 4), True) and henet["HENet(Base)"]["fd"] == 2048
    assert paper.FIG4_P05["RE+RPE(20)"] == dict(zip(("R1", "mAP"), paper.FIG4_TEXT["RE+RPE(20)"][0.5], strict=True))
