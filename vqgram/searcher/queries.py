"""Word counts -> a weighted term query (the part of a search that is the same for every engine)."""
from __future__ import annotations

import math

from ..config import LiftConfig
from .options import WORD_MODES

# An image query of a word mode takes twice the model's words (multiple assignment: an indexed image's words
# and the next strongest) while the index holds at most this many documents. On the development suite that
# lifted the words of every set (mean BM25 mAP 0.718 -> 0.726; tfidf and jaccard on dtd_a +0.016 and +0.015;
# docs/RESULTS.md, "More words for the query") for about 1.8x the postings a query; up to here a query reads
# about as many postings as a model's-count query at 100,000 documents (~10 ms, docs/SCALE.md). Larger indexes
# keep the model's count, which holds the 1M budget. Hybrid keeps it too: its dense run already holds what the
# extra words add (hybrid moved by <= 0.001).
MORE_QUERY_WORDS_UP_TO = 50_000


def collection_query_words(lift: LiftConfig | None, mode: str, n_docs: int) -> int | None:
    """The default number of lifted words of an image query in `mode` on `n_docs` documents, or None for the
    model's own (also for a model without lifted words: `lift` None). Twice an indexed image's words, or as
    many as the lift head can give where that is fewer."""
    from ..tokenizer.lift import max_word_count  # here: the lift head's module imports torch

    if lift is None or mode not in WORD_MODES or n_docs > MORE_QUERY_WORDS_UP_TO:
        return None
    return min(2 * lift.active, max_word_count(lift))


def term_weights(counts: dict[str, int], max_terms: int | None = None) -> dict[str, float]:
    """Weight each query word by 1 + ln(count); keep the `max_terms` heaviest (ties by word).

    Pruning to the heaviest terms is the speed knob: the engine visits fewer
    posting lists, at some cost in recall.
    """
    if max_terms is not None and max_terms < 1:
        raise ValueError(f"max_terms={max_terms} must be at least 1")
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if max_terms is not None:
        ranked = ranked[:max_terms]
    return {w: 1.0 + math.log(c) for w, c in ranked if c > 0}


def prune_by_idf(weights: dict[str, float], doc_freqs: dict[str, int], n_docs: int, keep: int) -> dict[str, float]:
    """Keep the `keep` query words of highest weight x idf (BM25's idf, ln(1 + (N - df + 0.5) / (df + 0.5))).

    A common word adds little to any score and costs a long posting list; a
    rare one the opposite. Ties go to the word that sorts first, so pruning is
    reproducible. Words no document holds are dropped first (they cannot score).
    """
    if keep < 1:
        raise ValueError(f"keep={keep} must be at least 1")

    def value(word: str) -> float:
        df = doc_freqs.get(word, 0)
        return weights[word] * math.log(1 + (n_docs - df + 0.5) / (df + 0.5)) if df else -1.0

    ranked = sorted(weights, key=lambda w: (-value(w), w))[:keep]
    return {w: weights[w] for w in ranked if doc_freqs.get(w, 0)}
