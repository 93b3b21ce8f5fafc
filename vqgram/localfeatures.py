"""RootSIFT keypoints of one image: the local features of the SIFT baseline's visual words
(`eval/sift.py`) and of geometric verification (`searcher/verify.py`).

The image is read in greyscale and resized so its longer side is at most
`max_side` px and (when `min_side` is set) at least `min_side` px: a 25 %
thumbnail then still gives keypoints at the scales its original had. OpenCV's
SIFT keeps the `max_keypoints` strongest; each descriptor is L1-normalised and
square-rooted (RootSIFT, Arandjelović & Zisserman 2012), so Euclidean distance
between them is the Hellinger kernel of the raw ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class LocalFeatures:
    """Keypoint positions (n, 2) in px of the resized image, and their RootSIFT descriptors (n, 128)."""

    xy: np.ndarray
    desc: np.ndarray

    def __len__(self) -> int:
        return len(self.desc)


NONE = LocalFeatures(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32))


def need_opencv(what: str) -> None:
    """RuntimeError in one line when OpenCV is missing."""
    try:
        import cv2  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"{what} needs OpenCV: pip install 'vqgram[verify]' ({exc})") from None


def read_grey(source: str | Path | bytes, max_side: int, min_side: int = 0) -> np.ndarray | None:
    """An image file (or its bytes) as a (h, w) uint8 array resized into [min_side, max_side] on its longer
    side; None when OpenCV cannot read it."""
    import cv2

    if isinstance(source, bytes):
        img = cv2.imdecode(np.frombuffer(source, np.uint8), cv2.IMREAD_GRAYSCALE)
    else:
        img = cv2.imread(str(source), cv2.IMREAD_GRAYSCALE)
    if img is None or img.size == 0:
        return None
    longest = max(img.shape)
    scale = max_side / longest if longest > max_side else (min_side / longest if longest < min_side else 1.0)
    if scale != 1.0:
        img = cv2.resize(img, (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return img


def root_sift(img: np.ndarray, max_keypoints: int) -> LocalFeatures:
    """RootSIFT features of a greyscale image (`read_grey`); NONE when SIFT finds no keypoint."""
    import cv2

    keypoints, desc = cv2.SIFT_create(nfeatures=max_keypoints).detectAndCompute(img, None)
    if desc is None or not len(keypoints):
        return NONE
    desc /= np.maximum(desc.sum(axis=1, keepdims=True), 1e-7)
    return LocalFeatures(np.array([k.pt for k in keypoints], np.float32), np.sqrt(desc))
