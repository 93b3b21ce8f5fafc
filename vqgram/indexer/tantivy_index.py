"""The embedded backend: Tantivy (no JVM), BM25 with k1 = 1.2, b = 0.75.

Tantivy has no vector fields, so embeddings go to a `VectorStore` sidecar in
the same folder, committed together with the index.

`words` is indexed with the whitespace tokenizer and term frequencies (no
positions); metadata fields are raw strings and integers, so
`label:n01440764` and `width:[500 TO *]` work in the query syntax.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import ClassVar, Iterable, Sequence

import tantivy

import numpy as np

from .backend import DocMeta, Hit, ImageDoc, Ranking, rank
from ..searcher.funnel import FunnelIndex
from .vectors import VectorStore

TEXT_FIELDS = ("id", "path", "label")
INT_FIELDS = ("width", "height", "size")


def _schema() -> tantivy.Schema:
    b = tantivy.SchemaBuilder()
    for name in TEXT_FIELDS:
        b.add_text_field(name, stored=True, tokenizer_name="raw", index_option="basic")
    for name in INT_FIELDS:
        b.add_integer_field(name, stored=True, indexed=True, fast=True)
    b.add_float_field("mtime", stored=True, indexed=True)
    b.add_text_field("words", stored=False, tokenizer_name="whitespace", index_option="freq")
    return b.build()


class TantivyBackend:
    name: ClassVar[str] = "tantivy"

    def __init__(self, path: Path, index: tantivy.Index):
        self.path, self._index = Path(path), index
        self._schema = index.schema
        self._writer: tantivy.IndexWriter | None = None
        self._vectors = VectorStore(self.path)
        self._snapshot()

    def _snapshot(self) -> None:
        """One searcher (a point-in-time view) until our next commit; doc addresses are stable in it,
        so stored fields fetched once per document are cached by address."""
        self._index.reload()
        self._searcher = self._index.searcher()
        self._docs: dict[tuple[int, int], Hit] = {}
        self._funnel: FunnelIndex | None = None

    @classmethod
    def create(cls, path: Path) -> "TantivyBackend":
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        return cls(path, tantivy.Index(_schema(), path=str(path), reuse=False))

    @classmethod
    def open(cls, path: Path) -> "TantivyBackend":
        return cls(path, tantivy.Index.open(str(path)))

    # --- writing -----------------------------------------------------------------------

    @property
    def writer(self) -> tantivy.IndexWriter:
        if self._writer is None:
            try:
                self._writer = self._index.writer(heap_size=256_000_000, num_threads=1)
            except ValueError as exc:
                raise RuntimeError(f"index {self.path} is locked by another writer ({exc})") from None
        return self._writer

    def add(self, docs: Sequence[ImageDoc]) -> None:
        writer = self.writer
        for d in docs:
            writer.delete_documents_by_term("id", d.id)
            writer.add_document(tantivy.Document(
                id=d.id, path=d.path, label=d.label, width=d.width, height=d.height,
                size=d.size, mtime=float(d.mtime), words=d.words,
            ))
            if d.vector is not None:
                self._vectors.upsert(d.id, d.vector)

    def delete(self, ids: Iterable[str]) -> None:
        writer = self.writer
        for i in ids:
            writer.delete_documents_by_term("id", i)
            self._vectors.delete(i)

    def commit(self) -> None:
        if self._writer is not None:
            self._writer.commit()
            self._writer.wait_merging_threads()
            self._writer = None
        self._vectors.commit()
        self._snapshot()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.rollback()
            self._writer = None
            self._vectors = VectorStore(self.path)  # drop uncommitted vectors too

    # --- reading -----------------------------------------------------------------------

    def count(self) -> int:
        return self._searcher.num_docs

    def doc_freqs(self, words: Iterable[str]) -> dict[str, int]:
        """How many committed documents hold each word (for query-term pruning by idf)."""
        searcher = self._searcher
        return {w: searcher.doc_freq("words", w) for w in words}

    def vectors(self) -> tuple[list[str], np.ndarray]:
        return self._vectors.matrix()

    def stored(self) -> dict[str, DocMeta]:
        searcher = self._searcher
        n = searcher.num_docs
        if n == 0:
            return {}
        result = searcher.search(tantivy.Query.all_query(), limit=n, count=False)
        metas = {}
        for _score, addr in result.hits:
            d = searcher.doc(addr)
            meta = DocMeta(d.get_first("id"), d.get_first("path"), d.get_first("mtime"), d.get_first("size"))
            metas[meta.path] = meta
        return metas

    def search_words(self, weights: dict[str, float], k: int, similarity: str = "bm25",
                     k1: float = 1.2, b: float = 0.75) -> list[Hit]:
        return self._run(self._words_query(weights, similarity, k1, b), k)

    def rank_words(self, weights: dict[str, float], similarity: str = "bm25", k1: float = 1.2,
                   b: float = 0.75) -> Ranking:
        query = self._words_query(weights, similarity, k1, b)
        result = self._searcher.search(query, limit=max(self.count(), 1), count=False)
        return Ranking.of([self._hit(addr).id for _s, addr in result.hits], [s for s, _a in result.hits])

    def _words_query(self, weights: dict[str, float], similarity: str, k1: float, b: float) -> tantivy.Query:
        if similarity != "bm25" or (k1, b) != (1.2, 0.75):
            raise ValueError(f"Tantivy ranks by BM25 with k1=1.2, b=0.75 only (asked: {similarity}, k1={k1}, b={b}); "
                             "use an index built with --backend lucene for tfidf, jaccard or other BM25 settings")
        schema = self._schema
        return tantivy.Query.boolean_query([
            (tantivy.Occur.Should,
             tantivy.Query.boost_query(tantivy.Query.term_query(schema, "words", w, index_option="freq"), float(x)))
            for w, x in weights.items()
        ])

    def search_text(self, query: str, k: int) -> list[Hit]:
        try:
            parsed = self._index.parse_query(query, default_field_names=["words"])
        except ValueError as exc:
            raise ValueError(f"cannot parse query {query!r}: {str(exc).splitlines()[0]}") from None
        return self._run(parsed, k)

    def search_vector(self, vector: np.ndarray, k: int, dims: int | None = None, ef: int | None = None,
                      exact: bool = True) -> list[Hit]:
        """Exact cosine on the first `dims` dimensions of the sidecar vectors (no graph: `ef`, `exact` unused)."""
        ids, matrix = self._vectors.matrix()
        if not ids:
            raise ValueError(f"index {self.path} holds no embeddings")
        top, scores = self._dense().search_exact(np.asarray(vector, np.float32)[None], k, dim=dims)
        return self.lookup([ids[i] for i in top[0]], scores[0].tolist())

    def _dense(self) -> FunnelIndex:
        if self._funnel is None:
            self._funnel = FunnelIndex(self._vectors.matrix()[1], prefix_dims=())
        return self._funnel

    def lookup(self, ids: list[str], scores: list[float]) -> list[Hit]:
        """Hits for documents named by id, with the given scores, in (-score, id) order."""
        result = self._searcher.search(tantivy.Query.term_set_query(self._schema, "id", ids), limit=len(ids),
                                       count=False)
        found = {h.id: h for h in (self._hit(addr) for _s, addr in result.hits)}
        return rank([replace(found[i], score=float(s)) for i, s in zip(ids, scores) if i in found], len(ids))

    def _run(self, query: tantivy.Query, k: int) -> list[Hit]:
        # fetch a little more than k so ties at the cut are broken by id, not by doc order
        result = self._searcher.search(query, limit=k + 16, count=False)
        return rank([replace(self._hit(addr), score=float(score)) for score, addr in result.hits], k)

    def _hit(self, addr: tantivy.DocAddress) -> Hit:
        key = (addr.segment_ord, addr.doc)
        hit = self._docs.get(key)
        if hit is None:
            d = self._searcher.doc(addr)
            hit = Hit(d.get_first("id"), 0.0, d.get_first("path"), d.get_first("label"),
                      d.get_first("width"), d.get_first("height"))
            self._docs[key] = hit
        return hit
