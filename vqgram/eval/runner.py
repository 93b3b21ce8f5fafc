"""Modes x dataset -> one result row per mode (ARCHITECTURE.md, "Evaluation contract").

The database is indexed once (its build time and size are every row's); word
counts and embeddings are kept from that pass, so leave-one-out queries cost
only their searches, and adding a mode costs only its search. Quality is
measured over full rankings (documents a mode did not return rank last, by
id); latency is timed separately at k = 10 on a sample of queries.
"""
from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..images import Skipped, file_sha, probe_all
from ..indexer.backend import size_on_disk
from ..indexer.pipeline import index_folder
from ..progress import progress_bar
from ..searcher.options import MODES, OPTION_MODES, SearchOptions
from ..searcher.rankers import Query
from ..searcher.searcher import Searcher
from ..tokenizer.encoder import Tokenizer
from ..tokenizer.feature_cache import FeatureCache
from . import metrics
from .datasets import (Dataset, QueryPlan, label_means, load_dataset, query_plan, sample_queries, subset_means,
                       without)

log = logging.getLogger("vqgram")


def mode_options(name: str, base: SearchOptions = SearchOptions()) -> SearchOptions:
    """'bm25', 'dense', 'dense@32', 'hybrid', 'funnel', 'dense+prf10', 'hybrid+verify20', 'bm25+words768', ...
    -> SearchOptions (dense scans exactly)."""
    head, *extras = name.split("+")
    mode, _, dims = head.partition("@")
    knobs = {}
    for extra in extras:
        key = extra.rstrip("0123456789")
        knobs[{"prf": "prf_depth", "verify": "verify", "words": "query_words"}.get(key, "?")] = extra[len(key):]
    if (mode not in MODES or (dims and (mode != "dense" or not dims.isdigit()))
            or not all(v.isdigit() for v in knobs.values()) or "?" in knobs
            or any(mode not in OPTION_MODES[k] for k in knobs)):
        raise ValueError(f"unknown mode {name!r}; choose from {', '.join(MODES)}, dense@D for a prefix of D dims, "
                         "+prfN after a vector mode for feedback from its N nearest, +wordsN after a words mode or "
                         "hybrid for N lifted words a query image, and +verifyN after any mode to re-rank its top N "
                         "by geometric verification")
    return replace(base, mode=mode, dims=int(dims) if dims else base.dims, exact=True,
                   **{k: int(v) for k, v in knobs.items()})


@dataclass
class Evaluation:
    """What `evaluate` measured: the rows, and each mode's ranked database positions."""

    dataset: Dataset
    plan: QueryPlan
    rows: list[dict]
    rankings: dict[str, np.ndarray]  # mode -> (Q, N) database positions, best first
    skipped: list[Skipped] = field(default_factory=list)  # unreadable images, left out of every stage


def evaluate(db: Path, modes: Sequence[str], tokenizer: Tokenizer, *, queries: Path | None = None,
             distractors: Path | None = None, max_queries: int | None = None, seed: int = 0,
             backend: str = "tantivy", layout: str = "auto", work_dir: Path | None = None,
             latency_queries: int = 100, base: SearchOptions = SearchOptions(), cache: FeatureCache | None = None,
             progress: bool = True, **backend_options) -> Evaluation:
    """Index `db` (and `distractors`, unlabelled) once, then rank every query by every mode (see the module
    docstring); `max_queries` samples that many queries (seeded by `seed`). The images the indexer skips
    (unreadable, dangling links), and query images that do not decode, leave the dataset before its query
    plan is made, so every mode, baseline and report scores the same images; `Evaluation.skipped` lists them."""
    options = {m: mode_options(m, base) for m in modes}
    db, queries, distractors = (None if p is None else Path(p).resolve() for p in (db, queries, distractors))
    dataset = load_dataset(db, queries=queries, layout=layout, distractors=distractors)  # paths as indexed
    index = Path(work_dir or tempfile.mkdtemp(prefix="vqgram-eval-")) / "index"
    # a query reads as a document (the indexing pass's encodings serve leave-one-out queries) unless the model
    # has a grid head, whose queries are also read at its query scales (`_read_queries`)
    as_document = tokenizer.config.model.grid is None
    features: dict[str, Query] = {}

    def keep(files, encoded):
        for row, f in enumerate(files):
            features[f.sha] = Query(encoded.words[row], encoded.embedding[row].numpy(), f.path)

    build_s, skipped = 0.0, []
    for folder in filter(None, (dataset.root, dataset.distractor_root)):
        # One commit per folder: the index is temporary (nothing to resume), and re-taking the writer's lock
        # mid-folder failed under load (LockBusy) while decoding workers were alive.
        report = index_folder(Path(folder), index, tokenizer, backend=backend, cache=cache, progress=progress,
                              on_batch=keep if as_document else None, commit_every=len(dataset.items) + 1,
                              **backend_options)
        build_s += report.seconds
        skipped += report.skipped
    dataset = without(dataset, [s.path for s in skipped])
    if max_queries is not None:
        dataset = sample_queries(dataset, max_queries, seed)
    query_folder = {}
    if dataset.queries is not None:
        query_folder, unread = _encode([q.path for q in dataset.queries], Path(dataset.query_root), tokenizer,
                                       cache)
        skipped += unread
        dataset = without(dataset, [s.path for s in unread])
    plan = query_plan(dataset)
    index_bytes = size_on_disk(index)
    sha_of = {item.path: file_sha(Path(item.path)) for item in dataset.items}  # duplicates share a document
    position = {}  # document id -> database position
    for i, item in enumerate(dataset.items):
        position.setdefault(sha_of[item.path], i)
    by_words = {}  # query words -> one Query per planned query
    if as_document:
        by_words[None] = [features[sha_of[q.path]] if dataset.queries is None else query_folder[q.path]
                          for q in plan.queries]
    rows, rankings = [], {}
    with Searcher(index, tokenizer) as searcher:
        for name, opts in options.items():
            start = time.time()
            query_words = searcher.query_words_for(opts)  # as an image search would: sized to the index
            if query_words not in by_words:
                by_words[query_words] = _read_queries(plan, dataset, tokenizer, searcher, cache, query_words,
                                                      progress)
            query_features = by_words[query_words]
            queries = progress_bar(query_features, total=len(query_features), desc=name, unit="query", show=progress)
            ranked = np.stack([_full_ranking(searcher, q, opts, position, len(dataset.items)) for q in queries])
            if plan.exclude_self:
                ranked = drop_self(ranked, plan.self_ids)
            rankings[name] = ranked
            latency = _latency(searcher, query_features, opts, latency_queries)
            row = _row(name, ranked, plan, dataset, latency, index_bytes, build_s)
            if query_words is not None:
                row["query_words"] = query_words
            if opts.mode == "dense":  # full width included, so plots against dims end at the full embedding
                row["dims"] = opts.dims or len(query_features[0].vector)
            rows.append(row)
            log.info("%s: mAP %.4f (%.0f s)", name, rows[-1]["map"], time.time() - start)
    return Evaluation(dataset, plan, rows, rankings, skipped)


def _read_queries(plan: QueryPlan, dataset: Dataset, tokenizer: Tokenizer, searcher: Searcher,
                  cache: FeatureCache | None, query_words: int | None, progress: bool) -> list[Query]:
    """One Query per planned query, read as a search reads it: by the searcher where the model has a grid
    head (its query scales, local words, size), else as documents with `query_words` lifted words."""
    paths = [q.path for q in plan.queries]
    if tokenizer.config.model.grid is not None:
        return [searcher.encode_image(p, query_words)
                for p in progress_bar(paths, total=len(paths), desc="queries", unit="img", show=progress)]
    encoded, unread = _encode(paths, Path(dataset.query_root or dataset.root), tokenizer, cache, query_words)
    if unread:  # read a moment ago: changed since
        raise ValueError(f"cannot read query image {unread[0].path}: {unread[0].reason}")
    return [encoded[p] for p in paths]


def _encode(paths: Sequence[str], root: Path, tokenizer: Tokenizer, cache: FeatureCache | None,
            query_words: int | None = None) -> tuple[dict[str, Query], list[Skipped]]:
    """{path: Query} of the images at `paths` that read, as documents (`query_words` lifted words each), and
    those that did not, each logged as the indexer logs them."""
    files, skipped = probe_all([Path(p) for p in paths], root)
    out = {}
    for ok, enc, bad in tokenizer.encode_files(files, cache=cache, query_words=query_words):
        for row, i in enumerate(ok):
            out[files[i].path] = Query(enc.words[row], enc.embedding[row].numpy(), files[i].path)
        for i, reason in bad:
            log.warning("skipped %s: %s", files[i].path, reason)
            skipped.append(Skipped(files[i].path, reason))
    return out, skipped


def _full_ranking(searcher, query, opts, position, n_db) -> np.ndarray:
    """Database positions of every document for one query: the mode's ranking, then the rest by position."""
    ranked = [position[i] for i in searcher.rank(query, None, opts).ranking.ids.tolist() if i in position]
    seen = np.zeros(n_db, bool)
    seen[ranked] = True
    return np.concatenate([ranked, np.flatnonzero(~seen)]).astype(np.int32)  # (Q, N) per mode: half of int64


def drop_self(ranked: np.ndarray, self_ids: np.ndarray) -> np.ndarray:
    keep = ranked != self_ids[:, None]
    return ranked[keep].reshape(len(ranked), -1)


def _latency(searcher, query_features, opts, count) -> list[float]:
    step = max(1, len(query_features) // max(count, 1))
    fast = replace(opts, exact=False)
    ms = []
    for query in query_features[::step][:count]:
        t = time.perf_counter()
        searcher.search(query, 10, fast)
        ms.append((time.perf_counter() - t) * 1e3)
    return ms


def _row(name, ranked, plan, dataset, latency, index_bytes, build_s) -> dict:
    return {"mode": name, **quality(ranked, plan, dataset),
            "query_ms_p50": float(np.percentile(latency, 50)),
            "query_ms_p95": float(np.percentile(latency, 95)),
            "index_bytes": index_bytes,
            "build_s": round(build_s, 1)}


def quality(ranked: np.ndarray, plan: QueryPlan, dataset: Dataset) -> dict:
    """mAP, MAP@100, P@10, R@10 and per-label (and per-subset) mAP of full rankings (Q, N), self dropped."""
    rel = metrics.relevance_matrix(plan.query_labels, ranked, plan.db_labels)
    cut = min(100, rel.shape[1])
    ap = metrics.average_precision(rel, plan.n_relevant)
    row = {
        "map": metrics.mean_average_precision(rel, plan.n_relevant).value,
        f"map@{cut}": metrics.mean_average_precision_at_k(rel, plan.n_relevant, cut).value,
        "p@10": metrics.mean_precision_at_k(rel, min(10, rel.shape[1])).value,
        "r@10": metrics.mean_recall_at_k(rel, plan.n_relevant, min(10, rel.shape[1])).value,
        "labels": label_means(ap, plan.queries),
    }
    if dataset.subsets:
        row["subsets"] = subset_means(ap, dataset)
    return row


TREC_DEPTH = 100  # hits per query in a TREC run: 1000 made 770 MB per mode at 9.5k leave-one-out


def write_trec_runs(result: Evaluation, folder: Path, depth: int = TREC_DEPTH) -> None:
    """qrels.txt and one run.<mode>.txt per mode (the top `depth` of each query), so trec_eval can
    score them independently (its `map` then sums precision over the top `depth` only, still divided
    by all relevant documents). Raises ValueError for depth < 1."""
    from .trec import doc_id, plan_qrels, run_filename, write_qrels, write_run

    if depth < 1:
        raise ValueError(f"TREC run depth {depth} must be at least 1")

    root = result.dataset.root
    docids = [doc_id(item.path, root) for item in result.dataset.items]
    qroot = result.dataset.query_root or root
    qids = [doc_id(q.path, qroot) for q in result.plan.queries]
    folder.mkdir(parents=True, exist_ok=True)
    write_qrels(folder / "qrels.txt", plan_qrels(result.plan, docids, qids))
    for mode, ranked in result.rankings.items():
        write_run(folder / run_filename(mode), qids, [[docids[p] for p in row[:depth]] for row in ranked])


def pr_curves(result: Evaluation) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{mode: (recall points, interpolated precision)} for the report's precision-recall plot; prefix modes
    (dense@D) are left to the plots against dims."""
    plan = result.plan
    return {mode: metrics.precision_recall_curve(
                metrics.relevance_matrix(plan.query_labels, ranked, plan.db_labels), plan.n_relevant)
            for mode, ranked in result.rankings.items() if "@" not in mode}


def examples(result: Evaluation, queries: int = 4, k: int = 8) -> list:
    """The first hits of a few evenly spaced queries, per mode, for the report's contact sheet."""
    from .report import Example, Hit

    plan, items = result.plan, result.dataset.items
    picks = range(0, len(plan.queries), max(1, len(plan.queries) // queries))
    out = []
    for q in list(picks)[:queries]:
        for mode, ranked in result.rankings.items():
            hits = [Hit(items[p].path, None, bool(plan.db_labels[p] == plan.query_labels[q])) for p in ranked[q][:k]]
            out.append(Example(mode, plan.queries[q].path, hits, plan.queries[q].label))
    return out
