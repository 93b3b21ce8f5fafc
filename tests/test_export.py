"""`vqgram export` and `search --print-query`, checked with the official clients' DSL and serializers
(no cluster runs here)."""
import base64
import hashlib
import json
import shutil
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from vqgram.cli import main
from vqgram.distributed.cluster import TARGETS, VectorSpec, query_body
from vqgram.distributed.export import export_index
from vqgram.indexer.ingest import index_encoded
from vqgram.indexer.rowfiles import write_parquet
from vqgram.indexer.rows import EncodedBy, rows_from_batch
from vqgram.searcher.fusion import DEFAULT_WEIGHTS

from conftest import BACKENDS

es_dsl = pytest.importorskip("elasticsearch.dsl", reason="validating needs the elasticsearch client")
os_helpers = pytest.importorskip("opensearchpy.helpers.mapping", reason="validating needs opensearch-py")


@pytest.fixture(scope="module")
def built(tmp_path_factory, photos, tokenizer):
    """An index of the cat photos built from Parquet rows, and those rows (carrying made-up positions blobs:
    the packaged model makes none yet)."""
    from vqgram import index_folder

    tmp = tmp_path_factory.mktemp("export")
    rows = []
    keep = lambda files, enc: rows.extend(rows_from_batch(files, range(len(files)), enc))
    folder = photos / "cat"
    index_folder(folder, tmp / "scratch", tokenizer, workers=0, progress=False, on_batch=keep,
                 cache=tokenizer.feature_cache())
    rows = [replace(r, positions=hashlib.sha256(r.id.encode()).digest() * (1 + n)) for n, r in enumerate(rows)]
    source = write_parquet(rows, tmp / "rows.parquet", EncodedBy.of(tokenizer, str(folder)))
    index_encoded(source, tmp / "idx", progress=False)
    return tmp, source, {r.id: r for r in rows}


def _bulk(folder):
    lines = [json.loads(x) for f in sorted(folder.glob("bulk-*.ndjson")) for x in f.read_text().splitlines()]
    return list(zip(lines[::2], lines[1::2]))


@pytest.mark.parametrize("target", TARGETS)
def test_export_writes_a_mapping_and_bulk_actions_the_clients_accept(built, target):
    from elastic_transport import NdjsonSerializer
    from opensearchpy.serializer import JSONSerializer

    tmp, source, rows = built
    out = tmp / f"{target}-from-rows"
    report = export_index(tmp / "idx", target, out, encoded=source, batch=2)
    assert report.documents == len(rows) and len(report.files) == 2  # 3 documents, 2 per file
    body = json.loads((out / "index.json").read_text())
    mapping = (es_dsl.Mapping() if target == "elasticsearch" else os_helpers.Mapping())
    mapping._update_from_dict(body["mappings"])  # raises for an unknown field type
    assert mapping.to_dict() == body["mappings"]
    assert body["settings"]["index"]["similarity"]["vqgram_bm25"] == {"type": "BM25", "k1": 1.2, "b": 0.75}
    assert body["mappings"]["properties"]["positions"] == {"type": "binary", "doc_values": False}
    pairs = _bulk(out)
    assert len(pairs) == len(rows)
    serializer = NdjsonSerializer() if target == "elasticsearch" else None
    for action, doc in pairs:
        assert set(doc) == set(body["mappings"]["properties"])  # the mapping is strict: every field declared
        row = rows[action["index"]["_id"]]
        assert action["index"]["_index"] == "idx"
        assert sorted(doc["words"].split()) == sorted(w for w, c in row.words.items() for _ in range(c))
        np.testing.assert_allclose(doc["embedding"], row.vector, atol=1e-6)
        assert base64.b64decode(doc["positions"], validate=True) == row.positions and row.positions
        assert len(doc["vector"]) == 256 and np.linalg.norm(doc["vector"]) == pytest.approx(1, abs=1e-5)
        wire = serializer.dumps([action, doc]) if serializer else "\n".join(
            JSONSerializer().dumps(x) for x in (action, doc)).encode()
        assert [json.loads(x) for x in wire.decode().splitlines()] == [action, doc]


def test_export_from_the_index_gives_the_rows_it_was_fed(built):
    """An index fed by `index --encoded` (rows made elsewhere, with their own ids) exports from its stored
    fields exactly the documents its rows give."""
    tmp, source, rows = built
    export_index(tmp / "idx", "opensearch", tmp / "stored")
    export_index(tmp / "idx", "opensearch", tmp / "rows", encoded=source)
    by_id = lambda folder: {a["index"]["_id"]: d for a, d in _bulk(folder)}
    assert by_id(tmp / "stored") == by_id(tmp / "rows") and len(by_id(tmp / "stored")) == len(rows)


@pytest.mark.parametrize("backend", BACKENDS)
def test_export_needs_no_photo(tmp_path, photos, tokenizer, backend):
    """The photos of an index are deleted after indexing: each exported document still carries the words and
    the embedding that were indexed, bit for bit."""
    from vqgram import index_folder

    folder = tmp_path / "photos"
    shutil.copytree(photos / "cat", folder)
    rows = []
    keep = lambda files, enc: rows.extend(rows_from_batch(files, range(len(files)), enc))
    index_folder(folder, tmp_path / "idx", tokenizer, backend=backend, workers=0, progress=False, on_batch=keep)
    shutil.rmtree(folder)
    report = export_index(tmp_path / "idx", "elasticsearch", tmp_path / "out")
    assert report.documents == len(rows) == 3 and not report.skipped
    exported = {a["index"]["_id"]: d for a, d in _bulk(tmp_path / "out")}
    for row in rows:
        doc = exported[row.id]
        assert Counter(doc["words"].split()) == row.words
        assert np.array_equal(np.asarray(doc["embedding"], np.float32), row.vector)
        assert base64.b64decode(doc["positions"]) == row.positions != b""  # the local words' cells, as stored
        assert (doc["path"], doc["label"], doc["width"], doc["height"], doc["size"], doc["mtime"]) == \
               (row.path, row.label, row.width, row.height, row.size, row.mtime)


def test_query_bodies_parse_with_the_clients_dsl():
    from opensearchpy.helpers.query import Q as OpenSearchQ

    weights = {"h0i0j0c1": 1.0, "h1i2j0c7": 1.6931}
    vector = np.linspace(-1, 1, 64).astype(np.float32)
    spec = VectorSpec(64, 16)
    bm25 = query_body("elasticsearch", "bm25", 5, weights, vector, spec)
    assert es_dsl.Search.from_dict(bm25).to_dict() == bm25
    assert bm25["query"]["bool"]["should"][1] == {"term": {"words": {"value": "h1i2j0c7", "boost": 1.6931}}}
    dense = query_body("elasticsearch", "dense", 5, weights, vector, spec)
    assert es_dsl.Search.from_dict(dense).to_dict() == dense
    assert dense["knn"]["k"] == 5 and dense["knn"]["num_candidates"] == 100 and len(dense["knn"]["query_vector"]) == 16
    hybrid = query_body("elasticsearch", "hybrid", 5, weights, vector, spec)
    parts = hybrid["retriever"]["linear"]["retrievers"]
    assert [(p["weight"], p["normalizer"]) for p in parts] == [(w, "minmax") for w in DEFAULT_WEIGHTS]
    os_bm25 = query_body("opensearch", "bm25", 5, weights, vector, spec)
    assert OpenSearchQ(os_bm25["query"]).to_dict() == bm25["query"]
    os_hybrid = query_body("opensearch", "hybrid", 5, weights, vector, spec)
    words, knn = os_hybrid["query"]["hybrid"]["queries"]
    assert OpenSearchQ(words).to_dict() == bm25["query"]
    assert knn["knn"]["vector"]["vector"] == pytest.approx(dense["knn"]["query_vector"])
    combine = os_hybrid["search_pipeline"]["phase_results_processors"][0]["normalization-processor"]
    assert combine["combination"]["parameters"]["weights"] == pytest.approx([w / sum(DEFAULT_WEIGHTS) for w in DEFAULT_WEIGHTS])
    with pytest.raises(ValueError, match="mode funnel has no cluster query"):
        query_body("opensearch", "funnel", 5, weights, vector, spec)


def test_print_query_prints_the_words_the_search_sends(built, queries):
    tmp, _, _ = built
    result = CliRunner().invoke(main, ["search", str(tmp / "idx"), "--image", str(queries / "cat.jpg"),
                                       "--print-query", "opensearch", "--prune", "20", "-k", "3"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["size"] == 3 and len(body["query"]["bool"]["should"]) == 20
    bad = CliRunner().invoke(main, ["search", str(tmp / "idx"), "--query", "label:x", "--print-query", "opensearch"])
    assert bad.exit_code != 0 and "--print-query needs --image" in bad.output
