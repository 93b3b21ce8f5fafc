"""Dataset layouts, query plans and sub-scores on tiny synthetic folders."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vqgram.eval.datasets import (
    GPR1200_SUBSETS,
    detect_layout,
    label_means,
    load_dataset,
    load_folder,
    load_gpr1200,
    query_plan,
    subset_means,
)
from vqgram.eval.metrics import average_precision, rank_by_score, relevance_matrix


def _image(path: Path, shade: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), (shade, 0, 0)).save(path)
    return path


@pytest.fixture
def gpr_folder(tmp_path: Path) -> Path:
    """GPR1200 layout in small: 6 categories of 3, numbered so that text order != numeric order."""
    folder = tmp_path / "gpr"
    for cat in (0, 1, 2, 3, 10, 200):
        for name in ("b", "a", "c"):
            _image(folder / f"{cat}_{name}x.jpg", cat % 256)
    return folder


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    folder = tmp_path / "db"
    for label, n in (("cat", 3), ("dog", 2), ("eel", 1)):
        for i in range(n):
            _image(folder / label / f"{i}.png")
    _image(folder / "loose.png")  # at the top level: no label
    return folder


def test_detects_layouts(gpr_folder: Path, labelled: Path, tmp_path: Path) -> None:
    assert detect_layout(gpr_folder) == "gpr1200"
    assert detect_layout(labelled) == "folder"
    _image(tmp_path / "mixed" / "1_a.jpg")
    _image(tmp_path / "mixed" / "b.jpg")
    assert detect_layout(tmp_path / "mixed") == "folder"
    assert load_dataset(gpr_folder, categories_per_subset=1).layout == "gpr1200"


def test_gpr1200_sorted_numerically_with_subranges(gpr_folder: Path) -> None:
    ds = load_gpr1200(gpr_folder, categories_per_subset=1)
    assert [i.label for i in ds.items] == [c for c in ("0", "1", "2", "3", "10", "200") for _ in range(3)]
    assert [Path(i.path).name for i in ds.items[:3]] == ["0_ax.jpg", "0_bx.jpg", "0_cx.jpg"]
    assert ds.include_self and ds.queries is None
    assert list(ds.subsets) == list(GPR1200_SUBSETS)
    assert list(GPR1200_SUBSETS) == ["Landmarks", "iNat", "IMSketch", "Instre", "SOP", "Faces"]
    assert [(r.start, r.stop) for r in ds.subsets.values()] == [(i, i + 3) for i in range(0, 18, 3)]


def test_gpr1200_subranges_group_categories(tmp_path: Path) -> None:
    folder = tmp_path / "gpr"
    for cat in range(12):  # 2 categories per sub-range; category 5 has one extra image
        for name in ("a", "b") + (("c",) if cat == 5 else ()):
            _image(folder / f"{cat}_{name}.jpg")
    ds = load_gpr1200(folder, categories_per_subset=2)
    assert [(r.start, r.stop) for r in ds.subsets.values()] == [(0, 4), (4, 8), (8, 13), (13, 17), (17, 21), (21, 25)]


def test_gpr1200_wrong_category_count_has_no_subranges(gpr_folder: Path, caplog) -> None:
    ds = load_gpr1200(gpr_folder)  # 6 categories, not 1,200
    assert ds.subsets == {}
    assert "no sub-scores" in caplog.text


def test_gpr1200_rejects_query_folder_and_odd_names(gpr_folder: Path, labelled: Path) -> None:
    with pytest.raises(ValueError, match="GPR1200 protocol"):
        load_dataset(gpr_folder, queries=labelled, layout="gpr1200")
    _image(gpr_folder / "odd.jpg")
    with pytest.raises(ValueError, match="does not fit the GPR1200 layout"):
        load_gpr1200(gpr_folder)
    with pytest.raises(ValueError, match="choose one of auto, folder, gpr1200"):
        load_dataset(gpr_folder, layout="coco")


def test_gpr1200_plan_counts_the_query_itself(gpr_folder: Path) -> None:
    ds = load_gpr1200(gpr_folder, categories_per_subset=1)
    plan = query_plan(ds)
    assert not plan.exclude_self
    assert plan.n_relevant.tolist() == [3] * 18
    assert plan.self_ids.tolist() == list(range(18))
    # A perfect ranking (self first, then its category) gives AP 1 for every query.
    scores = (plan.db_labels[None, :] == plan.query_labels[:, None]).astype(float)
    scores[np.arange(18), np.arange(18)] = 2.0
    ranked = rank_by_score(scores)
    ap = average_precision(relevance_matrix(plan.query_labels, ranked, plan.db_labels), plan.n_relevant)
    assert np.allclose(ap, 1.0)
    ap[:3] = 0.5
    assert subset_means(ap, ds) == dict.fromkeys(GPR1200_SUBSETS, 1.0) | {"Landmarks": 0.5}


def test_folder_leave_one_out(labelled: Path) -> None:
    ds = load_dataset(labelled)
    assert ds.layout == "folder" and not ds.include_self
    assert [i.label for i in ds.items] == ["cat"] * 3 + ["dog"] * 2 + ["eel", ""]
    plan = query_plan(ds)
    assert plan.exclude_self
    assert plan.n_relevant.tolist() == [2, 2, 2, 1, 1, 0, 0]
    # the unlabelled image is relevant to nothing, itself included
    rel = relevance_matrix(plan.query_labels, np.arange(7)[None, :].repeat(7, 0), plan.db_labels)
    assert not rel[6].any() and not rel[:, 6].any()


def test_folder_with_query_set(labelled: Path, tmp_path: Path) -> None:
    queries = tmp_path / "q"
    _image(queries / "dog" / "x.png")
    _image(queries / "yak" / "y.png")
    plan = query_plan(load_folder(labelled, queries=queries))
    assert not plan.exclude_self
    assert [q.label for q in plan.queries] == ["dog", "yak"]
    assert plan.n_relevant.tolist() == [2, 0]
    assert plan.self_ids.tolist() == [-1, -1]
    assert plan.db_labels.size == 7


def test_folder_without_labels_is_an_error(tmp_path: Path) -> None:
    _image(tmp_path / "flat" / "a.png")
    with pytest.raises(ValueError, match="own sub-folder"):
        load_folder(tmp_path / "flat")


def test_label_means(labelled: Path) -> None:
    plan = query_plan(load_folder(labelled))
    ap = np.array([1.0, 0.5, 0.0, 1.0, 1.0, np.nan, np.nan])
    assert label_means(ap, plan.queries) == {"cat": 0.5, "dog": 1.0, "eel": pytest.approx(float("nan"), nan_ok=True)}


def test_distractors_join_the_database_unlabelled_and_never_query(labelled, tmp_path):
    distractors = tmp_path / "noise"
    for name in ("x", "y", "z"):
        _image(distractors / "cat" / f"{name}.png", 99)  # a sub-folder named like a label still never matches
    plain, mixed = load_folder(labelled), load_folder(labelled, distractors=distractors)
    assert len(mixed.items) == len(plain.items) + 3 and all(i.label == "" for i in mixed.items[-3:])
    p, m = query_plan(plain), query_plan(mixed)
    assert m.queries == p.queries and (m.self_ids == p.self_ids).all()
    assert (m.n_relevant == p.n_relevant).all() and (m.db_labels[-3:] < 0).all()


def test_sample_queries_is_seeded_and_keeps_order(labelled):
    from vqgram.eval.datasets import sample_queries

    data = load_folder(labelled)
    a, b = sample_queries(data, 2, seed=1), sample_queries(data, 2, seed=1)
    assert a.query_ids == b.query_ids and len(a.query_ids) == 2 and list(a.query_ids) == sorted(a.query_ids)
    plan = query_plan(a)
    assert [q.path for q in plan.queries] == [data.items[i].path for i in a.query_ids]
    assert (plan.self_ids == np.array(a.query_ids)).all()
    assert sample_queries(data, 999) is data


def test_without_renumbers_positions_query_ids_and_subranges(gpr_folder, labelled, tmp_path):
    """What the indexer skipped leaves the dataset: every position after it moves up, and GPR1200's
    sub-ranges (of database positions) shrink around it."""
    from vqgram.eval.datasets import without

    gpr = load_gpr1200(gpr_folder, categories_per_subset=1)
    gone = [gpr.items[1].path, gpr.items[7].path]  # one of category 0, one of category 2
    less = without(gpr, gone)
    assert [i.path for i in less.items] == [i.path for i in gpr.items if i.path not in gone]
    assert [len(r) for r in less.subsets.values()] == [2, 3, 2, 3, 3, 3]
    assert [less.items[r.start].label for r in less.subsets.values()] == ["0", "1", "2", "3", "10", "200"]
    assert without(gpr, []) is gpr

    distractors = tmp_path / "noise"
    _image(distractors / "n.png", 99)
    mixed = load_folder(labelled, distractors=distractors)
    dropped = without(mixed, [mixed.items[0].path])
    assert dropped.query_ids == tuple(range(len(mixed.items) - 2))  # the labelled folder's own, renumbered
    plan = query_plan(dropped)
    assert len(plan.queries) == len(mixed.items) - 2 and (plan.n_relevant == [1, 1, 1, 1, 0, 0]).all()
