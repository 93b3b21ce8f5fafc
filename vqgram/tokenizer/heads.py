"""Word heads by name, as timm registers models: each head is one class in a file of its own, registered under
the name of the `ModelConfig` field that holds its config, and a model builds every head its config names.

A head reads the backbone's feature maps (`FeatureMaps`: the final map, plus the stage outputs it asks for in
`stages`) and returns `HeadWords`: each image's words, and, from the one head that makes it, the embedding,
and, from a head with local words, where they occurred. Registering happens on import, and a head's module is
imported only when a model has that head (the VQ head's library takes seconds to import): adding a head is
one new file and one line in `_MODULES`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, ClassVar

import torch
from torch import nn

from ..config import KGramConfig, ModelConfig
from ..local_words import LocalWords

# head name (its ModelConfig field) -> the module that registers it, in the order a model runs them
_MODULES = {"lift": "lift", "grid": "grid", "vq": "vq"}
_REGISTRY: dict[str, type["WordHead"]] = {}


@dataclass
class FeatureMaps:
    """A batch's backbone outputs: `final` (B, C, h, w), and `stages[i]`, the output of stage i, for the stages
    the model's heads read (documents: read at the tokenizer's size)."""

    final: torch.Tensor
    stages: dict[int, torch.Tensor] = field(default_factory=dict)

    def to(self, device: torch.device) -> "FeatureMaps":
        """On `device`, contiguous (cached maps load NCHW: one memory layout, one rounding)."""
        return FeatureMaps(self.final.to(device).contiguous(),
                           {i: m.to(device).contiguous() for i, m in self.stages.items()})


@dataclass
class HeadWords:
    """What a head gives a batch: words per image, and (where it makes them) the embedding and local words."""

    words: list[dict[str, int]]
    embedding: torch.Tensor | None = None  # (B, D) float32, L2-normalised
    local: list[LocalWords] | None = None


@dataclass
class QueryRead:
    """How a query image is read beyond a document's reading: `words` lifted words instead of the model's
    (multiple assignment), and, for a grid head, the extra stage maps at each of its query scales."""

    words: int | None = None
    scales: list[dict[int, torch.Tensor]] | None = None  # one batch-of-one stage map dict per query scale


class WordHead(nn.Module):
    """A head of a model: `name` is its ModelConfig field (and its attribute on the model, so its tensors are
    stored as `name.*`); `stages`: the backbone stages whose outputs it reads besides the final map."""

    name: ClassVar[str]
    stages: tuple[int, ...] = ()

    def encode(self, maps: FeatureMaps, context: "HeadContext", query: QueryRead | None = None) -> HeadWords:
        raise NotImplementedError


@dataclass
class HeadContext:
    """What a head may read beside the maps: the class embedding of the final map (computed once, on first
    use) and the tokenizer's k-gram setting (how a code grid becomes words)."""

    class_embedding: Callable[[], torch.Tensor]
    kgram: KGramConfig


def register(cls: type[WordHead]) -> type[WordHead]:
    """Class decorator: a head, under its `name`."""
    _REGISTRY[cls.name] = cls
    return cls


def heads_of(config: ModelConfig) -> dict[str, type[WordHead]]:
    """name -> head class of every head `config` has, in the order a model runs them."""
    names = [name for name in _MODULES if getattr(config, name, None) is not None]
    for name in names:
        importlib.import_module(f"{__package__}.{_MODULES[name]}")
    return {name: _REGISTRY[name] for name in names}
