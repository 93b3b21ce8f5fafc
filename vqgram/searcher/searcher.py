"""Search an index by image (words, dense, hybrid, funnel) or by the engine's own query syntax.

The searcher rebuilds the tokenizer from the index manifest (same model, same
k-gram settings), so a query image gets exactly the words and embedding its
index expects.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..indexer.backend import Hit, Ranking
from ..indexer.filters import parse_filter
from ..indexer.store import check_tokenizer, open_index, tokenizer_for
from .options import WORD_MODES, SearchOptions, check_against_model
from .queries import collection_query_words
from .rankers import (DenseRanker, FunnelRanker, FusedRanker, Query, Ranker, Run, VerifiedRanker, WordsRanker,
                      hits_of)
from .vectors import IndexVectors
from .verify import Verifier

if TYPE_CHECKING:  # the tokenizer (so torch) is imported where an image is encoded: text searches load no model
    from ..tokenizer.encoder import Tokenizer


class Searcher:
    """Searches one index: encodes query images with the index's own model and answers each mode with
    the rankers it composes (rankers.py). centre: exact dense scores are cosines around the collection's
    mean embedding (vectors.IndexVectors)."""

    def __init__(self, index: str | Path, tokenizer: Tokenizer | None = None, centre: bool = True):
        self.handle = open_index(Path(index))
        self._tokenizer = tokenizer
        self.vectors = IndexVectors(self.handle.backend, self.handle.path, centre)  # read on first use
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
        self.vectors.load()
        self.handle.backend.documents()

    def similar(self, doc_id: str, k: int = 10, options: SearchOptions = SearchOptions()) -> list[Hit]:
        """More like an indexed image: its stored words and embedding as the query (no model run).
        KeyError for an id the index does not hold."""
        doc_id = str(doc_id)
        if options.query_words is not None:
            raise ValueError("query_words applies to image queries; similar() queries with the stored words")
        words = Counter(self.handle.backend.stored_words(doc_id).split())
        vector = self.vectors.embedding(doc_id)
        image = self.handle.backend.lookup([doc_id], [0.0])[0].path if options.verify else None
        return self.search_encoded(dict(words), vector, k, options, image=image)

    def check_options(self, options: SearchOptions) -> None:
        """ValueError when an embedding width the mode will use is not one the index's model nests, or the
        model cannot give a query that many words."""
        check_against_model(options, self.handle.manifest.tokenizer.model)

    def ranker(self, options: SearchOptions) -> Ranker:
        """The rankers `options.mode` composes: words, dense, funnel, or words and dense fused; verified
        when `options.verify` asks."""
        backend, mode = self.handle.backend, options.mode
        words = WordsRanker(backend, mode if mode in WORD_MODES else "bm25", options.k1, options.b,
                            options.max_terms, options.prune_terms)
        if mode in WORD_MODES:
            ranker = words
        elif mode == "funnel":
            ranker = FunnelRanker(self.vectors, options.stages)
        else:
            dense = DenseRanker(backend, self.vectors, options.dims, options.ef, options.exact)
            ranker = dense if mode == "dense" else FusedRanker([words, dense], options.fusion, options.weights,
                                                               options.depth)
        return VerifiedRanker(ranker, self.verifier, backend, options.verify) if options.verify else ranker

    def rank(self, query: Query, k: int | None = None, options: SearchOptions = SearchOptions()) -> Run:
        """The mode's top k documents for `query`, or its whole ranking (k None): the one path every search
        takes. A vector mode's query embedding is first expanded by PRF when `options.prf_depth` asks."""
        self.check_options(options)
        if options.mode not in WORD_MODES:
            if query.vector is None:
                raise ValueError(f"mode {options.mode} needs the query's embedding")
            if options.prf_depth:
                query = replace(query, vector=self.vectors.feedback(query.vector, options.prf_depth, options.where))
        return self.ranker(options).rank(query, k, options.where)

    def search_encoded(self, words: dict[str, int], vector: np.ndarray | None, k: int = 10,
                       options: SearchOptions = SearchOptions(), image: str | Path | bytes | None = None
                       ) -> list[Hit]:
        """The top k hits by an image's words ({word: count}) and/or its embedding, as `options.mode` says;
        `image` (the query's file or bytes) is read by --verify only."""
        return hits_of(self.rank(Query(words, vector, image), k, options), self.handle.backend, k)

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
        return self.rank(Query(words, vector, image), None, options).ranking

    def search_words(self, counts: dict[str, int], k: int = 10, max_terms: int | None = None) -> list[Hit]:
        return self.search_encoded(counts, None, k, SearchOptions(max_terms=max_terms))

    def search_text(self, query: str, k: int = 10, filter: str | None = None) -> list[Hit]:
        """The engine's query syntax; `filter` as in SearchOptions."""
        return self.handle.backend.search_text(query, k, where=parse_filter(filter) if filter else None)

    def query_weights(self, counts: dict[str, int], options: SearchOptions) -> dict[str, float]:
        """The weighted query words a words search sends (after --max-terms and --prune)."""
        return WordsRanker(self.handle.backend, max_terms=options.max_terms,
                           prune_terms=options.prune_terms).weights(counts)

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
