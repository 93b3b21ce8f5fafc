"""`vqgram bench scale` on a small synthetic collection: real engines, every backend, merged Lucene indexes."""
import importlib.util

import pytest

from vqgram.config import TokenizerConfig
from vqgram.eval.scale import ScaleRun
from vqgram.indexer.rowfiles import write_jsonl
from vqgram.indexer.rows import EncodedBy
from vqgram.searcher.funnel import FunnelStage

from test_synthetic import _rows

needs_lucene = pytest.mark.skipif(
    importlib.util.find_spec("jnius") is None or importlib.util.find_spec("pyserini") is None,
    reason="needs the lucene extra: pip install 'vqgram[lucene]'")


@pytest.mark.jvm
@needs_lucene
def test_every_backend_measures_and_lucene_merges_to_one_segment(tmp_path, monkeypatch):
    import vqgram.eval.scale as scale

    monkeypatch.setattr(scale, "HNSW_DIMS", 8)  # the rows' vectors are 8-d
    rows = write_jsonl(_rows(60), tmp_path / "rows.jsonl",
                       EncodedBy(TokenizerConfig(), "synthetic", "0" * 64, vector_dim=8))
    funnel = (FunnelStage(2, 200), FunnelStage(4, 150))
    run = ScaleRun(rows, tmp_path / "work", queries=5, prune=(10,), funnels=(funnel,), force_merge=1,
                   log=lambda row: None)
    out = run.run([300], ["tantivy", "lucene", "lucene-words", "lucene-hnsw", "lucene-hnsw-int8", "numpy"])
    modes = {(r["backend"], r["mode"]) for r in out}
    for backend in ("tantivy", "lucene", "lucene-words"):
        assert {(backend, m) for m in ("words-exhaustive", "words-topk", "words-heaviest-10", "words-prune-10")} <= modes
    for backend in ("lucene", "lucene-words"):  # Lucene's own top-k (MaxScore) measured beside term at a time
        assert (backend, "words-topk-maxscore") in modes
    words_only = [r for r in out if r["backend"] == "lucene-words"]  # no HNSW graph, no stored embedding
    assert not any(r["mode"].startswith("dense") for r in words_only)
    assert words_only[0]["bytes_per_doc"] < next(r for r in out if r["backend"] == "lucene")["bytes_per_doc"]
    assert {("lucene", "dense-hnsw"), ("lucene-hnsw", "dense-hnsw"), ("lucene-hnsw-int8", "dense-hnsw-int8"),
            ("numpy", "dense-exact"), ("numpy", "dense-funnel-2:200,4:150")} <= modes
    for r in out:
        assert r["docs"] == 300 and r["p50_ms"] > 0
        if r["mode"] in ("words-topk", "words-topk-maxscore"):  # top-k without exact counts is still the exact top k
            assert r["recall_at_100"] == 1.0
        if r["backend"].startswith("lucene"):
            assert r["segments"] == 1
    for backend in ("lucene-hnsw", "lucene-hnsw-int8"):  # vectors-only: queried as built, then merged
        assert ["merge_s" in r for r in out if r["backend"] == backend] == [False, False, True, True]
    assert all("merge_s" in r for r in out if r["backend"] == "lucene")
    hnsw = [r for r in out if r["mode"] in ("dense-hnsw", "dense-hnsw-filtered")]
    assert len(hnsw) == 6 and all(r["recall_at_10"] == 1.0 for r in hnsw)  # 300 vectors, ef 100: exact here
    # filtered to the query's label: a third of these documents (labels c0, c1, c2)
    assert all(0.2 < r["passing"] < 0.5 for r in hnsw if r["mode"].endswith("filtered"))
    # int8 ranks by quantized scores (Lucene 9.9 does not re-score): near neighbours swap places
    assert 0.5 < next(r for r in out if r["mode"] == "dense-hnsw-int8")["recall_at_10"] < 1.0

    again = ScaleRun(rows, tmp_path / "work", queries=5, prune=(10,), funnels=(funnel,), reuse=True, efs=(None, 10),
                     log=lambda row: None).run([300], ["lucene-hnsw"])  # the indexes left in work, not rebuilt
    assert [r["build_s"] for r in again] == [None] * 4
    assert [r["mode"] for r in again] == ["dense-hnsw", "dense-hnsw-filtered", "dense-hnsw-ef10",
                                          "dense-hnsw-ef10-filtered"]
    first = [r for r in out if r["backend"] == "lucene-hnsw"][:2]
    assert [r["recall_at_10"] for r in again[:2]] == [r["recall_at_10"] for r in first]
