"""Matryoshka adaptive retrieval: shortlist on a short prefix, rerank at full width.

Kusupati et al., "Matryoshka Representation Learning", NeurIPS 2022, section
"Adaptive retrieval" (https://arxiv.org/abs/2205.13147): score every database
vector with the first d dimensions only (d = 16 costs 1/64 of d = 1024), keep
the best `shortlist`, and rerank that shortlist with the full vector. A
cascade repeats the shortlist step at growing d before the final rerank.

Every score is a cosine on a prefix: the first d dimensions of both sides,
each L2-normalised on its own ("prefix, then renormalise").

Results are ordered by (-score, index). Exact search breaks a tie at the
k-th place in favour of the lower index too; a funnel's intermediate
shortlists keep whichever tied items `np.argpartition` returns, which only
matters for exactly tied vectors at a shortlist's edge.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:  # imported where a scan runs, so text searches (which import FunnelStage) load no torch
    import torch

__all__ = ["FunnelStage", "FunnelIndex", "collection_stages", "prefix_normalize", "exact_search", "funnel_search"]


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


def prefix_normalize(x: np.ndarray | torch.Tensor, d: int | None = None, chunk: int = 65536) -> np.ndarray:
    """First d columns of x, each row L2-normalised (a zero row stays zero); float32, C-contiguous."""
    x = np.asarray(x)
    x = x[None, :] if x.ndim == 1 else x
    d = x.shape[1] if d is None else d
    if not 1 <= d <= x.shape[1]:
        raise ValueError(f"prefix d={d} must lie in 1..{x.shape[1]}")
    out = np.empty((x.shape[0], d), dtype=np.float32)
    for s in range(0, x.shape[0], chunk):  # chunks keep the float32 temporaries small
        block = np.asarray(x[s : s + chunk, :d], dtype=np.float32)
        norm = np.linalg.norm(block, axis=1, keepdims=True)
        np.divide(block, np.maximum(norm, 1e-12), out=out[s : s + chunk])
    return out


def _order(s: np.ndarray, i: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top k of each row by (-score, id)."""
    order = np.lexsort((i, -s), axis=1)[:, :k]
    return np.take_along_axis(i, order, axis=1), np.take_along_axis(s, order, axis=1)


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


def _topk_exact(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k best columns per row; a tie at the k-th place goes to the lower index."""
    import torch

    n = scores.shape[1]
    if k >= n:
        return torch.arange(n).expand(scores.shape[0], n)
    # the (k+1)-th best equal to the k-th best means a tie straddles the cut: only
    # then sort that row in full (cheaper than counting scores >= k-th: ~5 ms/row at 1M)
    vals, idx = torch.topk(scores, k + 1, dim=1, sorted=True)
    crowded = vals[:, k] == vals[:, k - 1]
    idx = idx[:, :k].clone()
    for r in torch.nonzero(crowded).flatten().tolist():
        idx[r] = torch.sort(-scores[r], stable=True).indices[:k]
    return idx


class FunnelIndex:
    """A float32 matrix (N, D) kept as normalised prefixes for exact and funnel search.

    prefix_dims: the low widths the funnel will shortlist with; each is kept
    as its own contiguous, normalised (N, d) copy (N*d*4 bytes), so a scan
    reads only those bytes. The full width is always kept.
    """

    def __init__(self, vectors: np.ndarray | torch.Tensor, prefix_dims: Sequence[int] = (16,)):
        self.full = prefix_normalize(vectors)
        self.n, self.dim = self.full.shape
        self.prefixes: dict[int, np.ndarray] = {self.dim: self.full}
        for d in prefix_dims:
            self.add_prefix(d)

    def add_prefix(self, d: int) -> None:
        if d not in self.prefixes:
            if not 1 <= d <= self.dim:
                raise ValueError(f"prefix d={d} must lie in 1..{self.dim}")
            # a prefix of the normalised vector, renormalised = the normalised prefix
            self.prefixes[d] = prefix_normalize(self.full, d)

    def _prefix(self, d: int) -> torch.Tensor:
        import torch

        self.add_prefix(d)
        return torch.from_numpy(self.prefixes[d])

    def search_exact(
        self, queries: np.ndarray, k: int, dim: int | None = None, batch_size: int = 64,
        mask: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Brute-force cosine on the first `dim` dimensions (all when None): (ids, scores), (Q, k).

        mask: a bool per row; only rows where it is True are scored (a filtered scan), and k
        shrinks to their number."""
        import torch

        dim = self.dim if dim is None else dim
        k = min(k, self.n if mask is None else int(mask.sum()))
        db = self._prefix(dim)
        q_all = prefix_normalize(queries, dim)
        blocked = None if mask is None else torch.from_numpy(~np.asarray(mask, dtype=bool))
        ids, scores = [], []
        with torch.inference_mode():
            for s in range(0, q_all.shape[0], batch_size):
                q = torch.from_numpy(q_all[s : s + batch_size])
                sc = q @ db.T
                if blocked is not None:
                    sc[:, blocked] = -torch.inf
                top = _topk_exact(sc, k)
                i, v = _order(torch.gather(sc, 1, top).numpy(), top.numpy(), k)
                ids.append(i)
                scores.append(v)
        return np.concatenate(ids), np.concatenate(scores)

    def search_funnel(
        self,
        queries: np.ndarray,
        k: int,
        stages: Sequence[FunnelStage] = (FunnelStage(16, 200),),
        rerank_dim: int | None = None,
        batch_size: int = 64,
        mask: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Shortlist with stages[0] over all N, narrow with the later stages, rerank at rerank_dim.

        Stage dims must increase and shortlists must not grow; the last
        shortlist must hold at least k. Returns (ids, scores), (Q, k), scores
        being cosines at rerank_dim (full width when None). mask: only rows
        where it is True are candidates (a filtered first stage).
        """
        import torch

        rerank_dim = self.dim if rerank_dim is None else rerank_dim
        stages = list(stages)
        if not stages:
            return self.search_exact(queries, k, dim=rerank_dim, batch_size=batch_size, mask=mask)
        dims = [st.dim for st in stages] + [rerank_dim]
        if any(a >= b for a, b in zip(dims, dims[1:])):
            raise ValueError(f"funnel dims {dims} must strictly increase up to rerank_dim={rerank_dim}")
        sizes = [st.shortlist for st in stages]
        if any(a < b for a, b in zip(sizes, sizes[1:])) or sizes[-1] < k:
            raise ValueError(f"funnel shortlists {sizes} must not grow and the last must be >= k={k}")
        allowed = None if mask is None else np.flatnonzero(mask)
        n = self.n if allowed is None else len(allowed)
        k = min(k, n)
        qs = {d: prefix_normalize(queries, d) for d in dims}
        first = stages[0]
        for d in dims:
            self.add_prefix(d)
        ids, scores = [], []
        for s in range(0, qs[dims[0]].shape[0], batch_size):
            q = qs[first.dim][s : s + batch_size]
            with torch.inference_mode():
                sc = (torch.from_numpy(q) @ self._prefix(first.dim).T).numpy()
            if allowed is not None:
                sc = sc[:, allowed]
            cand = _shortlist(sc, first.shortlist) if first.shortlist < n else np.tile(np.arange(n), (len(q), 1))
            if allowed is not None:
                cand = allowed[cand]
            for st in stages[1:]:
                sub = _gathered_scores(self.prefixes[st.dim], cand, qs[st.dim][s : s + batch_size])
                if st.shortlist < cand.shape[1]:
                    cand = np.take_along_axis(cand, _shortlist(sub, st.shortlist), axis=1)
            final = _gathered_scores(self.prefixes[rerank_dim], cand, qs[rerank_dim][s : s + batch_size])
            i, v = _order(final, cand, k)
            ids.append(i)
            scores.append(v)
        return np.concatenate(ids), np.concatenate(scores)


def exact_search(
    queries: np.ndarray, db: np.ndarray, k: int, dim: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One-shot exact cosine search on the first `dim` dimensions (builds a FunnelIndex)."""
    return FunnelIndex(db, prefix_dims=()).search_exact(queries, k, dim=dim)


def funnel_search(
    queries: np.ndarray,
    db: np.ndarray,
    k: int,
    stages: Sequence[FunnelStage] = (FunnelStage(16, 200),),
    rerank_dim: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One-shot funnel search (builds a FunnelIndex); see `FunnelIndex.search_funnel`."""
    return FunnelIndex(db, prefix_dims=[st.dim for st in stages]).search_funnel(
        queries, k, stages, rerank_dim=rerank_dim
    )
