"""Evaluation datasets: which images are the database, which are the queries, what is relevant.

Two layouts:
- `folder`: label = name of the sub-folder an image lies in (recursive walk).
  Without a query folder every image is a query against all the others
  (leave-one-out); with one, each query image is searched in the database.
- `gpr1200`: the GPR1200 benchmark (Schall et al., "GPR1200: A Benchmark for
  General-Purpose Content-Based Image Retrieval", MMM 2022, arXiv:2111.13122):
  12,000 files `{category}_{name}.jpg` in one folder, 1,200 categories of 10.
  Its reference code (github.com/Visual-Computing/GPR1200, eval/GPR1200.py and
  eval/utils.py) sorts the files by int(category), queries every image against
  all 12,000 with the query itself included (so R = 10 and the query is
  usually its own first hit), takes AP over the full ranking with R = number of
  relevant images in it, and reports the mean over all queries plus the means
  over six fixed index ranges of 2,000 images (200 categories) each, in this
  order: [0, 2000) Landmarks (GLDv2), [2000, 4000) iNat, [4000, 6000)
  IMSketch, [6000, 8000) INSTRE, [8000, 10000) SOP, [10000, 12000) Faces
  (IMDB-WIKI). The category names in GPR1200_categoryNumber_to_text.json
  agree (0-199 landmarks, 200-399 species, 400-599 ImageNet classes, ...).
  Its evaluate.py *prints* them as "Landmarks, IMSketch, iNat, ..." and the
  paper's tables use that column order; only the index ranges above are the
  data's order.

`query_plan` turns a dataset into what the metrics need: queries, whether a
query's own hit is dropped, label codes and R per query.
"""
from __future__ import annotations

import logging
import re
from bisect import bisect_left
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Collection, Sequence

import numpy as np

from vqgram.images import label_of, walk_images

log = logging.getLogger("vqgram")

LAYOUTS = ("auto", "folder", "gpr1200")
# Index-range order of the GPR1200 data (eval/GPR1200.py), not its print order.
GPR1200_SUBSETS = ("Landmarks", "iNat", "IMSketch", "Instre", "SOP", "Faces")
GPR1200_CATEGORIES_PER_SUBSET = 200
_GPR_NAME = re.compile(r"^(\d+)_(.+)$")

UNLABELLED_DB = -1  # label code of a database image outside any sub-folder
UNLABELLED_QUERY = -2  # never equal to a database code: an unlabelled query has R = 0


@dataclass(frozen=True)
class Item:
    """One image: its path and its label ("" when it has none)."""

    path: str
    label: str


@dataclass(frozen=True)
class Dataset:
    """A database, optionally a separate query set, and named query ranges for sub-scores.

    queries is None: the database images are the queries. include_self: a query
    that is itself in the database counts as its own relevant hit (GPR1200);
    otherwise it is left out of its own ranking (leave-one-out). subsets map a
    name to a range of query positions. distractor_root: a second folder whose
    images are in the database unlabelled (they never match). query_ids: the
    database positions used as queries when queries is None (None: all of
    them; with distractors, the labelled folder's own images only).
    """

    name: str
    layout: str
    root: str
    items: tuple[Item, ...]
    queries: tuple[Item, ...] | None = None
    query_root: str | None = None
    include_self: bool = False
    subsets: dict[str, range] = field(default_factory=dict)
    distractor_root: str | None = None
    query_ids: tuple[int, ...] | None = None


@dataclass(frozen=True)
class QueryPlan:
    """What a runner feeds `metrics.py`: rank each query, drop `self_ids` if `exclude_self`.

    self_ids[q]: database index of query q itself, -1 when it is not in the
    database. Label codes are ints so `metrics.relevance_matrix(query_labels,
    ranked, db_labels)` works; unlabelled images never match anything.
    n_relevant[q]: R, the relevant database images for query q (its own
    image excluded when exclude_self).
    """

    queries: tuple[Item, ...]
    self_ids: np.ndarray
    exclude_self: bool
    query_labels: np.ndarray
    db_labels: np.ndarray
    n_relevant: np.ndarray


def detect_layout(folder: Path) -> str:
    """'gpr1200' for one flat folder whose image names all look like `{int}_{name}`, else 'folder'."""
    folder = Path(folder)
    paths = walk_images(folder)
    flat = all(p.parent == folder for p in paths)
    if paths and flat and all(_GPR_NAME.match(p.name) for p in paths):
        return "gpr1200"
    return "folder"


def load_dataset(
    folder: Path,
    queries: Path | None = None,
    layout: str = "auto",
    name: str | None = None,
    categories_per_subset: int = GPR1200_CATEGORIES_PER_SUBSET,
    distractors: Path | None = None,
) -> Dataset:
    """Load `folder` in `layout` ('auto' detects it); `queries` and `distractors` only for the folder layout.

    Raises ValueError for an unknown layout, or a query or distractor folder with GPR1200.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if layout == "auto":
        layout = detect_layout(folder)
        log.info("dataset %s: layout %s", folder, layout)
    if layout == "gpr1200":
        if queries is not None or distractors is not None:
            raise ValueError(
                "the GPR1200 protocol queries every database image; drop the query and distractor folders "
                "or pass layout='folder'"
            )
        return load_gpr1200(folder, name=name, categories_per_subset=categories_per_subset)
    return load_folder(folder, queries=queries, name=name, distractors=distractors)


def _folder_items(folder: Path) -> tuple[Item, ...]:
    """Every image below `folder`, labelled as the indexer labels it."""
    return tuple(Item(str(p), label_of(p, folder)) for p in walk_images(folder))


def load_folder(folder: Path, queries: Path | None = None, name: str | None = None,
                distractors: Path | None = None) -> Dataset:
    """Labelled folder (label = sub-folder name), plus unlabelled `distractors` (any folder) in the
    database; raises ValueError when no image has a label."""
    folder = Path(folder)
    items = _folder_items(folder)
    if not any(item.label for item in items):
        raise ValueError(
            f"no labelled images in {folder}: put each class in its own sub-folder "
            "(the sub-folder name is the label)"
        )
    query_items = _folder_items(Path(queries)) if queries is not None else None
    query_ids = None
    if distractors is not None:
        query_ids = tuple(range(len(items))) if queries is None else None
        items += tuple(Item(str(p), "") for p in walk_images(Path(distractors)))
    return Dataset(
        name=name or folder.name,
        layout="folder",
        root=str(folder),
        items=items,
        queries=query_items,
        query_root=str(queries) if queries is not None else None,
        distractor_root=str(distractors) if distractors is not None else None,
        query_ids=query_ids,
    )


def without(dataset: Dataset, paths: Collection[str]) -> Dataset:
    """The dataset without the images at `paths` (those the indexer skipped, query images that did not
    decode), so every stage scores the same images: database positions, query ids and sub-ranges renumbered."""
    gone = set(paths)
    if not gone:
        return dataset
    keep = [i for i, item in enumerate(dataset.items) if item.path not in gone]
    position = {old: new for new, old in enumerate(keep)}
    query_ids = None if dataset.query_ids is None else tuple(position[i] for i in dataset.query_ids if i in position)
    queries = None if dataset.queries is None else tuple(q for q in dataset.queries if q.path not in gone)
    subsets = {name: range(bisect_left(keep, r.start), bisect_left(keep, r.stop))
               for name, r in dataset.subsets.items()}
    return replace(dataset, items=tuple(dataset.items[i] for i in keep), queries=queries, query_ids=query_ids,
                   subsets=subsets)


def sample_queries(dataset: Dataset, count: int, seed: int = 0) -> Dataset:
    """The dataset with at most `count` of its queries, drawn without replacement (seeded), kept in order."""
    if dataset.subsets:
        raise ValueError(f"{dataset.name}: sampling queries would break its sub-scores; query them all")
    if dataset.queries is not None:
        pool = range(len(dataset.queries))
    else:
        pool = dataset.query_ids if dataset.query_ids is not None else range(len(dataset.items))
    if count >= len(pool):
        return dataset
    picks = sorted(np.random.default_rng(seed).choice(len(pool), count, replace=False).tolist())
    if dataset.queries is not None:
        return replace(dataset, queries=tuple(dataset.queries[i] for i in picks))
    return replace(dataset, query_ids=tuple(pool[i] for i in picks))


def load_gpr1200(
    folder: Path, name: str | None = None, categories_per_subset: int = GPR1200_CATEGORIES_PER_SUBSET
) -> Dataset:
    """GPR1200 layout: flat `{category}_{name}` files sorted by int(category), self included.

    The six sub-ranges hold `categories_per_subset` categories each (200 in
    GPR1200; smaller for tests); with another number of categories there are
    no sub-ranges and a warning says so.
    """
    folder = Path(folder)
    keyed = []
    for p in walk_images(folder):
        match = _GPR_NAME.match(p.name)
        if p.parent != folder or not match:
            raise ValueError(f"{p} does not fit the GPR1200 layout (one folder of {{category}}_{{name}} files)")
        keyed.append((int(match[1]), match[2], p))
    keyed.sort(key=lambda k: (k[0], k[1]))
    items = tuple(Item(str(p), str(cat)) for cat, _, p in keyed)
    cats = np.array([cat for cat, _, _ in keyed], dtype=np.int64)
    return Dataset(
        name=name or "GPR1200",
        layout="gpr1200",
        root=str(folder),
        items=items,
        include_self=True,
        subsets=_gpr_subsets(cats, categories_per_subset),
    )


def _gpr_subsets(cats: np.ndarray, per_subset: int) -> dict[str, range]:
    """Item ranges of the six consecutive groups of `per_subset` categories."""
    unique = np.unique(cats)
    expected = len(GPR1200_SUBSETS) * per_subset
    if unique.size != expected:
        log.warning(
            "GPR1200 layout with %d categories (expected %d): no sub-scores", unique.size, expected
        )
        return {}
    # First item of each group: where its first category starts in the sorted items.
    bounds = np.searchsorted(cats, unique[::per_subset]).tolist() + [cats.size]
    return {name: range(bounds[i], bounds[i + 1]) for i, name in enumerate(GPR1200_SUBSETS)}


def query_plan(dataset: Dataset) -> QueryPlan:
    """Queries, self-exclusion, label codes and R for `dataset` (see QueryPlan); ValueError naming the folder
    when it leaves no query."""
    in_db = dataset.queries is None
    ids = np.arange(len(dataset.items)) if dataset.query_ids is None else np.array(dataset.query_ids, np.int64)
    queries = tuple(dataset.items[i] for i in ids) if in_db else dataset.queries
    if not queries:
        raise ValueError(f"no query images in {dataset.root if in_db else dataset.query_root} (none found, or none "
                         "readable); give a folder of images to query with")
    codes = {label: i for i, label in enumerate(sorted({i.label for i in dataset.items + queries} - {""}))}
    db_labels = np.array([codes.get(i.label, UNLABELLED_DB) for i in dataset.items], dtype=np.int64)
    query_labels = np.array([codes.get(i.label, UNLABELLED_QUERY) for i in queries], dtype=np.int64)
    counts = np.bincount(db_labels[db_labels >= 0], minlength=max(len(codes), 1))
    n_relevant = np.where(query_labels >= 0, counts[np.maximum(query_labels, 0)], 0)
    exclude_self = in_db and not dataset.include_self
    if exclude_self:
        n_relevant = np.maximum(n_relevant - 1, 0)
    self_ids = ids if in_db else np.full(len(queries), -1)
    return QueryPlan(
        queries=tuple(queries),
        self_ids=self_ids,
        exclude_self=exclude_self,
        query_labels=query_labels,
        db_labels=db_labels,
        n_relevant=n_relevant.astype(np.int64),
    )


def subset_means(values: np.ndarray, dataset: Dataset) -> dict[str, float]:
    """Mean of per-query `values` (e.g. AP) over each named query range, NaNs ignored."""
    values = np.asarray(values, dtype=np.float64)
    return {name: _nanmean(values[r.start : r.stop]) for name, r in dataset.subsets.items()}


def label_means(values: np.ndarray, queries: Sequence[Item]) -> dict[str, float]:
    """Mean of per-query `values` for each query label (sorted; unlabelled left out), NaNs ignored."""
    values = np.asarray(values, dtype=np.float64)
    labels = np.array([q.label for q in queries])
    return {label: _nanmean(values[labels == label]) for label in sorted(set(labels.tolist()) - {""})}


def _nanmean(values: np.ndarray) -> float:
    keep = values[~np.isnan(values)]
    return float(keep.mean()) if keep.size else float("nan")
