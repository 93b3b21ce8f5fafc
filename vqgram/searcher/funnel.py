"""Matryoshka adaptive retrieval: shortlist on a short prefix, rerank at full width.

Kusupati et al., "Matryoshka Representation Learning", NeurIPS 2022, section
"Adaptive retrieval" (https://arxiv.org/abs/2205.13147): score every database
vector with the first d dimensions only (d = 16 costs 1/64 of d = 1024), keep
the best `shortlist`, and rerank that shortlist with the full vector. A
cascade repeats the shortlist step at growing d before the final rerank.

The funnel runs over an `ExactIndex` (exact.py), whose normalised prefix
copies it shortlists on; scores are its prefix cosines. Results are ordered
by (-score, row), as exact scans order them; a funnel's intermediate
shortlists keep whichever tied items `np.argpartition` returns, which only
matters for exactly tied vectors at a shortlist's edge.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .exact import ExactIndex, prefix_normalize, top_by_score

__all__ = ["FunnelStage", "collection_stages", "funnel_search"]


@dataclass(frozen=True)
class FunnelStage:
    """Score with the first `dim` dimensions, keep the best `shortlist`."""

    dim: int
    shortlist: int

    def __post_init__(self) -> None:
        if self.dim < 1 or self.shortlist < 1:
            raise ValueError(f"funnel stage dim={self.dim}, shortlist={self.shortlist} must both be >= 1")


def collection_stages(n: int) -> tuple[FunnelStage, ...]:
    """The default funnel for n documents, reranked at full width.

    Up to 10,000: one 16-d shortlist of 200, what imagenette's 9,469 images
    measured (docs/RESULTS.md). Larger: 32-d to 2 % of n, then 128-d to 0.4 %:
    at 1M (docs/SCALE.md) 32:20000,128:4000 keeps recall@10 1.000 at 18.5 ms
    (the exact scan: 207 ms), where 16:200 falls to 0.25 and 16:20000 takes
    29 ms for 0.986."""
    first = -(-n // 50)
    if first <= 200:
        return (FunnelStage(16, 200),)
    return (FunnelStage(32, first), FunnelStage(128, max(200, first // 5)))


def _gathered_scores(mat: np.ndarray, cand: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(B, S): q[b] . mat[cand[b, s]].

    One gather + matrix-vector product per query, never more than one (S, d)
    block. The gather is numpy's: for 2,000 rows of 64 dims it took 0.06 ms
    against 12.6 ms for torch's index_select on a busy 2-core machine (torch's
    threads contend there; 1.7 ms with one thread), and the 10k funnel of
    `vqgram bench scale` went from 93 ms to a few ms.
    """
    out = np.empty(cand.shape, dtype=mat.dtype)
    for b in range(cand.shape[0]):
        out[b] = mat[cand[b]] @ q[b]
    return out


def _shortlist(scores: np.ndarray, k: int) -> np.ndarray:
    """Columns of the k best scores of each row, in no order.

    A selection, not a sort: at 1M scores and k = 20,000, `np.argpartition`
    took 2.4 ms where `torch.topk(sorted=False)` took 8.1 ms (one thread).
    """
    n = scores.shape[1]
    return np.argpartition(scores, n - k, axis=1)[:, n - k:]


def funnel_search(
    index: ExactIndex,
    queries: np.ndarray,
    k: int,
    stages: Sequence[FunnelStage] = (FunnelStage(16, 200),),
    rerank_dim: int | None = None,
    batch_size: int = 64,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Shortlist with stages[0] over all N rows of `index`, narrow with the later stages, rerank at rerank_dim.

    Stage dims must increase and shortlists must not grow; the last
    shortlist must hold at least k. Returns (rows, scores), (Q, k), scores
    being cosines at rerank_dim (full width when None). mask: only rows
    where it is True are candidates (a filtered first stage).
    """
    import torch  # here: text searches import this module (FunnelStage) and load no torch

    rerank_dim = index.dim if rerank_dim is None else rerank_dim
    stages = list(stages)
    if not stages:
        return index.search(queries, k, dim=rerank_dim, batch_size=batch_size, mask=mask)
    dims = [st.dim for st in stages] + [rerank_dim]
    if any(a >= b for a, b in zip(dims, dims[1:])):
        raise ValueError(f"funnel dims {dims} must strictly increase up to rerank_dim={rerank_dim}")
    sizes = [st.shortlist for st in stages]
    if any(a < b for a, b in zip(sizes, sizes[1:])) or sizes[-1] < k:
        raise ValueError(f"funnel shortlists {sizes} must not grow and the last must be >= k={k}")
    allowed = None if mask is None else np.flatnonzero(mask)
    n = index.n if allowed is None else len(allowed)
    k = min(k, n)
    qs = {d: prefix_normalize(queries, d) for d in dims}
    first = stages[0]
    for d in dims:
        index.add_prefix(d)
    ids, scores = [], []
    for s in range(0, qs[dims[0]].shape[0], batch_size):
        q = qs[first.dim][s : s + batch_size]
        with torch.inference_mode():
            sc = (torch.from_numpy(q) @ torch.from_numpy(index.prefixes[first.dim]).T).numpy()
        if allowed is not None:
            sc = sc[:, allowed]
        cand = _shortlist(sc, first.shortlist) if first.shortlist < n else np.tile(np.arange(n), (len(q), 1))
        if allowed is not None:
            cand = allowed[cand]
        for st in stages[1:]:
            sub = _gathered_scores(index.prefixes[st.dim], cand, qs[st.dim][s : s + batch_size])
            if st.shortlist < cand.shape[1]:
                cand = np.take_along_axis(cand, _shortlist(sub, st.shortlist), axis=1)
        final = _gathered_scores(index.prefixes[rerank_dim], cand, qs[rerank_dim][s : s + batch_size])
        i, v = top_by_score(final, cand, k)
        ids.append(i)
        scores.append(v)
    return np.concatenate(ids), np.concatenate(scores)
