"""Backbone feature maps on disk, keyed by what makes them and by file content.

Evaluation, sweeps and training encode the same folder many times with other
heads, k-gram settings or modes, and the backbone is ~90 % of that cost. A
feature map depends only on the backbone, its weights and the input size, so
those name the cache folder (`key.json` inside says which), and an image's
content hash names its entry: a changed file misses, a renamed one hits.
Entries are float16 `.npy` files (C, H, W), written atomically, so a killed
run leaves no half-written entry.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from ..cache_dir import cache_dir
from ..config import ModelConfig
from ..files import atomic_file
from ..images import ImageFile, bucket_batches, file_sha, iter_batches
from .device import decode_workers


def default_root() -> Path:
    """$VQGRAM_CACHE/features, else ~/.cache/vqgram/features."""
    return cache_dir("features")


class FeatureCache:
    """sha -> (C, H, W) float16 feature map, for one backbone, weights and input size."""

    def __init__(self, root: str | Path, model: ModelConfig, max_size: int):
        key = {"backbone": model.backbone, "backbone_weights": model.backbone_weights, "max_size": max_size}
        if model.backbone_weights not in (None, "default"):
            key["weights_sha1"] = file_sha(Path(model.backbone_weights))
        name = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        self.folder = Path(root) / f"{model.backbone}-{max_size}-{name}"
        self.folder.mkdir(parents=True, exist_ok=True)
        key_file = self.folder / "key.json"  # for people reading the folder; the name already holds the key
        if not key_file.is_file():
            key_file.write_text(json.dumps(key, indent=2, sort_keys=True) + "\n")

    def _path(self, sha: str) -> Path:
        return self.folder / sha[:2] / f"{sha}.npy"

    def __contains__(self, sha: str) -> bool:
        return self._path(sha).is_file()

    def get(self, shas: list[str]) -> torch.Tensor:
        """Stacked maps of `shas` (all of one shape: one aspect-ratio bucket)."""
        return torch.from_numpy(np.stack([np.load(self._path(s)) for s in shas]))

    def put(self, shas: list[str], fmaps: torch.Tensor) -> None:
        arrays = fmaps.to(torch.float16).cpu().numpy()
        for sha, array in zip(shas, arrays):
            path = self._path(sha)
            path.parent.mkdir(exist_ok=True)
            with atomic_file(path) as f:
                np.save(f, np.ascontiguousarray(array))


@torch.inference_mode()
def feature_maps(model, files: Sequence[ImageFile], max_size: int, *, cache: FeatureCache | None = None,
                 batch_size: int = 32, workers: int | None = None
                 ) -> Iterator[tuple[list[int], torch.Tensor | None, list[tuple[int, str]]]]:
    """Yield (indices into files, their (b, C, h, w) maps, [(index, reason) unreadable]) per batch.

    With a cache, entries it holds are loaded (no decoding), the rest go
    through the backbone and are stored; every map is then float16-rounded,
    so a hit and a miss give the same codes. `workers`: decoding processes
    (None: `decode_workers` for the model's device).
    """
    spec = model.spec
    hits = [i for i, f in enumerate(files) if cache is not None and f.sha in cache]
    if hits:
        held = [files[i] for i in hits]
        for batch in bucket_batches(held, max_size, spec.stride, batch_size):
            yield [hits[j] for j in batch], cache.get([held[j].sha for j in batch]).float(), []
    taken = set(hits)
    misses = [i for i in range(len(files)) if i not in taken]
    todo = [files[i] for i in misses]
    for pixels, ok, bad in iter_batches(todo, max_size=max_size, multiple=spec.stride, mean=spec.mean,
                                        std=spec.std, resample=spec.interpolation,
                                        batch_size=batch_size,
                                        workers=decode_workers(model.device) if workers is None else workers):
        fmap = model.features(pixels) if ok else None
        if cache is not None and ok:
            cache.put([todo[j].sha for j in ok], fmap)
            fmap = fmap.half().float()
        yield [misses[j] for j in ok], fmap, [(misses[j], reason) for j, reason in bad]
