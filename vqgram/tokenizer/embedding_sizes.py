"""The widths a model's embedding may be cut to: a rule of its config, read without torch (`vqgram info`,
the searcher's option checks)."""
from __future__ import annotations

from ..config import MatryoshkaConfig, ModelConfig


def embedding_sizes(config: ModelConfig) -> tuple[int, ...]:
    """The widths an embedding of this model may be cut to, ascending; the last is its full width.

    A lift head's PCA embedding: the default nesting sizes up to its width (PCA
    prefixes keep the most variance); a Matryoshka head's nesting sizes (each
    prefix was trained to be an embedding); else the pooled feature, whole."""
    if config.lift:
        return MatryoshkaConfig(dim=config.lift.dims).nesting
    if config.mrl:
        return tuple(config.mrl.nesting)
    from .backbones import get_spec  # torch: only a model without either head reads its backbone's width

    return (get_spec(config.backbone).channels,)
