"""A running `vqgram serve` takes in what another process indexes: a real server on a loopback port, a real
`vqgram index` in a second process adding photos to the same index, and searches that find a photo added
after the server started, within 10 s of the indexer's commit, without a restart."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest
from conftest import BACKENDS, ROOT, free_port, wait_for_serve

from vqgram.serve.client import get_json, search_image, search_text

pytest.importorskip("uvicorn")

WITHIN_S = 10.0


def commit_point(index) -> list[tuple[str, int]]:
    """The files naming an index's last commit (Tantivy's meta.json, Lucene's segments_N), with their times."""
    point = []
    for p in index.iterdir():
        if p.name == "meta.json" or p.name.startswith("segments_"):
            try:
                point.append((p.name, p.stat().st_mtime_ns))
            except FileNotFoundError:  # an older commit point deleted meanwhile
                pass
    return sorted(point)


def vqgram(*args) -> list[str]:
    return [sys.executable, "-m", "vqgram.cli", "-q", *map(str, args)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_photos_indexed_by_another_process_are_found_within_10_s(backend, photos, queries, tokenizer, tmp_path):
    from vqgram import index_folder

    library = tmp_path / "library"
    for name in ("coffee", "cat"):
        shutil.copytree(photos / name, library / name)
    index = tmp_path / "idx"
    index_folder(library, index, tokenizer, backend=backend, progress=False, workers=0)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(vqgram("serve", index, "--port", port, "--thumbs", tmp_path / "thumbs"),
                              stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        info = wait_for_serve(url, server)
        assert (info["documents"], info["generation"]) == (6, 0)
        assert search_text(url, "label:rocket", k=5)["hits"] == []

        shutil.copytree(photos / "rocket", library / "rocket")  # new photos, while the server runs
        before = commit_point(index)
        indexer = subprocess.Popen(vqgram("index", library, "--index", index, "--backend", backend, "--workers", 0),
                                   stderr=subprocess.PIPE, text=True, cwd=ROOT)
        committed = served = None
        deadline = time.time() + 300
        while served is None:
            if committed is None and commit_point(index) != before:
                committed = time.time()  # the indexer's commit is on disk (to within this loop's 0.1 s)
            if get_json(f"{url}/api/info", timeout=5)["documents"] == 9:
                served = time.time()
            assert time.time() < deadline and (committed is None or time.time() - committed < WITHIN_S), \
                "the server did not take in the new commit within 10 s"
            time.sleep(0.1)
        _out, err = indexer.communicate(timeout=300)
        assert indexer.returncode == 0 and "indexed 3, unchanged 6" in err, err
        assert committed is not None and served - committed < WITHIN_S

        found = search_text(url, "label:rocket", k=10)["hits"]
        assert len(found) == 3 and all(h["path"].startswith(str(library / "rocket")) for h in found)
        top = search_image(url, (queries / "rocket.jpg").read_bytes(), mode="dense", k=3)["hits"]
        assert top[0]["label"] == "rocket"
        labels = get_json(f"{url}/api/labels")["labels"]
        assert {"label": "rocket", "count": 3} in labels
        page = get_json(f"{url}/api/browse?filter=label:rocket")
        assert page["total"] == 3
        print(f"{backend}: the new commit served {served - committed:.1f} s after it reached the disk")
    finally:
        server.terminate()
        _out, err = server.communicate(timeout=60)
    assert "Traceback" not in err, err


def test_a_reload_that_fails_is_tried_again(photos, tokenizer, tmp_path):
    """The first check after a commit moves the backend's reader; if opening the new commit then fails (here
    its manifest is away for a moment), the old one stays served and the next check serves the new one."""
    from vqgram import index_folder
    from vqgram.serve import SearchService

    library = tmp_path / "library"
    shutil.copytree(photos / "coffee", library / "coffee")
    index_folder(library, tmp_path / "idx", tokenizer, progress=False, workers=0)
    service = SearchService(tmp_path / "idx", reload_every=0)  # checked by hand below
    try:
        assert service._on_engine(service.reload) is False
        shutil.copytree(photos / "cat", library / "cat")
        index_folder(library, tmp_path / "idx", tokenizer, progress=False, workers=0)
        (tmp_path / "idx" / "vqgram.json").rename(tmp_path / "manifest.json")
        with pytest.raises(ValueError, match="not a vqgram index"):
            service._on_engine(service.reload)
        assert (len(service.documents), service.info()["generation"]) == (3, 0)
        (tmp_path / "manifest.json").rename(tmp_path / "idx" / "vqgram.json")
        assert service._on_engine(service.reload) is True
        assert (len(service.documents), service.info()["generation"]) == (6, 1)
        assert len(service.search_text("label:cat", 10)["hits"]) == 3
    finally:
        service.close()
