"""The encoded row: one image as the encoder hands it to the indexer (ARCHITECTURE.md, "Growing past one machine").

A row is {id, path, label, width, height, mtime, size, words ({word: count}),
vector, positions}. `positions` is the tokenizer's blob of where its local words
lie, carried as opaque bytes (b"" when the model makes no local words; base64
text in JSON). The folder pipeline makes rows from each encoded batch, `vqgram
encode` writes them to Parquet, `vqgram index --encoded` reads them back: one
contract between encoding and indexing, wherever the encoding ran.

`EncodedBy` says which tokenizer made a set of rows (and, for rows of a whole
folder, which folder), so an index refuses rows from another tokenizer as it
refuses images encoded by one. Rows from outside are checked one by one
(`parse_row`): a row that does not fit raises `BadRow` naming it.
"""
from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass, field
from itertools import chain, repeat
from typing import Any, Sequence

import numpy as np

from ..config import TokenizerConfig, from_dict, to_dict
from ..version import __version__
from .backend import ImageDoc

REQUIRED = ("id", "path", "words", "vector")


class BadRow(ValueError):
    """A row that cannot be indexed; the message names the row and what is wrong."""


@dataclass(frozen=True)
class EncodedRow:
    """One encoded image: metadata, word counts and its embedding."""

    id: str  # content hash: the update/delete key
    path: str
    words: dict[str, int]
    vector: np.ndarray  # float32, L2-normalised
    label: str = ""
    width: int = 0
    height: int = 0
    mtime: float = 0.0
    size: int = 0  # bytes of the file (0: unknown; a later folder run then re-hashes it)
    positions: bytes = b""  # the local words' positions, opaque (the tokenizer's format); b"": none

    def words_text(self) -> str:
        """The words as the engines index them: each repeated by its count, space-separated."""
        return " ".join(chain.from_iterable(repeat(w, c) for w, c in self.words.items()))

    def to_doc(self) -> ImageDoc:
        return ImageDoc(id=self.id, path=self.path, label=self.label, width=self.width, height=self.height,
                        mtime=self.mtime, size=self.size, words=self.words_text(), vector=self.vector,
                        positions=self.positions)

    def to_record(self) -> dict[str, Any]:
        """A plain dict (Parquet): words as a list of (word, count), the vector as float32, positions as bytes."""
        return {"id": self.id, "path": self.path, "label": self.label, "width": self.width,
                "height": self.height, "mtime": self.mtime, "size": self.size,
                "words": list(self.words.items()), "vector": np.asarray(self.vector, np.float32),
                "positions": self.positions}


@dataclass(frozen=True)
class EncodedBy:
    """Which tokenizer made a set of rows (it stands in for the tokenizer in the index manifest check)."""

    config: TokenizerConfig
    model_path: str
    model_sha256: str
    vector_dim: int
    folder: str = ""  # the folder the rows cover ("" unknown): its absent paths are removed from the index
    vqgram_version: str = field(default=__version__)

    @classmethod
    def of(cls, tokenizer, folder: str = "") -> "EncodedBy":
        return cls(tokenizer.config, tokenizer.model_path, tokenizer.model_sha256, int(tokenizer.embedding_dim),
                   str(folder))

    @property
    def embedding_dim(self) -> int:
        """As `Tokenizer.embedding_dim`: a new index is made for embeddings of this width."""
        return self.vector_dim

    def to_json(self) -> dict:
        return {"tokenizer": to_dict(self.config), "model_path": self.model_path, "model_sha256": self.model_sha256,
                "vector_dim": self.vector_dim, "folder": self.folder, "vqgram_version": self.vqgram_version}

    @classmethod
    def from_json(cls, data: dict) -> "EncodedBy":
        data = dict(data)
        return cls(from_dict(TokenizerConfig, data.pop("tokenizer")), **data)


def rows_from_batch(files: Sequence, ok: Sequence[int], encoded) -> list[EncodedRow]:
    """The folder pipeline's rows: files[i] for i in ok, with their encodings (row r of `encoded`: words,
    embedding, and the local words' positions as the document stores them)."""
    vectors = encoded.embedding.numpy()
    rows = []
    for r, i in enumerate(ok):
        f = files[i]
        rows.append(EncodedRow(id=f.sha, path=f.path, words=encoded.words[r], vector=vectors[r],
                               label=f.label, width=f.width, height=f.height, mtime=f.mtime, size=f.size,
                               positions=encoded.positions(r)))
    return rows


def parse_row(data: Any, where: str, vector_dim: int) -> EncodedRow:
    """Check one row from outside and build it; BadRow names `where` and what does not fit."""
    if not isinstance(data, dict):
        raise BadRow(f"{where}: a row must be an object with {', '.join(REQUIRED)}, got {type(data).__name__}")
    missing = [k for k in REQUIRED if data.get(k) in (None, "")]
    if missing:
        raise BadRow(f"{where}: missing {', '.join(missing)}")
    doc_id, path = data["id"], data["path"]
    if not isinstance(doc_id, str) or not isinstance(path, str):
        raise BadRow(f"{where}: id and path must be strings")
    where = f"{where} (id {doc_id[:16]})"
    try:
        meta = dict(label=str(data.get("label") or ""), width=_int(data, "width"), height=_int(data, "height"),
                    mtime=float(data.get("mtime") or 0.0), size=_int(data, "size"))
    except (TypeError, ValueError) as exc:
        raise BadRow(f"{where}: {exc}") from None
    return EncodedRow(id=doc_id, path=path, words=_words(data["words"], where),
                      vector=_vector(data["vector"], where, vector_dim),
                      positions=_positions(data.get("positions"), where), **meta)


def _int(data: dict, key: str) -> int:
    value = data.get(key) or 0
    if isinstance(value, bool) or int(value) != value or value < 0:
        raise ValueError(f"{key} must be a whole number >= 0, got {value!r}")
    return int(value)


def _words(words: Any, where: str) -> dict[str, int]:
    """{word: count} (JSON) or [(word, count)] (a Parquet map): words are lower-case ASCII without spaces."""
    items = words.items() if isinstance(words, dict) else words
    if isinstance(words, (str, bytes)) or not hasattr(items, "__iter__"):
        raise BadRow(f"{where}: words must be {{word: count}}, got {type(words).__name__}")
    out: dict[str, int] = {}
    for item in items:
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise BadRow(f"{where}: words must be {{word: count}} pairs, got {item!r}")
        w, c = item
        if not (isinstance(w, str) and w and w.isascii() and w == w.lower() and len(w.split()) == 1 and w.isprintable()):
            raise BadRow(f"{where}: unknown word format {w!r} (words are single lower-case ASCII tokens)")
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1:
            raise BadRow(f"{where}: count of {w!r} must be a whole number >= 1, got {c!r}")
        out[w] = out.get(w, 0) + int(c)
    if not out:
        raise BadRow(f"{where}: no words")
    return out


def _positions(value: Any, where: str) -> bytes:
    """The positions blob: bytes (a Parquet binary column) or base64 text (JSON); missing or empty: b""."""
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise BadRow(f"{where}: positions must be base64 text, got {value[:24]!r}") from None
    raise BadRow(f"{where}: positions must be bytes (base64 text in JSON), got {type(value).__name__}")


def _vector(vector: Any, where: str, dim: int) -> np.ndarray:
    try:
        v = np.asarray(vector, dtype=np.float32)
    except (TypeError, ValueError):
        raise BadRow(f"{where}: vector must be a list of numbers") from None
    if v.ndim != 1 or v.shape[0] != dim:
        width = v.shape[0] if v.ndim == 1 else v.shape
        raise BadRow(f"{where}: vector width {width} but this tokenizer makes {dim}")
    norm = float(np.linalg.norm(v))
    if not math.isfinite(norm) or norm == 0:
        raise BadRow(f"{where}: vector holds NaN, infinity or only zeros")
    return v / norm
