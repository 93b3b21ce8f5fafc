"""The Lucene backend: one Lucene 9.9 document per image, searched with BM25,
TF-IDF, Jaccard, Lucene query syntax, and HNSW or exact dense search.

The index is a plain Lucene index (codec "Lucene99", Anserini's field names
`id`, `vector`), so Anserini's own searchers open it; see docs/LUCENE.md.

Fields of one document:

  id        StringField, stored, BINARY doc values (the upsert key; Anserini sorts ties on it)
  path      StringField, stored
  label     StringField, stored (so `label:n01440764` works)
  width, height   IntPoint + stored;  size  LongPoint + stored;  mtime  DoublePoint + stored
  words     whitespace-analyzed, DOCS_AND_FREQS, norms, not stored
  nwords    NUMERIC doc values: the number of distinct words (for Jaccard)
  vector    KnnFloatVectorField, DOT_PRODUCT, on the first `dense_dims` dims renormalised
  embedding stored bytes: the full float32 little-endian embedding (exact search, rerank)

Stored numbers are strings, so every reader gets them back exactly.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Sequence

import numpy as np

from vqgram.indexer import jvm
from vqgram.indexer.backend import DocMeta, Hit, ImageDoc, Ranking, rank

SETTINGS_NAME = "lucene.json"
SETTINGS_FORMAT = 1
SIMILARITIES = ("bm25", "tfidf", "jaccard")
MAX_CLAUSES = 1 << 16  # an image query has ~2000 terms; Lucene's default is 1024
MAX_VECTOR_DIMS = 4096  # what Anserini's codec allows (Lucene 9.9 alone: 1024)

# Lucene's BM25 defaults, which are also Tantivy's: comparisons between the two
# engines then differ only in the engines. (Anserini's 0.9/0.4 were tuned on
# MS MARCO passages, text whose lengths vary far more than image word counts.)
DEFAULT_EF = 100  # HNSW efSearch, as in Anserini/pyserini
BM25_K1 = 1.2
BM25_B = 0.75

_TIE_MARGIN = 16  # hits collected past k to see whether the k-th is tied
_FIELD_CHARSEQ = "(Ljava/lang/String;Ljava/lang/CharSequence;Lorg/apache/lucene/index/IndexableFieldType;)V"
_PLAIN_WORD = re.compile(r"[a-z0-9_.]+")
_QUERY_SPECIAL = re.compile(r'([+\-!(){}\[\]^"~*?:\\/&|])')


@dataclass(frozen=True)
class LuceneSettings:
    """What `lucene.json` in the index folder holds: how the vector field is built."""

    dense_dims: int | None = 256  # HNSW on this prefix of the embedding; None: the whole
    hnsw_m: int = 16
    hnsw_ef_construction: int = 100
    int8: bool = False
    vector_dims: int | None = None  # full embedding size, known after the first vector
    format: int = SETTINGS_FORMAT

    def __post_init__(self) -> None:
        if self.dense_dims is not None and not 1 <= self.dense_dims <= MAX_VECTOR_DIMS:
            raise ValueError(f"dense_dims={self.dense_dims} must be in 1..{MAX_VECTOR_DIMS} or None (whole vector)")
        if not 2 <= self.hnsw_m <= 512:
            raise ValueError(f"hnsw_m={self.hnsw_m} must be in 2..512 (Lucene's bounds)")
        if not 1 <= self.hnsw_ef_construction <= 3200:
            raise ValueError(f"hnsw_ef_construction={self.hnsw_ef_construction} must be in 1..3200 (Lucene's bounds)")

    def indexed_dims(self) -> int | None:
        """Dimensions of the HNSW field (None until the embedding size is known)."""
        if self.vector_dims is None:
            return self.dense_dims
        return min(self.dense_dims or self.vector_dims, self.vector_dims)


def _write_settings(path: Path, settings: LuceneSettings) -> None:
    tmp = path / (SETTINGS_NAME + ".tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(settings), indent=2) + "\n")
    os.replace(tmp, path / SETTINGS_NAME)


def _read_settings(path: Path) -> LuceneSettings:
    f = path / SETTINGS_NAME
    if not f.is_file():
        raise FileNotFoundError(
            f"{path} is not a vqgram Lucene index (no {SETTINGS_NAME}); make one with LuceneBackend.create"
        )
    data = json.loads(f.read_text())
    if data.get("format") != SETTINGS_FORMAT:
        raise ValueError(f"{f}: settings format {data.get('format')!r}, this vqgram reads {SETTINGS_FORMAT}")
    return LuceneSettings(**data)


def _l2norm(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 0, n, 1)


def _query_term(word: str) -> str:
    """A word as one term of the classic query syntax (escaped unless plainly alphanumeric)."""
    if _PLAIN_WORD.fullmatch(word):
        return word
    if not word or any(c.isspace() for c in word):
        raise ValueError(f"query word {word!r} is empty or holds whitespace; words are single tokens")
    escaped = _QUERY_SPECIAL.sub(r"\\\1", word)
    return f"\\{escaped}" if escaped in ("AND", "OR", "NOT") else escaped


def _boosts(weights: Iterable[float]) -> list[str]:
    """Weights as the classic parser reads them: positional, exactly the float32 Lucene keeps.

    Raises ValueError for a negative or non-finite weight (Lucene boosts are >= 0)."""
    w = np.fromiter(weights, dtype=np.float64)
    if not (np.isfinite(w).all() and (w >= 0).all()):
        bad = w[~(np.isfinite(w) & (w >= 0))][0]
        raise ValueError(f"query weight {bad!r} must be finite and >= 0 (Lucene boosts cannot be negative)")
    out = [repr(x) for x in w.astype(np.float32).astype(np.float64).tolist()]
    # the grammar has no exponents: rare tiny/huge weights take the slow exact path
    return [x if "e" not in x else np.format_float_positional(np.float32(x), unique=True, trim="0") for x in out]


def _java_error(e: Exception) -> str:
    msg = str(getattr(e, "innermessage", None) or e).strip().splitlines()
    return msg[0] if msg else type(e).__name__


class LuceneBackend:
    """An index folder opened with Lucene (through pyjnius).

    Writes go to one IndexWriter (opened on the first add/delete); reads see the
    last commit through one DirectoryReader, reopened after each commit, and
    one IndexSearcher per similarity setting on it.
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
        self._reader: Any = None
        self._searchers: dict[tuple, Any] = {}
        self._meta: dict[int, tuple[str, str, str, int, int]] = {}
        self._vectors: tuple[list[str], list[int], np.ndarray] | None = None
        self._prefixes: dict[int, np.ndarray] = {}  # dims -> row-normalised prefix of _vectors
        self._settings_dirty = False
        self._closed = False
        self._text_parser_parts: tuple[Any, Any] | None = None
        self._store_yes = jvm.JFieldStore.YES
        self._dot_product = jvm.JVectorSimilarityFunction.DOT_PRODUCT
        self._words_type = jvm.JFieldType()
        self._words_type.setTokenized(True)
        self._words_type.setStored(False)
        self._words_type.setIndexOptions(jvm.JIndexOptions.DOCS_AND_FREQS)
        self._words_type.freeze()

    # ---- life cycle -------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | Path,
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
        Raises FileExistsError when `path` already holds an index and not `overwrite`.
        """
        path = Path(path)
        settings = LuceneSettings(
            dense_dims=dense_dims, hnsw_m=hnsw_m, hnsw_ef_construction=hnsw_ef_construction, int8=int8
        )
        if (path / SETTINGS_NAME).exists() and not overwrite:
            raise FileExistsError(f"{path} already holds a Lucene index; open it, or pass overwrite=True")
        path.mkdir(parents=True, exist_ok=True)
        self = cls(path, settings)
        self._open_writer(create=True)
        self._writer.commit()
        _write_settings(path, settings)
        self._refresh()
        return self

    @classmethod
    def open(cls, path: str | Path) -> "LuceneBackend":
        """Open an index made by `create`; raises FileNotFoundError when there is none."""
        path = Path(path)
        self = cls(path, _read_settings(path))
        self._refresh()
        return self

    def _open_writer(self, create: bool = False) -> None:
        s = self.settings
        analyzer = jvm.JWhitespaceAnalyzer()
        config = jvm.JIndexWriterConfig(analyzer)
        config.setCodec(jvm.hnsw_codec(s.hnsw_m, s.hnsw_ef_construction, s.int8))
        config.setOpenMode(jvm.JOpenMode.CREATE if create else jvm.JOpenMode.APPEND)
        config.setCommitOnClose(False)  # close() without commit() drops the changes, like a crash
        config.setRAMBufferSizeMB(256.0)
        self._writer = jvm.JIndexWriter(self._dir, config)

    def _writer_open(self) -> Any:
        if self._writer is None:
            self._open_writer()
        return self._writer

    def close(self) -> None:
        """Release the writer (dropping uncommitted changes), the reader and the directory."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._searchers.clear()
        self._dir.close()

    def __enter__(self) -> "LuceneBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- writing ----------------------------------------------------------

    def _document(self, doc: ImageDoc) -> Any:
        # ~20 JNI calls of 10-80 us each: Java statics are looked up once, in __init__
        yes = self._store_yes
        d = jvm.JDocument()
        d.add(jvm.JStringField("id", str(doc.id), yes))
        d.add(jvm.JBinaryDocValuesField("id", jvm.JBytesRef(str(doc.id).encode("utf-8"))))
        d.add(jvm.JStringField("path", str(doc.path), yes))
        d.add(jvm.JStringField("label", str(doc.label), yes))
        for name, value in (("width", int(doc.width)), ("height", int(doc.height))):
            d.add(jvm.JIntPoint(name, value))
            d.add(jvm.JStoredField(name, str(value)))
        d.add(jvm.JLongPoint("size", int(doc.size)))
        d.add(jvm.JStoredField("size", str(int(doc.size))))
        d.add(jvm.JDoublePoint("mtime", float(doc.mtime)))
        d.add(jvm.JStoredField("mtime", repr(float(doc.mtime))))
        d.add(jvm.JField("words", doc.words, self._words_type, signature=_FIELD_CHARSEQ))
        d.add(jvm.JNumericDocValuesField("nwords", len(set(doc.words.split()))))
        if doc.vector is not None:
            v = self._check_vector(doc)
            d.add(jvm.JStoredField("embedding", v.astype("<f4").tobytes()))
            prefix = _l2norm(v[: self.settings.indexed_dims()])
            d.add(jvm.JKnnFloatVectorField("vector", prefix.tolist(), self._dot_product))
        return d

    def _check_vector(self, doc: ImageDoc) -> np.ndarray:
        v = np.asarray(doc.vector, dtype=np.float32)
        if v.ndim != 1 or not np.isfinite(v).all():
            raise ValueError(f"document {doc.id} ({doc.path}): vector must be a finite 1-d array, got shape {v.shape}")
        s = self.settings
        if s.vector_dims is None:
            if s.dense_dims is None and v.shape[0] > MAX_VECTOR_DIMS:
                raise ValueError(
                    f"a {v.shape[0]}-d embedding is over the {MAX_VECTOR_DIMS}-d HNSW limit; create the index with dense_dims <= {MAX_VECTOR_DIMS}"
                )
            if s.dense_dims is not None and s.dense_dims > v.shape[0]:
                raise ValueError(
                    f"document {doc.id}: a {v.shape[0]}-d embedding is shorter than the index's dense_dims={s.dense_dims}"
                )
            self.settings = dataclasses.replace(s, vector_dims=int(v.shape[0]))
            self._settings_dirty = True
        elif v.shape[0] != s.vector_dims:
            raise ValueError(f"document {doc.id}: a {v.shape[0]}-d embedding in an index of {s.vector_dims}-d ones")
        return v

    def add(self, docs: Sequence[ImageDoc]) -> None:
        """Insert or replace (same id) documents; visible after `commit`."""
        writer = self._writer_open()
        for doc in docs:
            writer.updateDocument(jvm.JTerm("id", doc.id), self._document(doc))

    def delete(self, ids: Iterable[str]) -> None:
        """Remove documents by id; visible after `commit`."""
        writer = self._writer_open()
        for i in ids:
            # the Query... overload: pyjnius resolves Term... to it anyway
            writer.deleteDocuments(jvm.JTermQuery(jvm.JTerm("id", i)))

    def commit(self) -> None:
        """Make all changes durable (Lucene's two-phase commit); a crash before it leaves the last commit."""
        if self._settings_dirty:  # before the commit: a crash in between leaves harmless extra facts
            _write_settings(self.path, self.settings)
            self._settings_dirty = False
        if self._writer is not None:
            self._writer.commit()
        self._refresh()

    def _refresh(self) -> None:
        if self._reader is None:
            self._reader = jvm.JDirectoryReader.open(self._dir)
        else:
            newer = jvm.JDirectoryReader.openIfChanged(self._reader)
            if newer is None:
                return
            self._reader.close()
            self._reader = newer
        self._searchers.clear()
        self._meta.clear()
        self._vectors = None
        self._prefixes.clear()

    # ---- reading ----------------------------------------------------------

    def count(self) -> int:
        """Number of committed documents."""
        return int(self._reader.numDocs())

    def _live_docs(self) -> Iterable[int]:
        live = jvm.JMultiBits.getLiveDocs(self._reader)
        for i in range(self._reader.maxDoc()):
            if live is None or live.get(i):
                yield i

    def stored(self) -> dict[str, DocMeta]:
        """path -> DocMeta of every committed document (for incremental indexing)."""
        sf = self._reader.storedFields()
        out = {}
        for i in self._live_docs():
            d = sf.document(i)  # all stored fields in one JNI call: cheaper than naming some
            path = d.get("path")
            out[path] = DocMeta(id=d.get("id"), path=path, mtime=float(d.get("mtime")), size=int(d.get("size")))
        return out

    def _searcher(self, similarity: str = "bm25", k1: float = BM25_K1, b: float = BM25_B) -> Any:
        """An IndexSearcher ranking by `similarity` (cached per setting); ValueError for an unknown one."""
        if similarity not in SIMILARITIES:
            raise ValueError(f"similarity {similarity!r} is not one of {', '.join(SIMILARITIES)}")
        key = (similarity, k1, b) if similarity == "bm25" else (similarity,)
        s = self._searchers.get(key)
        if s is None:
            s = jvm.JIndexSearcher(self._reader, signature="(Lorg/apache/lucene/index/IndexReader;)V")
            if similarity == "bm25":
                s.setSimilarity(jvm.JBM25Similarity(float(k1), float(b)))
            elif similarity == "tfidf":
                s.setSimilarity(jvm.JClassicSimilarity())
            else:  # jaccard: a matched term scores its boost (1), so a disjunction scores |A ∩ B|
                s.setSimilarity(jvm.JBooleanSimilarity())
            self._searchers[key] = s
        return s

    def _hit_meta(self, docid: int) -> tuple[str, str, str, int, int]:
        m = self._meta.get(docid)
        if m is None:
            d = self._reader.storedFields().document(docid)
            m = (d.get("id"), d.get("path"), d.get("label"), int(d.get("width")), int(d.get("height")))
            self._meta[docid] = m
        return m

    def _hits(self, searcher: Any, query: Any, k: int, transform: Callable[[float], float] | None = None) -> list[Hit]:
        """Top k of `query` ranked by (-score, id).

        Lucene's top-k collector breaks ties by doc number, and keeps its
        MaxScore skipping only without a sort (a (score, id) Sort made 1000-term
        queries ~3x slower); so we collect a few more than k, and only when
        those are all tied with the k-th do we `searchAfter` the rest of the
        tie. rank() then orders ties by id.
        """
        if k <= 0:
            return []
        n = int(k) + _TIE_MARGIN
        docs = list(searcher.search(query, n).scoreDocs)
        if len(docs) > k:
            cut = docs[k - 1].score
            batch = docs
            while len(batch) == n and batch[-1].score == cut:  # the tie may go on past n
                batch = list(searcher.searchAfter(batch[-1], query, n).scoreDocs)
                docs += batch
            docs = [sd for sd in docs if sd.score >= cut]
        hits = []
        for sd in docs:
            i, path, label, w, h = self._hit_meta(sd.doc)
            score = float(sd.score) if transform is None else transform(float(sd.score))
            hits.append(Hit(id=i, score=score, path=path, label=label, width=w, height=h))
        return rank(hits, k)

    def words_query(self, weights: dict[str, float], boosts: bool = True) -> Any:
        """The disjunction of `words` term queries, boosted by weight, as one Lucene BooleanQuery.

        Parsed by Lucene's classic QueryParser from one string (one JNI call
        instead of four per term); gives BooleanQuery(SHOULD BoostQuery(TermQuery)).
        """
        if boosts:
            text = " ".join(f"{_query_term(w)}^{x}" for w, x in zip(weights, _boosts(weights.values())))
        else:
            text = " ".join(_query_term(w) for w in weights)
        parser = jvm.JQueryParser("words", jvm.JWhitespaceAnalyzer())
        try:
            return parser.parse(text)
        except Exception as e:
            raise ValueError(f"could not build a words query of {len(weights)} terms: {_java_error(e)}") from e

    def search_words(
        self,
        weights: dict[str, float],
        k: int,
        similarity: str = "bm25",
        k1: float = BM25_K1,
        b: float = BM25_B,
    ) -> list[Hit]:
        """Rank documents against weighted words.

        similarity: "bm25" (BM25Similarity(k1, b)), "tfidf" (Lucene's
        ClassicSimilarity), or "jaccard": |A ∩ B| / |A ∪ B| over the query's
        and the document's word *sets* (weights and counts ignored), computed
        exactly inside Lucene for every document sharing a word.
        Raises ValueError for an unknown similarity or a negative weight.
        """
        searcher = self._searcher(similarity, k1, b)
        if not weights or k <= 0:
            return []
        return self._hits(searcher, self._words_query_for(weights, similarity), k)

    def rank_words(self, weights: dict[str, float], similarity: str = "bm25", k1: float = BM25_K1,
                   b: float = BM25_B) -> Ranking:
        """Every document `search_words` would return, ranked by (-score, id)."""
        searcher = self._searcher(similarity, k1, b)
        if not weights or self.count() == 0:
            return Ranking.of([], [])
        docs = searcher.search(self._words_query_for(weights, similarity), self.count()).scoreDocs
        return Ranking.of([self._hit_meta(sd.doc)[0] for sd in docs], [sd.score for sd in docs])

    def _words_query_for(self, weights: dict[str, float], similarity: str) -> Any:
        return self._jaccard_query(weights) if similarity == "jaccard" else self.words_query(weights)

    def _jaccard_query(self, weights: dict[str, float]) -> Any:
        """J = s / (|A| + |B| - s) as a FunctionScoreQuery over the plain disjunction.

        With BooleanSimilarity every matched term scores its boost (1), so the
        disjunction's score s is |A ∩ B|; `nwords` doc values hold |B|. The
        arithmetic runs in float32 on exact small integers, so equal fractions
        tie exactly. Documents sharing no word (J = 0) are not returned.
        """
        q = self.words_query(weights, boosts=False)
        inter = jvm.JValueSource.fromDoubleValuesSource(jvm.JDoubleValuesSource.SCORES)
        union = jvm.JSumFloatFunction(
            [jvm.JIntFieldSource("nwords"), jvm.JLinearFloatFunction(inter, -1.0, float(len(weights)))]
        )
        return jvm.JFunctionScoreQuery(q, jvm.JDivFloatFunction(inter, union).asDoubleValuesSource())

    def text_query(self, query: str) -> Any:
        """Parse Lucene query syntax (StandardQueryParser): `words` is the default field;
        id/path/label are single terms; width/height/size/mtime take ranges (`width:[0 TO 300]`).
        Raises ValueError naming the query when it does not parse."""
        if self._text_parser_parts is None:
            self._text_parser_parts = (self._query_analyzer(), self._points_config())
        analyzer, points = self._text_parser_parts
        parser = jvm.JStandardQueryParser(analyzer)
        parser.setPointsConfigMap(points)
        try:
            return parser.parse(query, "words")
        except Exception as e:
            raise ValueError(f"invalid Lucene query {query!r}: {_java_error(e)}") from e

    def search_text(self, query: str, k: int) -> list[Hit]:
        """The engine's own query syntax over `words` and the metadata fields (BM25 defaults)."""
        return self._hits(self._searcher("bm25"), self.text_query(query), k)

    def _query_analyzer(self) -> Any:
        keyword = jvm.JKeywordAnalyzer()
        per_field = jvm.JHashMap()
        for f in ("id", "path", "label"):
            per_field.put(f, keyword)
        return jvm.JPerFieldAnalyzerWrapper(jvm.JWhitespaceAnalyzer(), per_field)

    def _points_config(self) -> Any:
        fmt = jvm.JNumberFormat.getInstance(jvm.JLocale.ROOT)
        fmt.setGroupingUsed(False)
        JClass = jvm.JClass
        types = {"width": "java.lang.Integer", "height": "java.lang.Integer", "size": "java.lang.Long", "mtime": "java.lang.Double"}
        m = jvm.JHashMap()
        for f, t in types.items():
            m.put(f, jvm.JPointsConfig(fmt, JClass.forName(t)))
        return m

    # ---- dense ------------------------------------------------------------

    def search_vector(self, vector: np.ndarray, k: int, dims: int | None = None, ef: int | None = None,
                      exact: bool = False) -> list[Hit]:
        """Nearest neighbours by cosine: HNSW on the indexed prefix, exact for any other prefix.

        ef: candidates the graph search keeps (efSearch; we ask Lucene for
        max(k, ef) neighbours and keep k); None: max(k, 100), Anserini's
        default. dims: None or the indexed prefix use the HNSW field; any
        other prefix (or exact=True) scans the stored full embeddings.
        Raises ValueError when the index has no vectors.
        """
        d = self._dense_dims_or_raise()
        if exact or (dims is not None and dims != d):
            return self.search_vector_exact(vector, k, dims)
        if k <= 0:
            return []
        q = _l2norm(self._query_vector(vector, d)[:d])
        n = max(int(k), DEFAULT_EF if ef is None else int(ef))
        query = jvm.JKnnFloatVectorQuery("vector", q.tolist(), n)
        # Lucene's DOT_PRODUCT score is (1 + dot) / 2; report the cosine.
        return self._hits(self._searcher(), query, k, transform=lambda s: 2.0 * s - 1.0)

    def search_vector_exact(self, vector: np.ndarray, k: int, dims: int | None = None) -> list[Hit]:
        """Brute-force cosine over the stored full embeddings, on their first `dims` (default: all)."""
        ids, docids, mat = self._stored_vectors()
        if k <= 0 or len(ids) == 0:
            return []
        d = mat.shape[1] if dims is None else int(dims)
        if not 1 <= d <= mat.shape[1]:
            raise ValueError(f"dims={dims} must be in 1..{mat.shape[1]}")
        q = self._query_vector(vector, d)
        prefix = self._prefixes.get(d)
        if prefix is None:
            prefix = self._prefixes[d] = _l2norm(mat[:, :d])
        scores = prefix @ _l2norm(q[:d])
        top = np.arange(len(scores))
        if k < len(scores):  # every candidate tied with the k-th, so rank() breaks ties by id
            kth = np.partition(-scores, k - 1)[k - 1]
            top = np.nonzero(-scores <= kth)[0]
        hits = []
        for r in top:
            i, path, label, w, h = self._hit_meta(docids[r])
            hits.append(Hit(id=i, score=float(scores[r]), path=path, label=label, width=w, height=h))
        return rank(hits, k)

    def lookup(self, ids: list[str], scores: list[float]) -> list[Hit]:
        """Hits for documents (with embeddings) named by id, with the given scores, in (-score, id) order."""
        all_ids, docids, _ = self._stored_vectors()
        docid_of = dict(zip(all_ids, docids))
        hits = []
        for i, score in zip(ids, scores):
            if i in docid_of:
                doc_id, path, label, w, h = self._hit_meta(docid_of[i])
                hits.append(Hit(id=doc_id, score=float(score), path=path, label=label, width=w, height=h))
        return rank(hits, len(hits))

    def vectors(self) -> tuple[list[str], np.ndarray]:
        """(ids, float32 matrix n x D): the full embedding of every committed document that has one
        (for exact search and reranking; the same call as the Tantivy backend's)."""
        ids, _, mat = self._stored_vectors()
        return list(ids), mat

    def _stored_vectors(self) -> tuple[list[str], list[int], np.ndarray]:
        """ids, Lucene doc numbers and embeddings, read from the stored field once per commit."""
        if self._vectors is None:
            sf = self._reader.storedFields()
            ids, docids, rows = [], [], []
            for i in self._live_docs():
                d = sf.document(i)
                ref = d.getBinaryValue("embedding")
                if ref is None:
                    continue
                # a stored field read back is a BytesRef over its own array (offset 0);
                # ByteArray.tostring() copies it at once, bytes(...) would go byte by byte
                raw = ref.bytes.tostring()
                if len(raw) != 4 * (self.settings.vector_dims or 0):
                    raw = raw[ref.offset : ref.offset + ref.length]
                ids.append(d.get("id"))
                docids.append(i)
                rows.append(np.frombuffer(raw, dtype="<f4"))
            dim = self.settings.vector_dims or 0
            mat = np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)
            self._vectors = (ids, docids, mat)
        return self._vectors

    def _dense_dims_or_raise(self) -> int:
        d = self.settings.indexed_dims()
        if self.settings.vector_dims is None or d is None:
            raise ValueError(f"the index at {self.path} holds no vectors; add documents with a `vector`")
        return d

    @staticmethod
    def _query_vector(vector: np.ndarray, need: int) -> np.ndarray:
        """A query embedding with at least `need` dims (a longer one is cut: any prefix is valid)."""
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        if q.shape[0] < need:
            raise ValueError(f"query vector has {q.shape[0]} dims; this search needs at least {need}")
        if not np.isfinite(q[:need]).all():
            raise ValueError("query vector holds NaN or infinity")
        return q
