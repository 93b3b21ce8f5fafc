"""A tokenizer's vocabulary: word ids <-> word strings, and count vectors -> words.

Both word heads (k-grams over a VQ code grid, lifted words of a global
descriptor) count words into a (B, vocab_size) tensor; what an image's words
look like as strings, and the way back, is shared here.
"""
from __future__ import annotations

import re

import numpy as np
import torch


class Vocabulary:
    """Word ids 0..vocab_size-1 named by `_names()`; subclasses define how a head's output is counted."""

    vocab_size: int
    _pattern: re.Pattern

    def __init__(self) -> None:
        self._vocab: np.ndarray | None = None

    def count(self, tokens: torch.Tensor) -> torch.Tensor:
        """A head's output -> (B, vocab_size) int64 word counts."""
        raise NotImplementedError

    def _names(self) -> list[str]:
        raise NotImplementedError

    def _id(self, match: re.Match) -> int | None:
        """The word id of a parsed word string, None when out of range."""
        raise NotImplementedError

    @property
    def vocab(self) -> np.ndarray:
        """All word strings, indexed by word id."""
        if self._vocab is None:
            self._vocab = np.array(self._names())
        return self._vocab

    def word(self, word_id: int) -> str:
        return str(self.vocab[word_id])

    def word_id(self, word: str) -> int:
        """Inverse of `word`; ValueError for a string this tokenizer cannot make."""
        m = self._pattern.fullmatch(word)
        if not m:
            raise ValueError(f"{word!r} is not a word of this tokenizer (like {self.word(0)!r})")
        word_id = self._id(m)
        if word_id is None:
            raise ValueError(f"{word!r} is out of range for this tokenizer")
        return word_id

    def to_dict(self, counts: torch.Tensor | np.ndarray) -> dict[str, int]:
        """One image's counts -> {word: count} for the words it has."""
        counts = np.asarray(counts)
        nz = np.flatnonzero(counts)
        return dict(zip(self.vocab[nz].tolist(), counts[nz].tolist()))

    def to_dicts(self, counts: torch.Tensor) -> list[dict[str, int]]:
        """(B, vocab_size) counts -> each image's {word: count}."""
        return [self.to_dict(row) for row in counts.cpu().numpy()]

    def to_text(self, counts: torch.Tensor | np.ndarray) -> str:
        """One image's counts -> each word repeated by its count, space-separated."""
        counts = np.asarray(counts)
        nz = np.flatnonzero(counts)
        return " ".join(np.repeat(self.vocab[nz], counts[nz]).tolist())
