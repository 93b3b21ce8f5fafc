"""One committed state of a Lucene index: its DirectoryReader and what is derived from it.

Searchers per similarity, the stored metadata of hits and the stored
embeddings are built on first use and dropped together when a commit opens
the next snapshot, so nothing read here can mix two commits.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from vqgram.cores import usable_cores
from vqgram.indexer import jvm
from vqgram.indexer.backend import DocMeta, DocTable, Hit, ImageDoc, embedding_matrix, rank

SIMILARITIES = ("bm25", "tfidf", "jaccard")
# Lucene's BM25 defaults, which are also Tantivy's: comparisons between the two
# engines then differ only in the engines. (Anserini's 0.9/0.4 were tuned on
# MS MARCO passages, text whose lengths vary far more than image word counts.)
BM25_K1 = 1.2
BM25_B = 0.75

_TIE_MARGIN = 16  # hits collected past k to see whether the k-th is tied
# A words query is scored in one share of the documents per core from this many documents a share on:
# 1M documents in 14 segments, 2 shares on 2 cores: 44-69 ms p50 against 82-107 ms in one (runs alternated);
# at 100k one share takes ~9 ms and a second gained nothing steady.
_DOCS_PER_SHARE = 250_000
_HIT_FIELDS = ["id", "path", "label", "width", "height"]


def query_vector(vector: np.ndarray, need: int) -> np.ndarray:
    """A query embedding with at least `need` dims (a longer one is cut: any prefix is valid)."""
    q = np.asarray(vector, dtype=np.float32).reshape(-1)
    if q.shape[0] < need:
        raise ValueError(f"query vector has {q.shape[0]} dims; this search needs at least {need}")
    if not np.isfinite(q[:need]).all():
        raise ValueError("query vector holds NaN or infinity")
    return q


class LuceneSnapshot:
    """A DirectoryReader on one commit, with per-commit caches; `close` releases the reader."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self._searchers: dict[tuple, Any] = {}
        self._meta: dict[int, tuple[str, str, str, int, int]] = {}
        self._doc_ids: np.ndarray | None = None  # doc number -> id
        self._docids: dict[str, int] | None = None  # id -> doc number of documents with an embedding
        self._table: DocTable | None = None
        self._labels: dict[str, int] | None = None
        self._largest: int | None = None

    @classmethod
    def open(cls, directory: Any) -> "LuceneSnapshot":
        """The last commit in `directory`."""
        return cls(jvm.JDirectoryReader.open(directory))

    def reopen(self) -> "LuceneSnapshot | None":
        """A snapshot of a newer commit, or None when there is none (this one stays open either way)."""
        newer = jvm.JDirectoryReader.openIfChanged(self.reader)
        return None if newer is None else LuceneSnapshot(newer)

    def close(self) -> None:
        self._searchers.clear()
        self.reader.close()

    def count(self) -> int:
        """Number of live documents."""
        return int(self.reader.numDocs())

    def largest_segment(self) -> int:
        """Documents (deleted included) in the largest segment: the size of the biggest HNSW graph."""
        if self._largest is None:
            self._largest = max((leaf.reader().maxDoc() for leaf in self.reader.leaves().toArray()), default=0)
        return self._largest

    def live_docs(self) -> Iterable[int]:
        """Doc numbers of the live (not deleted) documents, ascending."""
        live = jvm.JMultiBits.getLiveDocs(self.reader)
        for i in range(self.reader.maxDoc()):
            if live is None or live.get(i):
                yield i

    def stored(self) -> dict[str, DocMeta]:
        """path -> DocMeta of every live document."""
        sf = self.reader.storedFields()
        out = {}
        for i in self.live_docs():
            d = sf.document(i)  # all stored fields in one JNI call: cheaper than naming some
            path = d.get("path")
            out[path] = DocMeta(id=d.get("id"), path=path, mtime=float(d.get("mtime")), size=int(d.get("size")))
        return out

    def documents(self) -> DocTable:
        """Every live document's metadata as columns, read once per snapshot."""
        if self._table is None:
            sf = self.reader.storedFields()
            rows = []
            for i in self.live_docs():
                d = sf.document(i)
                rows.append((d.get("id"), d.get("path"), d.get("label"), int(d.get("width")), int(d.get("height")),
                             int(d.get("size")), float(d.get("mtime"))))
            self._table = DocTable.of(rows)
        return self._table

    def label_counts(self) -> dict[str, int]:
        """Live documents per label: the `label` terms of every segment, each counted by IndexSearcher.count
        (a term's docFreq would count deleted documents too), read once per snapshot; "" left out."""
        if self._labels is None:
            labels = set()
            for leaf in self.reader.leaves().toArray():
                terms = leaf.reader().terms("label")
                walk = terms.iterator() if terms is not None else None
                while walk is not None and (term := walk.next()) is not None:
                    labels.add(term.utf8ToString())
            searcher = self.searcher()
            counts = {label: int(searcher.count(jvm.JTermQuery(jvm.JTerm("label", label))))
                      for label in sorted(labels - {""})}
            self._labels = {label: n for label, n in counts.items() if n}
        return self._labels

    def stored_positions(self, ids: Sequence[str]) -> dict[str, bytes]:
        """id -> stored `positions` of each named live document (b"" without one), unknown ids left out: the
        Java helper looks the ids up and returns every value in one array (`StoredBytes.byId`)."""
        ids = list(dict.fromkeys(map(str, ids)))  # (a ranking's ids are numpy strings, which pyjnius refuses)
        if not ids:
            return {}
        raw = jvm.JStoredBytes.byId(self.reader, "id", ids, "positions").tostring()
        lengths = np.frombuffer(raw, ">i4", count=len(ids))
        ends = np.cumsum(np.maximum(lengths, 0)) + 4 * len(ids)
        return {i: raw[end - n:end] for i, n, end in zip(ids, lengths.tolist(), ends.tolist()) if n >= 0}

    def stored_words(self, doc_id: str) -> str | None:
        """The stored words text of document `doc_id` (None in an index made before words were stored);
        KeyError for an unknown id."""
        docs = self.searcher().search(jvm.JTermQuery(jvm.JTerm("id", doc_id)), 1).scoreDocs
        if len(docs) == 0:
            raise KeyError(doc_id)
        return self.reader.storedFields().document(docs[0].doc).get("words")

    def searcher(self, similarity: str = "bm25", k1: float = BM25_K1, b: float = BM25_B) -> Any:
        """An IndexSearcher ranking by `similarity` (cached per setting); ValueError for an unknown one."""
        if similarity not in SIMILARITIES:
            raise ValueError(f"similarity {similarity!r} is not one of {', '.join(SIMILARITIES)}")
        key = (similarity, k1, b) if similarity == "bm25" else (similarity,)
        s = self._searchers.get(key)
        if s is None:
            s = jvm.JIndexSearcher(self.reader, signature="(Lorg/apache/lucene/index/IndexReader;)V")
            if similarity == "bm25":
                s.setSimilarity(jvm.JBM25Similarity(float(k1), float(b)))
            elif similarity == "tfidf":
                s.setSimilarity(jvm.JClassicSimilarity())
            else:  # jaccard: a matched term scores its boost (1), so a disjunction scores |A ∩ B|
                s.setSimilarity(jvm.JBooleanSimilarity())
            self._searchers[key] = s
        return s

    def hit_meta(self, docids: Iterable[int]) -> list[tuple[str, str, str, int, int]]:
        """(id, path, label, width, height) of each doc number, read once per snapshot
        (the ones not yet read come from the Java helper in one call)."""
        docids = [int(d) for d in docids]
        missing = [d for d in dict.fromkeys(docids) if d not in self._meta]
        if missing:
            values = jvm.JDocumentValues.stored(self.reader, missing, _HIT_FIELDS)
            n = len(_HIT_FIELDS)
            for j, d in enumerate(missing):
                i, path, label, w, h = values[j * n:(j + 1) * n]
                self._meta[d] = (i, path, label, int(w), int(h))
        return [self._meta[d] for d in docids]

    def hits_of(self, docids: Iterable[int], scores: Iterable[float]) -> list[Hit]:
        """A Hit per (doc number, score), in the given order."""
        return [Hit(id=i, score=float(s), path=p, label=lab, width=w, height=h)
                for (i, p, lab, w, h), s in zip(self.hit_meta(docids), scores)]

    def hits(self, searcher: Any, query: Any, k: int, transform: Callable[[float], float] | None = None) -> list[Hit]:
        """Top k of `query` ranked by (-score, id).

        Lucene's top-k collector breaks ties by doc number, and keeps its
        MaxScore skipping (MaxScoreBulkScorer) only without a sort (a (score, id) Sort made
        1000-term queries ~3x slower); so the Java helper collects a few more
        than k, and reads on through a tie with the k-th only when there is
        one. rank() then orders ties by id.
        """
        if k <= 0:
            return []
        return self._ranked(jvm.JTopMatches.of(searcher, query, int(k), _TIE_MARGIN), k, transform)

    def word_hits(self, searcher: Any, disjunction: Any, k: int, where: Any = None) -> list[Hit]:
        """Top k of a words disjunction (`Queries.disjunction`) ranked by (-score, id), scored term at
        a time in windows of documents (`TermAtATime.top`); `where`: a filter query or None.

        A 384-word image query matches most of a collection with words of similar weight, so
        MaxScore skips little and pays a heap of 384 clause iterators per posting (1M documents:
        ~230 ms a query). The same scores, clause by clause into cached accumulators, cost a
        fraction; from 250k documents on, each core scores its share of them."""
        if k <= 0:
            return []
        shares = max(1, min(usable_cores(), int(self.reader.maxDoc()) // _DOCS_PER_SHARE))
        return self._ranked(jvm.JTermAtATime.top(searcher, disjunction, where, int(k), shares), k)

    def _ranked(self, top: Any, k: int, transform: Callable[[float], float] | None = None) -> list[Hit]:
        """The helper's matches as Hits, ordered by (-score, id) and cut to k."""
        scores = [float(s) for s in top.scores()]
        if transform is not None:
            scores = [transform(s) for s in scores]
        return rank(self.hits_of(top.docs(), scores), k)

    def doc_ids(self) -> np.ndarray:
        """The id of every doc number (deleted ones included), read from the `id` doc values in one call."""
        if self._doc_ids is None:
            self._doc_ids = np.asarray(jvm.JDocumentValues.binary(self.reader, "id"), dtype=str)
        return self._doc_ids

    def full_ranking(self, searcher: Any, query: Any) -> tuple[np.ndarray, np.ndarray]:
        """(ids, float32 scores) of every document `query` matches, unordered.

        The Java helper collects them as two primitive arrays: a ScoreDoc per
        hit costs pyjnius an object and two calls (~50 ms at 9.5k hits)."""
        return self._arrays(jvm.JAllMatches.of(searcher, query))

    def full_jaccard(self, disjunction: Any, query_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, float32 Jaccard indexes) of every document sharing a word with the query, unordered.

        `disjunction`: the query's `query_size` words, unboosted. The helper
        scores it with BooleanSimilarity (|A ∩ B|) and divides by |A ∪ B| from
        the `nwords` doc values itself: the same float32 values as the
        FunctionScoreQuery of `search_words`, at a fraction of its cost."""
        return self._arrays(jvm.JJaccardMatches.of(self.searcher("jaccard"), disjunction, int(query_size), "nwords"))

    def _arrays(self, ranking: Any) -> tuple[np.ndarray, np.ndarray]:
        docs = np.asarray(ranking.docs(), dtype=np.int64)
        return self.doc_ids()[docs], np.asarray(ranking.scores(), dtype=np.float32)

    def stored_vectors(self, vector_dims: int | None) -> tuple[list[str], np.ndarray]:
        """(ids, embeddings) of the documents that have one, read from the stored field and not kept
        (the caller owns the matrix); the id -> doc number map is kept for `docids`."""
        sf = self.reader.storedFields()
        ids, docids, rows = [], [], []
        for i in self.live_docs():
            d = sf.document(i)
            raw = _stored_bytes(d, "embedding", 4 * (vector_dims or 0))
            if raw is None:
                continue
            ids.append(d.get("id"))
            docids.append(i)
            rows.append(raw)
        self._docids = dict(zip(ids, docids))
        return ids, embedding_matrix(rows, vector_dims or 0)

    def stored_documents(self, vector_dims: int | None) -> Iterator[ImageDoc]:
        """Every live document as it was added, from its stored fields (one JNI call a document)."""
        sf = self.reader.storedFields()
        for i in self.live_docs():
            d = sf.document(i)
            raw = _stored_bytes(d, "embedding", 4 * (vector_dims or 0))
            yield ImageDoc(id=d.get("id"), path=d.get("path"), label=d.get("label"), width=int(d.get("width")),
                           height=int(d.get("height")), mtime=float(d.get("mtime")), size=int(d.get("size")),
                           words=d.get("words"), vector=None if raw is None else embedding_matrix([raw], 0)[0],
                           positions=_stored_bytes(d, "positions") or b"")

    def docids(self) -> dict[str, int]:
        """id -> doc number of every live document with an embedding (read once per snapshot)."""
        if self._docids is None:
            sf = self.reader.storedFields()
            docs = ((i, sf.document(i)) for i in self.live_docs())
            self._docids = {d.get("id"): i for i, d in docs if d.getBinaryValue("embedding") is not None}
        return self._docids


def _stored_bytes(document: Any, field: str, length: int | None = None) -> bytes | None:
    """A stored document's bytes `field`, None when it has none; `length`: what it is known to be (an embedding's),
    which spares asking Java for the value's bounds."""
    ref = document.getBinaryValue(field)
    if ref is None:
        return None
    # a stored field read back is a BytesRef over its own array (offset 0);
    # ByteArray.tostring() copies it at once, bytes(...) would go byte by byte
    raw = ref.bytes.tostring()
    return raw if len(raw) == length else raw[ref.offset : ref.offset + ref.length]
