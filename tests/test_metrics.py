"""Ranking metrics against hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest

from vqgram.eval.metrics import (
    average_precision,
    average_precision_at_k,
    mean_average_precision,
    mean_average_precision_at_k,
    mean_precision_at_k,
    mean_recall_at_k,
    precision_at_k,
    rank_by_score,
    recall_at_k,
    relevance_matrix,
)

# query 0: relevant at ranks 1 and 3, R = 3 (one relevant item never ranked)
# query 1: relevant at ranks 2 and 3, R = 2
# query 2: nothing relevant in the database, R = 0
REL = np.array(
    [
        [1, 0, 1, 0, 0],
        [0, 1, 1, 0, 0],
        [0, 0, 0, 0, 0],
    ],
    dtype=bool,
)
R = np.array([3, 2, 0])


def test_average_precision_by_hand():
    ap = average_precision(REL, R)
    assert ap[0] == pytest.approx((1 / 1 + 2 / 3) / 3)  # 5/9
    assert ap[1] == pytest.approx((1 / 2 + 2 / 3) / 2)  # 7/12
    assert math.isnan(ap[2])


def test_average_precision_at_k_by_hand():
    ap2 = average_precision_at_k(REL, R, 2)
    assert ap2[0] == pytest.approx(1.0 / 2)  # P@1 / min(2, 3)
    assert ap2[1] == pytest.approx((1 / 2) / 2)  # P@2 / min(2, 2)
    ap3 = average_precision_at_k(REL, R, 3)
    assert ap3[0] == pytest.approx((1 + 2 / 3) / 3)
    assert ap3[1] == pytest.approx((1 / 2 + 2 / 3) / 2)
    # k larger than R: the denominator is R, so a perfect ranking scores 1
    assert average_precision_at_k(np.array([[1, 1, 0, 0]]), [2], 4)[0] == pytest.approx(1.0)
    assert math.isnan(ap3[2])


def test_precision_recall_at_k_by_hand():
    np.testing.assert_allclose(precision_at_k(REL, 3), [2 / 3, 2 / 3, 0.0])
    r = recall_at_k(REL, R, 3)
    assert r[0] == pytest.approx(2 / 3) and r[1] == pytest.approx(1.0) and math.isnan(r[2])


def test_means_exclude_queries_without_relevant_items():
    m = mean_average_precision(REL, R)
    assert m.n == 2 and m.excluded == 1
    assert m.value == pytest.approx((5 / 9 + 7 / 12) / 2)
    m2 = mean_average_precision_at_k(REL, R, 2)
    assert (m2.n, m2.excluded) == (2, 1) and m2.value == pytest.approx((0.5 + 0.25) / 2)
    assert mean_recall_at_k(REL, R, 3).value == pytest.approx((2 / 3 + 1) / 2)
    # P@k is defined for an R = 0 query (it is 0) and stays in the mean
    p = mean_precision_at_k(REL, 3)
    assert (p.n, p.excluded) == (3, 0) and p.value == pytest.approx(4 / 9)


def test_all_queries_without_relevant_items():
    m = mean_average_precision(np.zeros((2, 3), bool), [0, 0])
    assert math.isnan(m.value) and m.n == 0 and m.excluded == 2


def test_ties_break_by_lower_id():
    scores = np.array([[0.9, 0.5, 0.9, 0.1, 0.5]])
    np.testing.assert_array_equal(rank_by_score(scores), [[0, 2, 1, 4, 3]])
    # the top-k path (argpartition) must agree, even when a tie straddles k
    np.testing.assert_array_equal(rank_by_score(scores, k=3), [[0, 2, 1]])
    np.testing.assert_array_equal(rank_by_score(scores, k=2), [[0, 2]])
    # the tie order decides AP: doc 0 irrelevant, doc 2 relevant
    labels = np.array([1, 0, 0, 1, 1])
    rel = relevance_matrix(np.array([0]), rank_by_score(scores), labels)
    np.testing.assert_array_equal(rel, [[False, True, True, False, False]])
    assert average_precision(rel, [2])[0] == pytest.approx((1 / 2 + 2 / 3) / 2)


def _loop_ap(rel_row, r, k=None):
    hits, total = 0, 0.0
    for i, x in enumerate(rel_row[: k or len(rel_row)], start=1):
        if x:
            hits += 1
            total += hits / i
    return total / (min(k, r) if k else r)


def test_vectorised_matches_loop():
    rng = np.random.default_rng(0)
    rel = rng.random((50, 40)) < 0.3
    r = rel.sum(axis=1) + rng.integers(0, 3, 50)
    r[r == 0] = 1
    rel[r == 1] = False
    ap = average_precision(rel, r)
    ap10 = average_precision_at_k(rel, r, 10)
    for q in range(50):
        assert ap[q] == pytest.approx(_loop_ap(rel[q], r[q]))
        assert ap10[q] == pytest.approx(_loop_ap(rel[q], r[q], 10))


def test_rank_by_score_topk_matches_full_sort():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 5, (20, 30)).astype(np.float32)  # many ties
    full = rank_by_score(scores)
    for k in (1, 5, 17, 30):
        np.testing.assert_array_equal(rank_by_score(scores, k=k), full[:, :k])


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="n_relevant=1"):
        average_precision(np.array([[1, 1]]), [1])
    with pytest.raises(ValueError, match="k=5 is larger"):
        average_precision_at_k(np.array([[1, 0]]), [1], 5)
    with pytest.raises(ValueError, match="2 entries for 1 queries"):
        average_precision(np.array([[1, 0]]), [1, 1])


def test_precision_recall_curve_by_hand():
    from vqgram.eval.metrics import precision_recall_curve

    # relevant at ranks 1 and 3 of 4, R = 2: precision 1, 1/2, 2/3, 1/2; recall .5, .5, 1, 1
    recall, precision = precision_recall_curve(np.array([[1, 0, 1, 0]], bool), np.array([2]), levels=3)
    assert recall.tolist() == [0.0, 0.5, 1.0]
    assert precision == pytest.approx([1.0, 1.0, 2 / 3])
