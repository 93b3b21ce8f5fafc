"""Fit a grid head (grid.py) on a folder of images: no labels, no gradient, seconds after the features.

The cells of `images` seeded picks of the folder (their stage maps, read like documents) are sampled,
`cells` of them in all; their mean and PCA (whitened, `dims` components) give `mean` and `proj`; k-means
gives the `coarse` centroids of the projected, L2-normalised cells, and k-means of what each cell leaves
after its coarse centroid (by cosine) gives the `fine` centroids. Every draw is seeded by the config's seed,
so the same folder and settings rebuild the same head.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..config import GridConfig, to_dict
from ..images import find_images, probe_all
from ..progress import progress_bar
from .feature_cache import FeatureCache, feature_maps
from .grid import GridHead
from .model import VQGramModel, load_model, save_model
from .weights import DEFAULT_MODEL, read_card


def sample_cells(model: VQGramModel, folder: Path, images: int, cells: int, max_size: int, seed: int,
                 cache: FeatureCache | None = None, workers: int | None = None) -> torch.Tensor:
    """(cells, C) float64 stage-map cells of `images` seeded picks of `folder`, `cells // images` from each."""
    paths = find_images(Path(folder))
    picks = np.random.default_rng(seed).choice(len(paths), min(images, len(paths)), replace=False)
    files, _ = probe_all([paths[i] for i in sorted(picks.tolist())], Path(folder))
    if not files:
        raise ValueError(f"no readable images in {folder} to fit the grid head on")
    stage, per_image = model.grid.config.stage, max(1, cells // len(files))
    gen = torch.Generator().manual_seed(seed)
    taken = [None] * len(files)
    with progress_bar(total=len(files), desc="cells", unit="img") as bar:
        for ok, maps, bad in feature_maps(model, files, max_size, cache=cache, workers=workers):
            if ok:
                grid = maps.stages[stage].double()
                flat = grid.permute(0, 2, 3, 1).reshape(len(ok), -1, grid.shape[1])
                for row, i in enumerate(ok):
                    taken[i] = flat[row, torch.randperm(flat.shape[1], generator=gen)[:per_image]]
            bar.update(len(ok) + len(bad))
    return torch.cat([t for t in taken if t is not None])


def kmeans(x: torch.Tensor, k: int, seed: int, iterations: int = 25, chunk: int = 65536) -> torch.Tensor:
    """(k, d) centroids of `x` (N, d) by Lloyd's algorithm from `k` seeded picks of `x`; a centroid left
    without points is moved to a seeded pick."""
    gen = torch.Generator().manual_seed(seed)
    centroids = x[torch.randperm(len(x), generator=gen)[:k]].clone()
    for _ in range(iterations):
        assign = torch.cat([_nearest(x[i:i + chunk], centroids) for i in range(0, len(x), chunk)])
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k)
        empty = counts == 0
        centroids = sums / counts.clamp(min=1).unsqueeze(1)
        if empty.any():
            centroids[empty] = x[torch.randint(len(x), (int(empty.sum()),), generator=gen)]
    return centroids


def _nearest(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    return (x @ centroids.T - 0.5 * (centroids * centroids).sum(dim=1)).argmax(dim=1)


@torch.no_grad()
def fit_grid(model: VQGramModel, folder: Path, max_size: int = 224, images: int = 3000, cells: int = 400_000,
             cache_root: Path | None = None, workers: int | None = None) -> dict:
    """Fit `model.grid` in place (see the module docstring); returns the facts for the model card."""
    head: GridHead = model.grid
    c = head.config
    start = time.time()
    cache = FeatureCache(cache_root, model.config, max_size, model.stages) if cache_root else None
    x = sample_cells(model, folder, images, cells, max_size, c.seed, cache, workers)
    mean = x.mean(dim=0)
    values, vectors = torch.linalg.eigh((x - mean).T @ (x - mean) / len(x))
    order = values.argsort(descending=True)[: c.dims]
    head.mean.copy_(mean.float())
    head.proj.copy_((vectors[:, order] / values[order].clamp(min=1e-12).sqrt()).float())
    y = head.project(x)
    head.coarse.copy_(kmeans(y, c.coarse, c.seed).float())
    first = (y @ head.coarse.double().T).argmax(dim=1)
    head.fine.copy_(kmeans(y - head.coarse.double()[first], c.fine, c.seed + 1).float())
    used = torch.unique(head.quantize(y)).numel()
    return {"trained_on": str(Path(folder).resolve()), "images": images, "cells": len(x), "max_size": max_size,
            "words_used_by_training_cells": used, "fit_seconds": round(time.time() - start, 1)}


def train_grid_model(folder: Path, out: Path, *, base: Path | None = None, config: GridConfig = GridConfig(),
                     max_size: int = 224, images: int = 3000, cells: int = 400_000, workers: int | None = None,
                     cache_root: Path | None = None) -> dict:
    """`base` (default: the packaged model) with a grid head fitted on `folder` beside its other heads; saved
    at `out`. Returns the model card."""
    base_model = load_model(base)
    model = VQGramModel(replace(base_model.config, grid=config))
    model.load_state_dict({k: v for k, v in base_model.heads_state().items() if not k.startswith("grid.")},
                          strict=False)
    model.eval()
    facts = fit_grid(model, folder, max_size, images, cells, cache_root, workers)
    card = read_card(base or DEFAULT_MODEL)["card"]
    card["grid"] = {**facts, "config": to_dict(config), "base": str(Path(base).resolve()) if base else
                    "packaged default", "recipe": f"stage {config.stage} cells of {images} seeded images; "
                    f"whitened PCA to {config.dims} dims; k-means {config.coarse} coarse x {config.fine} fine "
                    "(residual) centroids"}
    save_model(model, out, card)
    return card
