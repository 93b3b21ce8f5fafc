"""Search an index by image or by the engine's own query syntax.

The searcher rebuilds the tokenizer from the index manifest (same model, same
k-gram settings), so a query image gets exactly the words its index expects.
"""
from __future__ import annotations

from pathlib import Path

from ..indexer.backend import Hit
from ..indexer.store import check_tokenizer, open_index
from ..tokenizer.encoder import Tokenizer
from .queries import term_weights


class Searcher:
    def __init__(self, index: str | Path, tokenizer: Tokenizer | None = None):
        self.handle = open_index(Path(index))
        manifest = self.handle.manifest
        self._tokenizer = tokenizer
        if tokenizer is not None:
            check_tokenizer(manifest, tokenizer, self.handle.path)

    @property
    def tokenizer(self) -> Tokenizer:
        """Loaded on first use: text queries need no model."""
        if self._tokenizer is None:
            m = self.handle.manifest
            model = None if m.model_path == "default" else m.model_path
            tok = Tokenizer.from_model(model, m.tokenizer.kgram, m.tokenizer.max_size)
            check_tokenizer(m, tok, self.handle.path)
            self._tokenizer = tok
        return self._tokenizer

    def search_image(self, image: str | Path, k: int = 10, max_terms: int | None = None) -> list[Hit]:
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"query image not found: {path}")
        try:
            counts = self.tokenizer.kgrams.to_dict(self.tokenizer.encode_image(path).counts[0])
        except OSError as exc:
            raise ValueError(f"cannot read query image {path}: {exc}") from None
        return self.search_words(counts, k, max_terms)

    def search_words(self, counts: dict[str, int], k: int = 10, max_terms: int | None = None) -> list[Hit]:
        return self.handle.backend.search_words(term_weights(counts, max_terms), k)

    def search_text(self, query: str, k: int = 10) -> list[Hit]:
        return self.handle.backend.search_text(query, k)

    def close(self) -> None:
        self.handle.close()

    def __enter__(self) -> "Searcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
