"""Ranking metrics (CMC, mAP, mINP) against a brute-force loop, dense and sparse paths, chunking, skipped queries,
re-ranking, and feature extraction."""

import numpy as np
import pytest
import torch

from henetlib.engine.evaluation import (
    Features,
    evaluate_features,
    evaluate_ranking,
    pairwise_distance,
    re_ranking,
)


def brute_force(distmat, qp, gp, qc, gc, max_rank=50):
    """The straightforward per-query loop (torchreid's eval_market1501 logic)."""
    cmcs, aps, inps = [], [], []
    for i in range(len(qp)):
        order = np.argsort(distmat[i], kind="stable")
        keep = ~((gp[order] == qp[i]) & (gc[order] == qc[i]))
        hits = (gp[order] == qp[i])[keep].astype(int)
        if not hits.any():
            continue
        cmc = hits.cumsum()
        cmc[cmc > 1] = 1
        cmcs.append(cmc[:max_rank])
        pos = np.flatnonzero(hits)
        aps.append(np.mean((np.arange(len(pos)) + 1) / (pos + 1)))
        inps.append(len(pos) / (pos[-1] + 1))
    return np.mean(cmcs, 0), np.mean(aps), np.mean(inps), len(cmcs)


def random_problem(seed, nq=40, ng=300, ids=25, cams=4):
    rng = np.random.default_rng(seed)
    qp, gp = rng.integers(0, ids, nq), rng.integers(0, ids, ng)
    qc, gc = rng.integers(0, cams, nq), rng.integers(0, cams, ng)
    d = rng.random((nq, ng)).astype(np.float32)
    d -= 0.3 * (qp[:, None] == gp[None, :])  # make matches somewhat closer
    return d, qp, gp, qc, gc


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("as_torch", [False, True])
@pytest.mark.parametrize("dense_fraction", [0.0, 1.0])  # force the dense / the sparse path
def test_matches_brute_force(seed, as_torch, dense_fraction):
    d, qp, gp, qc, gc = random_problem(seed)
    cmc, mAP, mINP, nvalid = brute_force(d, qp, gp, qc, gc, 50)
    args = (d, qp, gp, qc, gc)
    if as_torch:
        args = tuple(torch.from_numpy(a) for a in args)
    r = evaluate_ranking(*args, max_rank=50, dense_fraction=dense_fraction)
    assert r.num_valid_queries == nvalid
    assert np.allclose(r.cmc, cmc, atol=1e-6)
    assert abs(r.mAP - mAP) < 1e-6 and abs(r.mINP - mINP) < 1e-6


def test_chunked_equals_unchunked():
    d, qp, gp, qc, gc = random_problem(5, nq=64)
    a = evaluate_ranking(d, qp, gp, qc, gc, chunk_elements=10**9)
    b = evaluate_ranking(d, qp, gp, qc, gc, chunk_elements=300 * 3)
    assert np.allclose(a.cmc, b.cmc) and abs(a.mAP - b.mAP) < 1e-7


def test_perfect_ranking_and_skipped_query():
    qp, gp = np.array([0, 1, 2]), np.array([0, 0, 1, 1, 2, 3])
    qc, gc = np.array([0, 0, 0]), np.array([1, 2, 1, 2, 0, 1])
    # query 2's only match (gallery 4) is in its own camera: skipped
    d = np.array([[0, 0.1, 1, 1, 1, 1], [1, 1, 0, 0.1, 1, 1], [1, 1, 1, 1, 0, 0.5]], dtype=np.float32)
    r = evaluate_ranking(d, qp, gp, qc, gc, max_rank=5)
    assert r.mAP == 1.0 and r.cmc[0] == 1.0 and r.mINP == 1.0
    assert r.num_valid_queries == 2 and r.num_skipped_queries == 1


def test_no_valid_query_is_an_error():
    with pytest.raises(ValueError, match="true match"):
        evaluate_ranking(np.zeros((1, 2)), [0], [1, 2], [0], [0, 0])


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="labels"):
        evaluate_ranking(np.zeros((2, 3)), [0], [1, 2, 3], [0, 0], [0, 0, 0])


def clustered(seed, ids=12, per=6, dim=16, noise=0.9):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(ids, dim, generator=g) * 1.0
    pids = torch.arange(ids).repeat_interleave(per)
    feats = centres[pids] + noise * torch.randn(len(pids), dim, generator=g)
    cams = torch.arange(len(pids)) % 3
    q = torch.arange(len(pids)) % per == 0
    return feats[q], feats[~q], pids[q], pids[~q], cams[q], cams[~q]


def test_re_ranking_improves_map_on_clusters_and_keeps_shape():
    gains = []
    for seed in range(3):
        qf, gf, qp, gp, qc, gc = clustered(seed)
        base = evaluate_ranking(pairwise_distance(qf, gf), qp, gp, qc, gc, max_rank=10)
        rr = re_ranking(qf, gf, k1=6, k2=3, lambda_value=0.3)
        assert rr.shape == (len(qf), len(gf))
        gains.append(evaluate_ranking(rr, qp, gp, qc, gc, max_rank=10).mAP - base.mAP)
    assert np.mean(gains) > 0, gains


def test_evaluate_features_cosine_and_euclidean():
    qf, gf, qp, gp, qc, gc = clustered(0, noise=0.1)
    q, g = Features(qf, qp.numpy(), qc.numpy()), Features(gf, gp.numpy(), gc.numpy())
    for metric in ("euclidean", "cosine"):
        assert evaluate_features(q, g, metric=metric, device="cpu").mAP > 0.95
    with pytest.raises(ValueError, match="metric"):
        pairwise_distance(qf, gf, "manhattan")


def test_extract_features_flip_and_normalize():
    from torch.utils.data import DataLoader, TensorDataset

    from henetlib.engine.evaluation import extract_features

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    x = torch.randn(6, 3, 16, 8)
    loader = DataLoader(TensorDataset(x, torch.arange(6), torch.zeros(6)), batch_size=4)
    f = extract_features(model, loader, device="cpu")
    assert f.features.shape == (6, 4) and list(f.pids) == list(range(6))
    assert torch.allclose(f.features, model(x), atol=1e-6)
    ff = extract_features(model, loader, flip=True, normalize=True, device="cpu")
    ref = torch.nn.functional.normalize((model(x) + model(torch.flip(x, dims=[3]))) / 2, dim=1)
    assert torch.allclose(ff.features, ref, atol=1e-6)


@pytest.mark.gpu
def test_evaluation_cuda_equals_cpu():
    rng = np.random.default_rng(0)
    d = rng.random((200, 900), dtype=np.float32)
    qp, gp = rng.integers(0, 50, 200), rng.integers(0, 50, 900)
    qc, gc = rng.integers(0, 6, 200), rng.integers(0, 6, 900)
    d -= 0.3 * (qp[:, None] == gp[None, :])
    a = evaluate_ranking(d, qp, gp, qc, gc)
    b = evaluate_ranking(torch.from_numpy(d).to("cuda"), qp, gp, qc, gc)
    assert np.allclose(a.cmc, b.cmc) and abs(a.mAP - b.mAP) < 1e-6
    assert np.array_equal(a.query_first_rank, b.query_first_rank)
