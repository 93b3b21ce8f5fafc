"""Nothing lost, ever: commits killed at marked points, readers during commits, two writers, damaged
files, odd links and nonsense options, on both backends (real engines, real processes, real signals)."""
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from vqgram.cli import main
from vqgram.indexer.backend import ImageDoc, IndexLocked
from vqgram.indexer.store import backend_class

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["tantivy", "lucene"]
DIM = 16

# A writer in its own process: each commit deletes a few older documents and adds new ones, printing a
# line at each marked point (the parent kills it there). Every vector is a function of its id.
WRITER = """
import sys, time
import numpy as np
from pathlib import Path
from vqgram.indexer.backend import ImageDoc
from vqgram.indexer.store import backend_class
from tests.test_reliability import doc

name, path, first, commits, per, pause = sys.argv[1], Path(sys.argv[2]), *map(int, sys.argv[3:6]), float(sys.argv[6])
engine = backend_class(name).open(path)
engine.begin_writing()
print("locked", engine.count(), flush=True)
for c in range(first, first + commits):
    print("adding", c, flush=True)
    engine.delete([f"{i:08d}" for i in range((c - 2) * per, (c - 2) * per + 3)] if c >= 2 else [])
    engine.add([doc(c * per + j) for j in range(per)])
    print("committing", c, flush=True)
    engine.commit()
    print("committed", c, engine.count(), flush=True)
    time.sleep(pause)
engine.close()
"""


def vector(i: int, dim: int = DIM) -> np.ndarray:
    v = np.random.default_rng(i).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def doc(i: int, dim: int = DIM) -> ImageDoc:
    return ImageDoc(id=f"{i:08d}", path=f"/p/{i}.jpg", label=f"c{i % 3}", width=10, height=10, mtime=1.0, size=i,
                    words=f"w{i % 7} w{i % 11} all", vector=vector(i, dim))


def expected_count(commits: int, per: int) -> int:
    """Documents after `commits` commits of WRITER."""
    return commits * per - 3 * max(0, commits - 2)


def new_index(name: str, path: Path) -> Path:
    options = {"dense_dims": 8} if name == "lucene" else {}
    backend_class(name).create(path, embedding_dim=DIM, **options).close()
    return path


def start_writer(name, path, first=0, commits=6, per=40, pause=0.0) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", WRITER, name, str(path), str(first), str(commits), str(per),
                             str(pause)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def read_state(name: str, path: Path) -> tuple[int, int]:
    """Open the last commit as a reader: (documents, wrong vectors); fails on a document without its vector."""
    engine = backend_class(name).open(path)
    try:
        n, stored = engine.count(), engine.stored()
        ids, matrix = engine.vectors()
    finally:
        engine.close()
    assert len(ids) == n == len(stored)
    assert set(ids) == {m.id for m in stored.values()}, "a document without its vector"
    wrong = sum(not np.allclose(row, vector(int(i))) for i, row in zip(ids, matrix))
    return n, wrong


# ---- commits ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", BACKENDS)
def test_a_commit_killed_at_any_point_leaves_the_old_or_the_new_state(tmp_path, name):
    per = 40
    for point, delay in [("adding", 0.0), ("committing", 0.005)]:  # before, and inside, a commit
        path = new_index(name, tmp_path / f"{point}-{delay}")
        writer = start_writer(name, path, commits=4, per=per)
        for line in writer.stdout:
            if line.split()[:2] == [point, "2"]:
                time.sleep(delay)
                writer.send_signal(signal.SIGKILL)
                break
        writer.wait()
        assert writer.returncode == -signal.SIGKILL, writer.stderr.read()
        n, wrong = read_state(name, path)
        old, new = expected_count(2, per), expected_count(3, per)
        assert wrong == 0 and n in ({old} if point == "adding" else {new} if point == "committed" else {old, new})
    # the killed writer left no lock behind: a new run resumes and commits
    resumed = start_writer(name, path, first=2, commits=2, per=per)  # redoes commit 2 (upserts), then 3
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    n, wrong = read_state(name, path)
    assert wrong == 0 and n == expected_count(4, per)


@pytest.mark.parametrize("name", BACKENDS)
def test_readers_during_commits_never_see_a_vector_under_another_id(tmp_path, name):
    path = new_index(name, tmp_path / "idx")
    writer = start_writer(name, path, commits=25, per=40, pause=0.05)
    reads, wrong, states = 0, 0, set()
    while writer.poll() is None or reads < 10_000:
        n, bad = read_state(name, path)
        reads, wrong = reads + n, wrong + bad
        states.add(n)
    assert writer.returncode == 0, writer.stderr.read()
    assert wrong == 0 and reads >= 10_000
    assert len(states) >= 3, f"the reader saw only {sorted(states)}: not across commits"
    assert read_state(name, path) == (expected_count(25, 40), 0)


# ---- writers ---------------------------------------------------------------------------------------

def cli(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vqgram.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, **kwargs)


@pytest.mark.parametrize("name", BACKENDS)
def test_a_second_writer_is_refused_in_one_line_or_waits(tmp_path, name, photos, tokenizer):
    from vqgram import index_folder

    index = tmp_path / "idx"
    index_folder(photos / "cat", index, tokenizer, backend=name, workers=0, progress=False)
    first = backend_class(name).open(index)
    first.begin_writing()  # a run in progress
    second = CliRunner().invoke(main, ["-q", "index", str(photos / "rocket"), "--index", str(index), "--backend",
                                       name, "--workers", "0"])
    assert second.exit_code == 1
    assert second.output == (f"error: index {index} is being written by another run (it holds the writer lock); "
                             "wait for that run to finish, or pass --wait to queue behind it\n")
    reports = []
    waiting = threading.Thread(target=lambda: reports.append(index_folder(
        photos / "rocket", index, tokenizer, backend=name, workers=0, progress=False, wait=True)))
    waiting.start()
    first.add([doc(1, dim=tokenizer.embedding_dim)])
    first.commit()  # commits go on while the other run waits; the lock stays held
    time.sleep(1.5)
    assert waiting.is_alive() and not reports
    first.close()
    waiting.join(300)
    n_photos = len(list((photos / "cat").glob("*.jpg"))) + len(list((photos / "rocket").glob("*.jpg")))
    assert reports[0].total == n_photos + 1  # nothing lost by either writer
    engine = backend_class(name).open(index)
    assert engine.count() == len(engine.vectors()[0]) == n_photos + 1
    engine.close()


# ---- damaged indexes -------------------------------------------------------------------------------

def small(name: str, path: Path, tokenizer, n: int) -> Path:
    """An index of `n` documents with the manifest `tokenizer` would write."""
    from vqgram.config import MANIFEST_NAME, save_json
    from vqgram.indexer.store import manifest_for

    engine = backend_class(name).create(path, embedding_dim=DIM, **({"dense_dims": 8} if name == "lucene" else {}))
    engine.add([doc(i) for i in range(n)])
    engine.commit()
    engine.close()
    save_json(manifest_for(tokenizer, name), path / MANIFEST_NAME)
    return path


def damaged(name: str, path: Path, how: str, tokenizer) -> Path:
    """A 500-document index with its largest engine file removed or truncated, or its manifest emptied."""
    from vqgram.config import MANIFEST_NAME

    small(name, path, tokenizer, 500)
    files = sorted((f for f in path.iterdir() if f.suffix not in (".json", ".lock")), key=lambda f: -f.stat().st_size)
    target = path / MANIFEST_NAME if how == "empty manifest" else files[0]
    if how == "missing segment":
        target.unlink()
    else:
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2] if how == "truncated segment" else b"")
    return target


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("how", ["missing segment", "truncated segment", "empty manifest"])
def test_a_damaged_index_is_one_line_and_check_says_what_is_wrong(tmp_path, name, how, tokenizer, photos):
    index = tmp_path / "idx"
    target = damaged(name, index, how, tokenizer)
    runner = CliRunner()
    for args in (["search", index, "--query", "all"], ["index", photos / "cat", "--index", index, "--backend", name]):
        result = runner.invoke(main, [str(a) for a in args])
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
        if how == "empty manifest":
            assert f"index manifest {target} is unreadable" in result.output
        else:
            assert f"index {index} is damaged" in result.output and f"vqgram check {index}" in result.output
    result = runner.invoke(main, ["check", str(index)])
    assert result.exit_code == 1 and "problem: " in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("name", BACKENDS)
def test_check_passes_a_whole_index(tmp_path, name, tokenizer):
    small(name, tmp_path / "i", tokenizer, 20)
    result = CliRunner().invoke(main, ["check", str(tmp_path / "i")])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"index {tmp_path / 'i'} ({name}): 20 documents, 20 embeddings; ok"


# ---- files -----------------------------------------------------------------------------------------

def test_odd_links_unreadable_and_vanishing_files_are_skipped_with_one_warning(tmp_path, photos):
    """Dangling and looping links, and a file its reader may not open (tests run as root, who may read
    anything: the listing runs without the capability to override file permissions)."""
    folder = tmp_path / "odd"
    folder.mkdir()
    cat = sorted(photos.rglob("*.jpg"))  # names are unique across the sample's folders
    for f in cat[:3]:
        shutil.copy(f, folder / f.name)
    (folder / "dangling.jpg").symlink_to(folder / "gone.jpg")
    (folder / "loop.jpg").symlink_to(folder / "loop.jpg")
    (folder / "a.jpg").symlink_to(folder / "b.jpg")
    (folder / "b.jpg").symlink_to(folder / "a.jpg")
    shutil.copy(cat[3], folder / "secret.jpg")
    (folder / "secret.jpg").chmod(0)
    prefix = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    code = ("from vqgram.indexer.pipeline import plan_changes; import sys; p = plan_changes(sys.argv[1], {}); "
            "print(len(p.todo)); [print(s.path, s.reason) for s in p.skipped]")
    proc = subprocess.run([*prefix, sys.executable, "-c", code, str(folder)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "3"
    reasons = {Path(line.split()[0]).name: line for line in lines[1:]}
    assert set(reasons) == {"dangling.jpg", "loop.jpg", "a.jpg", "b.jpg", "secret.jpg"}
    assert "Permission denied" in reasons["secret.jpg"] and "symbolic links" in reasons["loop.jpg"]
    assert "No such file" in reasons["dangling.jpg"]


def test_a_file_vanishing_before_its_decode_is_skipped(tmp_path, photos):
    from vqgram.images import iter_batches, probe

    files = []
    for i, f in enumerate(sorted((photos / "cat").glob("*.jpg"))[:3]):
        shutil.copy(f, tmp_path / f.name)
        files.append(probe(tmp_path / f.name, tmp_path))
    Path(files[1].path).unlink()
    out = list(iter_batches(files, max_size=64, multiple=32, mean=(0, 0, 0), std=(1, 1, 1), workers=1))
    ok = [i for _, batch_ok, _ in out for i in batch_ok]
    bad = [b for _, _, batch_bad in out for b in batch_bad]
    assert sorted(ok) == [0, 2] and [i for i, _ in bad] == [1] and "No such file" in bad[0][1]


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_decoders_die_within_seconds_of_a_killed_run(tmp_path, photos):
    folder = tmp_path / "photos"
    for copy in range(4):  # distinct bytes: no duplicates
        for f in sorted(photos.rglob("*.jpg")):
            (folder / str(copy)).mkdir(parents=True, exist_ok=True)
            (folder / str(copy) / f.name).write_bytes(f.read_bytes() + bytes([copy]))
    run = subprocess.Popen([sys.executable, "-m", "vqgram.cli", "-q", "index", folder, "--index", tmp_path / "idx",
                            "--workers", "2", "--batch-size", "1"], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(workers := children(run.pid)) < 2:
        assert run.poll() is None and time.time() < deadline, "the run ended before its decoders started"
        time.sleep(0.1)
    run.send_signal(signal.SIGKILL)
    run.wait()
    deadline = time.time() + 10
    while any(alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.2)
    left = [w for w in workers if alive(w)]
    for w in left:  # don't leave them to the machine when this fails
        os.kill(w, signal.SIGKILL)
    assert not left, "decoder workers outlived their killed parent"


# ---- options ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["index", "{photos}", "--index", "{tmp}/i", "--dense-dims", "64"], "--dense-dims only apply to --backend lucene"),
    (["index", "{photos}", "--index", "{tmp}/i", "--int8", "--hnsw-m", "8"], "--hnsw-m, --int8 only apply"),
    (["index", "{photos}", "--index", "{tmp}/i", "--backend", "lucene", "--dense-dims", "2000"],
     "dense_dims=2000 is wider than the 1024-d embeddings"),
    (["index", "{tmp}/empty", "--index", "{tmp}/i"], "no images found"),
])
def test_index_options_are_checked_before_anything_is_written(tmp_path, photos, args, message):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, [a.format(tmp=tmp_path, photos=photos) for a in args])
    assert result.exit_code != 0 and message in result.output, result.output
    assert not (tmp_path / "i").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no half-made index aside either


@pytest.fixture(scope="module")
def small_index(tmp_path_factory, photos):
    index = tmp_path_factory.mktemp("opts") / "idx"
    result = CliRunner().invoke(main, ["-q", "index", str(photos / "cat"), "--index", str(index), "--workers", "0"])
    assert result.exit_code == 0, result.output
    return index


@pytest.mark.parametrize("args,message", [
    (["--dims", "5000"], "--dims applies to mode dense / hybrid only, not bm25"),
    (["--mode", "dense", "--dims", "7"], "dims=7 is not an embedding width of this index's model"),
    (["--mode", "dense", "--ef", "50"], "--ef applies to Lucene's HNSW only"),
    (["--mode", "funnel", "--weights", "1,1"], "--weights applies to mode hybrid only"),
    (["--mode", "dense", "--max-terms", "5"], "--max-terms applies to mode bm25 / tfidf / jaccard / hybrid only"),
    (["--mode", "dense", "--query-words", "500"], "--query-words applies to mode bm25 / tfidf / jaccard / hybrid only"),
    (["--query-words", "70000"], "70000 words an image: choose 1 to 65408 (this model's images get 384)"),
])
def test_search_options_that_would_be_ignored_are_usage_errors(small_index, queries, args, message):
    result = CliRunner().invoke(main, ["search", str(small_index), "--image", str(queries / "cat.jpg"), *args])
    assert result.exit_code != 0 and message in result.output, result.output


def test_search_options_with_a_text_query_are_usage_errors(small_index):
    result = CliRunner().invoke(main, ["search", str(small_index), "--query", "all", "--mode", "dense"])
    assert result.exit_code == 2 and "--mode apply to --image searches only" in result.output
    result = CliRunner().invoke(main, ["search", str(small_index), "--query", "all", "--query-words", "500"])
    assert result.exit_code == 2 and "--query-words apply to --image searches only" in result.output


def test_creation_options_on_an_existing_index_must_match_it(tmp_path, photos, tokenizer):
    index = small("lucene", tmp_path / "idx", tokenizer, 5)  # made with dense_dims=8
    args = ["index", str(photos / "cat"), "--index", str(index), "--backend", "lucene", "--dense-dims", "64"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert f"index {index} was made with other settings: dense_dims=64 (index: 8)" in result.output
