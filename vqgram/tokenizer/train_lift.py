"""Fit a lift head on a folder (no labels): the PCA of its images' descriptors.

The new model keeps the base model's backbone and Matryoshka head (its
class-distilled embedding is part of the descriptor) and drops its VQ head:
its words are the lifted ones. Fitting is one pass of the frozen backbone
(or the feature cache) and one eigendecomposition: seconds once cached.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch

from ..config import LiftConfig, to_dict
from ..progress import progress_bar
from .feature_cache import FeatureCache, feature_maps
from .model import DEFAULT_MODEL, VQGramModel, load_model, read_card, save_model
from .train import scan_folder


@torch.inference_mode()
def descriptors(model: VQGramModel, files, max_size: int, cache: FeatureCache | None = None,
                workers: int = 2) -> torch.Tensor:
    """(N, in_dim) float64 lift descriptors of the readable `files`."""
    rows = []
    with progress_bar(total=len(files), desc="descriptors", unit="img") as bar:
        for ok, fmap, bad in feature_maps(model, files, max_size, cache=cache, workers=workers):
            if ok:
                rows.append(model.lift_descriptor(fmap).double())
            bar.update(len(ok) + len(bad))
    if not rows:
        raise ValueError("no readable images to fit the lift head on")
    return torch.cat(rows)


@torch.inference_mode()
def fit_lift(model: VQGramModel, x: torch.Tensor) -> dict:
    """Set model.lift's mean and PCA basis from descriptors `x`; returns facts for the model card."""
    lift = model.lift
    mean = x.mean(0)
    eigval, eigvec = torch.linalg.eigh(torch.cov((x - mean).T))
    order = eigval.argsort(descending=True)[: lift.config.dims]
    lift.mean.copy_(mean.float())
    lift.basis.copy_(eigvec[:, order].float())
    words = []  # (active,) word ids per image, in chunks: a (N, atoms) count matrix would take GBs
    for chunk in x.float().split(512):
        words.append(lift(chunk)[1].topk(lift.config.active, dim=-1).indices)
    words = torch.cat(words)
    df = torch.bincount(words.flatten(), minlength=lift.config.atoms).double() / len(x)
    return {"images": len(x),
            "variance_kept": round((eigval[order].sum() / eigval.sum()).item(), 4),
            "words_per_image": lift.config.active,
            "median_word_df": round(df[words].median(dim=1).values.median().item(), 4)}


def train_lift_model(folder: Path, out: Path, *, base: Path | None = None, config: LiftConfig = LiftConfig(),
                     max_size: int = 224, limit: int | None = None, workers: int = 2,
                     cache_root: Path | None = None) -> dict:
    """Fit a lift head on `folder` over `base`'s backbone and Matryoshka head; save the model at `out`."""
    base_model = load_model(base)
    if config.class_weight > 0 and base_model.mrl is None:
        raise ValueError(f"--class-weight {config.class_weight} needs a base model with a Matryoshka head; "
                         "give --model one, or --class-weight 0")
    model = VQGramModel(replace(base_model.config, vq=None, lift=config))
    model.load_state_dict({k: v for k, v in base_model.heads_state().items() if k.startswith("mrl.")}, strict=False)
    model.eval()
    files = scan_folder(folder, limit)
    disk = FeatureCache(cache_root, model.config, max_size) if cache_root else None
    start = time.time()
    facts = fit_lift(model, descriptors(model, files, max_size, disk, workers))
    card = read_card(base or DEFAULT_MODEL)["card"]
    card["lift"] = {"trained_on": str(Path(folder).resolve()), "max_size": max_size, "config": to_dict(config),
                    "base": str(Path(base).resolve()) if base else "packaged default",
                    "recipe": "PCA of [GeM ; class-distilled Matryoshka embedding] descriptors; words are the "
                              "top activations of a fixed Gaussian lift of the centred PCA coordinates; no labels",
                    "train_seconds": round(time.time() - start, 1), "date": time.strftime("%Y-%m-%d"), **facts}
    save_model(model, out, card)
    return card["lift"]
