"""`index --encoded`: rows encoded elsewhere make the index a folder run makes; bad rows are named and skipped."""
import json
import shutil
from dataclasses import replace

import pytest

from vqgram import KGramConfig, Query, Searcher, index_folder, open_index
from vqgram.indexer.ingest import index_encoded
from vqgram.indexer.rowfiles import open_rows, write_jsonl, write_parquet
from vqgram.indexer.rows import EncodedBy, rows_from_batch

BACKENDS = ["tantivy", pytest.param("lucene", marks=pytest.mark.jvm)]


@pytest.fixture(scope="module")
def encoded(tmp_path_factory, photos, tokenizer):
    """The sample's rows (kept from a folder run through its batch hook) and that folder index."""
    folder = tmp_path_factory.mktemp("photos")
    shutil.copytree(photos, folder, dirs_exist_ok=True)
    rows = []
    keep = lambda files, enc: rows.extend(rows_from_batch(files, range(len(files)), enc))
    index = tmp_path_factory.mktemp("folder-idx") / "index"
    index_folder(folder, index, tokenizer, workers=0, progress=False, on_batch=keep, cache=tokenizer.feature_cache())
    return folder, sorted(rows, key=lambda r: r.path), EncodedBy.of(tokenizer, str(folder.resolve())), index


def _results(index, rows):
    with Searcher(index) as s:
        return [[(h.id, round(h.score, 4)) for h in s.search(Query(r.words, r.vector), 5)] for r in rows[::7]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_parquet_rows_index_like_the_folder(tmp_path, encoded, tokenizer, backend):
    folder, rows, made_by, _ = encoded
    folder_index = tmp_path / "folder-idx"  # the feature cache spares the network a second pass
    index_folder(folder, folder_index, tokenizer, backend=backend, workers=0, progress=False,
                 cache=tokenizer.feature_cache())
    source = write_parquet(rows, tmp_path / "part-00000.parquet", made_by)
    report = index_encoded(source, tmp_path / "idx", backend=backend, progress=False)
    assert (report.indexed, report.total, report.skipped) == (len(rows), len(rows), [])
    assert _results(tmp_path / "idx", rows) == _results(folder_index, rows)
    again = index_encoded(source, tmp_path / "idx", backend=backend, progress=False)
    assert (again.indexed, again.unchanged, again.removed) == (0, len(rows), 0)


def test_bad_rows_are_named_and_skipped(tmp_path, encoded, caplog):
    _, rows, made_by, _ = encoded
    good = rows[:5]
    source = write_jsonl(good, tmp_path / "rows.jsonl", made_by)
    record = json.loads(source.read_text().splitlines()[1])  # the first row as JSON Lines hold it
    bad = [
        {**record, "id": "a" * 64, "path": "/x/short.jpg", "vector": record["vector"][:10]},
        {**record, "id": "b" * 64, "path": "/x/upper.jpg", "words": {"H0I0J0C1": 2}},
        {**record, "id": "c" * 64, "path": "/x/string.jpg", "words": "h0i0j0c1 h0i0j0c1"},
        {**record, "id": None, "path": "/x/noid.jpg"},
        {**record, "id": "d" * 64, "path": "/x/blob.jpg", "positions": "%%"},
    ]
    with open(source, "a") as f:
        f.writelines(json.dumps(b) + "\n" for b in bad)
        f.write("{not json\n")
    report = index_encoded(source, tmp_path / "idx", progress=False)
    assert (report.indexed, report.total) == (5, 5)
    reasons = [s.reason for s in report.skipped]
    assert [s.path for s in report.skipped] == [f"rows.jsonl line {n}" for n in range(7, 13)]
    assert "vector width 10 but this tokenizer makes 1024" in reasons[0]
    assert "unknown word format 'H0I0J0C1'" in reasons[1]
    assert "words must be {word: count}" in reasons[2]
    assert reasons[3] == "missing id"
    assert "positions must be base64 text" in reasons[4]
    assert reasons[5].startswith("not JSON")
    assert sum("skipped rows.jsonl line" in r.message for r in caplog.records) == 6


def test_changed_removed_and_bad_rows_keep_the_rest(tmp_path, encoded):
    _, rows, made_by, _ = encoded
    index_encoded(write_parquet(rows, tmp_path / "a.parquet", made_by), tmp_path / "idx", progress=False)
    changed = replace(rows[1], id="f" * 64)
    broken = replace(rows[2], id="e" * 64, vector=rows[2].vector[:3])  # its old document must stay
    moved = replace(rows[3], path=rows[3].path + ".moved.jpg")  # same bytes, new path
    later = [rows[0], changed, broken, moved] + rows[5:]  # rows[4] is gone
    (tmp_path / "a.parquet").unlink()
    report = index_encoded(write_jsonl(later, tmp_path / "b.jsonl", made_by), tmp_path / "idx", progress=False)
    assert (report.indexed, report.unchanged, report.removed, len(report.skipped)) == (2, len(rows) - 4, 2, 1)
    handle = open_index(tmp_path / "idx")
    stored = handle.backend.stored()
    handle.close()
    assert stored[rows[1].path].id == "f" * 64
    assert stored[rows[2].path].id == rows[2].id
    assert stored[moved.path].id == rows[3].id and rows[3].path not in stored
    assert rows[4].path not in stored and len(stored) == len(rows) - 1


def test_rows_of_another_tokenizer_are_refused(tmp_path, encoded):
    _, rows, made_by, folder_index = encoded
    other = replace(made_by, config=replace(made_by.config, kgram=KGramConfig(kernel=2)))
    source = write_parquet(rows[:3], tmp_path / "p.parquet", other)
    with pytest.raises(ValueError, match="made by another tokenizer.*kernel"):
        index_encoded(source, folder_index, progress=False)
    headless = write_jsonl(rows[:3], tmp_path / "rows.jsonl")
    assert open_rows(headless).encoded_by is None
    with pytest.raises(ValueError, match="does not say which tokenizer"):
        index_encoded(headless, tmp_path / "new", progress=False)


def test_cli_indexes_encoded_rows(tmp_path, encoded, caplog):
    from click.testing import CliRunner

    from vqgram.cli import main

    _, rows, _, _ = encoded
    source = write_jsonl(rows[:4], tmp_path / "rows.jsonl")  # no header: the default model's options apply
    with open(source, "a") as f:
        f.write(json.dumps({"id": "x", "path": "/p.jpg", "words": {"h0i0j0c1": 1}, "vector": [0.5]}) + "\n")
    result = CliRunner().invoke(main, ["index", "--encoded", str(source), "--index", str(tmp_path / "idx")])
    assert result.exit_code == 0, result.output
    assert "skipped rows.jsonl line 5 (id x): vector width 1" in caplog.text
    assert "indexed 4," in result.output and "skipped 1;" in result.output
    both = CliRunner().invoke(main, ["index", "folder", "--encoded", str(source), "--index", str(tmp_path / "i2")])
    assert both.exit_code != 0 and "exactly one of FOLDER or --encoded" in both.output
