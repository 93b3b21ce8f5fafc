"""Geometric verification: re-rank the top hits by how many local matches agree on one transform.

Classic bag-of-words retrieval (Philbin et al., CVPR 2007) re-ranks its short
list by fitting a transform to the matched features with RANSAC. vqgram's
lifted words come from a global descriptor and carry no position, so the
matches are RootSIFT keypoints (`localfeatures.py`) of the query and of each
hit's image file: nearest neighbours passing Lowe's ratio test, then an affine
transform fitted by OpenCV's RANSAC; the inliers are the hit's evidence. A
mirrored copy of the query is matched too (SIFT descriptors are not mirror
invariant) and the larger count is kept.

Hits with at least `min_inliers` move to the front, most inliers first; the
rest keep their order behind them (`verified_order`; rankers.VerifiedRanker
applies it to any ranking). An edited copy of the query (crop, rotation,
overlay, JPEG, mirror) typically keeps tens to hundreds of inliers, another
photo of the same kind fewer than ten (measured: docs/RESULTS.md).
"""
from __future__ import annotations

import logging
import os
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from threading import Lock
from typing import Sequence

import numpy as np

from ..localfeatures import LocalFeatures, need_opencv, read_grey, root_sift

log = logging.getLogger("vqgram")


@dataclass(frozen=True)
class VerifyConfig:
    """How local features are extracted and matched, and what counts as verified."""

    max_side: int = 512
    min_side: int = 256  # small images are enlarged to this (a 25 % thumbnail keeps its keypoints)
    max_keypoints: int = 500
    ratio: float = 0.8  # Lowe's ratio test
    transform: str = "affine"  # the model RANSAC fits: "affine" (6 degrees of freedom) or "similarity" (4)
    reprojection_px: float = 4.0  # RANSAC inlier distance, px of the resized images (8 let omniglot strokes verify)
    min_inliers: int = 15
    threads: int = 2
    cached_images: int = 512  # LRU of extracted features (about 256 KB each)

    def __post_init__(self) -> None:
        if self.transform not in ("affine", "similarity"):
            raise ValueError(f"transform={self.transform!r}; choose affine or similarity")


def count_inliers(query: LocalFeatures, candidate: LocalFeatures, config: VerifyConfig) -> int:
    """Matches of `query` in `candidate` consistent with one affine transform (0 when fewer than 4 match)."""
    import cv2

    if len(query) < 2 or len(candidate) < 2:
        return 0
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(query.desc, candidate.desc, k=2)
    good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < config.ratio * m[1].distance]
    if len(good) < 4:
        return 0
    src = query.xy[[m.queryIdx for m in good]]
    dst = candidate.xy[[m.trainIdx for m in good]]
    fit = cv2.estimateAffine2D if config.transform == "affine" else cv2.estimateAffinePartial2D
    _transform, mask = fit(src, dst, method=cv2.RANSAC, ransacReprojThreshold=config.reprojection_px)
    return 0 if mask is None else int(mask.sum())


def query_inliers(query: tuple[LocalFeatures, LocalFeatures], candidate: LocalFeatures,
                  config: VerifyConfig) -> int:
    """Inliers of `candidate` against the query image (plain, mirrored): the better of the two, since SIFT
    is not mirror invariant and a copy may be flipped."""
    return max(count_inliers(query[0], candidate, config), count_inliers(query[1], candidate, config))


def verified_order(inliers: Sequence[int | None], min_inliers: int) -> np.ndarray:
    """Positions in the new order: verified hits by inliers (most first, ties in the old order), then the rest."""
    counts = np.array([-1 if n is None else n for n in inliers])
    verified = np.flatnonzero(counts >= min_inliers)
    verified = verified[np.argsort(-counts[verified], kind="stable")]
    return np.concatenate([verified, np.flatnonzero(counts < min_inliers)]).astype(int)


class Verifier:
    """Counts inliers between a query image and hit images, keeping recent images' features in memory."""

    def __init__(self, config: VerifyConfig = VerifyConfig()):
        need_opencv("--verify")
        self.config = config
        self._cache: OrderedDict[tuple, tuple[LocalFeatures, LocalFeatures | None]] = OrderedDict()
        self._lock = Lock()
        self._pool = ThreadPoolExecutor(config.threads, thread_name_prefix="vqgram-verify")

    def features(self, source: str | Path | bytes, mirrored: bool = False
                 ) -> tuple[LocalFeatures, LocalFeatures | None] | None:
        """(features, features of the mirrored image or None) of one file, or of an upload's bytes (not
        cached); None when it cannot be read."""
        key = None
        if not isinstance(source, bytes):
            try:
                st = os.stat(source)
            except OSError:
                return None
            key = (str(source), st.st_mtime_ns, st.st_size, mirrored)
            with self._lock:
                if key in self._cache:
                    self._cache.move_to_end(key)
                    return self._cache[key]
        c = self.config
        img = read_grey(source, c.max_side, c.min_side)
        if img is None:
            return None
        found = (root_sift(img, c.max_keypoints), root_sift(np.ascontiguousarray(img[:, ::-1]), c.max_keypoints)
                 if mirrored else None)
        if key is not None:
            with self._lock:
                self._cache[key] = found
                if mirrored:  # the query is often among its own hits (similar, leave-one-out): extract it once
                    self._cache[key[:-1] + (False,)] = (found[0], None)
                while len(self._cache) > c.cached_images:
                    self._cache.popitem(last=False)
        return found

    def inliers(self, query: str | Path | bytes, paths: Sequence[str]) -> list[int | None]:
        """Inliers of each path's image against the query (a file or an upload's bytes) or its mirror; None
        where a file cannot be read."""
        q = self.features(query, mirrored=True)
        if q is None:
            name = "upload" if isinstance(query, bytes) else query
            raise ValueError(f"verification cannot read the query image {name} (OpenCV reads jpg, png, webp, "
                             "bmp, tiff)")
        if not len(q[0]):
            log.warning("--verify: SIFT finds no keypoints in the query image (flat or smooth?); nothing can "
                        "verify, the hits keep their order")

        def one(path: str) -> int | None:
            found = self.features(path)
            if found is None:
                return None
            return query_inliers(q, found[0], self.config)

        counts = list(self._pool.map(one, paths))
        missing = sum(n is None for n in counts)
        if missing:
            log.warning("--verify: %d of %d hit images could not be read (moved or deleted?); they keep their "
                        "place behind the verified hits", missing, len(paths))
        return counts

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
