"""An index's embeddings as the searcher scans them: read once, centred, with the masks of recent filters."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..indexer.backend import Backend, Ranking
from ..indexer.filters import Filter, rows_passing
from .exact import ExactIndex, prefix_normalize
from .funnel import FunnelStage, funnel_search

_CACHED_MASKS = 64


class IndexVectors:
    """Every embedding of one index, read on first use, for exact scans, funnels, PRF and `similar`.

    centre: scores are cosines of embeddings minus the collection's mean embedding, a statistic of this
    index alone that stops what all its images share from dominating (measured on every set of the dev
    suite, docs/RESULTS.md); Lucene's HNSW field holds the raw vectors and ranks raw cosines.
    """

    def __init__(self, backend: Backend, path: Path, centre: bool = True):
        self.backend = backend
        self.path = path
        self.centre = centre
        self._loaded: tuple[np.ndarray, ExactIndex] | None = None  # (ids, index of the rows)
        self._mean: np.ndarray | None = None  # the collection's mean embedding when centring
        self._norms: np.ndarray | None = None  # |embedding - mean| per row, to give back a raw embedding
        self._masks: dict[Filter, np.ndarray] = {}  # filter -> rows passing it

    def load(self) -> tuple[np.ndarray, ExactIndex]:
        """(ids, ExactIndex) of the committed embeddings, read from the engine once."""
        if self._loaded is None:
            ids, matrix = self.backend.vectors()
            if not ids:
                raise ValueError(f"index {self.path} holds no embeddings")
            if self.centre and len(ids) > 1:
                self._mean = matrix.mean(0, dtype=np.float64).astype(np.float32)
                matrix = np.subtract(matrix, self._mean, out=matrix if matrix.flags.writeable else None)
                self._norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
            self._loaded = np.asarray(ids, dtype=str), ExactIndex(matrix)
        return self._loaded

    def __len__(self) -> int:
        return len(self.load()[0])

    def embedding(self, doc_id: str) -> np.ndarray:
        """The embedding `doc_id` was indexed with (uncentred); KeyError for an id without one."""
        ids, index = self.load()
        rows = np.flatnonzero(ids == doc_id)
        if len(rows) == 0:
            raise KeyError(doc_id)
        vector = index.full[rows[0]]
        return vector if self._mean is None else vector * self._norms[rows[0]] + self._mean

    def mask(self, where: Filter | None) -> np.ndarray | None:
        """Which rows pass the filter (None: no filter), cached for the last few filters."""
        if where is None:
            return None
        mask = self._masks.get(where)
        if mask is None:
            mask = rows_passing(where, self.backend.documents(), self.load()[0])
            if len(self._masks) >= _CACHED_MASKS:
                self._masks.clear()
            self._masks[where] = mask
        return mask

    def query(self, vector: np.ndarray) -> np.ndarray:
        """A query embedding as the scans compare it, (1, D): minus the collection's mean when centring."""
        self.load()
        q = np.asarray(vector, np.float32)[None]
        return q if self._mean is None else q - self._mean

    def exact(self, vector: np.ndarray, k: int | None = None, dims: int | None = None,
              where: Filter | None = None) -> Ranking:
        """The exact scan on the first `dims` dimensions (all when None): its top k, or every passing
        document (k None)."""
        ids, index = self.load()
        top, scores = index.search(self.query(vector), len(ids) if k is None else min(k, len(ids)), dim=dims,
                                   mask=self.mask(where))
        return Ranking.of(ids[top[0]], scores[0])

    def funnel(self, vector: np.ndarray, k: int, stages: list[FunnelStage],
               where: Filter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The funnel's top k, (ids, scores) in (-score, row) order."""
        ids, index = self.load()
        top, scores = funnel_search(index, self.query(vector), min(k, len(ids)), stages, mask=self.mask(where))
        return ids[top[0]], scores[0]

    def feedback(self, vector: np.ndarray, depth: int, where: Filter | None = None) -> np.ndarray:
        """Average pseudo-relevance feedback (pyserini's dense `--prf-method avg`): the query embedding
        summed with its `depth` nearest embeddings (exact, full width), renormalised."""
        _ids, index = self.load()
        q = prefix_normalize(self.query(vector))
        top, _scores = index.search(q, depth, mask=self.mask(where))
        expanded = q[0] + index.full[top[0]].sum(0)
        expanded /= max(float(np.linalg.norm(expanded)), 1e-12)
        return expanded if self._mean is None else expanded + self._mean  # so that `query` gives `expanded`
