"""Funnel search: exact prefix scans, shortlists, reranking, tie order."""
from __future__ import annotations

import numpy as np
import pytest

from vqgram.searcher.exact import ExactIndex, prefix_normalize
from vqgram.searcher.funnel import FunnelStage, funnel_search


def _data(n=300, dim=32, q=12, seed=0):
    g = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(np.arange(1, dim + 1))  # energy decays over dims, as in a Matryoshka embedding
    db = (g.normal(size=(n, dim)) * scale).astype(np.float32)
    queries = (db[:q] + 0.3 * g.normal(size=(q, dim)) * scale).astype(np.float32)
    return db, queries


def _brute(queries, db, k, d):
    qn, dn = prefix_normalize(queries, d), prefix_normalize(db, d)
    s = qn.astype(np.float64) @ dn.T.astype(np.float64)
    order = np.lexsort((np.broadcast_to(np.arange(len(db)), s.shape), -s), axis=1)[:, :k]
    return order, np.take_along_axis(s, order, axis=1)


def test_prefix_normalize():
    x = np.array([[3.0, 4.0, 12.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(prefix_normalize(x, 2), [[0.6, 0.8], [0.0, 0.0]])
    np.testing.assert_allclose(np.linalg.norm(prefix_normalize(x), axis=1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="prefix d=4 must lie in 1..3"):
        prefix_normalize(x, 4)


@pytest.mark.parametrize("d", [4, 32])
def test_exact_search_matches_brute_force(d):
    db, q = _data()
    ids, scores = ExactIndex(db).search(q, k=10, dim=d)
    want_ids, want_scores = _brute(q, db, 10, d)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)


def test_funnel_with_full_shortlist_equals_exact():
    db, q = _data()
    exact = ExactIndex(db).search(q, k=20)
    got = funnel_search(ExactIndex(db), q, k=20, stages=[FunnelStage(4, len(db))])
    np.testing.assert_array_equal(got[0], exact[0])
    np.testing.assert_allclose(got[1], exact[1], atol=1e-6)
    # a shortlist larger than the database is the same thing
    got = funnel_search(ExactIndex(db), q, k=20, stages=[FunnelStage(4, 10 * len(db)), FunnelStage(8, 10 * len(db))])
    np.testing.assert_array_equal(got[0], exact[0])


def test_funnel_reranks_the_low_dim_shortlist():
    db, q = _data()
    index = ExactIndex(db, prefix_dims=(4,))
    short_ids, _ = index.search(q, k=25, dim=4)
    ids, scores = funnel_search(index, q, k=10, stages=[FunnelStage(4, 25)])
    full = prefix_normalize(db)
    qn = prefix_normalize(q)
    for r in range(len(q)):
        # every hit comes from the shortlist ...
        assert set(ids[r]) <= set(short_ids[r])
        # ... and is the full-width top 10 of that shortlist, with full-width cosines
        cand = short_ids[r]
        s = full[cand] @ qn[r]
        best = cand[np.lexsort((cand, -s))][:10]
        np.testing.assert_array_equal(ids[r], best)
        np.testing.assert_allclose(scores[r], full[ids[r]] @ qn[r], atol=1e-5)
        assert np.all(np.diff(scores[r]) <= 1e-7)


def test_cascade_narrows_through_every_stage():
    db, q = _data(n=500, dim=64)
    index = ExactIndex(db, prefix_dims=(8, 16))
    ids, _ = funnel_search(index, q, k=5, stages=[FunnelStage(8, 100), FunnelStage(16, 30)])
    short8, _ = index.search(q, k=100, dim=8)
    q16 = prefix_normalize(q, 16)
    for r in range(len(q)):
        cand = short8[r]
        s = index.prefixes[16][cand] @ q16[r]
        top30 = set(cand[np.argsort(-s)[:30]])
        assert set(ids[r]) <= top30
    # the query's own source vector (db row r, a near duplicate) is found at rank 1
    assert (ids[:, 0] == np.arange(len(q))).mean() > 0.9


def test_ties_order_by_lower_index():
    db = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [2.0, 0.0], [0.5, 0.5]], np.float32)
    q = np.array([[1.0, 0.0]], np.float32)
    ids, scores = ExactIndex(db).search(q, k=3)
    np.testing.assert_array_equal(ids, [[0, 2, 3]])  # three exact ties at cosine 1
    ids, _ = ExactIndex(db).search(q, k=2)
    np.testing.assert_array_equal(ids, [[0, 2]])  # the tie at the cut goes to the lower index
    ids, _ = funnel_search(ExactIndex(db), q, k=3, stages=[FunnelStage(1, 5)])
    np.testing.assert_array_equal(ids, [[0, 2, 3]])


def test_funnel_rejects_bad_stages():
    db, q = _data(n=50)
    index = ExactIndex(db)
    with pytest.raises(ValueError, match="must strictly increase"):
        funnel_search(index, q, k=5, stages=[FunnelStage(16, 20), FunnelStage(8, 10)])
    with pytest.raises(ValueError, match="last must be >= k=30"):
        funnel_search(index, q, k=30, stages=[FunnelStage(8, 20)])
    with pytest.raises(ValueError, match="must both be >= 1"):
        FunnelStage(0, 10)


def test_the_default_funnel_grows_with_the_collection():
    from vqgram.searcher.funnel import collection_stages

    assert collection_stages(36) == (FunnelStage(16, 200),)  # the searcher cuts it to the 36 there are
    assert collection_stages(9_469) == (FunnelStage(16, 200),)  # imagenette: the shortlist RESULTS.md measured
    assert collection_stages(10_000) == (FunnelStage(16, 200),)
    assert collection_stages(1_000_000) == (FunnelStage(32, 20_000), FunnelStage(128, 4_000))  # SCALE.md measured
    assert collection_stages(10_001) == (FunnelStage(32, 201), FunnelStage(128, 200))  # 2 % rounded up; >= 200
