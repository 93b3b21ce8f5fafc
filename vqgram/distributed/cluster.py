"""OpenSearch / Elasticsearch: the index mapping, bulk actions and query bodies that mirror a vqgram index.

- `words`: text, whitespace analyzer, term frequencies and norms, BM25 k1 = 1.2, b = 0.75
  (the similarity Tantivy and vqgram's Lucene use), so scores match the local engines';
- `vector`: the first `dense_dims` dimensions of the embedding, renormalised, in an HNSW
  field (`knn_vector` with the Lucene engine / `dense_vector`; int8 as `sq` / `int8_hnsw`);
- `embedding`: the full embedding, stored but not indexed (for reranking and funnels);
- `positions`: the local words' positions blob, `binary` (base64 in the source, as both
  clusters take it), neither searchable nor in doc values: read back from `_source` to verify hits;
- `id`, `path`, `label` keywords; `width`, `height` integers; `size` long; `mtime` double.
Queries: words as a bool of boosted term queries (what `search_words` runs), dense as kNN on
the prefix, hybrid as min-max normalised score fusion with the words/dense weights
(OpenSearch: a `hybrid` query with a normalization-processor pipeline in the request;
Elasticsearch: a `linear` retriever with the minmax normalizer).
"""
from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

from ..searcher.fusion import DEFAULT_WEIGHTS

TARGETS = ("opensearch", "elasticsearch")
SIMILARITY = "vqgram_bm25"


@dataclass(frozen=True)
class VectorSpec:
    """How the cluster indexes the embedding: the HNSW prefix and graph settings."""

    vector_dims: int  # full embedding width
    dense_dims: int  # HNSW field width (a Matryoshka prefix)
    m: int = 16
    ef_construction: int = 100
    int8: bool = False


def _check(target: str) -> None:
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of: {', '.join(TARGETS)}")


def index_body(target: str, spec: VectorSpec) -> dict:
    """The create-index request body: settings (BM25, analyzer, kNN) and mappings."""
    _check(target)
    words = {"type": "text", "analyzer": "whitespace", "index_options": "freqs", "norms": True,
             "similarity": SIMILARITY}
    props = {"id": {"type": "keyword"}, "path": {"type": "keyword"}, "label": {"type": "keyword"},
             "width": {"type": "integer"}, "height": {"type": "integer"}, "size": {"type": "long"},
             "mtime": {"type": "double"}, "words": words, "positions": {"type": "binary", "doc_values": False}}
    settings: dict = {"similarity": {SIMILARITY: {"type": "BM25", "k1": 1.2, "b": 0.75}}}
    if target == "opensearch":
        method = {"name": "hnsw", "engine": "lucene", "space_type": "innerproduct",
                  "parameters": {"m": spec.m, "ef_construction": spec.ef_construction}}
        if spec.int8:
            method["parameters"]["encoder"] = {"name": "sq"}
        props["vector"] = {"type": "knn_vector", "dimension": spec.dense_dims, "method": method}
        props["embedding"] = {"type": "float", "index": False, "doc_values": False}
        settings["knn"] = True
    else:
        props["vector"] = {"type": "dense_vector", "dims": spec.dense_dims, "index": True,
                           "similarity": "dot_product",
                           "index_options": {"type": "int8_hnsw" if spec.int8 else "hnsw", "m": spec.m,
                                             "ef_construction": spec.ef_construction}}
        props["embedding"] = {"type": "dense_vector", "dims": spec.vector_dims, "index": False}
    return {"settings": {"index": settings}, "mappings": {"dynamic": "strict", "properties": props}}


def prefix(vector: np.ndarray, dims: int) -> list[float]:
    """The first `dims` dimensions, L2-normalised (what the HNSW field holds and a query sends)."""
    v = np.asarray(vector, np.float32)[:dims]
    return (v / max(float(np.linalg.norm(v)), 1e-12)).tolist()


def bulk_actions(index_name: str, doc: dict, spec: VectorSpec) -> tuple[dict, dict]:
    """(action, source) for one document given as an encoded-row record (words as {word: count}, positions as
    bytes)."""
    vector = np.asarray(doc["vector"], np.float32)
    source = {"id": doc["id"], "path": doc["path"], "label": doc["label"], "width": int(doc["width"]),
              "height": int(doc["height"]), "size": int(doc["size"]), "mtime": float(doc["mtime"]),
              "words": " ".join(w for w, c in doc["words"].items() for _ in range(int(c))),
              "vector": prefix(vector, spec.dense_dims), "embedding": vector.tolist(),
              "positions": base64.b64encode(doc["positions"]).decode("ascii")}
    return {"index": {"_index": index_name, "_id": doc["id"]}}, source


def words_query(weights: dict[str, float]) -> dict:
    return {"bool": {"should": [{"term": {"words": {"value": w, "boost": float(x)}}} for w, x in weights.items()]}}


def query_body(target: str, mode: str, k: int, weights: dict[str, float], vector: np.ndarray | None,
               spec: VectorSpec, ef: int = 100, fusion_weights: tuple[float, float] = DEFAULT_WEIGHTS) -> dict:
    """The search request body for an image query in `mode` ("bm25", "dense" or "hybrid")."""
    _check(target)
    if mode not in ("bm25", "dense", "hybrid"):
        raise ValueError(f"mode {mode} has no cluster query here; use bm25, dense or hybrid")
    if mode == "bm25":
        return {"size": k, "query": words_query(weights), "_source": {"excludes": ["embedding", "vector"]}}
    if vector is None:
        raise ValueError(f"mode {mode} needs the query's embedding")
    q = prefix(vector, spec.dense_dims)
    candidates = max(k, ef)
    if target == "opensearch":
        knn = {"knn": {"vector": {"vector": q, "k": candidates}}}
        if mode == "dense":
            return {"size": k, "query": knn, "_source": {"excludes": ["embedding", "vector"]}}
        return {"size": k, "query": {"hybrid": {"queries": [words_query(weights), knn]}},
                "search_pipeline": {"phase_results_processors": [{"normalization-processor": {
                    "normalization": {"technique": "min_max"},
                    "combination": {"technique": "arithmetic_mean",
                                    "parameters": {"weights": _normalised(fusion_weights)}}}}]},
                "_source": {"excludes": ["embedding", "vector"]}}
    knn = {"field": "vector", "query_vector": q, "k": k, "num_candidates": candidates}
    if mode == "dense":
        return {"size": k, "knn": knn, "_source": {"excludes": ["embedding", "vector"]}}
    return {"size": k, "retriever": {"linear": {"rank_window_size": candidates, "retrievers": [
        {"retriever": {"standard": {"query": words_query(weights)}}, "weight": fusion_weights[0],
         "normalizer": "minmax"},
        {"retriever": {"knn": knn}, "weight": fusion_weights[1], "normalizer": "minmax"}]}},
        "_source": {"excludes": ["embedding", "vector"]}}


def _normalised(weights: tuple[float, float]) -> list[float]:
    total = sum(weights)
    return [w / total for w in weights]
