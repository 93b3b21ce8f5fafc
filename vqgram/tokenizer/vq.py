"""Multi-head vector quantization over a feature map (vector-quantize-pytorch).

Each cell's C-dim feature is projected to heads x codebook_dim, every head is
matched against its own codebook (or one shared codebook) (EMA updates, dead-code restarts), and the
quantized vectors are projected back to C dims, so the backbone's own
classifier can read the quantized map (that is how the head is trained).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from einops import rearrange
from vector_quantize_pytorch import VectorQuantize

from ..config import KGramConfig, ModelConfig, VQConfig
from .heads import FeatureMaps, HeadContext, HeadWords, QueryRead, WordHead, register
from .kgrams import KGramWords


class VQOutput(NamedTuple):
    quantized: torch.Tensor  # (B, C, H, W), back in the backbone's feature space
    codes: torch.Tensor  # (B, heads, H, W) int64
    loss: torch.Tensor  # commitment loss (0 when commitment_weight is 0)


@register
class VQHead(WordHead):
    """The final map's cells, each quantized by `heads` codebooks; words are k-grams over the code grid."""

    name = "vq"

    def __init__(self, channels: int, config: VQConfig):
        super().__init__()
        self.config = config
        self._vocabularies: dict[KGramConfig, KGramWords] = {}
        self.vq = VectorQuantize(
            dim=channels,
            codebook_dim=config.codebook_dim,
            codebook_size=config.codebook_size,
            heads=config.heads,
            separate_codebook_per_head=config.separate_codebooks,
            commitment_weight=config.commitment_weight,
            threshold_ema_dead_code=config.threshold_ema_dead_code,
            decay=config.decay,
            kmeans_init=True,
            accept_image_fmap=True,
        )

    @classmethod
    def build(cls, config: ModelConfig, spec) -> "VQHead":
        return cls(spec.channels, config.vq)

    def encode(self, maps: FeatureMaps, context: HeadContext, query: QueryRead | None = None) -> HeadWords:
        words = self._vocabulary(context.kgram)
        return HeadWords(words.to_dicts(words.count(self(maps.final).codes)))

    def _vocabulary(self, kgram: KGramConfig) -> KGramWords:
        """The k-gram words of `kgram` over this head's codes, made once (its word strings take ~1.4 ms)."""
        if kgram not in self._vocabularies:
            self._vocabularies[kgram] = KGramWords(kgram, self.config.heads, self.config.codebook_size)
        return self._vocabularies[kgram]

    def forward(self, fmap: torch.Tensor) -> VQOutput:
        quantized, indices, loss = self.vq(fmap)
        return VQOutput(quantized, rearrange(indices, "b h w heads -> b heads h w"), loss)
