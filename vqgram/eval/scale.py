"""`vqgram bench scale`: query cost and quality from 10k to 1M documents (docs/SCALE.md).

For every N and backend a synthetic collection (`SyntheticCollection`) is
indexed, then each mode answers the same real query images. One row per
(docs, backend, mode): p50_ms, p99_ms, recall_at_100 (and recall_at_10)
against the exhaustive ranking of the same index, index_mib, build_s and the
process's peak memory so far (JVM included: Lucene runs in this process).

Modes:
- words-exhaustive: every query word, every matching document ranked (the reference);
- words-topk: every query word, top 100 without exact hit counts (Tantivy's TopDocs
  without Count: block-max WAND; Lucene: term at a time in windows of documents,
  `TermAtATime.top`);
- words-topk-maxscore (Lucene): the same top 100 by Lucene's own TopScoreDocCollector with its
  1000-hit threshold (MaxScoreBulkScorer), the path words-topk replaced, measured beside it;
- words-heaviest-N: the N heaviest query words (`--max-terms N`), top 100;
- words-prune-N: the N query words of highest weight x idf (`--prune N`), top 100;
- dense-exact, dense-funnel-STAGES (backend "numpy"): the exact scan and the Matryoshka
  funnel (one row per stage list) over the full embeddings, what both backends run;
  the funnels' recall is against the exact scan;
- dense-hnsw (backend "lucene": HNSW in the words index; "lucene-hnsw": a vectors-only
  index) and dense-hnsw-int8 ("lucene-hnsw-int8", vectors-only): HNSW on the indexed prefix,
  recall against an exact scan of that prefix. Backend "lucene-words" is a words index without
  embeddings (no HNSW graph, which takes most of a Lucene build, nor the stored 4 kB vector).
Lucene rows give the index's `segments` (a kNN query searches each segment's graph);
`force_merge` N merges each Lucene index down to N segments before it is queried (`merge_s`);
vectors-only indexes are queried before and after. `reuse` queries the indexes an earlier run
left in `work` (same rows and seed) instead of building them again (`build_s` null). `efs`: the
HNSW efSearch values to measure (None: the backend's default, sized to its largest segment); mode
dense-hnsw-efN.
"""
from __future__ import annotations

import gc
import resource
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..indexer.backend import size_on_disk
from ..indexer.filters import Match
from ..indexer.rowfiles import iter_records, open_rows
from ..indexer.rows import BadRow, parse_row
from ..indexer.store import create_or_open
from ..searcher.exact import ExactIndex
from ..searcher.funnel import FunnelStage, funnel_search
from ..searcher.queries import prune_by_idf, term_weights
from .synthetic import SyntheticCollection, doc_id

K = 100
DEFAULT_FUNNELS = ((FunnelStage(16, 2000), FunnelStage(64, 400)),)
COMMIT_EVERY = 100_000
HNSW_DIMS = 256
KNN_BACKENDS = ("lucene-hnsw", "lucene-hnsw-int8")  # vectors-only Lucene indexes


def load_rows(source: str | Path):
    """The real rows a collection is made from, and who encoded them."""
    src = open_rows(source)
    if src.encoded_by is None:
        raise ValueError(f"{source} does not say which tokenizer encoded it; make it with 'vqgram encode'")
    rows = []
    for where, rec in iter_records(src):
        try:
            rows.append(parse_row(rec, where, src.encoded_by.vector_dim))
        except BadRow:
            continue
    return rows, src.encoded_by


def _timed(fn: Callable, queries: Sequence) -> tuple[list, np.ndarray]:
    """Answers and milliseconds per query, in the steady state of a running server: one untimed
    pass first (three queries left Lucene's kNN half-compiled by the JIT: 3.6 vs 1.1 ms at 100k)."""
    for q in queries:
        fn(q)
    out, ms = [], []
    for q in queries:
        t = time.perf_counter()
        out.append(fn(q))
        ms.append((time.perf_counter() - t) * 1000)
    return out, np.asarray(ms)


def _recall(found: Sequence[Sequence[str]], truth: Sequence[Sequence[str]], k: int) -> float:
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / max(1, min(k, len(t))) for f, t in zip(found, truth)]))


def _ids(rows: np.ndarray) -> list[list[str]]:
    """Synthetic document ids of row numbers."""
    return [[doc_id(j) for j in row] for row in rows]


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class ScaleRun:
    """Builds the collections and measures the modes; `rows` collects one dict per (docs, backend, mode)."""

    def __init__(self, source: str | Path, work: str | Path, queries: int = 50, prune: Sequence[int] = (200, 100, 50),
                 funnels: Sequence[Sequence[FunnelStage]] = DEFAULT_FUNNELS, seed: int = 0,
                 force_merge: int | None = None, reuse: bool = False, efs: Sequence[int | None] = (None,),
                 log: Callable[[dict], None] = print):
        real, self.made_by = load_rows(source)
        self.collection = SyntheticCollection(real, queries=queries, seed=seed)
        self.query_vectors = np.stack([np.asarray(q.vector, np.float32) for q in self.collection.queries])
        self.work, self.prune, self.funnels, self.log = Path(work), tuple(prune), tuple(funnels), log
        self.force_merge, self.reuse, self.efs = force_merge, reuse, tuple(efs)
        self.rows: list[dict] = []
        self._knn_truths: dict[int, tuple[list, list, float]] = {}

    def run(self, docs: Sequence[int], backends: Sequence[str]) -> list[dict]:
        """Backends "tantivy" and "lucene" build words indexes ("lucene-words": without HNSW); "lucene-hnsw"
        and "lucene-hnsw-int8" vectors-only HNSW indexes (float32, int8); "numpy" is the exact scan and the
        funnels."""
        for n in docs:
            for backend in backends:
                if backend == "numpy":
                    self._dense(n)
                elif backend in KNN_BACKENDS:
                    self._knn(n, backend)
                else:
                    self._backend(n, backend)
                gc.collect()
        return self.rows

    def _emit(self, **row) -> None:
        row = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
        row["peak_rss_mib"] = round(_peak_mib(), 1)
        self.rows.append(row)
        self.log(row)

    def _build(self, n: int, backend: str, path: Path, words: bool = True, vectors: bool = True,
               **options) -> tuple[object, float | None]:
        """The collection of n documents indexed at `path` (without their words or their vectors when
        asked) and its build seconds; with `reuse`, an index of n documents left there by an earlier run
        (same rows and seed) is opened instead (None seconds)."""
        if self.reuse and path.is_dir():
            handle = create_or_open(path, self.made_by, backend, **options)
            if handle.backend.count() == n:
                return handle, None
            handle.close()
        shutil.rmtree(path, ignore_errors=True)
        handle = create_or_open(path, self.made_by, backend, **options)
        start, done = time.time(), 0
        left_out = {**({} if words else {"words": ""}), **({} if vectors else {"vector": None})}
        for docs in self.collection.batches(n):
            if left_out:
                docs = [replace(d, **left_out) for d in docs]
            handle.backend.add(docs)
            done += len(docs)
            if done % COMMIT_EVERY < len(docs):
                handle.backend.commit()
        handle.backend.commit()
        return handle, time.time() - start

    def _merge(self, handle) -> dict:
        """Merge a Lucene index to `force_merge` segments when asked: {"merge_s": seconds}, else {}."""
        if not self.force_merge:
            return {}
        start = time.time()
        handle.backend.force_merge(self.force_merge)
        return {"merge_s": time.time() - start}

    def _facts(self, n: int, backend: str, path: Path, handle, build_s: float | None, **extra) -> dict:
        """The columns every row of one index shares (a Lucene index's: with its segment count)."""
        if backend.startswith("lucene"):
            extra["segments"] = handle.backend.segments()
        size = size_on_disk(path) / 2**20
        return dict(docs=n, backend=backend, index_mib=size, bytes_per_doc=round(size * 2**20 / n),
                    build_s=build_s, **extra)

    def _backend(self, n: int, backend: str) -> None:
        path = self.work / f"{backend}-{n}"
        lucene = backend.startswith("lucene")
        options = {"dense_dims": HNSW_DIMS} if lucene else {}  # lucene-words: a setting no vector uses
        handle, build_s = self._build(n, "lucene" if lucene else backend, path, vectors=backend != "lucene-words",
                                      **options)
        engine = handle.backend
        try:
            merged = self._merge(handle) if lucene else {}
            common = self._facts(n, backend, path, handle, build_s, **merged)
            weights = [term_weights(q.words) for q in self.collection.queries]
            full, ms = _timed(lambda w: engine.rank_words(w).ids[:K].tolist(), weights)
            self._emit(**common, mode="words-exhaustive", p50_ms=np.median(ms), p99_ms=np.percentile(ms, 99),
                       recall_at_100=1.0, recall_at_10=1.0)
            found, ms = _timed(lambda w: [h.id for h in engine.search_words(w, K)], weights)
            self._emit(**common, mode="words-topk", p50_ms=np.median(ms), p99_ms=np.percentile(ms, 99),
                       recall_at_100=_recall(found, full, K), recall_at_10=_recall(found, full, 10))
            if lucene:
                snap = engine._snapshot  # the searcher's own top-k path, which the backend no longer takes
                found, ms = _timed(lambda w: [h.id for h in snap.hits(snap.searcher(), engine.words_query(w), K)],
                                   weights)
                self._emit(**common, mode="words-topk-maxscore", p50_ms=np.median(ms), p99_ms=np.percentile(ms, 99),
                           recall_at_100=_recall(found, full, K), recall_at_10=_recall(found, full, 10))
            for keep in self.prune:
                found, ms = _timed(lambda q, keep=keep: [h.id for h in engine.search_words(term_weights(q, keep), K)],
                                   [q.words for q in self.collection.queries])
                self._emit(**common, mode=f"words-heaviest-{keep}", p50_ms=np.median(ms), p99_ms=np.percentile(ms, 99),
                           recall_at_100=_recall(found, full, K), recall_at_10=_recall(found, full, 10))

                def pruned(w, keep=keep):
                    return [h.id for h in engine.search_words(prune_by_idf(w, engine.doc_freqs(w), n, keep), K)]
                found, ms = _timed(pruned, weights)
                self._emit(**common, mode=f"words-prune-{keep}", p50_ms=np.median(ms), p99_ms=np.percentile(ms, 99),
                           recall_at_100=_recall(found, full, K), recall_at_10=_recall(found, full, 10))
            if backend == "lucene":
                self._hnsw(engine, common, n, "dense-hnsw")
        finally:
            handle.close()

    def _knn_truth(self, n: int) -> tuple[list, list, float]:
        """Per query on the HNSW prefix: the exact top K, the exact top K among its label's documents,
        and the fraction passing that filter; made once per collection size for every HNSW row."""
        if n not in self._knn_truths:
            queries = self.collection.queries
            qs = self.query_vectors[:, :HNSW_DIMS]
            exact = ExactIndex(self.collection.vectors(n)[:, :HNSW_DIMS])
            labels = self.collection.labels(n)
            passing = [labels == q.label for q in queries]
            filtered = [_ids(exact.search(qs[i:i + 1], K, mask=m)[0])[0] for i, m in enumerate(passing)]
            self._knn_truths[n] = (_ids(exact.search(qs, K)[0]), filtered,
                                   float(np.mean([m.mean() for m in passing])))
        return self._knn_truths[n]

    def _hnsw(self, engine, common: dict, n: int, mode: str) -> None:
        """kNN on the HNSW prefix, then the same filtered to the query's label (about a tenth of an
        imagenette-made collection: HNSW visits only passing documents), each against an exact scan."""
        queries = self.collection.queries
        qs = self.query_vectors
        filters = [Match("label", q.label) for q in queries]
        truth, truth_filtered, passing = self._knn_truth(n)
        for ef in self.efs:
            plain = mode if ef is None else f"{mode}-ef{ef}"
            for name, where, reference in ((plain, [None] * len(qs), truth),
                                           (f"{plain}-filtered", filters, truth_filtered)):
                found, ms = _timed(lambda i: [h.id for h in engine.search_vector(qs[i], K, ef, where[i])],
                                   range(len(qs)))
                extra = {} if where[0] is None else {"passing": passing}
                self._emit(**common, mode=name, p50_ms=np.median(ms), p99_ms=np.percentile(ms, 99),
                           recall_at_100=_recall(found, reference, K), recall_at_10=_recall(found, reference, 10),
                           **extra)

    def _dense(self, n: int) -> None:
        qs = self.query_vectors
        vectors = self.collection.vectors(n)
        start = time.time()
        prefixes = sorted({st.dim for stages in self.funnels for st in stages})
        index = ExactIndex(vectors, prefix_dims=prefixes)  # prefixes made here, not in a query's time
        common = dict(docs=n, backend="numpy", index_mib=vectors.nbytes / 2**20,
                      bytes_per_doc=vectors.shape[1] * 4, build_s=time.time() - start)
        del vectors
        exact, ms = _timed(lambda q: index.search(q[None], K)[0][0].tolist(), qs)
        self._emit(**common, mode="dense-exact", p50_ms=np.median(ms), p99_ms=np.percentile(ms, 99),
                   recall_at_100=1.0, recall_at_10=1.0)
        for stages in self.funnels:
            stages = [FunnelStage(st.dim, min(n, st.shortlist)) for st in stages]
            found, ms = _timed(lambda q: funnel_search(index, q[None], K, stages)[0][0].tolist(), qs)
            name = ",".join(f"{st.dim}:{st.shortlist}" for st in stages)
            self._emit(**common, mode=f"dense-funnel-{name}", p50_ms=np.median(ms), p99_ms=np.percentile(ms, 99),
                       recall_at_100=_recall(found, exact, K), recall_at_10=_recall(found, exact, 10))

    def _knn(self, n: int, backend: str) -> None:
        path, int8 = self.work / f"{backend}-{n}", backend.endswith("int8")
        handle, build_s = self._build(n, "lucene", path, words=False, dense_dims=HNSW_DIMS, int8=int8)
        mode = "dense-hnsw-int8" if int8 else "dense-hnsw"
        try:
            if self.force_merge:  # the graphs as built, then merged
                self._hnsw(handle.backend, self._facts(n, backend, path, handle, build_s), n, mode)
            merged = self._merge(handle)
            self._hnsw(handle.backend, self._facts(n, backend, path, handle, build_s, **merged), n, mode)
        finally:
            handle.close()
