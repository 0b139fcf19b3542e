"""Ranking evaluation: CMC, mAP, mINP (Market-1501 protocol), re-ranking, feature extraction, ranked lists.

:func:`evaluate_ranking` is vectorised over queries and never sorts a whole gallery row. For each query it
takes the distances of its true matches (``topk`` over a masked row), buckets every gallery distance among
them (``searchsorted``), and counts, per bucket, the gallery entries that the protocol keeps; the cumulative
counts are the 1-based ranks of the matches, from which CMC, AP and INP follow. This is exact up to ties
in distance (a tie counts as ranked before the match), and runs on the device of the inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from henetlib.system.runtime import pick_device

ArrayLike = np.ndarray | torch.Tensor

# Test-time feature protocols (docs/READINGS.md): "flip-l2" is MGN's code line, HENet's ancestor.
TEST_PROTOCOLS = {"flip-l2": {"flip": True, "normalize": True}, "raw": {"flip": False, "normalize": False}}


@dataclass
class RankingResult:
    """CMC (fractions, length max_rank), mAP and mINP (fractions), and how many queries were scored."""

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid_queries: int
    num_skipped_queries: int
    ap: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))  # AP of the valid queries
    # Per query, in query order (skipped queries: rank -1, AP NaN): what the bootstrap resamples.
    query_first_rank: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, dtype=np.int64))
    query_ap: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    def rank(self, k: int) -> float:
        return float(self.cmc[k - 1])

    def summary(self) -> dict[str, float]:
        """Percentages, as the paper's tables print them."""
        return {"R1": 100 * self.rank(1), "R5": 100 * self.rank(5), "R10": 100 * self.rank(10),
                "mAP": 100 * self.mAP, "mINP": 100 * self.mINP}


def _as_tensor(x: ArrayLike, device: torch.device | None = None) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    return t.to(device) if device is not None else t


def evaluate_ranking(distmat: ArrayLike, query_pids: ArrayLike, gallery_pids: ArrayLike,
                     query_camids: ArrayLike, gallery_camids: ArrayLike, max_rank: int = 50,
                     chunk_elements: int = 2**24, dense_fraction: float = 0.05) -> RankingResult:
    """CMC, mAP and mINP under the Market-1501 protocol.

    For each query, gallery entries with the same identity *and* the same camera are removed; queries left
    with no true match are skipped (and counted). AP is non-interpolated, as torchreid and fast-reid compute
    it. ``chunk_elements`` bounds the query x gallery block processed at once; ``dense_fraction`` picks
    between the sparse and the dense way of ranking a query's matches (see :func:`_match_ranks`).
    """
    d = _as_tensor(distmat)
    dev = d.device
    qp, gp = _as_tensor(query_pids, dev).long(), _as_tensor(gallery_pids, dev).long()
    qc, gc = _as_tensor(query_camids, dev).long(), _as_tensor(gallery_camids, dev).long()
    nq, ng = d.shape
    if (len(qp), len(qc), len(gp), len(gc)) != (nq, nq, ng, ng):
        raise ValueError(f"distmat is {nq} x {ng} but got {len(qp)}/{len(qc)} query and {len(gp)}/{len(gc)} "
                         "gallery labels.")
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}.")
    d = d.float()
    match_d, n_match = _sorted_match_distances(d, qp, gp, qc, gc)
    chunk = max(1, chunk_elements // max(ng, 1))
    first_ranks, aps, inps = [], [], []
    for s in range(0, nq, chunk):
        e = min(s + chunk, nq)
        md, nm = match_d[s:e], n_match[s:e]
        m_max = md.shape[1]
        if m_max == 0:
            first_ranks.append(torch.full((e - s,), -1.0, device=dev))
            aps.append(torch.zeros(e - s, device=dev))
            inps.append(torch.zeros(e - s, device=dev))
            continue
        pos = _match_ranks(d[s:e], md, nm, qp[s:e], gp, qc[s:e], gc, dense_fraction)
        k = torch.arange(1, m_max + 1, device=dev).float()
        valid_k = k[None, :] <= nm[:, None]
        precision = torch.where(valid_k, k[None, :] / pos.clamp_min(1), torch.zeros_like(pos))
        aps.append(precision.sum(1) / nm.clamp_min(1))
        last = pos.gather(1, (nm - 1).clamp_min(0)[:, None]).squeeze(1)
        inps.append(nm.float() / last.clamp_min(1))
        first_ranks.append(torch.where(nm > 0, pos[:, 0], torch.full_like(pos[:, 0], -1)))
    first_rank = torch.cat(first_ranks).cpu()
    ap = torch.cat(aps).cpu()
    inp = torch.cat(inps).cpu()
    valid = first_rank > 0
    n_valid = int(valid.sum())
    if n_valid == 0:
        raise ValueError("No query has a true match in the gallery (after removing same-camera matches); "
                         "check that query and gallery share identities seen from other cameras.")
    fr = first_rank[valid]
    ranks = torch.arange(1, max_rank + 1).float()
    cmc = (fr[:, None] <= ranks[None, :]).float().mean(0).numpy()
    return RankingResult(cmc=cmc, mAP=float(ap[valid].mean()), mINP=float(inp[valid].mean()),
                         num_valid_queries=n_valid, num_skipped_queries=nq - n_valid,
                         ap=ap[valid].numpy(), query_first_rank=first_rank.long().numpy(),
                         query_ap=torch.where(valid, ap, torch.full_like(ap, float("nan"))).numpy())


def _sorted_match_distances(d: torch.Tensor, qp: torch.Tensor, gp: torch.Tensor, qc: torch.Tensor,
                            gc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each query's true-match distances, ascending, padded with +inf: (Q, M) and the counts (Q,).

    Found from the labels alone (gallery sorted by identity), so the Q x G matrix is only gathered from.
    """
    dev = d.device
    nq = len(qp)
    order = torch.argsort(gp, stable=True)
    sgp = gp[order]
    lo = torch.searchsorted(sgp, qp, side="left")
    cnt = torch.searchsorted(sgp, qp, side="right") - lo
    qi = torch.repeat_interleave(torch.arange(nq, device=dev), cnt)
    start = torch.cumsum(cnt, 0) - cnt
    gi = order[lo[qi] + torch.arange(len(qi), device=dev) - start[qi]]
    other_cam = gc[gi] != qc[qi]
    mq, mg = qi[other_cam], gi[other_cam]
    n_match = torch.bincount(mq, minlength=nq)
    m_max = int(n_match.max()) if nq else 0
    match_d = torch.full((nq, m_max), float("inf"), device=dev)
    if len(mq):
        v = d[mq, mg]
        o = torch.argsort(v, stable=True)
        o = o[torch.argsort(mq[o], stable=True)]  # by query, then by distance
        mq_s = mq[o]
        rank = torch.arange(len(o), device=dev) - (torch.cumsum(n_match, 0) - n_match)[mq_s]
        match_d[mq_s, rank] = v[o]
    return match_d, n_match


def _match_ranks(dc: torch.Tensor, match_d: torch.Tensor, n_match: torch.Tensor, qp: torch.Tensor,
                 gp: torch.Tensor, qc: torch.Tensor, gc: torch.Tensor, dense_fraction: float) -> torch.Tensor:
    """1-based ranks, among kept gallery entries, of each query's sorted true-match distances ``match_d``.

    Only entries no farther than a query's farthest match can precede one of its matches. With a trained
    model these are a small share of the gallery: for such rows the sparse path sorts just them (and drops
    the protocol's same-identity same-camera entries among them). Rows where they are dense (an untrained
    model, an outlier query) bucket every entry among the matches with ``searchsorted`` instead. Both count
    an entry tied with a match as ranked before it.
    """
    dev = dc.device
    rows = torch.arange(len(dc), device=dev)
    far = match_d[rows, (n_match - 1).clamp_min(0)]
    far = torch.where(n_match > 0, far, torch.full_like(far, float("-inf")))
    le = dc <= far[:, None]
    per_row = le.view(torch.uint8).sum(1, dtype=torch.int32)  # faster than count_nonzero on bools
    dense = per_row > dense_fraction * dc.shape[1]
    m_max = match_d.shape[1]
    pos = torch.zeros(len(dc), m_max, device=dev)
    if bool(dense.any()):
        dd, md = dc[dense].contiguous(), match_d[dense].contiguous()
        keep = ~((qp[dense][:, None] == gp[None, :]) & (qc[dense][:, None] == gc[None, :]))
        bucket = torch.searchsorted(md, dd, side="left")  # matches strictly closer
        counts = torch.zeros(len(dd), m_max + 1, device=dev).scatter_add_(1, bucket, keep.float())
        pos[dense] = counts.cumsum(1)[:, :m_max]
    sparse = ~dense
    if bool(sparse.any()):
        sub = rows[sparse]
        r, c = le[sparse].nonzero(as_tuple=True)
        junk = (gp[c] == qp[sub[r]]) & (gc[c] == qc[sub[r]])
        r, c = r[~junk], c[~junk]
        v = dc[sub[r], c].double()
        lo = float(v.min()) if len(v) else 0.0
        width = (float(v.max()) - lo + 1.0) if len(v) else 1.0
        keys = torch.sort(r.double() * width + (v - lo)).values  # row-major, then by distance
        md = match_d[sparse].double()
        local = torch.arange(len(sub), device=dev).double()
        q = local[:, None] * width + (torch.where(torch.isfinite(md), md, torch.zeros_like(md)) - lo)
        before = torch.searchsorted(keys, q.reshape(-1), side="right").view_as(md)
        start = torch.searchsorted(keys, local * width - 0.5, side="left")
        pos[sparse] = (before - start[:, None]).float()
    return pos


# ---------------------------------------------------------------------------------------------------------
# Distances and re-ranking


def pairwise_distance(qf: torch.Tensor, gf: torch.Tensor, metric: str = "euclidean") -> torch.Tensor:
    """``euclidean`` (squared, as torchreid) or ``cosine`` (1 - cosine similarity) distances, float32."""
    qf, gf = qf.float(), gf.float()
    if metric == "cosine":
        return 1.0 - F.normalize(qf, dim=1) @ F.normalize(gf, dim=1).t()
    if metric == "euclidean":
        d = (qf * qf).sum(1, keepdim=True) + (gf * gf).sum(1)[None, :] - 2.0 * qf @ gf.t()
        return d.clamp_min(0)
    raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}.")


def _k_reciprocal(initial_rank: torch.Tensor, i: int, k: int) -> torch.Tensor:
    forward = initial_rank[i, : k + 1]
    backward = initial_rank[forward, : k + 1]
    return forward[(backward == i).any(1)]


def re_ranking(qf: torch.Tensor, gf: torch.Tensor, k1: int = 20, k2: int = 6, lambda_value: float = 0.3,
               metric: str = "euclidean") -> torch.Tensor:
    """k-reciprocal re-ranking (Zhong et al. 2017): returns the re-ranked query x gallery distance.

    Memory-aware: the (Q+G) x (Q+G) original distance is kept in float32 (2 GB at Market size), neighbour
    lists come from ``topk`` rather than a full sort, and the Jaccard distance is accumulated from each
    query's few non-zero k-reciprocal weights rather than from dense (Q+G)^2 products.
    """
    if k1 < 1 or k2 < 1 or not 0.0 <= lambda_value <= 1.0:
        raise ValueError(f"re_ranking needs k1 >= 1, k2 >= 1, lambda in [0, 1]; got {k1}, {k2}, {lambda_value}.")
    nq = len(qf)
    feats = torch.cat([qf, gf]).float()
    n = len(feats)
    original = pairwise_distance(feats, feats, metric)
    original = original / original.max(0, keepdim=True).values.clamp_min(1e-12)
    kk = min(k1 + 1, n)
    initial_rank = torch.topk(original, kk, dim=1, largest=False).indices
    v = torch.zeros(n, n)
    half = max(1, int(round(k1 / 2)))
    for i in range(n):
        recip = _k_reciprocal(initial_rank, i, min(k1, kk - 1))
        expanded = recip
        for cand in recip.tolist():
            cand_set = _k_reciprocal(initial_rank, cand, min(half, kk - 1))
            common = torch.isin(cand_set, recip).sum()
            if len(cand_set) and common > 2 / 3 * len(cand_set):
                expanded = torch.cat([expanded, cand_set])
        expanded = torch.unique(expanded)
        w = torch.exp(-original[i, expanded])
        v[i, expanded] = w / w.sum()
    if k2 > 1:  # local query expansion
        v = v[initial_rank[:, : min(k2, kk)]].mean(1)
    out = torch.empty(nq, n - nq)
    vg = v[nq:]
    for i in range(nq):
        cols = torch.nonzero(v[i], as_tuple=True)[0]
        temp_min = torch.minimum(v[i, cols][None, :], vg[:, cols]).sum(1)
        out[i] = 1.0 - temp_min / (2.0 - temp_min)
    return out * (1 - lambda_value) + original[:nq, nq:] * lambda_value


# ---------------------------------------------------------------------------------------------------------
# Feature extraction


@dataclass
class Features:
    features: torch.Tensor  # (N, D) on CPU
    pids: np.ndarray
    camids: np.ndarray


@torch.no_grad()
def extract_features(model: torch.nn.Module, loader, flip: bool = False, normalize: bool = False,
                     device: str | torch.device | None = None, desc: str = "features",
                     amp_dtype: torch.dtype | None = None) -> Features:
    """Run ``model`` in eval mode over ``loader`` (batches of (images, pids, camids, ...)).

    ``flip`` averages the features of each image and its horizontal mirror; ``normalize`` L2-normalises.
    """
    dev = pick_device(device)
    was_training = model.training
    model.eval().to(dev)
    feats, pids, camids = [], [], []
    for batch in tqdm(loader, desc=desc, leave=False, disable=None):
        imgs = batch[0].to(dev, non_blocking=True)
        with torch.autocast(dev.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
            f = model(imgs).float()
            if flip:
                f = (f + model(torch.flip(imgs, dims=[3])).float()) / 2
        if normalize:
            f = F.normalize(f, dim=1)
        feats.append(f.cpu())
        pids.append(np.asarray(batch[1]))
        camids.append(np.asarray(batch[2]))
    model.train(was_training)
    return Features(torch.cat(feats), np.concatenate(pids), np.concatenate(camids))


def evaluate_features(query: Features, gallery: Features, metric: str = "euclidean", rerank: bool = False,
                      device: str | torch.device | None = None) -> RankingResult:
    dev = pick_device(device)
    if rerank:
        dist = re_ranking(query.features, gallery.features, metric=metric)
    else:
        dist = pairwise_distance(query.features.to(dev), gallery.features.to(dev), metric)
    return evaluate_ranking(dist, query.pids, gallery.pids, query.camids, gallery.camids)
