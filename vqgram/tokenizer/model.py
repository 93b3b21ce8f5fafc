"""A trained vqgram model: a frozen backbone plus its heads, saved as a small folder.

A model folder holds `model.json` (the ModelConfig, a card saying what the
heads were trained on and how, and the head tensors it stores: weights.py);
the backbone comes from the registry. The model's checksum goes into every
index manifest, so an index knows exactly which model made its words.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..config import KGramConfig, ModelConfig, from_dict, to_dict
from ..local_words import LocalWords
from .backbones import create_backbone, forward_stages, get_spec
from .device import autocast
from .heads import FeatureMaps, HeadContext, QueryRead, WordHead, heads_of
from .lift import check_word_count
from .matryoshka import MatryoshkaHead
from .weights import DEFAULT_MODEL, read_card, read_weights, write_weights

# Saved with a model: everything but the backbone (from the registry) and the
# Matryoshka head's per-prefix classifiers (needed for training only).
_NOT_SAVED = ("backbone.", "mrl.classifier")

# Stored in float16 (loaded back as float32): the Matryoshka projection, the lift head's PCA basis and its
# invariance MLP (trained, then rounded: train_invariance.py), most
# of a model's bytes, where half precision moves cosines by ~1e-4. The VQ head stays float32: a rounding
# there could flip a code, so a word.
_HALF_PRECISION = ("mrl.proj.", "lift.basis", "lift.residual.")


class ModelOutput(NamedTuple):
    words: list[dict[str, int]]  # each image's words, every head's
    embedding: torch.Tensor  # (B, D) float32, L2-normalised
    local: list[LocalWords] | None  # each image's local words (a grid head's), else None


class VQGramModel(nn.Module):
    """Backbone feature maps -> (words, embedding, local words).

    The model has the word heads its config names (tokenizer/heads.py), each an attribute under its name:
    `lift` (global words and the PCA embedding), `grid` (local words, with where they are), `vq` (k-gram
    words). The embedding is the lift head's, else the Matryoshka head's output (any prefix usable), else
    the pooled backbone feature; L2-normalised.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.spec = get_spec(config.backbone)
        self.backbone = create_backbone(config.backbone, config.backbone_weights)
        self.mrl = MatryoshkaHead(config.mrl) if config.mrl else None
        heads = heads_of(config)
        self.head_names = tuple(heads)
        for name, cls in heads.items():
            self.add_module(name, cls.build(config, self.spec))
        self.stages = tuple(sorted({s for h in self.word_heads for s in h.stages}))

    @property
    def word_heads(self) -> list[WordHead]:
        return [getattr(self, name) for name in self.head_names]

    def heads_state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if not k.startswith(_NOT_SAVED)}

    def forward(self, pixels: torch.Tensor) -> ModelOutput:
        return self.from_features(self.features(pixels))

    def features(self, pixels: torch.Tensor) -> FeatureMaps:
        """(B, 3, H, W) pixels -> the final (B, C, H/stride, W/stride) map and the stage outputs the heads read
        (the costly part), computed on the model's device (bf16 autocast and channels_last on CUDA), returned
        float32 there."""
        final, stages = self._run(pixels, final=True)
        return FeatureMaps(final, stages)

    def stage_maps(self, pixels: torch.Tensor) -> dict[int, torch.Tensor]:
        """Only the stage outputs the heads read, the backbone stopped after the last (a query's other scales)."""
        return self._run(pixels, final=False)[1]

    def _run(self, pixels: torch.Tensor, final: bool):
        device = self.device
        pixels = pixels.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        with autocast(device):
            top, stages = forward_stages(self.backbone, pixels, self.stages, final)
        return (top.float() if top is not None else None), {i: m.float() for i, m in stages.items()}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def from_features(self, maps: FeatureMaps, query: QueryRead | None = None,
                      kgram: KGramConfig = KGramConfig()) -> ModelOutput:
        """Feature maps -> words, embedding and local words (cheap: what a feature cache leaves to compute).
        `query`: how a query image was read beyond a document (its lifted word count, a grid head's scales);
        `kgram`: how a VQ head's code grid becomes words."""
        maps = maps.to(self.device)
        if query is not None and query.words is not None:
            check_query_words(self.config, query.words)
        class_embedding = functools.cache(lambda: self._class_embedding(maps.final))  # at most once, if read
        context = HeadContext(class_embedding, kgram)
        words, embedding, local = [{} for _ in range(len(maps.final))], None, None
        for head in self.word_heads:
            out = head.encode(maps, context, query)
            for mine, theirs in zip(words, out.words):
                mine.update(theirs)
            embedding = out.embedding if out.embedding is not None else embedding
            local = out.local if out.local is not None else local
        if embedding is None:
            embedding = F.normalize(class_embedding().float(), dim=-1)
        return ModelOutput(words, embedding, local)

    def lift_descriptor(self, fmap: torch.Tensor) -> torch.Tensor:
        """Feature map -> the lift head's descriptor (what `fit_lift` fits and `from_features` lifts)."""
        fmap = fmap.to(self.device).contiguous()
        return self.lift.descriptor(fmap, self._class_embedding(fmap))

    def _class_embedding(self, fmap: torch.Tensor) -> torch.Tensor:
        """The Matryoshka head's output on the pooled feature, or the pooled feature without one."""
        pooled = self.backbone.forward_head(fmap, pre_logits=True)
        return self.mrl(pooled) if self.mrl is not None else pooled


def check_query_words(config: ModelConfig, query_words: int) -> int:
    """`query_words` when a model of `config` can give a query image that many words; else ValueError."""
    if config.lift is None:
        raise ValueError("query words apply to lifted words; this model makes k-gram words (drop the option)")
    return check_word_count(config.lift, query_words)


def stored_state(model: VQGramModel) -> dict[str, torch.Tensor]:
    """The head tensors as a model folder stores them (some in half precision)."""
    return {k: v.half() if k.startswith(_HALF_PRECISION) else v for k, v in model.heads_state().items()}


def save_model(model: VQGramModel, folder: Path, card: dict) -> Path:
    """Write the model's tensors and model.json into `folder` (created if missing)."""
    write_weights(folder, stored_state(model), {"config": to_dict(model.config), "card": card})
    return Path(folder)


def load_model(folder: Path | str | None = None) -> VQGramModel:
    """Load a model folder (default: the one shipped in the package), in eval mode."""
    folder = Path(folder) if folder else DEFAULT_MODEL
    meta = read_card(folder)
    model = VQGramModel(from_dict(ModelConfig, meta["config"]))
    missing, unexpected = model.load_state_dict(read_weights(folder), strict=False)
    missing = [k for k in missing if not k.startswith(_NOT_SAVED)]
    if missing or unexpected:
        raise ValueError(f"model folder {folder} does not match its config: missing {missing}, unexpected {unexpected}")
    return model.eval()
