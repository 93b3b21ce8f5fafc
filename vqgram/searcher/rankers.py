"""Rankers: one object per way of ranking an index, each with one method, `rank(query, k=None, where=None)`.

`k` None asks for the whole ranking (every document the ranker scores, what
evaluation reads); a number asks for the top k, which is the head of that
ranking except where a ranker answers a top k by a faster road (Lucene's HNSW
for dense, each run cut to `depth` before fusing). The Searcher composes them
by mode: words, dense, funnel, words and dense fused, and any of them verified.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Protocol, Sequence

import numpy as np

from ..indexer.backend import Backend, Hit, Ranking
from ..indexer.filters import Filter
from ..local_words import LocalWords, is_local, local_word
from .fusion import fuse_rankings
from .funnel import FunnelStage, collection_stages
from .local_match import MIN_LOCAL_INLIERS, LocalMatch, match, pixel_box
from .queries import prune_by_idf, term_weights
from .vectors import IndexVectors
from .verify import Verifier, verified_order


@dataclass(frozen=True)
class Query:
    """What a search asks with: an image's words ({word: count}), its embedding, the image itself (its
    file or bytes, for verification from files), its local words with their cells (verification from
    stored positions, boxes) and its size in pixels (the query's box)."""

    words: dict[str, int]
    vector: np.ndarray | None = None
    image: str | Path | bytes | None = None
    local: LocalWords | None = None
    size: tuple[int, int] | None = None


@dataclass(frozen=True)
class Run:
    """A ranker's answer: the documents best first, and the hits the engine already read for some of
    them (id -> Hit), so turning the head into hits needs no second lookup."""

    ranking: Ranking
    hits: Mapping[str, Hit] = field(default_factory=dict)

    @classmethod
    def of_hits(cls, hits: Sequence[Hit]) -> "Run":
        return cls(Ranking.of([h.id for h in hits], [h.score for h in hits]), {h.id: h for h in hits})

    def head(self, k: int | None) -> "Run":
        """The first k documents (all when k is None)."""
        if k is None or k >= len(self.ranking):
            return self
        return Run(Ranking(self.ranking.ids[:k], self.ranking.scores[:k]), self.hits)


class Ranker(Protocol):
    def rank(self, query: Query, k: int | None = None, where: Filter | None = None) -> Run:
        """The top k documents for `query` (every one it scores when k is None), passing `where`."""


def hits_of(run: Run, backend: Backend, k: int | None = None) -> list[Hit]:
    """The first k documents of a run as hits, in its order, each carrying its score there; the ones the
    run has no hit for are looked up in the engine."""
    head = run.head(k).ranking
    ids, scores = head.ids.tolist(), head.scores.tolist()
    missing = [(i, s) for i, s in zip(ids, scores) if i not in run.hits]
    found = {h.id: h for h in backend.lookup([i for i, _ in missing], [s for _, s in missing])} if missing else {}
    out = []
    for i, s in zip(ids, scores):
        hit = run.hits.get(i) or found.get(i)
        if hit is not None:
            out.append(replace(hit, score=s))
    return out


WORD_FAMILIES = ("all", "global", "local")


class WordsRanker:
    """The engine's ranking of a weighted disjunction of the query's words (bm25, tfidf or jaccard): `family`
    "all" of them, or only the "global" or the "local" ones (a grid head's, boosted by `local_weight`)."""

    def __init__(self, backend: Backend, similarity: str = "bm25", k1: float = 1.2, b: float = 0.75,
                 max_terms: int | None = None, prune_terms: int | None = None, family: str = "all",
                 local_weight: float = 1.0):
        if family not in WORD_FAMILIES:
            raise ValueError(f"unknown word family {family!r}; choose one of: {', '.join(WORD_FAMILIES)}")
        self.backend, self.similarity, self.k1, self.b = backend, similarity, k1, b
        self.max_terms, self.prune_terms = max_terms, prune_terms
        self.family, self.local_weight = family, local_weight

    def weights(self, counts: dict[str, int]) -> dict[str, float]:
        """The weighted query words sent to the engine (of its family, after max_terms and prune_terms, local
        ones boosted)."""
        if self.family != "all":
            counts = {w: c for w, c in counts.items() if is_local(w) == (self.family == "local")}
        weights = term_weights(counts, self.max_terms)
        if self.prune_terms is not None and len(weights) > self.prune_terms:
            weights = prune_by_idf(weights, self.backend.doc_freqs(weights), self.backend.count(), self.prune_terms)
        if self.local_weight != 1.0:
            weights = {w: x * self.local_weight if is_local(w) else x for w, x in weights.items()}
        return weights

    def rank(self, query: Query, k: int | None = None, where: Filter | None = None) -> Run:
        weights = self.weights(query.words)
        if k is None:
            return Run(self.backend.rank_words(weights, self.similarity, k1=self.k1, b=self.b, where=where))
        return Run.of_hits(self.backend.search_words(weights, k, self.similarity, k1=self.k1, b=self.b,
                                                     where=where))


class DenseRanker:
    """Cosines of embeddings on a prefix (`dims`; None: the engine's HNSW prefix, or all): a top k by the
    engine's HNSW where it has one for that prefix and no exact scan is asked, else the exact scan."""

    def __init__(self, backend: Backend, vectors: IndexVectors, dims: int | None = None, ef: int | None = None,
                 exact: bool = False):
        self.backend, self.vectors, self.dims, self.ef, self.exact = backend, vectors, dims, ef, exact

    def rank(self, query: Query, k: int | None = None, where: Filter | None = None) -> Run:
        ann = self.backend.ann_dims()
        if k is not None and ann is not None and not self.exact and self.dims in (None, ann):
            return Run.of_hits(self.backend.search_vector(query.vector, k, ef=self.ef, where=where))
        return Run(self.vectors.exact(query.vector, k, self.dims, where))


class FunnelRanker:
    """Matryoshka adaptive retrieval (funnel.py) over the index's embeddings, by `stages` (None: sized to
    the collection, funnel.collection_stages). The whole ranking is the last shortlist in reranked order,
    then every other document in the first stage's prefix order."""

    def __init__(self, vectors: IndexVectors, stages: Sequence[FunnelStage] | None = None):
        self.vectors, self.stages = vectors, stages

    def rank(self, query: Query, k: int | None = None, where: Filter | None = None) -> Run:
        n = len(self.vectors)
        stages = [FunnelStage(s.dim, min(s.shortlist, n)) for s in self.stages or collection_stages(n)]
        if k is not None:
            return Run(Ranking.of(*self.vectors.funnel(query.vector, k, stages, where)))
        head, scores = self.vectors.funnel(query.vector, stages[-1].shortlist, stages, where)
        tail = self.vectors.exact(query.vector, None, stages[0].dim, where)
        rest = ~np.isin(tail.ids, head)
        return Run(Ranking(np.concatenate([head, tail.ids[rest]]), np.concatenate([scores, tail.scores[rest]])))


class FusedRanker:
    """Runs of several rankers fused into one (fusion.py); for a top k, each run is cut to `depth` (at
    least k) first."""

    def __init__(self, rankers: Sequence[Ranker], method: str, weights: Sequence[float], depth: int):
        self.rankers, self.method, self.weights, self.depth = list(rankers), method, weights, depth

    def rank(self, query: Query, k: int | None = None, where: Filter | None = None) -> Run:
        depth = None if k is None else max(k, self.depth)
        runs = [r.rank(query, depth, where) for r in self.rankers]
        hits: dict[str, Hit] = {}
        for run in reversed(runs):  # the first run's hit of a document wins
            hits.update(run.hits)
        return Run(fuse_rankings([run.ranking for run in runs], self.method, self.weights), hits).head(k)


class FileCheck:
    """Geometric verification from the hits' image files (RootSIFT matches, verify.py)."""

    def __init__(self, verifier: Verifier):
        self.verifier, self.min_inliers = verifier, verifier.config.min_inliers

    def __call__(self, query: Query, hits: Sequence[Hit]) -> list[Hit]:
        if query.image is None:
            raise ValueError("--verify matches local features of the query image: search by an image file "
                             "(search_image), not by words and an embedding alone")
        counts = self.verifier.inliers(query.image, [h.path for h in hits])
        return [replace(h, inliers=c) for h, c in zip(hits, counts)]


class PositionCheck:
    """Verification from the hits' stored positions (local_match.py): no image file opened; each hit
    carries its inliers, boxes, the query's box and the matched words."""

    def __init__(self, backend: Backend, min_inliers: int = MIN_LOCAL_INLIERS):
        self.backend, self.min_inliers = backend, min_inliers

    def __call__(self, query: Query, hits: Sequence[Hit]) -> list[Hit]:
        if query.local is None:
            raise ValueError("verification from stored positions needs the query's local words: search by an "
                             "image, with an index whose model has a grid head")
        stored = self.backend.stored_positions([h.id for h in hits])
        return [with_match(h, match(query.local, LocalWords.from_bytes(stored.get(h.id, b"")), self.min_inliers),
                           query.size) for h in hits]


def with_match(hit: Hit, found: LocalMatch, query_size: tuple[int, int] | None) -> Hit:
    """`hit` carrying a local match's evidence, boxes in its own pixels and the query's in the query's."""
    return replace(hit, inliers=found.inliers,
                   boxes=tuple(tuple(pixel_box(b, hit.width, hit.height)) for b in found.boxes),
                   query_box=tuple(pixel_box(found.query_box, *query_size)) if found.query_box and query_size
                   else None, matched=tuple(local_word(c) for c in found.codes))


class VerifiedRanker:
    """Another ranker's first `depth` documents re-ranked by geometric verification (`check`: FileCheck or
    PositionCheck): hits with at least the check's `min_inliers` first, most first, each hit carrying its
    evidence; the rest keep their order behind them."""

    def __init__(self, ranker: Ranker, check, backend: Backend, depth: int):
        self.ranker, self.check, self.backend, self.depth = ranker, check, backend, depth

    def rank(self, query: Query, k: int | None = None, where: Filter | None = None) -> Run:
        run = self.ranker.rank(query, None if k is None else max(k, self.depth), where)
        ranking, top = run.ranking, min(self.depth, len(run.ranking))
        head = self.check(query, hits_of(run, self.backend, top))  # in the run's order; unknown ids drop out
        found = np.isin(ranking.ids[:top], [h.id for h in head])
        order = np.concatenate([np.flatnonzero(found)[verified_order([h.inliers for h in head],
                                                                     self.check.min_inliers)],
                                np.flatnonzero(~found), np.arange(top, len(ranking))]).astype(int)
        return Run(Ranking(ranking.ids[order], ranking.scores[order]), {**run.hits, **{h.id: h for h in head}}
                   ).head(k)
