"""A training-free baseline: GeM-pooled backbone feature maps (Radenović et al., "Fine-tuning CNN image
retrieval with no human annotation", TPAMI 2018), L2-normalised, ranked by cosine.

It reads the same feature maps as the model under test (same backbone, same
input size, the same feature cache), so the gap between it and the model's
modes is what the heads add or lose.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..images import ImageFile, probe
from ..tokenizer.encoder import Tokenizer
from ..tokenizer.feature_cache import FeatureCache, feature_maps

GEM_P = 3.0


def gem(fmap: torch.Tensor, p: float = GEM_P) -> torch.Tensor:
    """(B, C, H, W) -> (B, C): (mean over cells of x^p)^(1/p), x clamped at 1e-6, then L2-normalised."""
    return F.normalize(fmap.float().clamp(min=1e-6).pow(p).mean(dim=(2, 3)).pow(1 / p), dim=1)


@torch.inference_mode()
def gem_vectors(tokenizer: Tokenizer, paths: Sequence[str], cache: FeatureCache | None = None,
                p: float = GEM_P) -> np.ndarray:
    """(N, C) float32 GeM vectors of images at the tokenizer's input size; zeros for an unreadable image."""
    with ThreadPoolExecutor(4) as pool:  # hashing and header parsing release the GIL
        probed = list(pool.map(lambda path: probe(Path(path), Path(path).parent), paths))
    readable = [i for i, f in enumerate(probed) if isinstance(f, ImageFile)]
    files = [probed[i] for i in readable]
    out = np.zeros((len(paths), tokenizer.spec.channels), np.float32)
    for ok, maps, _ in feature_maps(tokenizer.model, files, tokenizer.config.max_size, cache=cache):
        if ok:
            out[[readable[i] for i in ok]] = gem(maps.final, p).numpy()
    return out


def gem_scores(tokenizer: Tokenizer, db: Sequence[str], queries: Sequence[str] | None = None,
               self_ids: np.ndarray | None = None, cache: FeatureCache | None = None) -> np.ndarray:
    """(Q, N) cosine scores: `queries` (paths) or, for leave-one-out, database rows `self_ids`."""
    db_vec = gem_vectors(tokenizer, db, cache)
    q_vec = db_vec[self_ids] if queries is None else gem_vectors(tokenizer, queries, cache)
    return q_vec @ db_vec.T
