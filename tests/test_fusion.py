import pytest

from vqgram.indexer.backend import Hit
from vqgram.searcher.fusion import fuse


def run(*pairs):
    return [Hit(i, s, f"/{i}", "", 1, 1) for i, s in pairs]


A = run(("a", 9.0), ("b", 5.0), ("c", 1.0))
B = run(("c", 0.9), ("a", 0.8), ("d", 0.1))


def test_reciprocal_rank_fusion_by_hand():
    fused = fuse([A, B], k=4, method="rrf")
    expected = {"a": 1 / 61 + 1 / 62, "b": 1 / 62, "c": 1 / 63 + 1 / 61, "d": 1 / 63}
    assert [h.id for h in fused] == sorted(expected, key=lambda i: (-expected[i], i))
    assert {h.id: h.score for h in fused} == pytest.approx(expected)


def test_weighted_normalised_score_fusion_by_hand():
    fused = fuse([A, B], k=2, method="score", weights=(1.0, 2.0))
    expected = {"a": 1.0 + 2 * (0.8 - 0.1) / 0.8, "c": 0.0 + 2 * 1.0, "b": 0.5, "d": 0.0}
    assert [h.id for h in fused] == ["a", "c"]
    assert fused[0].score == pytest.approx(expected["a"])


def test_bad_fusion_arguments_are_sentences():
    with pytest.raises(ValueError, match="unknown fusion 'max'"):
        fuse([A], 1, method="max")
    with pytest.raises(ValueError, match="one weight per run"):
        fuse([A, B], 1, weights=(1.0,))
