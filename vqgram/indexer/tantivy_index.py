"""The embedded backend: Tantivy (no JVM), BM25 with k1 = 1.2, b = 0.75.

Tantivy has no vector search, so each document stores its embedding as bytes
(`embedding`): documents and embeddings then commit in one Tantivy commit, and
a reader's snapshot always holds both or neither. Dense search is an exact
scan, which the searcher owns (`ann_dims()` is None).

One writer per run: the writer (and Tantivy's lock file) is taken once by
`begin_writing` and kept across commits until `close`, so another process can
never slip in between two commits of a run. Readers never take the lock.

`words` is indexed with the whitespace tokenizer and term frequencies (no
positions) and stored, so an indexed image can be a query; `positions`, the
local words' positions blob, is stored bytes, not indexed, and left out of a
document without one (an index made before it has no such field: its documents
read as b"", and it takes no blob); metadata fields
are raw strings and integers, so `label:n01440764` and `width:[500 TO *]`
work in the query syntax, and filters (filters.py) join queries as clauses.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import ClassVar, Iterable, Iterator, Sequence

import numpy as np
import tantivy

from .backend import (DocMeta, DocTable, Hit, ImageDoc, IndexCorrupt, IndexLocked, Ranking, embedding_bytes,
                      embedding_matrix, rank, take_writer_lock)
from .filters import Filter
from .tantivy_filter import restrict

META = "meta.json"  # Tantivy's list of the last commit's segments, with its opstamp
TEXT_FIELDS = ("id", "path", "label")
INT_FIELDS = ("width", "height", "size")


def _schema() -> tantivy.Schema:
    b = tantivy.SchemaBuilder()
    for name in TEXT_FIELDS:
        b.add_text_field(name, stored=True, tokenizer_name="raw", index_option="basic")
    for name in INT_FIELDS:
        b.add_integer_field(name, stored=True, indexed=True, fast=True)
    b.add_float_field("mtime", stored=True, indexed=True)
    b.add_text_field("words", stored=True, tokenizer_name="whitespace", index_option="freq")
    b.add_bytes_field("embedding", stored=True)
    b.add_bytes_field("positions", stored=True)  # last: the fields before keep the numbers older indexes gave them
    return b.build()


def _has_field(schema: tantivy.Schema, name: str) -> bool:
    try:
        tantivy.Query.term_query(schema, name, b"")
    except ValueError:
        return False
    return True


def _engine_error(path: Path, exc: Exception) -> Exception:
    """Tantivy's errors (ValueError with a Rust message) as one-line vqgram errors."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "LockBusy" in text:
        return IndexLocked(path)
    return IndexCorrupt(path, text)


def _retrying(path: Path, open_files, attempts: int = 40):
    """open_files(), again while a file it needs has just vanished: another process's commit replaced the
    commit being opened and deleted its merged-away segments (Tantivy protects only its own process's
    readers). The next try reads the new commit; a file still missing after that means a damaged index."""
    for attempt in range(attempts):
        try:
            return open_files()
        except ValueError as exc:
            if "FileDoesNotExist" not in str(exc) or attempt == attempts - 1:
                raise _engine_error(path, exc) from None
            time.sleep(0.05)


class TantivyBackend:
    name: ClassVar[str] = "tantivy"

    def __init__(self, path: Path, index: tantivy.Index, embedding_dim: int | None = None):
        self.path, self._index = Path(path), index
        self._dim = embedding_dim  # known at creation, else read from a stored document when first needed
        self._schema = index.schema
        if not _has_field(self._schema, "embedding"):
            raise ValueError(f"index {self.path} was made by an older vqgram (embeddings in a side file); "
                             "index the folder again into a new index folder")
        self._stores_positions = _has_field(self._schema, "positions")
        self._writer: tantivy.IndexWriter | None = None
        self._snapshot()

    def _snapshot(self) -> None:
        """One searcher (a point-in-time view) until our next commit or `refresh`; doc addresses are stable
        in it, so stored fields fetched once per document are cached by address."""
        self._opstamp = self._last_opstamp()  # read before the reload: the reader sees at least that commit
        self._searcher = _retrying(self.path, lambda: (self._index.reload(), self._index.searcher())[1])
        self._docs: dict[tuple[int, int], Hit] = {}
        self._table: DocTable | None = None
        self._labels: dict[str, int] | None = None

    def _last_opstamp(self) -> int | None:
        """The opstamp of the last commit, from `meta.json` (which Tantivy replaces atomically at each commit
        and watches itself to reload its readers); None when unreadable."""
        try:
            return json.loads((self.path / META).read_text())["opstamp"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def refresh(self) -> bool:
        """A new searcher when another process committed since ours was made (see `Backend.refresh`)."""
        opstamp = self._last_opstamp()
        if opstamp is not None and opstamp == self._opstamp:
            return False
        self._snapshot()
        return True

    @classmethod
    def create(cls, path: Path, embedding_dim: int | None = None) -> "TantivyBackend":
        """A new, empty index in `path`, for embeddings of `embedding_dim` (None: the first added decides)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        return cls(path, tantivy.Index(_schema(), path=str(path), reuse=False), embedding_dim)

    @classmethod
    def open(cls, path: Path) -> "TantivyBackend":
        return cls(path, _retrying(Path(path), lambda: tantivy.Index.open(str(path))))

    def creation_options(self) -> dict:
        """Tantivy indexes take no options."""
        return {}

    # --- writing -----------------------------------------------------------------------

    def begin_writing(self, wait: bool = False) -> None:
        """Take Tantivy's writer lock for the whole run (until `close`); see `Backend.begin_writing`."""
        if self._writer is not None:
            return
        self._writer = take_writer_lock(
            self.path, lambda: self._index.writer(heap_size=256_000_000, num_threads=1), _engine_error, wait)
        self._snapshot()  # what the previous holder committed

    @property
    def writer(self) -> tantivy.IndexWriter:
        self.begin_writing()
        return self._writer

    def add(self, docs: Sequence[ImageDoc]) -> None:
        writer = self.writer
        for d in docs:
            self._check_vector(d)
            extra = {"positions": d.positions} if d.positions else {}
            if extra and not self._stores_positions:  # (tantivy-py drops a field the schema lacks, silently)
                raise ValueError(f"index {self.path} was made before vqgram stored local-word positions, and "
                                 f"document {d.id} ({d.path}) has them; index into a new folder")
            writer.delete_documents_by_term("id", d.id)
            writer.add_document(tantivy.Document(
                id=d.id, path=d.path, label=d.label, width=d.width, height=d.height,
                size=d.size, mtime=float(d.mtime), words=d.words, embedding=embedding_bytes(d.vector), **extra,
            ))

    def _check_vector(self, d: ImageDoc) -> None:
        """Every document carries an embedding, all of one width (one scan matrix)."""
        if d.vector is None or np.ndim(d.vector) != 1:
            raise ValueError(f"document {d.id} ({d.path}) needs a 1-d embedding")
        if self._dim is None:
            docs = self._searcher.search(tantivy.Query.all_query(), limit=1, count=False).hits
            self._dim = len(self._searcher.doc(docs[0][1]).get_first("embedding")) // 4 if docs else len(d.vector)
        if len(d.vector) != self._dim:
            raise ValueError(f"document {d.id} ({d.path}): a {len(d.vector)}-d embedding in an index of "
                             f"{self._dim}-d ones")

    def delete(self, ids: Iterable[str]) -> None:
        writer = self.writer
        for i in ids:
            writer.delete_documents_by_term("id", i)

    def commit(self) -> None:
        """One Tantivy commit (documents and their embeddings together); the writer stays ours."""
        if self._writer is not None:
            try:
                self._writer.commit()
            except ValueError as exc:
                raise _engine_error(self.path, exc) from None
        self._snapshot()

    def close(self) -> None:
        """Drop uncommitted changes and release the writer lock."""
        if self._writer is not None:
            self._writer.rollback()
            self._writer.wait_merging_threads()  # consumes the writer: the lock file is released
            self._writer = None

    # --- reading -----------------------------------------------------------------------

    def count(self) -> int:
        return self._searcher.num_docs

    def doc_freqs(self, words: Iterable[str]) -> dict[str, int]:
        """How many committed documents hold each word (for query-term pruning by idf)."""
        searcher = self._searcher
        return {w: searcher.doc_freq("words", w) for w in words}

    def _all_docs(self) -> Iterator[tantivy.Document]:
        searcher = self._searcher
        if searcher.num_docs == 0:
            return iter(())
        result = searcher.search(tantivy.Query.all_query(), limit=searcher.num_docs, count=False)
        return (searcher.doc(addr) for _score, addr in result.hits)

    def stored_documents(self) -> Iterator[ImageDoc]:
        """Every committed document as it was added (metadata, words text, embedding, positions), from its
        stored fields."""
        for d in self._all_docs():
            raw = d.get_first("embedding")
            yield ImageDoc(**{f: d.get_first(f) for f in (*TEXT_FIELDS, *INT_FIELDS, "mtime", "words")},
                           vector=None if raw is None else embedding_matrix([raw], 0)[0],
                           positions=d.get_first("positions") or b"")

    def vectors(self) -> tuple[list[str], np.ndarray]:
        """Every committed document's embedding, read from this snapshot's stored fields, in id order."""
        pairs = sorted((d.get_first("id"), d.get_first("embedding")) for d in self._all_docs())
        dim = len(pairs[0][1]) // 4 if pairs else 0
        return [i for i, _ in pairs], embedding_matrix([e for _, e in pairs], dim)

    def ann_dims(self) -> None:
        """No vector search in Tantivy: the searcher scans `vectors()`."""
        return None

    def stored(self) -> dict[str, DocMeta]:
        metas = {}
        for d in self._all_docs():
            meta = DocMeta(d.get_first("id"), d.get_first("path"), d.get_first("mtime"), d.get_first("size"))
            metas[meta.path] = meta
        return metas

    def label_counts(self) -> dict[str, int]:
        """Documents per label: the `label` term dictionary, each term counted over the documents an
        all-documents query matches (the live ones; a term's doc_freq counts deleted ones until a merge)."""
        if self._labels is None:
            terms = self._searcher.terms_with_prefix("label", "", filter_query=tantivy.Query.all_query())
            self._labels = {term: int(count) for term, count in terms if term}
        return self._labels

    def documents(self) -> DocTable:
        if self._table is None:
            fields = ("id", "path", "label", "width", "height", "size", "mtime")
            self._table = DocTable.of(tuple(d.get_first(f) for f in fields) for d in self._all_docs())
        return self._table

    def stored_positions(self, ids: Sequence[str]) -> dict[str, bytes]:
        """id -> stored positions blob of each named document (b"" without one), unknown ids left out."""
        ids = list(dict.fromkeys(map(str, ids)))
        if not ids:
            return {}  # (Tantivy panics on a search with limit 0)
        searcher = self._searcher
        found = searcher.search(tantivy.Query.term_set_query(self._schema, "id", ids), limit=len(ids), count=False)
        docs = (searcher.doc(addr) for _score, addr in found.hits)
        return {d.get_first("id"): d.get_first("positions") or b"" for d in docs}

    def stored_words(self, doc_id: str) -> str:
        found = self._searcher.search(tantivy.Query.term_query(self._schema, "id", doc_id), limit=1, count=False)
        if not found.hits:
            raise KeyError(doc_id)
        words = self._searcher.doc(found.hits[0][1]).get_first("words")
        if words is None:
            raise ValueError(f"index {self.path} does not store its words (made by an older vqgram); "
                             "re-index it into a new folder to search by an indexed image")
        return words

    def search_words(self, weights: dict[str, float], k: int, similarity: str = "bm25",
                     k1: float = 1.2, b: float = 0.75, where: Filter | None = None) -> list[Hit]:
        return self._run(restrict(self._words_query(weights, similarity, k1, b), where, self._schema), k)

    def rank_words(self, weights: dict[str, float], similarity: str = "bm25", k1: float = 1.2,
                   b: float = 0.75, where: Filter | None = None) -> Ranking:
        query = restrict(self._words_query(weights, similarity, k1, b), where, self._schema)
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

    def search_text(self, query: str, k: int, where: Filter | None = None) -> list[Hit]:
        try:
            parsed = self._index.parse_query(query, default_field_names=["words"])
        except ValueError as exc:
            raise ValueError(f"cannot parse query {query!r}: {str(exc).splitlines()[0]}") from None
        return self._run(restrict(parsed, where, self._schema), k)

    def lookup(self, ids: list[str], scores: list[float]) -> list[Hit]:
        """Hits for documents named by id, with the given scores, in (-score, id) order."""
        if not ids:
            return []  # (Tantivy panics on a search with limit 0)
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
