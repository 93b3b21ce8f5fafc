"""The tokenizer: image batch -> (words, embedding, local words).

It owns the model, its k-gram setting and the input size, and it is the one
place that runs the network (inference mode, channels_last), so indexing,
querying and evaluation all see the same words for the same image. A query
image is read like a document, and, for a model with a grid head, again at
the head's query scales (`encode_image`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

import torch

from ..config import KGramConfig, TokenizerConfig
from ..images import ImageFile, load_resized, load_sizes, to_tensor
from ..local_words import LocalWords
from .device import resolve_device, reuse_freed_memory
from .embedding_sizes import embedding_sizes
from .feature_cache import FeatureCache, default_root, feature_maps
from .grid import query_sizes
from .heads import FeatureMaps, QueryRead
from .model import VQGramModel, load_model
from .weights import DEFAULT_MODEL, weights_sha256


class Encoded(NamedTuple):
    words: list[dict[str, int]]  # each image's {word: count}
    embedding: torch.Tensor  # (B, D) float32, L2-normalised
    local: list[LocalWords] | None  # each image's local words with their cells (models with a grid head)

    def positions(self, row: int) -> bytes:
        """What a document stores of its local words (b"" for a model without a grid head)."""
        return self.local[row].to_bytes() if self.local is not None else b""


class Tokenizer:
    """Turns images into words and embeddings with one model (and, for VQ models, one k-gram setting)."""

    def __init__(self, model: VQGramModel, kgram: KGramConfig = KGramConfig(), max_size: int = 224,
                 model_path: str = "", model_sha256: str = "", device: str = "cpu"):
        if model.config.vq is None and kgram != KGramConfig():
            raise ValueError("k-gram settings (--kgram, --kernel, --padding, --stride) apply to models with a VQ "
                             "head; this model has none: drop them, or give --model a k-gram model")
        self.device = resolve_device(device)
        if self.device.type == "cpu":
            reuse_freed_memory()
        self.model = model.eval().to(self.device, memory_format=torch.channels_last)
        self.config = TokenizerConfig(model=model.config, kgram=kgram, max_size=max_size)
        self.model_path, self.model_sha256 = model_path, model_sha256

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
    def encode(self, pixels: torch.Tensor, query: QueryRead | None = None) -> Encoded:
        """(B, 3, H, W) normalised pixels -> words, embeddings and local words."""
        return self.encode_features(self.model.features(pixels), query)

    @torch.inference_mode()
    def encode_features(self, maps: FeatureMaps, query: QueryRead | None = None) -> Encoded:
        """Backbone feature maps -> words, embeddings (on the CPU, whatever the device) and local words.

        query: how a query image was read beyond a document: `words` lifted words an image instead of the
        model's own (multiple assignment: an indexed image's words and more), a grid head's query scales.
        """
        out = self.model.from_features(maps, query, self.config.kgram)
        return Encoded(out.words, out.embedding.cpu(), out.local)

    def encode_files(self, files: Sequence[ImageFile], batch_size: int = 32, workers: int | None = None,
                     cache: FeatureCache | None = None, query_words: int | None = None
                     ) -> Iterator[tuple[list[int], Encoded, list[tuple[int, str]]]]:
        """Yield (indices into files, their encodings, [(index, reason) skipped]) per batch, each image read
        as a document (with `query_words` lifted words an image, where given).

        With a feature cache, images it holds skip decoding and the backbone.
        """
        query = QueryRead(words=query_words) if query_words is not None else None
        for ok, maps, bad in feature_maps(self.model, files, self.config.max_size, cache=cache,
                                          batch_size=batch_size, workers=workers):
            yield ok, (self.encode_features(maps, query) if ok else Encoded([], torch.empty(0), None)), bad

    def feature_cache(self, root: str | Path | None = None) -> FeatureCache:
        """The cache of this tokenizer's feature maps under `root` (default ~/.cache/vqgram/features)."""
        return FeatureCache(root or default_root(), self.config.model, self.config.max_size, self.model.stages)

    def encode_image(self, path: str | Path, query_words: int | None = None, as_query: bool = True) -> Encoded:
        """One image, decoded here and read like an indexed image of its shape; `as_query` (a search) also
        reads it at a grid head's query scales, so its local words match documents that hold it zoomed in or
        shrunk. query_words: that many lifted words."""
        spec = self.spec
        pixels = to_tensor(load_resized(path, self.config.max_size, spec.stride, spec.interpolation),
                           spec.mean, spec.std).unsqueeze(0)
        grid = self.config.model.grid
        scales = None
        if as_query and grid is not None:
            sizes = query_sizes(grid, grid.size or self.config.max_size)
            with torch.inference_mode():
                scales = [self.model.stage_maps(to_tensor(img, spec.mean, spec.std).unsqueeze(0))
                          for img in load_sizes(path, sizes, spec.stride, spec.interpolation)]
        query = QueryRead(query_words, scales) if (query_words is not None or scales is not None) else None
        return self.encode(pixels, query)

    def document(self, path: str | Path) -> tuple[dict[str, int], LocalWords | None]:
        """One image as it is indexed: its {word: count}, heaviest first, and its local words with their cells."""
        encoded = self.encode_image(path, as_query=False)
        words = dict(sorted(encoded.words[0].items(), key=lambda kv: (-kv[1], kv[0])))
        return words, encoded.local[0] if encoded.local is not None else None

    def words(self, path: str | Path) -> dict[str, int]:
        """One image's {word: count} as it is indexed, heaviest first."""
        return self.document(path)[0]
