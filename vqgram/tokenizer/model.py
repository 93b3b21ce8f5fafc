"""A trained vqgram model: a frozen backbone plus its heads, saved as a small folder.

A model folder holds `model.json` (the ModelConfig, a card saying what the
heads were trained on and how, and the head tensors it stores: weights.py);
the backbone comes from the registry. The model's checksum goes into every
index manifest, so an index knows exactly which model made its words.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig, from_dict, to_dict
from .backbones import create_backbone, get_spec
from .device import autocast
from .lift import LiftHead, check_word_count
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
    tokens: torch.Tensor  # what the vocabulary counts: (B, heads, H, W) VQ codes, or (B, atoms) lifted counts
    embedding: torch.Tensor  # (B, D) float32, L2-normalised


class VQGramModel(nn.Module):
    """Backbone feature map -> (word tokens, embedding).

    With a lift head both come from it (lifted word counts, PCA embedding);
    otherwise the tokens are the VQ head's code grid and the embedding is the
    Matryoshka head's output (any prefix usable), or the pooled backbone
    feature without one; L2-normalised.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.spec = get_spec(config.backbone)
        self.backbone = create_backbone(config.backbone, config.backbone_weights)
        self.vq = None
        if config.vq:
            from .vq import VQHead  # here: vector-quantize-pytorch imports torch._dynamo (~2 s a process)

            self.vq = VQHead(self.spec.channels, config.vq)
        self.mrl = MatryoshkaHead(config.mrl) if config.mrl else None
        class_dim = config.mrl.dim if config.mrl else 0
        self.lift = LiftHead(config.lift, self.spec.channels, class_dim) if config.lift else None

    def heads_state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if not k.startswith(_NOT_SAVED)}

    def forward(self, pixels: torch.Tensor) -> ModelOutput:
        return self.from_features(self.features(pixels))

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) pixels -> (B, C, H/stride, W/stride) backbone feature map (the costly part),
        computed on the model's device (bf16 autocast and channels_last on CUDA), returned float32 there."""
        device = self.device
        pixels = pixels.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        with autocast(device):
            return self.backbone.forward_features(pixels).float()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def from_features(self, fmap: torch.Tensor, query_words: int | None = None) -> ModelOutput:
        """Feature map -> word tokens and embedding (cheap: what a feature cache leaves to compute);
        `query_words`: that many lifted words an image (a query's; lift heads only)."""
        fmap = fmap.to(self.device).contiguous()  # one memory layout (cached maps load NCHW), one rounding
        if query_words is not None:
            check_query_words(self.config, query_words)
        if self.lift is not None:
            lifted, counts = self.lift(self.lift_descriptor(fmap), query_words)
            return ModelOutput(counts, lifted)
        return ModelOutput(self.vq(fmap).codes, F.normalize(self._class_embedding(fmap).float(), dim=-1))

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
