"""vqgram: make images searchable with text search engines.

    from vqgram import Tokenizer, index_folder, Searcher
    tok = Tokenizer.from_model()                 # the packaged default model
    index_folder("photos/", "idx/", tok)         # Tantivy by default
    hits = Searcher("idx/").search_image("q.jpg", k=10)
"""
__version__ = "0.1.0"

from .config import IndexManifest, KGramConfig, MatryoshkaConfig, ModelConfig, TokenizerConfig, VQConfig  # noqa: E402
from .indexer.backend import Hit, ImageDoc, IndexCorrupt, IndexLocked  # noqa: E402
from .indexer.health import IndexCheck, check_index  # noqa: E402
from .indexer.pipeline import IndexReport, index_folder  # noqa: E402
from .indexer.store import open_index  # noqa: E402
from .searcher.options import SearchOptions  # noqa: E402
from .searcher.searcher import Searcher  # noqa: E402
from .tokenizer.encoder import Tokenizer  # noqa: E402

__all__ = [
    "Hit", "ImageDoc", "IndexCheck", "IndexCorrupt", "IndexLocked", "IndexManifest", "IndexReport", "KGramConfig",
    "MatryoshkaConfig", "ModelConfig", "SearchOptions", "Searcher", "Tokenizer", "TokenizerConfig", "VQConfig",
    "__version__", "check_index", "index_folder", "open_index",
]
