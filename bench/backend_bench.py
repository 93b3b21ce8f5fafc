"""Lucene vs Tantivy on one folder: build time, size, query latency, HNSW recall@10, full rankings.

    python -m bench.backend_bench [FOLDER] [--queries 200] [--dense-dims 256] [--engines tantivy,lucene]

Images are encoded once (backbone features come from the feature cache,
~/.cache/vqgram/features, when it holds them); every engine then indexes the
same documents, so build times compare the engines, not the network (the
encode time is printed once beside them). Latencies are per query over
`--queries` evenly spaced indexed images (their own words and embedding as
the query). The second table times `rank_words` (every matching document,
what `vqgram eval` scores) per similarity the engine has.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from vqgram import Tokenizer
from vqgram.indexer.backend import ImageDoc, size_on_disk
from vqgram.indexer.pipeline import plan_changes
from vqgram.indexer.rows import rows_from_batch
from vqgram.indexer.store import backend_class
from vqgram.searcher.exact import ExactIndex
from vqgram.searcher.fusion import fuse_rankings
from vqgram.searcher.rankers import Run
from vqgram.searcher.queries import term_weights

ENGINES = ("tantivy", "lucene", "lucene int8")
SIMILARITIES = {"tantivy": ("bm25",), "lucene": ("bm25", "tfidf", "jaccard")}
DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenette" / "train"


def encode_folder(tok: Tokenizer, folder: Path) -> tuple[list[ImageDoc], list[dict[str, int]], float]:
    start = time.time()
    files = plan_changes(folder, {}).todo
    docs, words = [], []
    for ok, enc, _bad in tok.encode_files(files, batch_size=32, workers=2, cache=tok.feature_cache()):
        for row in rows_from_batch(files, ok, enc):
            docs.append(row.to_doc())
            words.append(row.words)
    return docs, words, time.time() - start


def build(name: str, options: dict, docs: list[ImageDoc], root: Path):
    path = root / name.replace(" ", "-")
    engine = backend_class(name.split()[0]).create(path, embedding_dim=docs[0].vector.shape[0], **options)
    start = time.time()
    for s in range(0, len(docs), 256):
        engine.add(docs[s : s + 256])
    engine.commit()
    return engine, time.time() - start, size_on_disk(path)


def dense_search(engine, k: int):
    """What the searcher does: the engine's HNSW where it has one, else an exact scan of its embeddings."""
    if engine.ann_dims() is not None:
        return lambda v: engine.search_vector(v, k)
    ids, matrix = engine.vectors()
    index = ExactIndex(matrix)

    def exact(v):
        top, scores = index.search(np.asarray(v, np.float32)[None], k)
        return engine.lookup([ids[i] for i in top[0]], scores[0].tolist())

    return exact


def timed(fn, queries) -> tuple[list[float], list]:
    ms, results = [], []
    for q in queries:
        t = time.perf_counter()
        results.append(fn(q))
        ms.append((time.perf_counter() - t) * 1e3)
    return ms, results


def p(ms) -> str:
    return f"{np.percentile(ms, 50):7.1f} / {np.percentile(ms, 95):7.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--dense-dims", type=int, default=256)
    ap.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated, of: {', '.join(ENGINES)}")
    args = ap.parse_args()
    names = args.engines.split(",")
    if unknown := set(names) - set(ENGINES):
        ap.error(f"unknown engines {sorted(unknown)}; choose from {', '.join(ENGINES)}")

    tok = Tokenizer.from_model()
    docs, words, encode_s = encode_folder(tok, args.folder)
    print(f"encoded {len(docs)} images in {encode_s:.0f} s ({len(docs) / encode_s:.1f} images/s), once for all engines")
    qs = list(range(0, len(docs), max(1, len(docs) // args.queries)))[: args.queries]
    root = Path(tempfile.mkdtemp(prefix="vqgram-engines-"))
    lucene = {"dense_dims": args.dense_dims}
    engines = {"tantivy": {}, "lucene": lucene, "lucene int8": {**lucene, "int8": True}}
    full = {}
    print(f"\n{'engine':14s} {'build s':>8s} {'size MB':>8s}   latency p50 / p95 ms: "
          f"{'bm25':>15s} {'dense':>15s} {'hybrid':>15s}   recall@10 vs exact")
    weights = [term_weights(words[q]) for q in qs]
    for name in names:
        options = engines[name]
        engine, build_s, size = build(name, options, docs, root)
        bm25_ms, bm25_runs = timed(lambda i: engine.search_words(weights[i], 100), range(len(qs)))
        dense = dense_search(engine, 100)
        dense_ms, dense_runs = timed(lambda i: dense(docs[qs[i]].vector), range(len(qs)))
        fuse_ms, _ = timed(lambda i: fuse_rankings([Run.of_hits(r[i]).ranking for r in (bm25_runs, dense_runs)]),
                           range(len(qs)))
        hybrid_ms = [a + b + c for a, b, c in zip(bm25_ms, dense_ms, fuse_ms)]
        recall = "exact search"
        if name.startswith("lucene"):
            ids, matrix = engine.vectors()
            scan = ExactIndex(matrix)
            hits = []
            for q in qs:
                approx = {h.id for h in engine.search_vector(docs[q].vector, 10)}
                top, _ = scan.search(docs[q].vector[None], 10, dim=args.dense_dims)
                hits.append(len(approx & {ids[i] for i in top[0]}) / 10)
            recall = f"{np.mean(hits):.3f} (HNSW on the {args.dense_dims}-d prefix, ef = 100)"
        print(f"{name:14s} {build_s:8.1f} {size / 1e6:8.1f}   {'':21s}{p(bm25_ms)} {p(dense_ms)} {p(hybrid_ms)}   {recall}")
        full[name] = full_rankings(engine, weights)
        engine.close()
    print("\n(bm25 and dense fetch 100 hits each; hybrid = both runs + reciprocal-rank fusion to 10)")
    print(f"\n{'engine':14s} similarity   top-10 p50 / p95 ms   full ranking p50 / p95 ms   mean length")
    for name, rows in full.items():
        for sim, (top_ms, rank_ms, length) in rows.items():
            print(f"{name:14s} {sim:10s} {p(top_ms):>21s} {p(rank_ms):>27s} {length:13.0f}")
    print(f"\n({len(docs)} documents, {len(qs)} queries; load average {os.getloadavg()[0]:.1f} at the end)")


def full_rankings(engine, weights: list[dict[str, float]]) -> dict[str, tuple[list[float], list[float], float]]:
    """{similarity: (top-10 ms, full-ranking ms, mean ranking length)} for each similarity the engine has."""
    out = {}
    for sim in SIMILARITIES[engine.name]:
        engine.rank_words(weights[0], sim)  # warm: searcher, id column
        top_ms, _ = timed(lambda w: engine.search_words(w, 10, sim), weights)
        rank_ms, runs = timed(lambda w: engine.rank_words(w, sim), weights)
        out[sim] = (top_ms, rank_ms, float(np.mean([len(r) for r in runs])))
    return out


if __name__ == "__main__":
    main()
