"""Code grid -> k-gram word counts -> word strings (ARCHITECTURE.md, "Words").

2D: for every head h, window offset (i, j) and code c, the count of window
positions whose cell at offset (i, j) holds code c; word `h{h}i{i}j{j}c{c}`.
3D: the window also spans `kernel` heads; word `z{z}i{i}j{j}c{c}` with z the
offset along the head axis. Counting is one unfold and one bincount per batch.
Padded cells hold no code and make no word.
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F

from ..config import KGramConfig
from .vocabulary import Vocabulary

PAD = -1  # a cell outside the grid


class KGramWords(Vocabulary):
    """Turns (B, heads, H, W) integer code grids into (B, vocab_size) word counts."""

    def __init__(self, config: KGramConfig, heads: int, codebook_size: int):
        super().__init__()
        self.config, self.heads, self.codebook_size = config, heads, codebook_size
        k = config.kernel
        self.depth = heads if config.kind == "2d" else k  # first word axis: head, or head offset
        self.prefix = "h" if config.kind == "2d" else "z"
        self.vocab_size = self.depth * k * k * codebook_size
        self._pattern = re.compile(rf"{self.prefix}(\d+)i(\d+)j(\d+)c(\d+)")

    # --- counting -------------------------------------------------------------------

    def count(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, heads, H, W) codes -> (B, vocab_size) int64 counts."""
        if codes.dim() != 4 or codes.shape[1] != self.heads:
            raise ValueError(f"expected codes of shape (B, {self.heads}, H, W), got {tuple(codes.shape)}")
        k, s, p = self.config.kernel, self.config.stride, self.config.padding
        grid = self._pad(codes.long(), p)
        # windows: (B, heads, nH, nW, k, k) for 2D
        win = grid.unfold(2, k, s).unfold(3, k, s)
        if self.config.kind == "3d":
            # (B, nZ, nH, nW, k, k, kz): the head axis becomes a window axis too
            win = win.unfold(1, k, s)
            win = win.permute(0, 1, 2, 3, 6, 4, 5)  # (B, nZ, nH, nW, z, i, j)
            offsets = torch.arange(k * k * k, device=codes.device).view(k, k, k)
        else:
            win = win.permute(0, 2, 3, 1, 4, 5)  # (B, nH, nW, h, i, j)
            offsets = torch.arange(self.heads * k * k, device=codes.device).view(self.heads, k, k)
        ids = offsets * self.codebook_size + win
        batch = codes.shape[0]
        flat = ids.reshape(batch, -1)
        valid = win.reshape(batch, -1) != PAD
        rows = torch.arange(batch, device=codes.device).unsqueeze(1).expand_as(flat)
        counts = torch.bincount(
            (rows * self.vocab_size + flat)[valid], minlength=batch * self.vocab_size
        )
        return counts.view(batch, self.vocab_size)

    def _pad(self, codes: torch.Tensor, p: int) -> torch.Tensor:
        """Pad H and W by `p` (and up to the kernel where the grid is smaller); in 3D, heads too."""
        k = self.config.kernel
        h, w = codes.shape[2] + 2 * p, codes.shape[3] + 2 * p
        extra_h, extra_w = max(0, k - h), max(0, k - w)
        pads = [p, p + extra_w, p, p + extra_h]  # W left/right, H top/bottom
        if self.config.kind == "3d":
            pads += [0, max(0, k - codes.shape[1])]
        return F.pad(codes, pads, value=PAD)

    # --- word strings ----------------------------------------------------------------

    def _names(self) -> list[str]:
        k, K = self.config.kernel, self.codebook_size
        return [f"{self.prefix}{d}i{i}j{j}c{c}" for d in range(self.depth) for i in range(k) for j in range(k)
                for c in range(K)]

    def _id(self, match) -> int | None:
        d, i, j, c = map(int, match.groups())
        k = self.config.kernel
        if d >= self.depth or i >= k or j >= k or c >= self.codebook_size:
            return None
        return ((d * k + i) * k + j) * self.codebook_size + c
