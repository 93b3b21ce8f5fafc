"""Verification from stored positions: where a hit holds the query, read from its local words alone.

A query and a hit share a local word where a query cell and a hit cell got the same code. A copy, crop or
paste of the query moves every shared cell by one translation at one scale: so each shared word votes, for
each scale the query was read at, for the hit's position of the query's origin (hit cell centre minus the
query cell centre in the hit's units), in bins one hit cell wide; the fullest bin (a Hough transform over
scale and translation, soft over the 2 x 2 neighbouring bins) holds the inliers. Words a hit holds more than
`max_occurrences` times (sky, texture) do not vote: they fit any translation. No image file is opened, so a
search server needs only the index (issue 30's `--verify`).

The inliers' cells give the boxes: where the query is in the hit, and which part of the query it is, as
fractions of each image's width and height, the fullest bin first.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..local_words import LocalWords

# A hit holds the query where at least this many of its cells vote for one placement (an unrelated photo
# rarely gathers more than 3 on the sample; not tuned on the suite: docs/RESULTS.md, "Local words")
MIN_LOCAL_INLIERS = 4
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the image's width and height


@dataclass(frozen=True)
class LocalMatch:
    """The evidence of one hit: its inliers (distinct hit cells in the fullest bin), the boxes of the bins
    with at least `min_inliers` (in the hit, fullest first; at least the fullest's), the query's box, and the
    codes that matched there."""

    inliers: int
    boxes: tuple[Box, ...]
    query_box: Box | None
    codes: tuple[int, ...]


NO_MATCH = LocalMatch(0, (), None, ())


def match(query: LocalWords, hit: LocalWords | None, min_inliers: int = MIN_LOCAL_INLIERS, max_occurrences: int = 4,
          max_boxes: int = 3) -> LocalMatch:
    """The Hough vote of the module docstring between a query's and a hit's local words."""
    if hit is None or not len(hit) or not len(query):
        return NO_MATCH
    q, d = _pairs(query, hit, max_occurrences)
    if not len(q):
        return NO_MATCH
    # read at scale s, a query cell covers what a hit cell covers wherever the hit holds the query at that
    # scale: the query's origin then lies (hit cell - query cell) hit cells from the hit's, for every shared
    # word of that placement (off by one where a cell boundary falls between)
    bins = np.stack([hit.cols[d] - query.cols[q], hit.rows[d] - query.rows[q]], axis=1)
    cells = hit.rows[d] * 256 + hit.cols[d]  # a grid is at most 255 cells a side (LocalWords stores uint8)
    scale = query.scale[q]
    keys = np.concatenate([_key(scale, bins[:, 0] - dx, bins[:, 1] - dy) for dx in (0, 1) for dy in (0, 1)])
    votes = np.unique((keys << 16) | np.tile(cells, 4))  # each (bin, hit cell) once
    bin_of, cell_of = votes >> 16, votes & 0xFFFF
    ranked, counts = np.unique(bin_of, return_counts=True)
    order = np.lexsort((ranked, -counts))
    boxes, taken = [], np.zeros(0, np.int64)
    for key, count in zip(ranked[order[:16]], counts[order[:16]]):
        if len(boxes) == max_boxes or (boxes and count < min_inliers):
            break
        mine = cell_of[bin_of == key]
        if np.isin(mine, taken).any():  # a neighbouring bin of one already boxed: the same placement
            continue
        taken = np.concatenate([taken, mine])
        boxes.append(_hit_box(mine, hit))
    best = ranked[order[0]]
    inlier = _in_bin(bins, scale, _unkey(best))
    return LocalMatch(int(counts[order[0]]), tuple(boxes), _query_box(query, q[inlier]),
                      tuple(sorted(set(query.codes[q[inlier]].tolist()))))


def _key(scale: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(scale, bin x, bin y) as one int64 (bins within +-2047 cells)."""
    return (scale.astype(np.int64) << 24) | ((x + 2048) << 12) | (y + 2048)


def _unkey(key: int) -> tuple[int, int, int]:
    return int(key >> 24), int((key >> 12) & 0xFFF) - 2048, int(key & 0xFFF) - 2048


def _pairs(query: LocalWords, hit: LocalWords, max_occurrences: int) -> tuple[np.ndarray, np.ndarray]:
    """(query index, hit index) of every pair of cells with the same code, the hit's bursty codes left out.
    The hit's few cells are looked up in the query's cells, sorted once (`code_order`)."""
    _, inverse, counts = np.unique(hit.codes, return_inverse=True, return_counts=True)
    d = np.flatnonzero(counts[inverse] <= max_occurrences)
    order = query.code_order
    sorted_codes = query.codes[order]
    start = np.searchsorted(sorted_codes, hit.codes[d], "left")
    n = np.searchsorted(sorted_codes, hit.codes[d], "right") - start
    offsets = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    return order[np.repeat(start, n) + offsets], np.repeat(d, n)


def _in_bin(bins: np.ndarray, scale: np.ndarray, key: tuple[int, int, int]) -> np.ndarray:
    """The pairs voting for the 2 x 2 bins of `key` (scale, x, y)."""
    s, bx, by = key
    dx, dy = bins[:, 0] - bx, bins[:, 1] - by
    return (scale == s) & (dx >= 0) & (dx <= 1) & (dy >= 0) & (dy <= 1)


def _hit_box(cells: np.ndarray, hit: LocalWords) -> Box:
    rows, cols = np.divmod(cells, 256)
    h, w = hit.grids[0]
    return (float(cols.min() / w), float(rows.min() / h), float((cols.max() + 1) / w), float((rows.max() + 1) / h))


def _query_box(query: LocalWords, idx: np.ndarray) -> Box | None:
    if not len(idx):
        return None
    grid = np.asarray(query.grids, np.float64)[query.scale[idx]]
    x0, y0 = query.cols[idx] / grid[:, 1], query.rows[idx] / grid[:, 0]
    x1, y1 = (query.cols[idx] + 1) / grid[:, 1], (query.rows[idx] + 1) / grid[:, 0]
    return (float(x0.min()), float(y0.min()), float(x1.max()), float(y1.max()))


def pixel_box(box: Box, width: int, height: int) -> list[int]:
    """A box of fractions as [x0, y0, x1, y1] pixels of a width x height image."""
    x0, y0, x1, y1 = box
    return [int(round(x0 * width)), int(round(y0 * height)), int(round(x1 * width)), int(round(y1 * height))]
