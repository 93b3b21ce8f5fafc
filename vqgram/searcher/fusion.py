"""Fusing ranked runs (BM25 words + dense), as pure functions over rankings.

- Reciprocal-rank fusion (Cormack, Clarke & Buettcher, SIGIR 2009): a document
  scores sum_r w_r / (rrf_k + rank_r); `rrf_k` (60 in the paper) damps the
  head of each run, and needs no score calibration between engines.
- Normalised-score fusion: each run's scores min-max scaled to [0, 1], then a
  weighted sum; a document missing from a run gets 0 there. Use it when the
  scores are trustworthy and the weights are tuned.

`fuse_rankings` does the arithmetic on arrays, for runs of any depth (rankers.FusedRanker cuts
each run to a depth first for a top k, and fuses whole runs for evaluation).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..indexer.backend import Ranking

METHODS = ("rrf", "score")

# Hybrid's default: min-max score fusion, words at half the weight of dense, chosen over the whole
# development suite with the lifted-word model (docs/RESULTS.md): with centred dense scores it is within
# 0.001 mAP of the better of words and dense on every set (above both on omniglot and copies); rank
# fusion fell up to 0.02 below dense (dtd), and (0.2, 1) fell 0.002 below words on omniglot with raw cosines.
DEFAULT_WEIGHTS = (0.5, 1.0)  # (words, dense)
# With a grid head, hybrid fuses three runs: global words, local words, dense; one suite run, not a sweep
# (docs/RESULTS.md, "Local words": above dense on 5 sets of 7, below it by 0.007 and 0.005 on two class sets).
DEFAULT_LOCAL_WEIGHTS = (0.5, 0.5, 1.0)  # (global words, local words, dense)


def default_weights(local: bool) -> tuple[float, ...]:
    """Hybrid's weights: one a run, three when the index's model makes local words."""
    return DEFAULT_LOCAL_WEIGHTS if local else DEFAULT_WEIGHTS


def fuse_rankings(runs: Sequence[Ranking], method: str = "rrf", weights: Sequence[float] | None = None,
                  rrf_k: int = 60) -> Ranking:
    """One ranking of every document in any run, by the fused score."""
    if method not in METHODS:
        raise ValueError(f"unknown fusion {method!r}; choose one of: {', '.join(METHODS)}")
    weights = _weights(runs, weights)
    slot: dict[str, int] = {}  # id -> row of `total`; a dict, since sorting the string ids cost 3x the fusion
    rows = [np.fromiter((slot.setdefault(i, len(slot)) for i in run.ids.tolist()), np.int64, len(run)) for run in runs]
    total = np.zeros(len(slot))
    for run, row, w in zip(runs, rows, weights):
        if not len(run):
            continue
        if method == "rrf":
            part = w / (rrf_k + np.arange(1, len(run) + 1))
        else:
            lo, span = run.scores.min(), np.ptp(run.scores)
            part = w * ((run.scores - lo) / span if span > 0 else np.ones(len(run)))
        total[row] += part
    return Ranking.of(list(slot), total)


def _weights(runs, weights) -> list[float]:
    if weights is None:
        return [1.0] * len(runs)
    if len(weights) != len(runs):
        raise ValueError(f"{len(weights)} fusion weights for {len(runs)} runs; give one weight per run")
    return [float(w) for w in weights]
