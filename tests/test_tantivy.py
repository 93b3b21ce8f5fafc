"""The Tantivy backend on a hand-made three-document index: BM25 derived by hand, upserts, deletes."""
import math

import numpy as np
import pytest

from vqgram.indexer.backend import ImageDoc
from vqgram.indexer.tantivy_index import TantivyBackend


def doc(i, words, label="x", path=None, vector=None):
    vector = np.eye(10, dtype=np.float32)[i] if vector is None else vector
    return ImageDoc(id=f"id{i}", path=path or f"/p/{i}.jpg", label=label, width=10 + i, height=20, mtime=1.5 + i,
                    size=100 + i, words=words, vector=vector)


DOCS = [
    doc(1, "h0i0j0c1 h0i0j0c1 h0i0j0c2", label="cat"),
    doc(2, "h0i0j0c1 h0i0j0c3 h0i0j0c3 h0i0j0c3", label="dog"),
    doc(3, "h0i0j0c4", label="dog"),
]


@pytest.fixture
def backend(tmp_path):
    b = TantivyBackend.create(tmp_path / "idx")
    b.add(DOCS)
    b.commit()
    yield b
    b.close()


def bm25(tf, df, n, dl, avgdl, k1=1.2, b=0.75):
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    return idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))


def test_bm25_scores_match_the_formula(backend):
    avgdl = (3 + 4 + 1) / 3
    hits = backend.search_words({"h0i0j0c1": 1.0, "h0i0j0c3": 2.0}, k=10)
    expected = {
        "id1": bm25(2, 2, 3, 3, avgdl),
        "id2": bm25(1, 2, 3, 4, avgdl) + 2.0 * bm25(3, 1, 3, 4, avgdl),
    }
    assert [h.id for h in hits] == sorted(expected, key=lambda i: -expected[i])
    for h in hits:
        assert h.score == pytest.approx(expected[h.id], rel=1e-4)


def test_full_ranking_is_every_match_in_search_order(backend):
    query = {"h0i0j0c1": 1.0, "h0i0j0c3": 2.0, "h0i0j0c4": 0.5}
    ranking = backend.rank_words(query)
    hits = backend.search_words(query, k=10)
    assert ranking.ids.tolist() == [h.id for h in hits]
    assert sorted(ranking.ids.tolist()) == ["id1", "id2", "id3"]
    assert ranking.scores.tolist() == pytest.approx([h.score for h in hits])


def test_hits_carry_metadata(backend):
    (hit,) = backend.search_words({"h0i0j0c4": 1.0}, k=5)
    assert (hit.id, hit.path, hit.label, hit.width, hit.height) == ("id3", "/p/3.jpg", "dog", 13, 20)


def test_text_queries_use_the_engine_syntax(backend):
    assert {h.id for h in backend.search_text("label:dog", k=10)} == {"id2", "id3"}
    assert [h.id for h in backend.search_text("h0i0j0c1 AND label:cat", k=10)] == ["id1"]
    assert {h.id for h in backend.search_text("width:[12 TO 13]", k=10)} == {"id2", "id3"}
    with pytest.raises(ValueError, match="cannot parse query 'label:\\(dog'"):
        backend.search_text("label:(dog", k=10)


def test_ties_break_by_id(backend):
    b = backend
    b.add([doc(9, "h0i0j0c9"), doc(8, "h0i0j0c9")])
    b.commit()
    assert [h.id for h in b.search_words({"h0i0j0c9": 1.0}, k=10)] == ["id8", "id9"]


def test_upsert_delete_and_stored(backend):
    b = backend
    b.add([doc(1, "h0i0j0c7", label="bird")])  # same id: replaces
    b.delete(["id3"])
    assert b.count() == 3  # nothing visible before commit
    b.commit()
    assert b.count() == 2
    assert [h.label for h in b.search_text("h0i0j0c7", k=5)] == ["bird"]
    stored = b.stored()
    assert set(stored) == {"/p/1.jpg", "/p/2.jpg"}
    assert (stored["/p/2.jpg"].id, stored["/p/2.jpg"].mtime, stored["/p/2.jpg"].size) == ("id2", 3.5, 102)


def test_uncommitted_changes_are_lost_on_close_but_the_commit_stays(tmp_path):
    b = TantivyBackend.create(tmp_path / "idx")
    b.add(DOCS)
    b.commit()
    b.add([doc(5, "h0i0j0c5")])
    b.close()  # a crash before commit
    again = TantivyBackend.open(tmp_path / "idx")
    assert again.count() == 3


def test_vectors_commit_with_the_index(tmp_path):
    b = TantivyBackend.create(tmp_path / "idx")
    vec = np.eye(3, dtype=np.float32)
    b.add([doc(i, "h0i0j0c1", vector=vec[i]) for i in range(3)])
    b.commit()
    b.delete(["id1"])
    b.add([doc(7, "h0i0j0c1", vector=vec[0])])
    b.close()  # uncommitted: lost
    again = TantivyBackend.open(tmp_path / "idx")
    ids, matrix = again.vectors()
    assert ids == ["id0", "id1", "id2"]
    assert np.array_equal(matrix, vec)


def test_every_document_needs_an_embedding_of_the_index_width(tmp_path):
    b = TantivyBackend.create(tmp_path / "idx", embedding_dim=10)
    with pytest.raises(ValueError, match="needs a 1-d embedding"):
        b.add([ImageDoc(**{**doc(1, "w").__dict__, "vector": None})])
    with pytest.raises(ValueError, match="a 3-d embedding in an index of 10-d ones"):
        b.add([doc(1, "w", vector=np.ones(3, np.float32))])
    b.close()


def test_one_writer_per_run_and_readers_never_block(tmp_path):
    from vqgram.indexer.backend import IndexLocked

    first = TantivyBackend.create(tmp_path / "idx")
    first.begin_writing()
    second = TantivyBackend.open(tmp_path / "idx")
    with pytest.raises(IndexLocked, match="is being written by another run"):
        second.begin_writing()
    first.add(DOCS)
    first.commit()  # the lock stays with the run across commits
    with pytest.raises(IndexLocked):
        second.add(DOCS)
    assert TantivyBackend.open(tmp_path / "idx").count() == 3  # a reader meanwhile
    first.close()
    second.begin_writing()  # released at the end of the run; the new writer sees the last commit
    assert second.count() == 3
    second.close()
