"""Search an index by image (words, dense, hybrid, funnel) or by the engine's own query syntax.

The searcher rebuilds the tokenizer from the index manifest (same model, same
k-gram settings), so a query image gets exactly the words and embedding its
index expects.
"""
from __future__ import annotations

import io
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..indexer.backend import Hit, Ranking
from ..indexer.filters import parse_filter
from ..indexer.store import check_tokenizer, open_index, tokenizer_for
from ..local_words import LocalWords
from .fusion import default_weights
from .options import WORD_MODES, SearchOptions, check_against_model
from .queries import collection_query_words
from .rankers import (DenseRanker, FileCheck, FunnelRanker, FusedRanker, PositionCheck, Query, Ranker, Run,
                      VerifiedRanker, WordsRanker, hits_of)
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
        return self.search(self.encode_image(image, self.query_words_for(options)), k, options)

    def query_words_for(self, options: SearchOptions) -> int | None:
        """How many lifted words an image query in `options` takes: `options.query_words`, else sized to this
        index (queries.collection_query_words); None: the model's own."""
        if options.query_words is not None:
            return options.query_words
        return collection_query_words(self.handle.manifest.tokenizer.model.lift, options.mode,
                                      self.handle.backend.count())

    def encode_image(self, image: str | Path | bytes, query_words: int | None = None) -> Query:
        """A query image (a file, or its bytes) as this index's tokenizer reads a query: its words (with
        `query_words` lifted words rather than the model's own), embedding, local words and size."""
        from ..images import upright_size  # here: images imports torch, which text searches never load

        source = io.BytesIO(image) if isinstance(image, bytes) else Path(image)
        if isinstance(source, Path) and not source.is_file():
            raise FileNotFoundError(f"query image not found: {source}")
        try:
            encoded = self.tokenizer.encode_image(source, query_words)
            size = upright_size(io.BytesIO(image) if isinstance(image, bytes) else source)
        except OSError as exc:
            raise ValueError(f"cannot read query image {source}: {exc}") from None
        local = encoded.local[0] if encoded.local is not None else None
        return Query(encoded.words[0], encoded.embedding[0].numpy(), image, local, size)

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
        backend = self.handle.backend
        words = Counter(backend.stored_words(doc_id).split())
        hit = backend.lookup([doc_id], [0.0])[0]
        local = LocalWords.from_bytes(backend.stored_positions([doc_id]).get(doc_id, b""))
        return self.search(Query(dict(words), self.vectors.embedding(doc_id), hit.path, local,
                                 (hit.width, hit.height)), k, options)

    def check_options(self, options: SearchOptions) -> None:
        """ValueError when an embedding width the mode will use is not one the index's model nests, or the
        model cannot give a query that many words."""
        check_against_model(options, self.handle.manifest.tokenizer.model)

    def ranker(self, options: SearchOptions) -> Ranker:
        """The rankers `options.mode` composes: words, dense, funnel, or words and dense fused; verified
        when `options.verify` asks."""
        backend, mode, grid = self.handle.backend, options.mode, self.handle.manifest.tokenizer.model.grid

        def words(family: str = "all") -> WordsRanker:
            return self.words_ranker(options, family)

        if mode in WORD_MODES:
            ranker = words()
        elif mode == "funnel":
            ranker = FunnelRanker(self.vectors, options.stages)
        else:
            dense = DenseRanker(backend, self.vectors, options.dims, options.ef, options.exact)
            runs = [words("global"), words("local"), dense] if grid else [words(), dense]
            ranker = dense if mode == "dense" else FusedRanker(
                runs, options.fusion, options.weights or default_weights(grid is not None), options.depth)
        if not options.verify:
            return ranker
        return VerifiedRanker(ranker, self.check(options), backend, options.verify)

    def check(self, options: SearchOptions):
        """How --verify checks a hit: from its stored positions where the index's model makes local words
        (unless `verify_files`), else from its image file (RootSIFT)."""
        if options.verify_files or self.handle.manifest.tokenizer.model.grid is None:
            return FileCheck(self.verifier)
        return PositionCheck(self.handle.backend)

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

    def search(self, query: Query, k: int = 10, options: SearchOptions = SearchOptions()) -> list[Hit]:
        """The top k hits for `query` as `options.mode` says; with `options.explain`, each carrying where
        it matched (its boxes, the query's box, the matched words) from its stored positions."""
        hits = hits_of(self.rank(query, k, options), self.handle.backend, k)
        if not options.explain:
            return hits
        todo = [h for h in hits if h.boxes is None]
        found = {h.id: h for h in PositionCheck(self.handle.backend)(query, todo)} if todo else {}
        return [found.get(h.id, h) for h in hits]

    def search_text(self, query: str, k: int = 10, filter: str | None = None) -> list[Hit]:
        """The engine's query syntax; `filter` as in SearchOptions."""
        return self.handle.backend.search_text(query, k, where=parse_filter(filter) if filter else None)

    def words_ranker(self, options: SearchOptions, family: str = "all") -> WordsRanker:
        """The words ranker of `options` (a hybrid's word runs rank by BM25) over `family`'s words, local
        words boosted as the index's model says."""
        grid = self.handle.manifest.tokenizer.model.grid
        return WordsRanker(self.handle.backend, options.mode if options.mode in WORD_MODES else "bm25", options.k1,
                           options.b, options.max_terms, options.prune_terms, family, grid.weight if grid else 1.0)

    def query_weights(self, counts: dict[str, int], options: SearchOptions) -> dict[str, float]:
        """The weighted query words a words search sends (after --max-terms and --prune)."""
        return self.words_ranker(options).weights(counts)

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
