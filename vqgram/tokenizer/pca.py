"""PCA of pooled features: the training-free nested baseline for the Matryoshka head.

Principal components sorted by decreasing variance are nested by
construction: the first d coordinates are the best d-dimensional linear
reconstruction (Eckart-Young), so a prefix is a usable embedding for every d.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["PCAProjection"]


class PCAProjection:
    """mean (C,), components (K, C) with orthonormal rows, variances (K,) decreasing.

    whiten=True divides each coordinate by the square root of its variance
    (every direction then weighs the same in a cosine).
    """

    def __init__(self, mean: np.ndarray, components: np.ndarray, variances: np.ndarray, whiten: bool = False):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.components = np.asarray(components, dtype=np.float32)
        self.variances = np.asarray(variances, dtype=np.float32)
        self.whiten = bool(whiten)
        if self.components.ndim != 2 or self.components.shape[1] != self.mean.shape[0]:
            raise ValueError(
                f"components of shape {self.components.shape} do not match a mean of {self.mean.shape[0]} channels"
            )

    @classmethod
    def fit(cls, x: np.ndarray, n_components: int | None = None, whiten: bool = False) -> "PCAProjection":
        """Fit on rows of x (N, C) via the eigendecomposition of the C x C covariance, in float64."""
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"PCA needs a (N >= 2, C) matrix, got shape {x.shape}")
        n, c = x.shape
        k = min(n, c) if n_components is None else int(n_components)
        if not 1 <= k <= c:
            raise ValueError(f"n_components={n_components} must lie in 1..{c}")
        mean = x.mean(axis=0, dtype=np.float64)
        xc = x.astype(np.float64) - mean
        cov = xc.T @ xc / (n - 1)
        vals, vecs = np.linalg.eigh(cov)  # ascending
        order = np.argsort(-vals, kind="stable")[:k]
        vals, vecs = np.clip(vals[order], 0.0, None), vecs[:, order].T
        # fix each component's sign (largest-magnitude entry positive) so fits are reproducible
        signs = np.sign(vecs[np.arange(k), np.abs(vecs).argmax(axis=1)])
        vecs *= np.where(signs == 0, 1.0, signs)[:, None]
        return cls(mean, vecs, vals, whiten=whiten)

    @property
    def dim(self) -> int:
        return self.components.shape[0]

    def transform(self, x: np.ndarray, d: int | None = None) -> np.ndarray:
        """(N, C) -> (N, d) coordinates on the first d components (all when None)."""
        d = self.dim if d is None else d
        if not 1 <= d <= self.dim:
            raise ValueError(f"d={d} must lie in 1..{self.dim}")
        y = (np.asarray(x, dtype=np.float32) - self.mean) @ self.components[:d].T
        if self.whiten:
            y /= np.sqrt(self.variances[:d] + 1e-12)
        return y

    def inverse_transform(self, y: np.ndarray) -> np.ndarray:
        """(N, d) coordinates -> (N, C) reconstruction from the first d components."""
        y = np.asarray(y, dtype=np.float32)
        d = y.shape[1]
        if self.whiten:
            y = y * np.sqrt(self.variances[:d] + 1e-12)
        return y @ self.components[:d] + self.mean

    def save(self, path: str | Path) -> None:
        np.savez(path, mean=self.mean, components=self.components, variances=self.variances, whiten=self.whiten)

    @classmethod
    def load(cls, path: str | Path) -> "PCAProjection":
        z = np.load(path, allow_pickle=False)
        return cls(z["mean"], z["components"], z["variances"], whiten=bool(z["whiten"]))
