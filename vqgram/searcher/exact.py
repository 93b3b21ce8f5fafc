"""Exact cosine search over a matrix of embeddings, on any Matryoshka prefix.

Every score is a cosine on a prefix: the first d dimensions of both sides,
each L2-normalised on its own ("prefix, then renormalise"). Results are ordered
by (-score, row); a tie at the k-th place goes to the lower row.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:  # imported where a scan runs, so text searches (which import this module) load no torch
    import torch

__all__ = ["ExactIndex", "prefix_normalize", "top_by_score"]


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


def top_by_score(s: np.ndarray, i: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top k of each row by (-score, id): (ids, scores)."""
    order = np.lexsort((i, -s), axis=1)[:, :k]
    return np.take_along_axis(i, order, axis=1), np.take_along_axis(s, order, axis=1)


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


class ExactIndex:
    """A float32 matrix (N, D) kept as normalised prefixes, scanned exactly on any of them.

    prefix_dims: low widths made at once (others are made on first use); each
    is its own contiguous, normalised (N, d) copy (N*d*4 bytes), so a scan
    reads only those bytes. The full width is always kept. The funnel
    (funnel.py) shortlists on these copies too.
    """

    def __init__(self, vectors: np.ndarray | torch.Tensor, prefix_dims: Sequence[int] = ()):
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

    def prefix(self, d: int) -> np.ndarray:
        """The normalised first `d` dimensions of every row, (N, d)."""
        self.add_prefix(d)
        return self.prefixes[d]

    def search(self, queries: np.ndarray, k: int, dim: int | None = None, batch_size: int = 64,
               mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Brute-force cosine on the first `dim` dimensions (all when None): (rows, scores), (Q, k).

        mask: a bool per row; only rows where it is True are scored (a filtered scan), and k
        shrinks to their number."""
        import torch

        dim = self.dim if dim is None else dim
        k = min(k, self.n if mask is None else int(mask.sum()))
        db = torch.from_numpy(self.prefix(dim))
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
                i, v = top_by_score(torch.gather(sc, 1, top).numpy(), top.numpy(), k)
                ids.append(i)
                scores.append(v)
        return np.concatenate(ids), np.concatenate(scores)
