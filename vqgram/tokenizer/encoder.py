"""The tokenizer: image batch -> (word counts, embedding).

It owns the model, its vocabulary and the input size, and it is the one
place that runs the network (inference mode, channels_last), so indexing,
querying and evaluation all see the same words for the same image.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

import numpy as np
import torch

from ..config import KGramConfig, TokenizerConfig
from ..images import ImageFile, load_resized, to_tensor
from .device import resolve_device, reuse_freed_memory
from .embedding_sizes import embedding_sizes
from .feature_cache import FeatureCache, default_root, feature_maps
from .kgrams import KGramWords
from .lift import LiftedWords
from .model import VQGramModel, load_model
from .vocabulary import Vocabulary
from .weights import DEFAULT_MODEL, weights_sha256


class Encoded(NamedTuple):
    counts: torch.Tensor  # (B, vocab_size) int64 word counts
    embedding: torch.Tensor  # (B, D) float32, L2-normalised


def vocabulary_for(config: TokenizerConfig) -> Vocabulary:
    """The words a tokenizer makes: lifted words with a lift head, else k-grams over the VQ codes."""
    model = config.model
    if model.lift:
        return LiftedWords(model.lift)
    return KGramWords(config.kgram, model.vq.heads, model.vq.codebook_size)


class Tokenizer:
    """Turns images into words and embeddings with one model (and, for VQ models, one k-gram setting)."""

    def __init__(self, model: VQGramModel, kgram: KGramConfig = KGramConfig(), max_size: int = 224,
                 model_path: str = "", model_sha256: str = "", device: str = "cpu"):
        if model.config.lift and kgram != KGramConfig():
            raise ValueError("k-gram settings (--kgram, --kernel, --padding, --stride) apply to models with a VQ "
                             "head; this model makes lifted words: drop them, or give --model a k-gram model")
        self.device = resolve_device(device)
        if self.device.type == "cpu":
            reuse_freed_memory()
        self.model = model.eval().to(self.device, memory_format=torch.channels_last)
        self.config = TokenizerConfig(model=model.config, kgram=kgram, max_size=max_size)
        self.model_path, self.model_sha256 = model_path, model_sha256
        self.vocabulary = vocabulary_for(self.config)

    @classmethod
    def from_model(cls, path: str | Path | None = None, kgram: KGramConfig = KGramConfig(),
                   max_size: int = 224, device: str = "cpu") -> "Tokenizer":
        """Load a model folder (default: the packaged one) and wrap it as a tokenizer on `device`
        ("auto", "cpu", "cuda", "mps")."""
        folder = Path(path) if path else DEFAULT_MODEL
        return cls(load_model(folder), kgram, max_size, model_path=str(folder.resolve()) if path else "default",
                   model_sha256=weights_sha256(folder), device=device)

    @property
    def spec(self):
        return self.model.spec

    @property
    def embedding_dim(self) -> int:
        """Width of the embeddings this tokenizer gives."""
        return embedding_sizes(self.config.model)[-1]

    @torch.inference_mode()
    def encode(self, pixels: torch.Tensor, query_words: int | None = None) -> Encoded:
        """(B, 3, H, W) normalised pixels -> word counts and embeddings."""
        return self.encode_features(self.model.features(pixels), query_words)

    @torch.inference_mode()
    def encode_features(self, fmap: torch.Tensor, query_words: int | None = None) -> Encoded:
        """Backbone feature maps -> word counts and embeddings (on the CPU, whatever the device).

        query_words: that many lifted words an image instead of the model's own
        (multiple assignment for query images: an indexed image's words and more).
        """
        out = self.model.from_features(fmap, query_words)
        return Encoded(self.vocabulary.count(out.tokens).cpu(), out.embedding.cpu())

    def encode_files(self, files: Sequence[ImageFile], batch_size: int = 32, workers: int | None = None,
                     cache: FeatureCache | None = None, query_words: int | None = None
                     ) -> Iterator[tuple[list[int], Encoded, list[tuple[int, str]]]]:
        """Yield (indices into files, their encodings, [(index, reason) skipped]) per batch.

        With a feature cache, images it holds skip decoding and the backbone.
        """
        for ok, fmap, bad in feature_maps(self.model, files, self.config.max_size, cache=cache,
                                          batch_size=batch_size, workers=workers):
            encoded = self.encode_features(fmap, query_words) if ok else Encoded(torch.empty(0), torch.empty(0))
            yield ok, encoded, bad

    def feature_cache(self, root: str | Path | None = None) -> FeatureCache:
        """The cache of this tokenizer's feature maps under `root` (default ~/.cache/vqgram/features)."""
        return FeatureCache(root or default_root(), self.config.model, self.config.max_size)

    def encode_image(self, path: str | Path, query_words: int | None = None) -> Encoded:
        """One image (a query): decoded here, resized like indexed images of its shape."""
        spec = self.spec
        img = load_resized(path, self.config.max_size, spec.stride, spec.interpolation)
        return self.encode(to_tensor(img, spec.mean, spec.std).unsqueeze(0), query_words)

    def words(self, path: str | Path) -> dict[str, int]:
        """{word: count} of one image, heaviest first."""
        counts = self.vocabulary.to_dict(self.encode_image(path).counts[0])
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
