"""Local words with where they occurred: what verification and boxes read instead of the image file.

A grid head (tokenizer/grid.py) codes every cell of a backbone feature map; an image read at several scales
(a query) has one grid per scale. `LocalWords` keeps, for each coded cell, its code, its grid cell (row and
column: the cell's centre, exactly) and which scale's grid it is on, with every grid's shape. A document
stores it as one byte string (the `positions` field of both engines: `to_bytes` / `from_bytes`), so a
search server can verify hits and draw boxes without the photos. Needs numpy only (the searcher reads
stored positions without torch).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property

import numpy as np

_MAGIC = b"LW1"  # format and version of the byte string
PREFIX = "g"  # local words are `g` and their code; no other head's words start with it


def is_local(word: str) -> bool:
    return word.startswith(PREFIX)


def local_word(code: int) -> str:
    """The word of a grid code: `g` and the code, at least five digits (`g00042`)."""
    return f"{PREFIX}{code:05d}"


@dataclass(frozen=True)
class LocalWords:
    """codes (n,) int64; rows, cols (n,) cell indices on the grid of scale `scale` (n,); grids: each scale's
    (rows, cols) shape, in the order of the head's scales (a document: one grid)."""

    codes: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    scale: np.ndarray
    grids: tuple[tuple[int, int], ...]

    @classmethod
    def of_grids(cls, code_grids: list[np.ndarray]) -> "LocalWords":
        """Every cell of each (H, W) code grid, in raster order, scale = the grid's place in the list;
        cells coded -1 (none) are left out."""
        parts = []
        for s, grid in enumerate(code_grids):
            h, w = grid.shape
            r, c = np.divmod(np.arange(h * w), w)
            keep = grid.reshape(-1) >= 0
            parts.append((grid.reshape(-1)[keep], r[keep], c[keep], np.full(int(keep.sum()), s)))
        codes, rows, cols, scale = (np.concatenate(p).astype(np.int64) for p in zip(*parts))
        return cls(codes, rows, cols, scale, tuple((int(g.shape[0]), int(g.shape[1])) for g in code_grids))

    def __len__(self) -> int:
        return len(self.codes)

    @cached_property
    def code_order(self) -> np.ndarray:
        """The cells ordered by code (stable): a query's, sorted once for every hit it is matched against."""
        return np.argsort(self.codes, kind="stable")

    def to_bytes(self) -> bytes:
        """MAGIC, the grids, n, then codes (uint16 when they fit, else uint32), rows, cols, scale (uint8)."""
        wide = bool(len(self.codes)) and int(self.codes.max()) > 0xFFFF
        head = _MAGIC + struct.pack("<BB", len(self.grids), wide)
        head += b"".join(struct.pack("<HH", *g) for g in self.grids) + struct.pack("<I", len(self.codes))
        code_type = "<u4" if wide else "<u2"
        return head + b"".join(np.asarray(a, t).tobytes() for a, t in
                               ((self.codes, code_type), (self.rows, "u1"), (self.cols, "u1"), (self.scale, "u1")))

    @classmethod
    def from_bytes(cls, data: bytes) -> "LocalWords | None":
        """The inverse of `to_bytes`; None for b"" (a document without local words)."""
        if not data:
            return None
        if data[:3] != _MAGIC:
            raise ValueError("stored positions are not local words of this vqgram version: index again")
        n_grids, wide = struct.unpack_from("<BB", data, 3)
        at = 5
        grids = tuple(struct.unpack_from("<HH", data, at + 4 * i) for i in range(n_grids))
        at += 4 * n_grids
        (n,) = struct.unpack_from("<I", data, at)
        at += 4
        codes = np.frombuffer(data, "<u4" if wide else "<u2", n, at)
        at += codes.nbytes
        rows, cols, scale = (np.frombuffer(data, "u1", n, at + i * n) for i in range(3))
        return cls(codes.astype(np.int64), rows.astype(np.int64), cols.astype(np.int64), scale.astype(np.int64),
                   grids)
