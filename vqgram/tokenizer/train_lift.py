"""Fit a lift head on a folder (no labels): the PCA of its images' descriptors.

The new model keeps the base model's backbone and Matryoshka head (its
class-distilled embedding is part of the descriptor) and drops its VQ head:
its words are the lifted ones. With `whiten_pairs`, edited copies of some of
the folder's images are made in a temporary folder first, and the GeM block
is whitened against what the edits change (learned whitening) before the PCA,
so that an image and its copy land closer than two different images; with
`invariance_hidden`, a residual MLP is then trained on the same pairs
(`train_invariance.py`). Fitting is one pass of the frozen backbone (or the
feature cache) and two eigendecompositions: seconds once cached, plus about a
minute of MLP training.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from ..config import LiftConfig, to_dict
from ..copies import EDITS, make_copies
from ..images import ImageFile, probe
from ..progress import progress_bar
from .feature_cache import FeatureCache, feature_maps
from .model import DEFAULT_MODEL, VQGramModel, load_model, read_card, save_model
from .train import scan_folder
from .train_invariance import train_invariance


@torch.inference_mode()
def descriptors(model: VQGramModel, files, max_size: int, cache: FeatureCache | None = None,
                workers: int | None = None) -> torch.Tensor:
    """(N, in_dim) float64 lift descriptors of the readable `files`, in the order of `files`
    (`feature_maps` yields cache hits first and groups images by shape)."""
    rows, order = [], []
    with progress_bar(total=len(files), desc="descriptors", unit="img") as bar:
        for ok, maps, bad in feature_maps(model, files, max_size, cache=cache, workers=workers):
            if ok:
                rows.append(model.lift_descriptor(maps.final).double())
                order += ok
            bar.update(len(ok) + len(bad))
    if not rows:
        raise ValueError("no readable images to fit the lift head on")
    return torch.cat(rows)[torch.tensor(order).argsort()]


def edit_pairs(model: VQGramModel, folder: Path, max_size: int, cache: FeatureCache | None = None,
               workers: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Descriptors of originals (n, in_dim) and of their edited copies (m, in_dim), and each copy's original
    (m,): the originals are `whiten_pairs` seeded picks of `folder`, edited by every `copies.EDITS` into a
    temporary folder (seed `seed + 1`)."""
    config = model.lift.config
    with tempfile.TemporaryDirectory(prefix="vqgram-pairs-") as tmp:
        manifest = make_copies([Path(folder)], Path(tmp), originals=config.whiten_pairs, seed=config.seed + 1)
        originals = manifest["originals"]
        paths = [Path(tmp, "queries", o["name"], f"{o['name']}.jpg") for o in originals]
        paths += [Path(tmp, "db", o["name"], f"{edit}.jpg") for o in originals for edit in o["copies"]]
        files = [probe(p, Path(tmp)) for p in paths]
        x = descriptors(model, [f for f in files if isinstance(f, ImageFile)], max_size, cache, workers)
    if len(x) != len(files):  # our own JPEGs: not expected, but a shifted row would pair the wrong images
        raise ValueError(f"{len(files) - len(x)} of {len(files)} edited copies did not decode; "
                         "cannot fit the whitening")
    n = len(originals)
    owner = torch.arange(n).repeat_interleave(torch.tensor([len(o["copies"]) for o in originals]))
    return x[:n], x[n:], owner


def pair_whitener(diff: torch.Tensor, shrink: float) -> torch.Tensor:
    """Symmetric W with W C W = I, C the second moment of `diff`'s rows shrunk toward its mean eigenvalue."""
    c = diff.T @ diff / len(diff)
    c = (1 - shrink) * c + shrink * c.trace() / len(c) * torch.eye(len(c), dtype=c.dtype)
    val, vec = torch.linalg.eigh(c)
    return vec @ torch.diag(val.clamp(min=1e-12).rsqrt()) @ vec.T


@torch.inference_mode()
def fit_lift(model: VQGramModel, x: torch.Tensor, pair_diff: torch.Tensor | None = None) -> dict:
    """Set model.lift's mean and basis from descriptors `x` (and, to whiten the GeM block, the differences
    original - copy of `edit_pairs`); returns facts for the model card."""
    lift = model.lift
    mean = x.mean(0)
    whiten = torch.eye(x.shape[1], dtype=x.dtype)
    if pair_diff is not None:
        c = model.spec.channels  # the GeM block leads the descriptor
        w = pair_whitener(pair_diff[:, :c], lift.config.whiten_shrink)
        centred = x[:, :c] - mean[:c]
        whiten[:c, :c] = w * centred.norm(dim=1).mean() / (centred @ w).norm(dim=1).mean()  # keeps its weight
    eigval, eigvec = torch.linalg.eigh(torch.cov(((x - mean) @ whiten).T))
    order = eigval.argsort(descending=True)[: lift.config.dims]
    lift.mean.copy_(mean.float())
    lift.basis.copy_((whiten @ eigvec[:, order]).float())
    return {"images": len(x), "variance_kept": round((eigval[order].sum() / eigval.sum()).item(), 4)}


@torch.inference_mode()
def word_facts(lift, x: torch.Tensor) -> dict:
    """Words an image and the median document frequency of an image's words, over descriptors `x`."""
    words = []  # (active,) word ids per image, in chunks: a (N, atoms) count matrix would take GBs
    for chunk in x.float().split(512):
        words.append(lift(chunk)[1].topk(lift.config.active, dim=-1).indices)
    words = torch.cat(words)
    df = torch.bincount(words.flatten(), minlength=lift.config.atoms).double() / len(x)
    return {"words_per_image": lift.config.active,
            "median_word_df": round(df[words].median(dim=1).values.median().item(), 4)}


def train_lift_model(folder: Path, out: Path, *, base: Path | None = None, config: LiftConfig = LiftConfig(),
                     max_size: int = 224, limit: int | None = None, workers: int | None = None,
                     cache_root: Path | None = None) -> dict:
    """Fit a lift head on `folder` over `base`'s backbone and Matryoshka head; save the model at `out`."""
    base_model = load_model(base)
    if config.class_weight > 0 and base_model.mrl is None:
        raise ValueError(f"--class-weight {config.class_weight} needs a base model with a Matryoshka head; "
                         "give --model one, or --class-weight 0")
    model = VQGramModel(replace(base_model.config, vq=None, grid=None, lift=config))
    model.load_state_dict({k: v for k, v in base_model.heads_state().items() if k.startswith("mrl.")}, strict=False)
    model.eval()
    files = scan_folder(folder, limit)
    disk = FeatureCache(cache_root, model.config, max_size) if cache_root else None
    start = time.time()
    pairs = edit_pairs(model, folder, max_size, disk, workers) if config.whiten_pairs else None
    x = descriptors(model, files, max_size, disk, workers)
    facts = fit_lift(model, x, pairs[0][pairs[2]] - pairs[1] if pairs else None)
    if config.invariance_hidden:
        facts["invariance"] = train_invariance(model.lift, x, *pairs)
    facts.update(word_facts(model.lift, x))
    card = read_card(base or DEFAULT_MODEL)["card"]
    whitening = ("GeM block whitened by the covariance of original - edited copy differences "
                 f"({config.whiten_pairs} originals x {len(EDITS)} edits, shrink {config.whiten_shrink}), then "
                 if config.whiten_pairs else "")
    invariance = (f"; plus a residual MLP (width {config.invariance_hidden}) trained on the same pairs: InfoNCE "
                  f"original/copy against other images (temperature {config.invariance_temperature}) + "
                  f"{config.invariance_relational} x relational distillation from the linear embedding, "
                  f"{config.invariance_epochs} epochs" if config.invariance_hidden else "")
    card["lift"] = {"trained_on": str(Path(folder).resolve()), "max_size": max_size, "config": to_dict(config),
                    "base": str(Path(base).resolve()) if base else "packaged default",
                    "recipe": whitening + "PCA of [GeM ; class-distilled Matryoshka embedding] descriptors; words "
                              "are the top activations of a fixed Gaussian lift of the centred PCA coordinates"
                              + invariance + "; no labels",
                    "train_seconds": round(time.time() - start, 1), "date": time.strftime("%Y-%m-%d"), **facts}
    save_model(model, out, card)
    return card["lift"]
