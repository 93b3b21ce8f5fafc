"""One ranking path (searcher/rankers.py): every mode's top k is the head of its whole ranking, on both engines."""
import importlib.util

import pytest

from conftest import BACKENDS
from vqgram.searcher.options import MODES, WORD_MODES
from vqgram.searcher.rankers import DenseRanker, FusedRanker, WordsRanker, hits_of
from vqgram.searcher.searcher import SearchOptions, Searcher

VERIFY = (0, 3) if importlib.util.find_spec("cv2") else (0,)


@pytest.fixture(scope="module")
def query_image(photos):
    return sorted(photos.rglob("*.jpg"))[3]


def _same_head(top, whole, k):
    assert [h.id for h in top] == whole.ids[:k].tolist()
    assert [h.score for h in top] == pytest.approx(whole.scores[:k].tolist(), abs=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_modes_top_k_is_the_head_of_its_whole_ranking(photo_index, tokenizer, backend, query_image):
    with Searcher(photo_index(backend), tokenizer) as s:
        n = s.handle.backend.count()
        query = s.encode_image(query_image)
        modes = [m for m in MODES if backend == "lucene" or m not in ("tfidf", "jaccard")]
        for mode in modes:
            for filter_ in (None, f"NOT label:{query_image.parent.name}"):
                for verify in VERIFY:
                    # exact: Lucene's HNSW answers a top k only; depth n: hybrid fuses whole runs
                    options = SearchOptions(mode=mode, exact=True, depth=n, filter=filter_, verify=verify)
                    whole = s.rank(query, None, options).ranking
                    assert len(set(whole.ids.tolist())) == len(whole) <= n
                    if mode not in WORD_MODES and filter_ is None:
                        assert len(whole) == n  # dense scores every document
                    for k in (1, 10):
                        top = s.search(query, k, options)
                        _same_head(top, whole, k)
                        assert all((h.inliers is not None) == bool(verify) for h in top[:verify or k])


def test_a_fusion_of_three_runs_is_one_ranking_path(photo_index, tokenizer, query_image):
    """FusedRanker takes any number of runs (words, a dense prefix, the full embedding here)."""
    with Searcher(photo_index("tantivy"), tokenizer) as s:
        backend, n = s.handle.backend, s.handle.backend.count()
        query = s.encode_image(query_image)
        fused = FusedRanker([WordsRanker(backend), DenseRanker(backend, s.vectors, dims=64),
                             DenseRanker(backend, s.vectors)], "score", (0.5, 0.5, 1.0), depth=n)
        whole = fused.rank(query).ranking
        assert len(whole) == n
        _same_head(hits_of(fused.rank(query, 5), backend), whole, 5)
        assert fused.rank(query, 5).ranking.ids.tolist() == whole.ids[:5].tolist()
