"""Search an index by image (words, dense, hybrid, funnel) or by the engine's own query syntax.

The searcher rebuilds the tokenizer from the index manifest (same model, same
k-gram settings), so a query image gets exactly the words and embedding its
index expects.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..indexer.backend import Hit, Ranking
from ..indexer.filters import parse_filter, rows_passing
from ..indexer.store import check_tokenizer, open_index, tokenizer_for
from ..tokenizer.embedding_sizes import embedding_sizes
from .funnel import FunnelIndex, FunnelStage, collection_stages, prefix_normalize
from .fusion import fuse, fuse_rankings
from .options import OPTION_MODES, WORD_MODES, SearchOptions
from .queries import collection_query_words, prune_by_idf, term_weights
from .verify import Verifier

if TYPE_CHECKING:  # the tokenizer (so torch) is imported where an image is encoded: text searches load no model
    from ..tokenizer.encoder import Tokenizer

def _verify_image(image: str | Path | bytes | None) -> str | Path | bytes:
    if image is None:
        raise ValueError("--verify matches local features of the query image: search by an image file "
                         "(search_image), not by words and an embedding alone")
    return image


def _similarity(o: SearchOptions) -> str:
    """The word ranking a mode uses: its own for word modes, BM25 inside hybrid."""
    return o.mode if o.mode in WORD_MODES else "bm25"


class Searcher:
    """Searches one index. centre: exact dense scores (scans, funnels, PRF, full rankings) are cosines
    of embeddings minus the collection's mean embedding, a statistic of this index alone that stops
    what all its images share from dominating (measured on every set of the dev suite, docs/RESULTS.md);
    Lucene's HNSW field holds the raw vectors and ranks raw cosines."""

    def __init__(self, index: str | Path, tokenizer: Tokenizer | None = None, centre: bool = True):
        self.handle = open_index(Path(index))
        self._tokenizer = tokenizer
        self.centre = centre
        self._vectors: tuple[np.ndarray, FunnelIndex] | None = None  # (ids, index), read on first use
        self._mean: np.ndarray | None = None  # the collection's mean embedding when centring
        self._norms: np.ndarray | None = None  # |embedding - mean| per row, to give `similar` the raw vector
        self._masks: dict[str, np.ndarray] = {}  # filter text -> rows of _vectors passing it
        self._verifier: Verifier | None = None  # made by the first search asking for --verify
        if tokenizer is not None:
            check_tokenizer(self.handle.manifest, tokenizer, self.handle.path)

    @property
    def tokenizer(self) -> Tokenizer:
        """Loaded on first use: text queries need no model."""
        if self._tokenizer is None:
            self._tokenizer = tokenizer_for(self.handle.manifest, self.handle.path)
        return self._tokenizer

    def search_image(self, image: str | Path, k: int = 10, options: SearchOptions = SearchOptions()) -> list[Hit]:
        return self.search_encoded(*self.encode_image(image, self.query_words_for(options)), k, options, image=image)

    def query_words_for(self, options: SearchOptions) -> int | None:
        """How many lifted words an image query in `options` takes: `options.query_words`, else sized to this
        index (queries.collection_query_words); None: the model's own."""
        if options.query_words is not None:
            return options.query_words
        return collection_query_words(self.handle.manifest.tokenizer.model.lift, options.mode,
                                      self.handle.backend.count())

    def encode_image(self, image: str | Path, query_words: int | None = None) -> tuple[dict[str, int], np.ndarray]:
        """A query image's {word: count} and embedding, as this index's tokenizer makes them (with
        `query_words` lifted words rather than the model's own)."""
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"query image not found: {path}")
        try:
            encoded = self.tokenizer.encode_image(path, query_words)
        except OSError as exc:
            raise ValueError(f"cannot read query image {path}: {exc}") from None
        return self.tokenizer.vocabulary.to_dict(encoded.counts[0]), encoded.embedding[0].numpy()

    def load(self) -> None:
        """Read the model, the embeddings and the metadata now (a server's start), not on the first query."""
        _ = self.tokenizer  # a property that loads the model
        self._vector_index()
        self.handle.backend.documents()

    def similar(self, doc_id: str, k: int = 10, options: SearchOptions = SearchOptions()) -> list[Hit]:
        """More like an indexed image: its stored words and embedding as the query (no model run).
        KeyError for an id the index does not hold."""
        doc_id = str(doc_id)
        if options.query_words is not None:
            raise ValueError("query_words applies to image queries; similar() queries with the stored words")
        words = Counter(self.handle.backend.stored_words(doc_id).split())
        ids, index = self._vector_index()
        rows = np.flatnonzero(ids == doc_id)
        if len(rows) == 0:
            raise KeyError(doc_id)
        vector = index.full[rows[0]]
        if self._mean is not None:
            vector = vector * self._norms[rows[0]] + self._mean
        image = self.handle.backend.lookup([doc_id], [0.0])[0].path if options.verify else None
        return self.search_encoded(dict(words), vector, k, options, image=image)

    def check_options(self, options: SearchOptions) -> None:
        """ValueError when an embedding width the mode will use is not one the index's model nests, or the
        model cannot give a query that many words."""
        from ..tokenizer.model import check_query_words  # here: the model's module imports torch

        sizes = embedding_sizes(self.handle.manifest.tokenizer.model)
        asked = [("dims", options.dims)] if options.dims is not None and options.mode in OPTION_MODES["dims"] else []
        if options.mode == "funnel":
            asked += [("funnel stage dims", st.dim) for st in options.stages or collection_stages(1)]
        for name, d in asked:
            if d not in sizes:
                raise ValueError(f"{name}={d} is not an embedding width of this index's model; "
                                 f"choose one of {', '.join(map(str, sizes))}")
        if options.query_words is not None:
            check_query_words(self.handle.manifest.tokenizer.model, options.query_words)

    def search_encoded(self, words: dict[str, int], vector: np.ndarray | None, k: int = 10,
                       options: SearchOptions = SearchOptions(), image: str | Path | bytes | None = None
                       ) -> list[Hit]:
        """Rank by an image's words ({word: count}) and/or its embedding, as `options.mode` says; `image`
        (the query's file or bytes) is read by --verify only."""
        self.check_options(options)
        if not options.verify:
            return self._search(words, vector, k, options)
        hits = self._search(words, vector, max(k, options.verify), options)
        return self.verifier.rerank_hits(_verify_image(image), hits, options.verify)[:k]

    def _search(self, words, vector, k, options: SearchOptions) -> list[Hit]:
        mode = options.mode
        if mode in WORD_MODES:
            return self._words(words, k, options)
        vector = self._feedback(vector, options)
        if mode == "dense":
            return self._dense(vector, k, options)
        if mode == "hybrid":
            depth = max(k, options.depth)
            runs = [self._words(words, depth, options), self._dense(vector, depth, options)]
            return fuse(runs, k, options.fusion, options.weights)
        return self._funnel_search(vector, k, options)

    def rank_encoded(self, words: dict[str, int], vector: np.ndarray | None,
                     options: SearchOptions = SearchOptions(), image: str | Path | bytes | None = None) -> Ranking:
        """Every document the mode ranks, best first, as arrays: the full run that evaluation scores.

        Word modes: every document sharing a word, by the engine's scores.
        Dense: an exact scan of the index's embeddings on `options.dims`.
        Hybrid: the two full runs fused. Funnel: its shortlist in reranked
        order, then the rest in the first stage's prefix order. With
        --verify, the first N re-ranked as `search_encoded` does (`image`:
        the query's file).
        """
        self.check_options(options)
        ranking = self._rank(words, vector, options)
        if not options.verify:
            return ranking
        head = ranking.ids[:options.verify].tolist()
        path = {h.id: h.path for h in self.handle.backend.lookup(head, [0.0] * len(head))}
        return self.verifier.rerank(_verify_image(image), ranking, [path[i] for i in head], options.verify)

    def _rank(self, words, vector, options: SearchOptions) -> Ranking:
        mode = options.mode
        if mode in WORD_MODES:
            return self._rank_words(words, options)
        vector = self._feedback(vector, options)
        if mode == "dense":
            return self._rank_dense(vector, options.dims, options)
        if mode == "hybrid":
            runs = [self._rank_words(words, options), self._rank_dense(vector, options.dims, options)]
            return fuse_rankings(runs, options.fusion, options.weights)
        ids, index = self._vector_index()
        stages = self._stages(options, len(ids))
        top, scores = index.search_funnel(self._query(vector), stages[-1].shortlist, stages, mask=self._mask(options))
        head = ids[top[0]]
        tail = self._rank_dense(vector, stages[0].dim, options)
        rest = ~np.isin(tail.ids, head)
        return Ranking(np.concatenate([head, tail.ids[rest]]), np.concatenate([scores[0], tail.scores[rest]]))

    def search_words(self, counts: dict[str, int], k: int = 10, max_terms: int | None = None) -> list[Hit]:
        return self.search_encoded(counts, None, k, SearchOptions(max_terms=max_terms))

    def search_text(self, query: str, k: int = 10, filter: str | None = None) -> list[Hit]:
        """The engine's query syntax; `filter` as in SearchOptions."""
        return self.handle.backend.search_text(query, k, where=parse_filter(filter) if filter else None)

    def _words(self, counts, k, o: SearchOptions) -> list[Hit]:
        return self.handle.backend.search_words(self.query_weights(counts, o), k, _similarity(o), k1=o.k1, b=o.b,
                                                where=o.where)

    def _rank_words(self, counts, o: SearchOptions) -> Ranking:
        return self.handle.backend.rank_words(self.query_weights(counts, o), _similarity(o), k1=o.k1, b=o.b,
                                              where=o.where)

    def query_weights(self, counts: dict[str, int], o: SearchOptions) -> dict[str, float]:
        """The weighted query words a words search sends (after --max-terms and --prune)."""
        weights = term_weights(counts, o.max_terms)
        if o.prune_terms is None or len(weights) <= o.prune_terms:
            return weights
        backend = self.handle.backend
        return prune_by_idf(weights, backend.doc_freqs(weights), backend.count(), o.prune_terms)

    def _mask(self, o: SearchOptions) -> np.ndarray | None:
        """Which rows of the embedding matrix pass the filter (None: no filter); a filtered scan's mask."""
        if o.where is None:
            return None
        ids, _index = self._vector_index()
        mask = self._masks.get(o.filter)
        if mask is None:
            mask = rows_passing(o.where, self.handle.backend.documents(), ids)
            if len(self._masks) >= 64:
                self._masks.clear()
            self._masks[o.filter] = mask
        return mask

    def _dense(self, vector, k, o: SearchOptions) -> list[Hit]:
        """The engine's HNSW when it has one for this prefix (and no exact scan is asked), else our exact scan."""
        backend = self.handle.backend
        ann = backend.ann_dims()
        if ann is not None and not o.exact and o.dims in (None, ann):
            return backend.search_vector(vector, k, ef=o.ef, where=o.where)
        ids, index = self._vector_index()
        top, scores = index.search_exact(self._query(vector), min(k, len(ids)), dim=o.dims, mask=self._mask(o))
        return backend.lookup(ids[top[0]].tolist(), scores[0].tolist())

    def _rank_dense(self, vector, dims: int | None, o: SearchOptions) -> Ranking:
        ids, index = self._vector_index()
        top, scores = index.search_exact(self._query(vector), len(ids), dim=dims, mask=self._mask(o))
        return Ranking.of(ids[top[0]], scores[0])

    def _funnel_search(self, vector, k, o: SearchOptions) -> list[Hit]:
        """Matryoshka adaptive retrieval over the index's full embeddings (both backends)."""
        ids, index = self._vector_index()
        top, scores = index.search_funnel(self._query(vector), min(k, len(ids)), self._stages(o, len(ids)),
                                          mask=self._mask(o))
        return self.handle.backend.lookup(ids[top[0]].tolist(), scores[0].tolist())

    def _feedback(self, vector, o: SearchOptions) -> np.ndarray:
        """Average pseudo-relevance feedback (pyserini's dense `--prf-method avg`): the query embedding
        summed with its `prf_depth` nearest full embeddings (exact), renormalised; unchanged when off."""
        if vector is None:
            raise ValueError(f"mode {o.mode} needs the query's embedding")
        if not o.prf_depth:
            return vector
        _ids, index = self._vector_index()
        q = prefix_normalize(self._query(vector))
        top, _scores = index.search_exact(q, o.prf_depth, mask=self._mask(o))
        expanded = q[0] + index.full[top[0]].sum(0)
        expanded /= max(float(np.linalg.norm(expanded)), 1e-12)
        return expanded if self._mean is None else expanded + self._mean  # so that _query gives `expanded`

    def _vector_index(self) -> tuple[np.ndarray, FunnelIndex]:
        """The index's full embeddings (ids, FunnelIndex), read once: exact scans and funnels of any prefix."""
        if self._vectors is None:
            ids, matrix = self.handle.backend.vectors()
            if not ids:
                raise ValueError(f"index {self.handle.path} holds no embeddings")
            if self.centre and len(ids) > 1:
                self._mean = matrix.mean(0, dtype=np.float64).astype(np.float32)
                matrix = np.subtract(matrix, self._mean, out=matrix if matrix.flags.writeable else None)
                self._norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
            self._vectors = np.asarray(ids, dtype=str), FunnelIndex(matrix, prefix_dims=())
        return self._vectors

    def _query(self, vector) -> np.ndarray:
        """A query embedding as the exact scans compare it: minus the collection's mean when centring."""
        self._vector_index()
        q = np.asarray(vector, np.float32)[None]
        return q if self._mean is None else q - self._mean

    @staticmethod
    def _stages(o: SearchOptions, n: int) -> list[FunnelStage]:
        return [FunnelStage(s.dim, min(s.shortlist, n)) for s in o.stages or collection_stages(n)]

    @property
    def verifier(self) -> Verifier:
        """Made on first use: only --verify needs OpenCV."""
        if self._verifier is None:
            self._verifier = Verifier()
        return self._verifier

    def close(self) -> None:
        if self._verifier is not None:
            self._verifier.close()
        self.handle.close()

    def __enter__(self) -> "Searcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
