import pytest

from vqgram.indexer.backend import Ranking
from vqgram.searcher.fusion import fuse_rankings


def run(*pairs):
    return Ranking.of([i for i, _ in pairs], [s for _, s in pairs])


A = run(("a", 9.0), ("b", 5.0), ("c", 1.0))
B = run(("c", 0.9), ("a", 0.8), ("d", 0.1))


def test_reciprocal_rank_fusion_by_hand():
    fused = fuse_rankings([A, B], method="rrf")
    expected = {"a": 1 / 61 + 1 / 62, "b": 1 / 62, "c": 1 / 63 + 1 / 61, "d": 1 / 63}
    assert fused.ids.tolist() == sorted(expected, key=lambda i: (-expected[i], i))
    assert dict(zip(fused.ids.tolist(), fused.scores.tolist())) == pytest.approx(expected)


def test_weighted_normalised_score_fusion_by_hand():
    fused = fuse_rankings([A, B], method="score", weights=(1.0, 2.0))
    expected = {"a": 1.0 + 2 * (0.8 - 0.1) / 0.8, "c": 0.0 + 2 * 1.0, "b": 0.5, "d": 0.0}
    assert fused.ids[:2].tolist() == ["a", "c"]
    assert fused.scores[0] == pytest.approx(expected["a"])


def test_bad_fusion_arguments_are_sentences():
    with pytest.raises(ValueError, match="unknown fusion 'max'"):
        fuse_rankings([A], method="max")
    with pytest.raises(ValueError, match="one weight per run"):
        fuse_rankings([A, B], weights=(1.0,))
