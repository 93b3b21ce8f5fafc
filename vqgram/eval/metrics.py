"""Ranking metrics over a batch of queries: AP, mAP, MAP@k, P@k, R@k.

Every function takes `rel`, a boolean matrix (Q, L): rel[q, i] is True when
the i-th ranked result of query q is relevant; and `n_relevant`, the number
R of relevant items for each query in the whole database (not only in the L
ranked results). A ranking shorter than the database (L < N) is fine for the
@k metrics with k <= L; `average_precision` treats relevant items missing
from the ranking as retrieved at infinity (they add 0 to the sum but count
in R), as trec_eval does.

Ties: the metrics see only the order they are given. Callers rank by
(-score, id) so that equal scores are ordered reproducibly (see
`rank_by_score`); a tie is never split by averaging.

Queries with R = 0 have no defined AP or recall. `mean_*` functions exclude
them from the mean and say how many they excluded (`MeanMetric.excluded`);
the per-query functions return NaN for them. P@k is defined for such a
query (it is 0) and is averaged over all queries.

AP@k follows the seed study (and Kusupati et al., Matryoshka Representation
Learning, NeurIPS 2022):  AP@k = sum_{i<=k} P@i * rel(i) / min(k, R).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "MeanMetric",
    "average_precision",
    "average_precision_at_k",
    "precision_at_k",
    "recall_at_k",
    "mean_average_precision",
    "mean_average_precision_at_k",
    "mean_precision_at_k",
    "mean_recall_at_k",
    "precision_recall_curve",
    "rank_by_score",
    "relevance_matrix",
]


@dataclass(frozen=True)
class MeanMetric:
    """A mean over queries: `value` over `n` queries, `excluded` left out (R = 0)."""

    value: float
    n: int
    excluded: int


def _check(rel: np.ndarray, n_relevant: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rel = np.asarray(rel)
    if rel.ndim == 1:
        rel = rel[None, :]
    if rel.ndim != 2:
        raise ValueError(f"rel must be a (queries, ranked) matrix, got shape {rel.shape}")
    rel = rel.astype(bool, copy=False)
    n_relevant = np.asarray(n_relevant, dtype=np.int64).reshape(-1)
    if n_relevant.shape[0] != rel.shape[0]:
        raise ValueError(
            f"n_relevant has {n_relevant.shape[0]} entries for {rel.shape[0]} queries"
        )
    found = rel.sum(axis=1)
    if np.any(found > n_relevant):
        q = int(np.argmax(found > n_relevant))
        raise ValueError(
            f"query {q} has {int(found[q])} relevant results ranked but n_relevant={int(n_relevant[q])}"
        )
    return rel, n_relevant


def _check_k(k: int, length: int) -> None:
    if k < 1:
        raise ValueError(f"k={k} must be >= 1")
    if k > length:
        raise ValueError(f"k={k} is larger than the ranking length {length}; rank at least k results")


def _precision_hits(rel: np.ndarray) -> np.ndarray:
    """(Q, L) matrix of P@i * rel(i)."""
    hits = np.cumsum(rel, axis=1, dtype=np.float64)
    ranks = np.arange(1, rel.shape[1] + 1, dtype=np.float64)
    return np.where(rel, hits / ranks, 0.0)


def average_precision(rel: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """AP over the whole ranking: sum_i P@i * rel(i) / R; NaN where R = 0."""
    rel, n_relevant = _check(rel, n_relevant)
    total = _precision_hits(rel).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_relevant > 0, total / n_relevant, np.nan)


def average_precision_at_k(rel: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """AP@k = sum_{i<=k} P@i * rel(i) / min(k, R); NaN where R = 0."""
    rel, n_relevant = _check(rel, n_relevant)
    _check_k(k, rel.shape[1])
    total = _precision_hits(rel[:, :k]).sum(axis=1)
    denom = np.minimum(k, n_relevant)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_relevant > 0, total / denom, np.nan)


def precision_at_k(rel: np.ndarray, k: int) -> np.ndarray:
    """Fraction of the top k that is relevant (0 for a query with R = 0)."""
    rel = np.asarray(rel, dtype=bool)
    rel = rel[None, :] if rel.ndim == 1 else rel
    _check_k(k, rel.shape[1])
    return rel[:, :k].sum(axis=1) / k


def recall_at_k(rel: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Fraction of the R relevant items found in the top k; NaN where R = 0."""
    rel, n_relevant = _check(rel, n_relevant)
    _check_k(k, rel.shape[1])
    found = rel[:, :k].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_relevant > 0, found / n_relevant, np.nan)


def _mean(values: np.ndarray) -> MeanMetric:
    keep = ~np.isnan(values)
    n = int(keep.sum())
    value = float(values[keep].mean()) if n else float("nan")
    return MeanMetric(value=value, n=n, excluded=int(values.size - n))


def mean_average_precision(rel: np.ndarray, n_relevant: np.ndarray) -> MeanMetric:
    """mAP over queries with R > 0."""
    return _mean(average_precision(rel, n_relevant))


def mean_average_precision_at_k(rel: np.ndarray, n_relevant: np.ndarray, k: int) -> MeanMetric:
    """MAP@k over queries with R > 0."""
    return _mean(average_precision_at_k(rel, n_relevant, k))


def mean_precision_at_k(rel: np.ndarray, k: int) -> MeanMetric:
    """P@k averaged over all queries (it is defined, as 0, when R = 0)."""
    return _mean(precision_at_k(rel, k).astype(np.float64))


def mean_recall_at_k(rel: np.ndarray, n_relevant: np.ndarray, k: int) -> MeanMetric:
    """R@k over queries with R > 0."""
    return _mean(recall_at_k(rel, n_relevant, k))


def rank_by_score(scores: np.ndarray, k: int | None = None) -> np.ndarray:
    """Column indices of each row ordered by (-score, index): ties go to the lower id.

    scores: (Q, N); returns (Q, k) (all N when k is None). The stable sort keeps
    equal scores in index order, so results are reproducible.
    """
    scores = np.asarray(scores)
    scores = scores[None, :] if scores.ndim == 1 else scores
    n = scores.shape[1]
    k = n if k is None else min(k, n)
    if k < n:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        # argpartition may cut a tie at the boundary arbitrarily; widen to
        # every column scoring at least the k-th score before sorting.
        kth = np.take_along_axis(scores, part, axis=1).min(axis=1, keepdims=True)
        if np.all((scores >= kth).sum(axis=1) == k):
            sub = np.take_along_axis(scores, part, axis=1)
            # lexsort: last key is primary; ties broken by index ascending
            order = np.lexsort((part, -sub), axis=1)
            return np.take_along_axis(part, order, axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")
    return order[:, :k]


def relevance_matrix(query_labels: np.ndarray, ranked_ids: np.ndarray, db_labels: np.ndarray) -> np.ndarray:
    """rel[q, i] = db_labels[ranked_ids[q, i]] == query_labels[q]."""
    return np.asarray(db_labels)[ranked_ids] == np.asarray(query_labels)[:, None]


def precision_recall_curve(rel: np.ndarray, n_relevant: np.ndarray, levels: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """Interpolated precision at `levels` evenly spaced recall points (0, 0.1, ... 1), averaged over
    the queries with R > 0: at recall r, the best precision at any rank whose recall is >= r (TREC's 11-point)."""
    rel, n_relevant = _check(rel, n_relevant)
    keep = n_relevant > 0
    rel, n_relevant = rel[keep], n_relevant[keep]
    hits = np.cumsum(rel, axis=1)
    precision = hits / np.arange(1, rel.shape[1] + 1)
    recall = hits / n_relevant[:, None]
    # best precision from each rank onwards, then look it up at the first rank reaching each recall point
    best_after = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    points = np.linspace(0, 1, levels)
    curve = np.zeros((len(rel), levels))
    for j, r in enumerate(points):
        reached = recall >= r - 1e-12
        first = reached.argmax(axis=1)
        curve[:, j] = np.where(reached.any(axis=1), best_after[np.arange(len(rel)), first], 0.0)
    return points, curve.mean(axis=0) if len(rel) else curve.sum(axis=0)
