"""Compact rebuilds of Table 1's peers: their test-time volume V matches the paper's."""

import pytest
import torch

from henetlib.engine.efficiency import inference_parameters
from henetlib.method.peers import MGN, PCB, PEERS
from henetlib.paper import TABLE1


def test_peer_volumes_match_the_paper():
    assert abs(inference_parameters(PCB()) * 4 / 2**20 - 102) < 1.0
    assert abs(inference_parameters(MGN()) * 4 / 2**20 - 263) / 263 < 0.03


@pytest.mark.parametrize("name", sorted(PEERS))
def test_peer_feature_dims_are_table1s(name):
    """Each rebuild's test-time feature has the FD Table 1 gives it (a 64 x 32 input is enough to count)."""
    model = PEERS[name](10).eval()
    with torch.no_grad():
        f = model(torch.randn(1, 3, 64, 32))
    assert f.shape == (1, TABLE1[name]["fd"])
