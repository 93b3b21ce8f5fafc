"""How far can any ranking of these backbone features go on imagenette? (docs/RESULTS.md, "The hybrid target").

    python -m studies.ceiling_study [--data DIR] [--queries 2000]

Scores the same 2,000 leave-one-out queries as studies/fusion_study.py with
rankings that need no index: cosine on the backbone's pooled features, cosine
on its ImageNet class probabilities (what the Matryoshka head is distilled
from), and, as a ceiling that sees labels, cosine on the 10-class
probabilities of a linear probe fit on the pooled features with 5-fold
cross-fitting (each image scored by a probe that never saw it). Backbone maps
come from the feature cache. Prints numbers; not a test.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from studies.fusion_study import loo_map
from vqgram.tokenizer.encoder import Tokenizer
from vqgram.tokenizer.train import cache_features, scan_folder


def cosine(x: np.ndarray, qs: np.ndarray) -> np.ndarray:
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return x[qs] @ x.T


def cross_fitted_probe(x: torch.Tensor, labels: np.ndarray, folds: int = 5, l2: float = 1e-3) -> np.ndarray:
    """Each row's class probabilities from a multinomial logistic regression fit on the other folds."""
    fold = np.random.default_rng(1).integers(0, folds, len(labels))
    classes = int(labels.max()) + 1
    out = np.zeros((len(labels), classes), np.float32)
    for f in range(folds):
        train = torch.from_numpy(fold != f)
        probe = torch.nn.Linear(x.shape[1], classes)
        opt = torch.optim.LBFGS(probe.parameters(), max_iter=200)
        y = torch.from_numpy(labels)[train]

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(probe(x[train]), y) + l2 * probe.weight.square().sum()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            out[~train.numpy()] = probe(x[~train]).softmax(1).numpy()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/imagenette/train"))
    ap.add_argument("--queries", type=int, default=2000)
    args = ap.parse_args()
    tok = Tokenizer.from_model(None)
    files = scan_folder(args.data)
    feats = cache_features(tok.model, files, tok.config.max_size, keep_maps=False, disk=tok.feature_cache())
    pooled, logits = torch.cat(feats.pooled), torch.cat(feats.logits)
    labels = torch.cat(feats.labels).numpy()
    qs = np.random.default_rng(0).choice(len(labels), args.queries, replace=False)
    probe = cross_fitted_probe(pooled, labels)
    print(f"{len(labels)} images, {len(qs)} queries")
    print(f"cosine, pooled features: {loo_map(cosine(pooled.numpy(), qs), qs, labels):.4f}")
    print(f"cosine, ImageNet class probabilities: {loo_map(cosine(logits.softmax(1).numpy(), qs), qs, labels):.4f}")
    print(f"linear probe on folder labels (5-fold cross-fit): accuracy {(probe.argmax(1) == labels).mean():.4f}, "
          f"cosine of its probabilities {loo_map(cosine(probe, qs), qs, labels):.4f}")


if __name__ == "__main__":
    main()
