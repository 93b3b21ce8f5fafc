"""Each document's local-word positions: an opaque blob carried through rows (Parquet, JSON Lines), both engines,
shard merges and export, and read back for a page of hits at once; indexes made before it still work."""
import base64
import json
from collections import Counter
from dataclasses import replace

import numpy as np
import pyarrow.parquet as pq
import pytest

from vqgram.config import TokenizerConfig
from vqgram.distributed.export import export_index
from vqgram.distributed.shards import merge_shards
from vqgram.indexer.ingest import index_encoded
from vqgram.indexer.rowfiles import iter_records, open_rows, write_jsonl, write_parquet
from vqgram.indexer.rows import BadRow, EncodedBy, parse_row
from vqgram.indexer.store import create_or_open, open_index

from conftest import BACKENDS
from test_synthetic import _rows

MADE_BY = EncodedBy(TokenizerConfig(), "synthetic", "0" * 64, vector_dim=8)
OPTIONS = {"tantivy": {}, "lucene": {"dense_dims": 8}}  # the synthetic rows' vectors are 8-d


@pytest.fixture(scope="module")
def rows():
    """Rows whose blobs are arbitrary bytes (NUL, high bytes, one of 3 kB); every fourth has none."""
    rng = np.random.default_rng(7)
    rows = [replace(r, positions=b"" if i % 4 == 0 else rng.bytes(3000 if i == 1 else int(rng.integers(1, 90))))
            for i, r in enumerate(_rows(24))]
    rows[2] = replace(rows[2], positions=b"\x00" + rows[2].positions + b"\xff")
    return rows


def _index(rows, path, backend):
    index_encoded(write_parquet(rows, path.parent / f"{path.name}.parquet", MADE_BY), path, backend=backend,
                  progress=False, **OPTIONS[backend])
    return path


def _stored(path, ids=None):
    handle = open_index(path)
    try:
        docs = {d.id: d.positions for d in handle.backend.stored_documents()}
        read = handle.backend.stored_positions(sorted(docs) if ids is None else ids)
        assert read == {i: docs[i] for i in read}  # the page read and the export read agree
        return read
    finally:
        handle.close()


def _old(path, backend, rows):
    """An index made before documents stored positions: Tantivy's schema has no such field (the empty index's
    schema without it: the fields before keep their numbers); a Lucene document of a model without local words
    holds exactly the fields it held then."""
    if backend == "tantivy":
        create_or_open(path, MADE_BY, backend).close()
        meta = json.loads((path / "meta.json").read_text())
        meta["schema"] = [f for f in meta["schema"] if f["name"] != "positions"]
        (path / "meta.json").write_text(json.dumps(meta))
    return _index([replace(r, positions=b"") for r in rows], path, backend)


def test_rows_carry_positions_through_parquet_and_json_lines(rows, tmp_path):
    jsonl = write_jsonl(rows, tmp_path / "rows.jsonl", MADE_BY)
    assert json.loads(jsonl.read_text().splitlines()[2])["positions"] == base64.b64encode(rows[1].positions).decode()
    for source in (write_parquet(rows, tmp_path / "rows.parquet", MADE_BY), jsonl):
        read = [parse_row(rec, where, 8) for where, rec in iter_records(open_rows(source))]
        assert [r.positions for r in read] == [r.positions for r in rows]
    table = pq.read_table(tmp_path / "rows.parquet")
    assert str(table.schema.field("positions").type) == "binary"
    pq.write_table(table.drop_columns(["positions"]), tmp_path / "older.parquet")  # rows written before
    older = [parse_row(rec, where, 8) for where, rec in iter_records(open_rows(tmp_path / "older.parquet"))]
    assert [r.positions for r in older] == [b""] * len(rows)
    record = {**rows[1].to_record(), "words": rows[1].words, "vector": rows[1].vector.tolist()}
    assert parse_row({k: v for k, v in record.items() if k != "positions"}, "line 1", 8).positions == b""
    with pytest.raises(BadRow, match=r"line 2 \(id 0001\): positions must be base64 text"):
        parse_row({**record, "positions": "not base64!"}, "line 2", 8)
    with pytest.raises(BadRow, match="positions must be bytes"):
        parse_row({**record, "positions": [1, 2]}, "line 3", 8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_both_engines_store_positions_and_read_a_page_at_once(rows, tmp_path, backend):
    path = _index(rows, tmp_path / "idx", backend)
    expected = {r.id: r.positions for r in rows}
    assert _stored(path) == expected
    page = np.array([rows[5].id, "no-such-id", rows[1].id, rows[0].id, rows[5].id])  # as a Ranking holds them
    assert _stored(path, page) == {i: expected[i] for i in (rows[5].id, rows[1].id, rows[0].id)}
    assert _stored(path, []) == {}
    handle = open_index(path)
    try:  # a replaced document reads its new blob, never the deleted one's
        handle.backend.add([replace(rows[1], positions=b"new").to_doc(), replace(rows[5], positions=b"").to_doc()])
        handle.backend.commit()
        assert handle.backend.stored_positions([rows[1].id, rows[5].id]) == {rows[1].id: b"new", rows[5].id: b""}
    finally:
        handle.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_positions_survive_shard_merges_and_segment_merges(rows, tmp_path, backend):
    shards = [_index(rows[:8], tmp_path / "a", backend), _index(rows[8:16], tmp_path / "b", backend)]
    merged = tmp_path / "merged"
    assert merge_shards(shards, merged) == 16
    assert _stored(merged) == {r.id: r.positions for r in rows[:16]}
    handle = open_index(merged)
    try:  # Tantivy merges 8 segments of a level (the two shards' and six more) after a commit; Lucene on a force merge
        for r in rows[16:]:
            handle.backend.add([r.to_doc()])
            handle.backend.commit()
        if backend == "lucene":
            handle.backend.force_merge(1)
    finally:
        handle.close()
    if backend == "tantivy":
        assert len(json.loads((merged / "meta.json").read_text())["segments"]) < 2 + len(rows[16:])
    assert _stored(merged) == {r.id: r.positions for r in rows}


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_index_made_before_positions_opens_searches_merges_and_exports(rows, tmp_path, backend):
    old = [_old(tmp_path / "old-a", backend, rows[:12]), _old(tmp_path / "old-b", backend, rows[12:])]
    assert _stored(old[0]) == {r.id: b"" for r in rows[:12]}
    handle = open_index(old[0])
    try:
        assert handle.backend.search_words(dict.fromkeys(rows[3].words, 1.0), 1)[0].id == rows[3].id
        if backend == "tantivy":  # a blob would be dropped by a schema without the field: refused instead
            with pytest.raises(ValueError, match="made before vqgram stored local-word positions"):
                handle.backend.add([rows[1].to_doc()])
    finally:
        handle.close()
    assert merge_shards(old, tmp_path / "old-merged") == len(rows)
    assert _stored(tmp_path / "old-merged") == {r.id: b"" for r in rows}
    export_index(tmp_path / "old-merged", "opensearch", tmp_path / "out")
    sources = [json.loads(x) for x in (tmp_path / "out" / "bulk-00000.ndjson").read_text().splitlines()[1::2]]
    assert [s["positions"] for s in sources] == [""] * len(rows)
    new = _index(rows[12:], tmp_path / "new", backend)
    if backend == "tantivy":
        with pytest.raises(ValueError, match=r"shard .*new has another Tantivy schema .*fields differ: positions"):
            merge_shards([old[0], new], tmp_path / "mixed")
    else:  # Lucene documents carry their own fields: the merged index holds both kinds
        assert merge_shards([old[0], new], tmp_path / "mixed") == len(rows)
        assert _stored(tmp_path / "mixed") == {**{r.id: b"" for r in rows[:12]}, **{r.id: r.positions for r in rows[12:]}}


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_folder_pipeline_stores_each_documents_local_words(photo_index, backend):
    """The packaged model's grid head: every document stores one grid of local words, a word a cell, whose
    codes are the document's local words (tests/test_local_words.py checks them against the tokenizer)."""
    from vqgram.local_words import LocalWords, is_local

    index = photo_index(backend)
    stored = _stored(index)
    assert len(stored) == 33
    handle = open_index(index)
    try:
        for doc_id, blob in stored.items():
            local = LocalWords.from_bytes(blob)
            (rows, cols), = local.grids
            assert len(local.codes) == rows * cols and max(rows, cols) == 14  # 224 px, stride 16
            words = Counter(handle.backend.stored_words(doc_id).split())
            assert Counter(local.codes.tolist()) == Counter(int(w[1:]) for w in words.elements() if is_local(w))
    finally:
        handle.close()
