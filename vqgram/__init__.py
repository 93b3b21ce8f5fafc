"""vqgram: make images searchable with text search engines.

    from vqgram import Tokenizer, index_folder, Searcher
    tok = Tokenizer.from_model()                 # the packaged default model
    index_folder("photos/", "idx/", tok)         # Tantivy by default
    hits = Searcher("idx/").search_image("q.jpg", k=10)

The names below are imported on first use (PEP 562), so `import vqgram` and
`vqgram --help` do not pay for torch (~2 s) until a model is needed.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .version import __version__

_HOME = {
    "IndexManifest": "config", "KGramConfig": "config", "MatryoshkaConfig": "config", "ModelConfig": "config",
    "TokenizerConfig": "config", "VQConfig": "config", "GridConfig": "config",
    "Hit": "indexer.backend", "ImageDoc": "indexer.backend", "IndexCorrupt": "indexer.backend",
    "IndexLocked": "indexer.backend",
    "IndexCheck": "indexer.health", "check_index": "indexer.health",
    "IndexReport": "indexer.pipeline", "index_folder": "indexer.pipeline",
    "open_index": "indexer.store",
    "SearchOptions": "searcher.options", "Query": "searcher.rankers",
    "Searcher": "searcher.searcher",
    "Tokenizer": "tokenizer.encoder",
}

__all__ = [
    "GridConfig", "Hit", "ImageDoc", "IndexCheck", "IndexCorrupt", "IndexLocked", "IndexManifest", "IndexReport",
    "KGramConfig", "MatryoshkaConfig", "ModelConfig", "Query", "SearchOptions", "Searcher", "Tokenizer",
    "TokenizerConfig", "VQConfig", "__version__", "check_index", "index_folder", "open_index",
]


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'vqgram' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    globals()[name] = value  # once: later lookups do not come back here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))


if TYPE_CHECKING:
    from .config import (GridConfig, IndexManifest, KGramConfig, MatryoshkaConfig, ModelConfig, TokenizerConfig,
                         VQConfig)
    from .indexer.backend import Hit, ImageDoc, IndexCorrupt, IndexLocked
    from .indexer.health import IndexCheck, check_index
    from .indexer.pipeline import IndexReport, index_folder
    from .indexer.store import open_index
    from .searcher.options import SearchOptions
    from .searcher.rankers import Query
    from .searcher.searcher import Searcher
    from .tokenizer.encoder import Tokenizer
