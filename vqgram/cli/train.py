"""`vqgram train vq|mrl|lift|grid`: fit model heads on a folder."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..config import GridConfig, LiftConfig, VQConfig
from .app import cache_options, friendly, main

@main.group()
def train() -> None:
    """Fit model heads on a folder of images."""


@train.command("vq")
@click.argument("folder", type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Model folder to write.")
@click.option("--backbone", default="efficientnet_lite0", help="Backbone name (see the registry).")
@click.option("--weights", default="default", help="'default' ImageNet weights, or a local state-dict file.")
@click.option("--heads", type=click.IntRange(1), default=VQConfig.heads)
@click.option("--codebook-dim", type=click.IntRange(1), default=VQConfig.codebook_dim)
@click.option("--codebook-size", type=click.IntRange(2), default=VQConfig.codebook_size)
@click.option("--commitment-weight", type=float, default=VQConfig.commitment_weight)
@click.option("--dead-code", "threshold_ema_dead_code", type=click.IntRange(0), default=VQConfig.threshold_ema_dead_code)
@click.option("--separate-codebooks/--shared-codebook", default=VQConfig.separate_codebooks,
              help="One codebook per head, or one shared by all heads (the seed study's).")
@click.option("--projection", type=click.Choice(["rotations", "slices"]), default="rotations",
              help="Heads read the top PCA components in their own rotations, or consecutive PCA slices.")
@click.option("--kmeans-passes", type=click.IntRange(1), default=2, help="EMA k-means passes over the cells.")
@click.option("--epochs", type=click.IntRange(0), default=0, help="Distillation epochs after k-means.")
@click.option("--lr", type=float, default=1e-4, help="Distillation learning rate.")
@click.option("--labels", "use_labels", is_flag=True, help="Also learn the folder labels (sub-folder names).")
@click.option("--max-size", type=click.IntRange(32), default=224)
@click.option("--limit", type=click.IntRange(1), default=None, help="Train on at most N images (evenly spread).")
@cache_options
@friendly
def train_vq(folder, out, backbone, weights, heads, codebook_dim, codebook_size, commitment_weight,
             threshold_ema_dead_code, separate_codebooks, projection, kmeans_passes, epochs, lr, use_labels, max_size,
             limit, cache_root):
    """Fit the VQ head on FOLDER (no labels): PCA + k-means codes, optionally refined by distillation.

    Distillation: the quantized map, pooled and read by the backbone's own frozen
    classifier, should give the unquantized map's ImageNet predictions.
    """
    from ..tokenizer.train import train_vq_model

    vq = VQConfig(heads, codebook_dim, codebook_size, commitment_weight, threshold_ema_dead_code,
                  separate_codebooks=separate_codebooks)
    card = train_vq_model(Path(folder), Path(out), backbone=backbone, weights=weights, vq=vq,
                          projection=projection, kmeans_passes=kmeans_passes, epochs=epochs, lr=lr,
                          use_labels=use_labels, max_size=max_size, limit=limit, cache_root=cache_root)
    click.echo(json.dumps(card, indent=2))


@train.command("mrl")
@click.argument("folder", type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Model folder to write.")
@click.option("--model", "base", type=click.Path(file_okay=False), default=None,
              help="Model whose backbone and VQ head to keep (default: the packaged model).")
@click.option("--dim", type=click.IntRange(8), default=1024, help="Embedding width.")
@click.option("--efficient", is_flag=True, help="One classifier shared by every prefix (MRL-E).")
@click.option("--relational-weight", type=click.FloatRange(0), default=1.0,
              help="Weight of the in-batch term that makes each prefix rank like the teacher.")
@click.option("--epochs", type=click.IntRange(1), default=30)
@click.option("--lr", type=float, default=1e-3)
@click.option("--labels", "use_labels", is_flag=True, help="Learn the folder labels instead of distilling.")
@click.option("--max-size", type=click.IntRange(32), default=224)
@click.option("--limit", type=click.IntRange(1), default=None, help="Train on at most N images (evenly spread).")
@cache_options
@friendly
def train_mrl(folder, out, base, dim, efficient, relational_weight, epochs, lr, use_labels, max_size, limit,
              cache_root):
    """Fit a Matryoshka embedding head on FOLDER (nested loss; no labels needed)."""
    from ..config import MatryoshkaConfig
    from ..tokenizer.train import train_mrl_model

    config = MatryoshkaConfig(dim=dim, efficient=efficient, relational_weight=relational_weight,
                              relational_target="teacher")
    card = train_mrl_model(Path(folder), Path(out), base=Path(base) if base else None, config=config, epochs=epochs,
                           lr=lr, use_labels=use_labels, max_size=max_size, limit=limit, cache_root=cache_root)
    click.echo(json.dumps(card, indent=2))


@train.command("lift")
@click.argument("folder", type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Model folder to write.")
@click.option("--model", "base", type=click.Path(file_okay=False), default=None,
              help="Model whose backbone and Matryoshka head to keep (default: the packaged model).")
@click.option("--class-weight", type=click.FloatRange(0, 1, max_open=True), default=LiftConfig.class_weight,
              show_default=True, help="Weight of the class-distilled embedding beside GeM in the descriptor.")
@click.option("--dims", type=click.IntRange(8), default=LiftConfig.dims, show_default=True,
              help="PCA components kept: the dense embedding's width.")
@click.option("--atoms", type=click.IntRange(2), default=LiftConfig.atoms, show_default=True,
              help="Vocabulary size.")
@click.option("--active", type=click.IntRange(1), default=LiftConfig.active, show_default=True,
              help="Words per image.")
@click.option("--seed", type=int, default=LiftConfig.seed, show_default=True,
              help="Seed of the lift matrix (the whitening's copies use seed + 1).")
@click.option("--whiten-pairs", type=click.IntRange(0), default=LiftConfig.whiten_pairs, show_default=True,
              help="Whiten the GeM block against edited copies of N images of FOLDER (0: plain PCA).")
@click.option("--whiten-shrink", type=click.FloatRange(0, 1), default=LiftConfig.whiten_shrink,
              show_default=True, help="Shrinkage of the copies' covariance toward its mean eigenvalue.")
@click.option("--invariance-hidden", type=click.IntRange(0), default=LiftConfig.invariance_hidden, show_default=True,
              help="Train a residual MLP of this width on the --whiten-pairs copies (0: none).")
@click.option("--invariance-epochs", type=click.IntRange(1), default=LiftConfig.invariance_epochs, show_default=True)
@click.option("--invariance-relational", type=click.FloatRange(0), default=LiftConfig.invariance_relational,
              show_default=True, help="Weight of relational distillation from the linear embedding.")
@click.option("--max-size", type=click.IntRange(32), default=224)
@click.option("--limit", type=click.IntRange(1), default=None, help="Fit on at most N images (evenly spread).")
@cache_options
@friendly
def train_lift(folder, out, base, class_weight, dims, atoms, active, seed, whiten_pairs, whiten_shrink,
               invariance_hidden, invariance_epochs, invariance_relational, max_size, limit, cache_root):
    """Fit a lift head on FOLDER (no labels): sparse lifted words and a PCA embedding of GeM + class features."""
    from ..tokenizer.train_lift import train_lift_model

    config = LiftConfig(class_weight=class_weight, dims=dims, atoms=atoms, active=active, seed=seed,
                        whiten_pairs=whiten_pairs, whiten_shrink=whiten_shrink, invariance_hidden=invariance_hidden,
                        invariance_epochs=invariance_epochs, invariance_relational=invariance_relational)
    card = train_lift_model(Path(folder), Path(out), base=Path(base) if base else None, config=config,
                            max_size=max_size, limit=limit, cache_root=cache_root)
    click.echo(json.dumps(card, indent=2))


@train.command("grid")
@click.argument("folder", type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Model folder to write.")
@click.option("--model", "base", type=click.Path(file_okay=False), default=None,
              help="Model whose backbone and other heads to keep (default: the packaged model).")
@click.option("--stage", type=click.IntRange(0), default=GridConfig.stage, show_default=True,
              help="Backbone stage whose cells are coded (efficientnet_lite0: 2 = stride 8, 4 = stride 16).")
@click.option("--dims", type=click.IntRange(1), default=GridConfig.dims, show_default=True,
              help="Whitened PCA components of a cell.")
@click.option("--coarse", type=click.IntRange(2), default=GridConfig.coarse, show_default=True)
@click.option("--fine", type=click.IntRange(1), default=GridConfig.fine, show_default=True,
              help="Words: coarse x fine.")
@click.option("--query-scales", default=",".join(map(str, GridConfig.query_scales)), show_default=True,
              help="Sizes a query image is read at, as multiples of the documents' size, comma-separated.")
@click.option("--weight", type=click.FloatRange(0), default=GridConfig.weight, show_default=True,
              help="Boost of local words against the global ones in a words query.")
@click.option("--images", type=click.IntRange(1), default=3000, show_default=True,
              help="Images of FOLDER (seeded picks) whose cells are sampled.")
@click.option("--cells", type=click.IntRange(1), default=400_000, show_default=True, help="Cells sampled in all.")
@click.option("--seed", type=int, default=GridConfig.seed, show_default=True)
@click.option("--max-size", type=click.IntRange(32), default=224)
@cache_options
@friendly
def train_grid(folder, out, base, stage, dims, coarse, fine, query_scales, weight, images, cells, seed, max_size,
               cache_root):
    """Fit a grid head on FOLDER (no labels): local words, one per cell of a backbone stage, beside the
    base model's heads."""
    from ..tokenizer.train_grid import train_grid_model

    try:
        scales = tuple(float(s) for s in query_scales.split(","))
    except ValueError:
        raise click.BadParameter(f"{query_scales!r} is not a comma-separated list of numbers",
                                 param_hint="--query-scales") from None
    config = GridConfig(stage=stage, dims=dims, coarse=coarse, fine=fine, query_scales=scales, weight=weight,
                        seed=seed)
    card = train_grid_model(Path(folder), Path(out), base=Path(base) if base else None, config=config,
                            max_size=max_size, images=images, cells=cells, cache_root=cache_root)
    click.echo(json.dumps(card["grid"], indent=2))
