"""How to search, as data: the modes, `SearchOptions` (the CLI's search options), which modes read which
option, so an option a mode would ignore is refused rather than silently dropped, and whether an index's
model can answer them."""
from __future__ import annotations

from dataclasses import dataclass

from ..config import ModelConfig
from ..indexer.filters import Filter, parse_filter
from ..tokenizer.embedding_sizes import embedding_sizes
from .funnel import FunnelStage, collection_stages

WORD_MODES = ("bm25", "tfidf", "jaccard")
MODES = WORD_MODES + ("dense", "hybrid", "funnel")
LUCENE_MODES = ("tfidf", "jaccard")  # Tantivy ranks words by BM25 (k1 1.2, b 0.75) only


def backend_modes(backend: str) -> tuple[str, ...]:
    """The modes an index of `backend` answers."""
    return MODES if backend == "lucene" else tuple(m for m in MODES if m not in LUCENE_MODES)


@dataclass(frozen=True)
class SearchOptions:
    """How to rank: the mode and its knobs (the CLI's search options, as data)."""

    mode: str = "bm25"
    max_terms: int | None = None  # words: keep the N heaviest query words
    prune_terms: int | None = None  # words: keep the N query words of highest weight x idf (docs/SCALE.md)
    k1: float = 1.2  # bm25 (Lucene only; Tantivy is fixed at 1.2 / 0.75)
    b: float = 0.75
    dims: int | None = None  # dense: embedding prefix (None: the index's HNSW prefix, or all)
    ef: int | None = None  # dense on Lucene: HNSW efSearch
    exact: bool = False  # dense on Lucene: scan instead of HNSW
    fusion: str = "score"  # "score" or "rrf" (hybrid; see fusion.DEFAULT_WEIGHTS)
    weights: tuple[float, ...] | None = None  # hybrid: one a run (None: fusion.default_weights for the model)
    depth: int = 100  # hybrid: hits taken from each run before fusing
    stages: tuple[FunnelStage, ...] | None = None  # funnel (None: sized to the collection: collection_stages)
    prf_depth: int = 0  # dense, hybrid, funnel: average the query embedding with its nearest N first (0: off)
    filter: str | None = None  # every mode: only documents passing it (indexer/filters.py), e.g. 'label:cats'
    verify: int = 0  # every mode: re-rank the top N hits by geometric verification (0: off)
    verify_files: bool = False  # verify from the hits' image files (RootSIFT, verify.py), not stored positions
    explain: bool = False  # every mode: where each hit matched the query (boxes from stored positions)
    query_words: int | None = None  # words of an image query: N lifted words (None: queries.collection_query_words)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; choose one of: {', '.join(MODES)}")
        if self.prf_depth < 0:
            raise ValueError(f"prf_depth={self.prf_depth} must be 0 (off) or a number of neighbours")
        if self.verify < 0:
            raise ValueError(f"verify={self.verify} must be 0 (off) or a number of hits to re-rank")
        if self.query_words is not None and self.query_words < 1:
            raise ValueError(f"query_words={self.query_words} must be at least 1")
        if self.filter:
            parse_filter(self.filter)  # a bad filter fails here, in one line, before any search

    @property
    def where(self) -> Filter | None:
        """The parsed filter (parsing is cached), or None."""
        return parse_filter(self.filter) if self.filter else None


# The modes that read each option (given to another mode, it would be silently ignored), and the
# options only Lucene's HNSW reads.
OPTION_MODES = {
    "max_terms": WORD_MODES + ("hybrid",),
    "prune_terms": WORD_MODES + ("hybrid",),
    "k1": ("bm25", "hybrid"),
    "b": ("bm25", "hybrid"),
    "dims": ("dense", "hybrid"),
    "ef": ("dense", "hybrid"),
    "exact": ("dense", "hybrid"),
    "fusion": ("hybrid",),
    "weights": ("hybrid",),
    "depth": ("hybrid",),
    "stages": ("funnel",),
    "prf_depth": ("dense", "hybrid", "funnel"),
    "verify": MODES,
    "verify_files": MODES,
    "explain": MODES,
    "query_words": WORD_MODES + ("hybrid",),
}
HNSW_OPTIONS = ("ef", "exact")


def unused_options(names, mode: str, backend: str) -> list[tuple[str, str]]:
    """(option, why) for each of `names` (SearchOptions fields) that `mode` on `backend` would ignore."""
    out = []
    for n in names:
        if mode not in OPTION_MODES[n]:
            out.append((n, f"applies to mode {' / '.join(OPTION_MODES[n])} only, not {mode}"))
        elif n in HNSW_OPTIONS and backend != "lucene":
            out.append((n, f"applies to Lucene's HNSW only; this index is {backend} (dense search is exact)"))
    return out


def check_against_model(options: SearchOptions, model: ModelConfig) -> None:
    """ValueError when an embedding width the mode will use is not one `model` nests, or the model cannot
    give a query that many words."""
    from ..tokenizer.model import check_query_words  # here: the model's module imports torch

    sizes = embedding_sizes(model)
    asked = [("dims", options.dims)] if options.dims is not None and options.mode in OPTION_MODES["dims"] else []
    if options.mode == "funnel":
        asked += [("funnel stage dims", st.dim) for st in options.stages or collection_stages(1)]
    for name, d in asked:
        if d not in sizes:
            raise ValueError(f"{name}={d} is not an embedding width of this index's model; "
                             f"choose one of {', '.join(map(str, sizes))}")
    if options.query_words is not None:
        check_query_words(model, options.query_words)
