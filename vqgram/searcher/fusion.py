"""Fusing ranked runs (BM25 words + dense), as pure functions over lists of hits.

- Reciprocal-rank fusion (Cormack, Clarke & Buettcher, SIGIR 2009): a document
  scores sum_r w_r / (rrf_k + rank_r); `rrf_k` (60 in the paper) damps the
  head of each run, and needs no score calibration between engines.
- Normalised-score fusion: each run's scores min-max scaled to [0, 1], then a
  weighted sum; a document missing from a run gets 0 there. Use it when the
  scores are trustworthy and the weights are tuned.
`k` is the cut-off of the fused list; each input run should be deeper than k.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from ..indexer.backend import Hit, rank

METHODS = ("rrf", "score")


def reciprocal_rank_fusion(runs: Sequence[list[Hit]], k: int, weights: Sequence[float] | None = None,
                           rrf_k: int = 60) -> list[Hit]:
    weights = _weights(runs, weights)
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for run, w in zip(runs, weights):
        for r, hit in enumerate(rank(run, len(run)), 1):
            scores[hit.id] = scores.get(hit.id, 0.0) + w / (rrf_k + r)
            first.setdefault(hit.id, hit)
    return rank([replace(first[i], score=s) for i, s in scores.items()], k)


def normalized_score_fusion(runs: Sequence[list[Hit]], k: int, weights: Sequence[float] | None = None) -> list[Hit]:
    weights = _weights(runs, weights)
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for run, w in zip(runs, weights):
        if not run:
            continue
        lo, hi = min(h.score for h in run), max(h.score for h in run)
        span = hi - lo
        for hit in run:
            norm = (hit.score - lo) / span if span > 0 else 1.0
            scores[hit.id] = scores.get(hit.id, 0.0) + w * norm
            first.setdefault(hit.id, hit)
    return rank([replace(first[i], score=s) for i, s in scores.items()], k)


def fuse(runs: Sequence[list[Hit]], k: int, method: str = "rrf", weights: Sequence[float] | None = None) -> list[Hit]:
    if method == "rrf":
        return reciprocal_rank_fusion(runs, k, weights)
    if method == "score":
        return normalized_score_fusion(runs, k, weights)
    raise ValueError(f"unknown fusion {method!r}; choose one of: {', '.join(METHODS)}")


def _weights(runs, weights) -> list[float]:
    if weights is None:
        return [1.0] * len(runs)
    if len(weights) != len(runs):
        raise ValueError(f"{len(weights)} fusion weights for {len(runs)} runs; give one weight per run")
    return [float(w) for w in weights]
