"""`vqgram encode` on a local pool and on Ray (2 workers), and shards merged into one index equal to a single build."""
import numpy as np
import pytest

from vqgram import Query
from vqgram.local_words import LocalWords

from vqgram.distributed.engines import encode_folder
from vqgram.distributed.shards import merge_shards
from vqgram.indexer.ingest import index_encoded
from vqgram.indexer.rowfiles import iter_records, open_rows
from vqgram.indexer.rows import parse_row

BACKENDS = ["tantivy", pytest.param("lucene", marks=pytest.mark.jvm)]


@pytest.fixture(scope="module")
def encoded(tmp_path_factory, photos):
    out = tmp_path_factory.mktemp("encoded") / "rows"
    report = encode_folder(photos, out, engine="local", workers=2, partition_size=11)
    return out, report


def _rows(folder):
    source = open_rows(folder)
    return {r.id: r for r in (parse_row(rec, w, source.encoded_by.vector_dim) for w, rec in iter_records(source))}


def test_local_pool_writes_one_parquet_file_per_partition(encoded, photos):
    out, report = encoded
    assert (report.rows, len(report.files), report.skipped) == (33, 3, [])
    assert [p.name for p in sorted(out.glob("*.parquet"))] == ["part-00000.parquet", "part-00001.parquet",
                                                              "part-00002.parquet"]
    source = open_rows(out)
    assert source.encoded_by.folder == str(photos.resolve())
    rows = _rows(out)
    assert {r.label for r in rows.values()} == {p.name for p in photos.iterdir()}
    # a binary column (tests/test_positions.py): each image's local words on one grid
    assert {len(LocalWords.from_bytes(r.positions).grids) for r in rows.values()} == {1}
    with pytest.raises(ValueError, match="already holds encoded partitions"):
        encode_folder(photos, out, engine="local")


def test_ray_with_two_workers_writes_the_same_rows_as_the_local_pool(encoded, photos, tmp_path):
    pytest.importorskip("ray.data", reason="the ray engine needs 'ray[data]'")
    out, _ = encoded
    report = encode_folder(photos / "cat", tmp_path / "ray", engine="ray", workers=2, partition_size=2)
    assert (report.rows, len(report.files)) == (3, 2)
    local, ray = _rows(out), _rows(tmp_path / "ray")
    assert set(ray) <= set(local) and len(ray) == 3
    for i, row in ray.items():
        assert (row.path, row.words) == (local[i].path, local[i].words)
        np.testing.assert_allclose(row.vector, local[i].vector, atol=1e-6)


def _view(index, rows):
    """Everything a user can observe: count, stored metadata, vectors, and full word and dense rankings."""
    from vqgram.searcher.searcher import SearchOptions, Searcher

    with Searcher(index) as s:
        backend = s.handle.backend
        ids, matrix = backend.vectors()
        order = np.argsort(ids)
        queries = list(rows.values())[::5]
        words = [s.rank(Query(q.words, q.vector)).ranking for q in queries]
        dense = [s.search(Query(q.words, q.vector), 10, SearchOptions(mode="dense", exact=True)) for q in queries]
        return (backend.count(), backend.stored(), [ids[i] for i in order], matrix[order],
                [(r.ids.tolist(), r.scores.tolist()) for r in words], dense)


@pytest.mark.parametrize("backend", BACKENDS)
def test_merged_shards_equal_one_index(encoded, tmp_path, backend):
    out, report = encoded
    shards = []
    for n, part in enumerate(report.files):
        shards.append(tmp_path / f"shard-{n}")
        index_encoded(part, shards[-1], backend=backend, progress=False)
    assert merge_shards(shards, tmp_path / "merged") == 33
    index_encoded(out, tmp_path / "one", backend=backend, progress=False)
    rows = _rows(out)
    merged, one = _view(tmp_path / "merged", rows), _view(tmp_path / "one", rows)
    assert merged[0] == one[0] == 33
    assert merged[1] == one[1] and merged[2] == one[2]
    np.testing.assert_array_equal(merged[3], one[3])
    assert merged[4] == one[4]  # word rankings: same ids, same scores (collection statistics over all shards)
    assert merged[5] == one[5]
    again = index_encoded(out, tmp_path / "merged", backend=backend, progress=False)  # the merge is a normal index
    assert (again.indexed, again.unchanged) == (0, 33)


def test_merge_refuses_shards_that_share_documents(encoded, tmp_path):
    _, report = encoded
    index_encoded(report.files[0], tmp_path / "a", progress=False)
    index_encoded(report.files[0], tmp_path / "b", progress=False)
    with pytest.raises(ValueError, match="share 11 document ids"):
        merge_shards([tmp_path / "a", tmp_path / "b"], tmp_path / "merged")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ValueError, match="not an empty folder"):
        merge_shards([tmp_path / "a"], tmp_path / "full")


def test_ray_worker_of_two_threads_gets_its_cpus(photos, tmp_path):
    """A local Ray cluster has workers x threads CPUs: with `workers` CPUs, an actor asking for two waited forever
    (run in a subprocess with a deadline, so a regression fails instead of hanging the suite)."""
    import subprocess
    import sys

    pytest.importorskip("ray.data", reason="the ray engine needs 'ray[data]'")
    out = tmp_path / "ray"
    subprocess.run([sys.executable, "-m", "vqgram.cli", "-q", "encode", str(photos / "cat"), "--out", str(out),
                    "--engine", "ray", "--workers", "1", "--threads", "2", "--partition-size", "2"],
                   check=True, timeout=300, capture_output=True)
    assert len(_rows(out)) == 3



def test_ray_in_this_process_leaves_the_jvm_its_signal_handlers():
    """Ray's driver here must not install its failure-signal handler over the JVM's (conftest.py says why): the
    switch took effect, i.e. it was set before Ray was first imported."""
    constants = pytest.importorskip("ray._private.ray_constants", reason="the ray engine needs 'ray[data]'")
    assert constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER is True
