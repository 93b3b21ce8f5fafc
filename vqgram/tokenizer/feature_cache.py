"""Backbone feature maps on disk, keyed by what makes them and by file content.

Evaluation, sweeps and training encode the same folder many times with other
heads, k-gram settings or modes, and the backbone is ~90 % of that cost. A
feature map depends only on the backbone, its weights and the input size, so
those name the cache folder (`key.json` inside says which), and an image's
content hash names its entry: a changed file misses, a renamed one hits. The
stage outputs a grid head reads are kept in a folder of their own per stage
beside it. Entries are float16 `.npy` files (C, H, W), written atomically, so
a killed run leaves no half-written entry.
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
from .heads import FeatureMaps


def default_root() -> Path:
    """$VQGRAM_CACHE/features, else ~/.cache/vqgram/features."""
    return cache_dir("features")


class _MapFolder:
    """sha -> one (C, H, W) float16 map, in one folder named by its key."""

    def __init__(self, root: Path, prefix: str, key: dict):
        name = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        self.folder = Path(root) / f"{prefix}-{name}"
        self.folder.mkdir(parents=True, exist_ok=True)
        key_file = self.folder / "key.json"  # for people reading the folder; the name already holds the key
        if not key_file.is_file():
            key_file.write_text(json.dumps(key, indent=2, sort_keys=True) + "\n")

    def path(self, sha: str) -> Path:
        return self.folder / sha[:2] / f"{sha}.npy"

    def get(self, shas: list[str]) -> torch.Tensor:
        return torch.from_numpy(np.stack([np.load(self.path(s)) for s in shas]))

    def put(self, shas: list[str], maps: torch.Tensor) -> None:
        arrays = maps.to(torch.float16).cpu().numpy()
        for sha, array in zip(shas, arrays):
            path = self.path(sha)
            path.parent.mkdir(exist_ok=True)
            with atomic_file(path) as f:
                np.save(f, np.ascontiguousarray(array))


class FeatureCache:
    """sha -> FeatureMaps (the final map and `stages`' outputs), for one backbone, weights and input size."""

    def __init__(self, root: str | Path, model: ModelConfig, max_size: int, stages: tuple[int, ...] = ()):
        key = {"backbone": model.backbone, "backbone_weights": model.backbone_weights, "max_size": max_size}
        if model.backbone_weights not in (None, "default"):
            key["weights_sha1"] = file_sha(Path(model.backbone_weights))
        prefix = f"{model.backbone}-{max_size}"
        self._final = _MapFolder(root, prefix, key)
        self.folder = self._final.folder
        self._stages = {i: _MapFolder(root, f"{prefix}-stage{i}", {**key, "stage": i}) for i in stages}

    def __contains__(self, sha: str) -> bool:
        return all(f.path(sha).is_file() for f in (self._final, *self._stages.values()))

    def get(self, shas: list[str]) -> FeatureMaps:
        """Stacked maps of `shas` (all of one shape: one aspect-ratio bucket)."""
        return FeatureMaps(self._final.get(shas), {i: f.get(shas) for i, f in self._stages.items()})

    def put(self, shas: list[str], maps: FeatureMaps) -> None:
        self._final.put(shas, maps.final)
        for i, folder in self._stages.items():
            folder.put(shas, maps.stages[i])


@torch.inference_mode()
def feature_maps(model, files: Sequence[ImageFile], max_size: int, *, cache: FeatureCache | None = None,
                 batch_size: int = 32, workers: int | None = None
                 ) -> Iterator[tuple[list[int], FeatureMaps | None, list[tuple[int, str]]]]:
    """Yield (indices into files, their FeatureMaps, [(index, reason) unreadable]) per batch.

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
            maps = cache.get([held[j].sha for j in batch])
            yield [hits[j] for j in batch], _float(maps), []
    taken = set(hits)
    misses = [i for i in range(len(files)) if i not in taken]
    todo = [files[i] for i in misses]
    for pixels, ok, bad in iter_batches(todo, max_size=max_size, multiple=spec.stride, mean=spec.mean,
                                        std=spec.std, resample=spec.interpolation,
                                        batch_size=batch_size,
                                        workers=decode_workers(model.device) if workers is None else workers):
        maps = model.features(pixels) if ok else None
        if cache is not None and ok:
            cache.put([todo[j].sha for j in ok], maps)
            maps = _float(maps, rounded=True)
        yield [misses[j] for j in ok], maps, [(misses[j], reason) for j, reason in bad]


def _float(maps: FeatureMaps, rounded: bool = False) -> FeatureMaps:
    """float32 maps; `rounded`: through float16 first, as a cache hit gives them."""
    as_float = (lambda m: m.half().float()) if rounded else (lambda m: m.float())
    return FeatureMaps(as_float(maps.final), {i: as_float(m) for i, m in maps.stages.items()})
