"""The grid head: local words, one per cell of a backbone stage's feature map (the card's grid of codes).

Each cell's feature (a stage output: efficientnet_lite0's stage 2 has stride 8 and 40 channels) is centred,
whitened and cut by PCA (`mean`, `proj`), L2-normalised, then quantized in two steps: the nearest of `coarse`
centroids by cosine, and the nearest of `fine` centroids of the residual (residual quantization, as in
Jégou et al.'s IVFADC): `coarse x fine` words, `g{code}` (local_words.local_word), from a codebook of (coarse + fine) centroids that
k-means fits in seconds (`train_grid.py`). Two images share a word where two cells look alike at the same
scale; a crop of a photo is a zoom of it, a copy pasted into another photo a shrink, so a query image is read
again at each of `query_scales` and its words are every scale's cells. Each cell keeps where it is
(`LocalWords`), which verification and boxes read. Projections and distances run in float64, so a cell gets
the same code in any batch.
"""
from __future__ import annotations

from collections import Counter

import torch
import torch.nn.functional as F

from ..config import GridConfig, ModelConfig
from ..local_words import LocalWords, local_word
from .heads import FeatureMaps, HeadContext, HeadWords, QueryRead, WordHead, register


@register
class GridHead(WordHead):
    """(B, C, H, W) stage map -> (B, H, W) codes -> each image's words and local words."""

    name = "grid"

    def __init__(self, config: GridConfig, channels: int):
        super().__init__()
        if config.dims > channels:
            raise ValueError(f"grid dims={config.dims} exceeds stage {config.stage}'s {channels} channels")
        self.config = config
        self.stages = (config.stage,)
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("proj", torch.eye(channels)[:, : config.dims].contiguous())
        self.register_buffer("coarse", torch.zeros(config.coarse, config.dims))
        self.register_buffer("fine", torch.zeros(config.fine, config.dims))

    @classmethod
    def build(cls, config: ModelConfig, spec) -> "GridHead":
        stage = config.grid.stage
        if stage >= len(spec.stage_channels):
            raise ValueError(f"grid stage {stage}: backbone {spec.name} has stages 0-{len(spec.stage_channels) - 1}")
        return cls(config.grid, spec.stage_channels[stage])

    def project(self, cells: torch.Tensor) -> torch.Tensor:
        """(N, C) cell features -> (N, dims) float64, centred, projected and L2-normalised."""
        return F.normalize((cells.double() - self.mean.double()) @ self.proj.double(), dim=-1)

    def quantize(self, y: torch.Tensor) -> torch.Tensor:
        """(N, dims) projected cells -> (N,) codes: coarse centroid (cosine) x fine centroid of the residual."""
        coarse, fine = self.coarse.double(), self.fine.double()
        first = (y @ coarse.T).argmax(dim=1)
        residual = y - coarse[first]
        second = (residual @ fine.T - 0.5 * (fine * fine).sum(dim=1)).argmax(dim=1)  # nearest by L2
        return first * self.config.fine + second

    def codes(self, stage_map: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, H, W) int64 codes."""
        b, c, h, w = stage_map.shape
        cells = stage_map.permute(0, 2, 3, 1).reshape(-1, c)
        return self.quantize(self.project(cells)).view(b, h, w)

    def encode(self, maps: FeatureMaps, context: HeadContext, query: QueryRead | None = None) -> HeadWords:
        """Documents: one grid each, from the stage map of their reading. A query (batch of one) read at the
        query scales: one grid per scale, and its words are all of them."""
        stage = self.config.stage
        if query is not None and query.scales is not None:
            grids = [[self.codes(scale[stage])[0].cpu().numpy() for scale in query.scales]]
        else:
            grids = [[g] for g in self.codes(maps.stages[stage]).cpu().numpy()]
        local = [LocalWords.of_grids(g) for g in grids]
        words = [{local_word(code): n for code, n in Counter(lw.codes.tolist()).items()} for lw in local]
        return HeadWords(words, local=local)


def query_sizes(config: GridConfig, doc_size: int) -> list[int]:
    """The longer side of each reading of a query image (query_scales x the documents' size), distinct."""
    return sorted({max(32, int(round(s * doc_size))) for s in config.query_scales})

