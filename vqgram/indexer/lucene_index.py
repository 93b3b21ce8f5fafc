"""The Lucene backend: one Lucene 9.9 document per image, searched with BM25,
TF-IDF, Jaccard, Lucene query syntax, and HNSW or exact dense search.

The index is a plain Lucene index (codec "Lucene99", Anserini's field names
`id`, `vector`), so Anserini's own searchers open it; see docs/LUCENE.md.

A document's fields, built in lucene_documents (the table: docs/LUCENE.md): id, path,
label, width, height, size, mtime, words (stored), nwords, vector (the HNSW prefix), embedding and
positions (stored bytes). Stored numbers are strings, so every reader gets them back exactly.

The seams: lucene_settings (lucene.json), lucene_documents (writing),
lucene_queries (query building), lucene_reader (one commit's reader, its
searchers and caches), lucene_errors (Lucene's exceptions as vqgram's);
this module ties them into the Backend protocol.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator, Sequence

import numpy as np

from vqgram.indexer import jvm
from vqgram.indexer.backend import DocMeta, DocTable, Hit, ImageDoc, Ranking, rank, take_writer_lock
from vqgram.indexer.filters import Filter
from vqgram.indexer.lucene_filter import filter_query, restrict
from vqgram.indexer.lucene_documents import DocumentMaker, checked_vector, l2norm
from vqgram.indexer.lucene_errors import engine_error
from vqgram.indexer.lucene_queries import TextQueryParser, jaccard_query, words_query
from vqgram.indexer.lucene_reader import BM25_B, BM25_K1, SIMILARITIES, LuceneSnapshot, query_vector
from vqgram.indexer.lucene_settings import SETTINGS_NAME, LuceneSettings, read_settings, write_settings

MAX_CLAUSES = 1 << 16  # an image query has ~2000 terms; Lucene's default is 1024
DEFAULT_EF = 100  # HNSW efSearch, as in Anserini/pyserini, for graphs up to 250k documents
DOCS_PER_EF = 2_500  # larger graphs: efSearch 1 per 2,500 of their documents (1M merged: 400, docs/SCALE.md)


class LuceneBackend:
    """An index folder opened with Lucene (through pyjnius).

    Writes go to one IndexWriter, taken by `begin_writing` (or the first
    add/delete) and kept across commits until `close`: it holds Lucene's
    write.lock for the whole run. Reads see the last commit through one
    LuceneSnapshot (a DirectoryReader with its searchers and caches), replaced
    after each commit; readers take no lock.
    """

    name: ClassVar[str] = "lucene"

    def __init__(self, path: Path, settings: LuceneSettings) -> None:
        """Use `create` or `open`."""
        self.path = Path(path)
        self.settings = settings
        jvm.start()
        if jvm.JIndexSearcher.getMaxClauseCount() < MAX_CLAUSES:  # a JVM-wide setting
            jvm.JIndexSearcher.setMaxClauseCount(MAX_CLAUSES)
        self._dir = jvm.JFSDirectory.open(jvm.JPaths.get(str(self.path.resolve())))
        self._writer: Any = None
        self._snapshot: LuceneSnapshot | None = None
        self._settings_dirty = False
        self._closed = False
        self._text_parser = TextQueryParser()
        self._documents = DocumentMaker()

    # ---- life cycle -------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | Path,
        embedding_dim: int | None = None,
        dense_dims: int | None = 256,
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 100,
        int8: bool = False,
        overwrite: bool = False,
    ) -> "LuceneBackend":
        """Make a new, empty (committed) index in `path`.

        dense_dims: HNSW indexes this prefix of each embedding, renormalised
        (any Matryoshka prefix is itself an embedding); None indexes all of it
        (up to 4096 dims). The full embedding is stored either way.
        embedding_dim: the width of the embeddings to come, when known: settings
        that contradict it raise ValueError here, before anything is written.
        Raises FileExistsError when `path` already holds an index and not `overwrite`.
        """
        path = Path(path)
        settings = LuceneSettings(
            dense_dims=dense_dims, hnsw_m=hnsw_m, hnsw_ef_construction=hnsw_ef_construction, int8=int8,
            vector_dims=embedding_dim,
        )
        if (path / SETTINGS_NAME).exists() and not overwrite:
            raise FileExistsError(f"{path} already holds a Lucene index; open it, or pass overwrite=True")
        path.mkdir(parents=True, exist_ok=True)
        self = cls(path, settings)
        self._open_writer(create=True)
        self._writer.commit()
        write_settings(path, settings)
        self.refresh()
        return self

    @classmethod
    def open(cls, path: str | Path) -> "LuceneBackend":
        """Open an index made by `create`; raises FileNotFoundError when there is none."""
        path = Path(path)
        self = cls(path, read_settings(path))
        try:
            self.refresh()
        except Exception as exc:
            self.close()
            raise engine_error(path, exc) from None
        return self

    def creation_options(self) -> dict:
        """The HNSW settings `create` took, as `lucene.json` holds them."""
        s = self.settings
        return {"dense_dims": s.dense_dims, "hnsw_m": s.hnsw_m, "hnsw_ef_construction": s.hnsw_ef_construction,
                "int8": s.int8}

    def _open_writer(self, create: bool = False) -> None:
        s = self.settings
        analyzer = jvm.JWhitespaceAnalyzer()
        config = jvm.JIndexWriterConfig(analyzer)
        config.setCodec(jvm.hnsw_codec(s.hnsw_m, s.hnsw_ef_construction, s.int8))
        config.setOpenMode(jvm.JOpenMode.CREATE if create else jvm.JOpenMode.APPEND)
        config.setCommitOnClose(False)  # close() without commit() drops the changes, like a crash
        config.setRAMBufferSizeMB(256.0)
        self._writer = jvm.JIndexWriter(self._dir, config)

    def begin_writing(self, wait: bool = False) -> None:
        """Take Lucene's write.lock for the whole run (until `close`); see `Backend.begin_writing`."""
        if self._writer is not None:
            return
        take_writer_lock(self.path, self._open_writer, engine_error, wait)
        try:
            self.refresh()  # see what the previous holder committed
        except Exception as exc:
            raise engine_error(self.path, exc) from None

    def _writer_open(self) -> Any:
        self.begin_writing()
        return self._writer

    def close(self) -> None:
        """Release the writer (dropping uncommitted changes), the reader and the directory."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._snapshot is not None:
            self._snapshot.close()
            self._snapshot = None
        self._dir.close()

    def __enter__(self) -> "LuceneBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- writing ----------------------------------------------------------

    def _document(self, doc: ImageDoc) -> Any:
        vector = None
        if doc.vector is not None:
            vector, settings = checked_vector(doc, self.settings)
            if settings != self.settings:  # the first vector fixes the embedding size
                self.settings = settings
                self._settings_dirty = True
        return self._documents.make(doc, vector, self.settings.indexed_dims())

    def add(self, docs: Sequence[ImageDoc]) -> None:
        """Insert or replace (same id) documents; visible after `commit`."""
        writer = self._writer_open()
        for doc in docs:
            writer.updateDocument(jvm.JTerm("id", doc.id), self._document(doc))

    def add_indexes(self, paths: Sequence[str | Path]) -> None:
        """Append whole Lucene indexes (IndexWriter.addIndexes: their segments copied as they are, so
        documents keep their exact field values); visible after `commit`. The caller checks that the
        indexes share this one's settings and no document ids."""
        dirs = [jvm.JFSDirectory.open(jvm.JPaths.get(str(Path(p).resolve()))) for p in paths]
        try:
            self._writer_open().addIndexes(*dirs)  # Directory... (varargs)
        finally:
            for d in dirs:
                d.close()

    def delete(self, ids: Iterable[str]) -> None:
        """Remove documents by id; visible after `commit`."""
        writer = self._writer_open()
        for i in ids:
            # the Query... overload: pyjnius resolves Term... to it anyway
            writer.deleteDocuments(jvm.JTermQuery(jvm.JTerm("id", i)))

    def commit(self) -> None:
        """Make all changes durable (Lucene's two-phase commit); a crash before it leaves the last commit."""
        if self._settings_dirty:  # before the commit: a crash in between leaves harmless extra facts
            write_settings(self.path, self.settings)
            self._settings_dirty = False
        try:
            if self._writer is not None:
                self._writer.commit()
            self.refresh()
        except Exception as exc:
            raise engine_error(self.path, exc) from None

    def force_merge(self, max_segments: int = 1) -> None:
        """Merge the index down to at most `max_segments` segments and commit (Elasticsearch's
        `_forcemerge`): each segment holds its own HNSW graph, and a kNN query searches every one
        (1M documents in 14 segments: ~10x the work of one). Costs a rewrite of the index;
        run it once a collection stops growing. Raises ValueError for max_segments < 1."""
        if max_segments < 1:
            raise ValueError(f"max_segments={max_segments} must be at least 1")
        try:
            self._writer_open().forceMerge(int(max_segments), True)
        except Exception as exc:
            raise engine_error(self.path, exc) from None
        self.commit()

    def segments(self) -> int:
        """How many segments the last commit holds."""
        return int(self._snapshot.reader.leaves().size())

    def refresh(self) -> bool:
        """The snapshot of the last commit (DirectoryReader.openIfChanged: unchanged segments are shared);
        True when it is a newer one than before (see `Backend.refresh`)."""
        if self._snapshot is None:
            self._snapshot = LuceneSnapshot.open(self._dir)
            return True
        newer = self._snapshot.reopen()
        if newer is None:
            return False
        self._snapshot.close()
        self._snapshot = newer
        return True

    # ---- reading ----------------------------------------------------------

    def count(self) -> int:
        """Number of committed documents."""
        return self._snapshot.count()

    def stored(self) -> dict[str, DocMeta]:
        """path -> DocMeta of every committed document (for incremental indexing)."""
        return self._snapshot.stored()

    def doc_freqs(self, words: Iterable[str]) -> dict[str, int]:
        """How many committed documents hold each word (for query-term pruning by idf)."""
        reader = self._snapshot.reader
        return {w: int(reader.docFreq(jvm.JTerm("words", w))) for w in words}

    def words_query(self, weights: dict[str, float], boosts: bool = True) -> Any:
        """The disjunction of `words` term queries, boosted by weight, as one Lucene BooleanQuery."""
        return words_query(weights, boosted=boosts)

    def search_words(
        self,
        weights: dict[str, float],
        k: int,
        similarity: str = "bm25",
        k1: float = BM25_K1,
        b: float = BM25_B,
        where: Filter | None = None,
    ) -> list[Hit]:
        """Rank documents against weighted words.

        similarity: "bm25" (BM25Similarity(k1, b)), "tfidf" (Lucene's
        ClassicSimilarity), or "jaccard": |A ∩ B| / |A ∪ B| over the query's
        and the document's word *sets* (weights and counts ignored), computed
        exactly inside Lucene for every document sharing a word.
        Raises ValueError for an unknown similarity or a negative weight.
        """
        snap = self._snapshot
        searcher = snap.searcher(similarity, k1, b)
        if not weights or k <= 0:
            return []
        if similarity == "jaccard":
            return snap.hits(searcher, restrict(jaccard_query(weights), where), k)
        return snap.word_hits(searcher, words_query(weights), k, None if where is None else filter_query(where))

    def rank_words(self, weights: dict[str, float], similarity: str = "bm25", k1: float = BM25_K1,
                   b: float = BM25_B, where: Filter | None = None) -> Ranking:
        """Every document `search_words` would return, ranked by (-score, id)."""
        snap = self._snapshot
        searcher = snap.searcher(similarity, k1, b)
        if not weights or snap.count() == 0:
            return Ranking.of([], [])
        if similarity == "jaccard":
            return Ranking.of(*snap.full_jaccard(restrict(words_query(weights, boosted=False), where), len(weights)))
        return Ranking.of(*snap.full_ranking(searcher, restrict(words_query(weights), where)))

    def text_query(self, query: str) -> Any:
        """Parse Lucene query syntax (StandardQueryParser): `words` is the default field;
        id/path/label are single terms; width/height/size/mtime take ranges (`width:[0 TO 300]`).
        Raises ValueError naming the query when it does not parse."""
        return self._text_parser.parse(query)

    def search_text(self, query: str, k: int, where: Filter | None = None) -> list[Hit]:
        """The engine's own query syntax over `words` and the metadata fields (BM25 defaults)."""
        snap = self._snapshot
        return snap.hits(snap.searcher("bm25"), restrict(self.text_query(query), where), k)

    def documents(self) -> DocTable:
        """The metadata of every committed document."""
        return self._snapshot.documents()

    def label_counts(self) -> dict[str, int]:
        """Documents per label, live ones only (LuceneSnapshot.label_counts)."""
        return self._snapshot.label_counts()

    def stored_positions(self, ids: Sequence[str]) -> dict[str, bytes]:
        """id -> stored positions blob of each named document (b"" without one), unknown ids left out."""
        return self._snapshot.stored_positions(ids)

    def stored_words(self, doc_id: str) -> str:
        """The words text `doc_id` was indexed with; KeyError for an unknown id."""
        words = self._snapshot.stored_words(doc_id)
        if words is None:
            raise ValueError(f"index {self.path} does not store its words (made by an older vqgram); "
                             "re-index it into a new folder to search by an indexed image")
        return words

    # ---- dense ------------------------------------------------------------

    def ann_dims(self) -> int | None:
        """The prefix the HNSW field holds (None while the index has no vectors)."""
        return self.settings.indexed_dims() if self.settings.vector_dims is not None else None

    def search_vector(self, vector: np.ndarray, k: int, ef: int | None = None,
                      where: Filter | None = None) -> list[Hit]:
        """Approximate nearest neighbours by cosine on the HNSW field's prefix (`ann_dims()`).

        ef: candidates the graph search keeps (efSearch; we ask Lucene for
        max(k, ef) neighbours and keep k); None: 100 (Anserini's default), or
        1 per 2,500 documents of the largest segment's graph when that is more
        (a merged 1M graph: recall@10 0.90 at 100, 0.998 at 400). Exact scans
        of any prefix are the searcher's (over `vectors()`).
        where: the kNN query's filter (HNSW visits only passing documents).
        Raises ValueError when the index has no vectors.
        """
        d = self._dense_dims_or_raise()
        if k <= 0:
            return []
        q = l2norm(query_vector(vector, d)[:d])
        snap = self._snapshot
        n = max(int(k), max(DEFAULT_EF, snap.largest_segment() // DOCS_PER_EF) if ef is None else int(ef))
        query = (jvm.JKnnFloatVectorQuery("vector", q.tolist(), n) if where is None else
                 jvm.JKnnFloatVectorQuery("vector", q.tolist(), n, filter_query(where)))
        # Lucene's DOT_PRODUCT score is (1 + dot) / 2; report the cosine.
        return snap.hits(snap.searcher(), query, k, transform=lambda s: 2.0 * s - 1.0)

    def lookup(self, ids: list[str], scores: list[float]) -> list[Hit]:
        """Hits for documents (with embeddings) named by id, with the given scores, in (-score, id) order."""
        snap = self._snapshot
        docid_of = snap.docids()
        known = [(docid_of[i], float(score)) for i, score in zip(ids, scores) if i in docid_of]
        hits = snap.hits_of([d for d, _ in known], [s for _, s in known])
        return rank(hits, len(hits))

    def stored_documents(self) -> Iterator[ImageDoc]:
        """Every committed document as it was added (metadata, words text, embedding, positions), from its
        stored fields."""
        return self._snapshot.stored_documents(self.settings.vector_dims)

    def vectors(self) -> tuple[list[str], np.ndarray]:
        """(ids, float32 matrix n x D): the full embedding of every committed document that has one,
        read from the stored field and handed over (the searcher owns exact scans and reranking)."""
        return self._snapshot.stored_vectors(self.settings.vector_dims)

    def _dense_dims_or_raise(self) -> int:
        d = self.settings.indexed_dims()
        if self.settings.vector_dims is None or d is None:
            raise ValueError(f"the index at {self.path} holds no vectors; add documents with a `vector`")
        return d
