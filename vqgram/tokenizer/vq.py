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
from torch import nn
from vector_quantize_pytorch import VectorQuantize

from ..config import VQConfig


class VQOutput(NamedTuple):
    quantized: torch.Tensor  # (B, C, H, W), back in the backbone's feature space
    codes: torch.Tensor  # (B, heads, H, W) int64
    loss: torch.Tensor  # commitment loss (0 when commitment_weight is 0)


class VQHead(nn.Module):
    def __init__(self, channels: int, config: VQConfig):
        super().__init__()
        self.config = config
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

    def forward(self, fmap: torch.Tensor) -> VQOutput:
        quantized, indices, loss = self.vq(fmap)
        return VQOutput(quantized, rearrange(indices, "b h w heads -> b heads h w"), loss)
