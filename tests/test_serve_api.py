"""The serve API through Starlette's test client, on real indexes of examples/photos (both engines).

Expected hits come from the Python API (Searcher) on the same index, so the
API is checked to add nothing and lose nothing on the way to JSON.
"""
from __future__ import annotations

import io
from dataclasses import replace

import pytest
from conftest import BACKENDS
from PIL import Image

from vqgram import Searcher
from vqgram.searcher.searcher import SearchOptions

pytest.importorskip("starlette")
pytest.importorskip("httpx")
from starlette.testclient import TestClient  # noqa: E402

from vqgram.serve import Limits, SearchService, create_app  # noqa: E402
from vqgram.serve.thumbnails import ThumbnailCache  # noqa: E402

FOUR = ("coffee", "astronaut", "rocket", "hubble")  # 12 of the sample's images
TRAVERSALS = ["/thumb/%2e%2e/%2e%2e/etc/passwd", "/thumb/..%2F..%2Fetc%2Fpasswd",
              "/thumb/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/thumb/..%252F..%252Fetc%252Fpasswd", "/thumb/....//....//etc/passwd", "/thumb/%2Fetc%2Fpasswd",
              "/thumb/..\\..\\etc\\passwd", "/api/similar/..%2F..%2Fetc%2Fpasswd"]


@pytest.fixture(scope="module", params=BACKENDS)
def served(request, photo_index, tmp_path_factory):
    """(client, searcher on the same index, thumbnail folder)."""
    index = photo_index(request.param)
    thumbs = tmp_path_factory.mktemp("thumbs")
    service = SearchService(index, Limits(upload_bytes=400_000, upload_pixels=4_000_000))
    searcher = Searcher(index, tokenizer=service.tokenizer)
    with TestClient(create_app(service, ThumbnailCache(thumbs))) as client:
        yield client, searcher, thumbs
    searcher.close()


def upload(client, path, **fields):
    with open(path, "rb") as f:
        return client.post("/api/search", files={"image": (path.name, f, "image/jpeg")},
                           data={k: str(v) for k, v in fields.items()})


def as_hits(response):
    assert response.status_code == 200, response.text
    return [(h["id"], pytest.approx(h["score"], rel=1e-5)) for h in response.json()["hits"]]


def test_info(served):
    client, searcher, _ = served
    info = client.get("/api/info").json()
    assert info["documents"] == 33 and info["backend"] == searcher.handle.manifest.backend
    assert info["generation"] == 0  # no commit taken in since the start
    assert {"bm25", "dense", "hybrid", "funnel"} <= set(info["modes"])
    assert info["dims"][-1] == 1024
    assert info["words_per_image"] == searcher.handle.manifest.tokenizer.model.lift.active
    assert info["option_modes"]["query_words"] == ["bm25", "tfidf", "jaccard", "hybrid"]
    assert info["max_verify"] == 100


def test_image_search_in_every_mode_matches_the_python_api(served, queries):
    client, searcher, _ = served
    for mode in client.get("/api/info").json()["modes"]:
        response = upload(client, queries / "cat.jpg", mode=mode, k=5)
        expected = searcher.search_image(queries / "cat.jpg", 5, SearchOptions(mode=mode))
        assert as_hits(response) == [(h.id, h.score) for h in expected], mode
        body = response.json()
        # the default model's local words: every image search says where each hit matched
        assert set(body["hits"][0]) == {"rank", "score", "id", "path", "label", "width", "height", "inliers",
                                        "boxes", "query_box", "matched"}
        assert [h["rank"] for h in body["hits"]] == [1, 2, 3, 4, 5]
        assert body["took_ms"] >= body["encode_ms"] > 0
    assert response.json()["hits"][0]["label"] == "cat"


def test_text_search_and_its_errors(served):
    client, searcher, _ = served
    hits = client.get("/api/search", params={"q": "label:coffee", "k": 10}).json()["hits"]
    assert len(hits) == 3 and {h["label"] for h in hits} == {"coffee"}
    filtered = client.get("/api/search", params={"q": "label:coffee OR label:cat", "k": 20, "filter": "label:cat"})
    assert {h["label"] for h in filtered.json()["hits"]} == {"cat"} and len(filtered.json()["hits"]) == 3
    for params, needle in [({"q": ""}, "query is empty"), ({"q": "label:coffee", "k": "0"}, "k=0"),
                           ({"q": "label:coffee", "k": "ten"}, "not a whole number"),
                           ({"q": "label:coffee", "filter": "width:[x TO *]"}, "bad filter"),
                           ({"q": "(label:coffee"}, "query")]:
        r = client.get("/api/search", params=params)
        assert r.status_code == 400 and needle in r.json()["error"] and "\n" not in r.json()["error"], params


def test_similar_uses_the_indexed_image(served):
    client, searcher, _ = served
    table = searcher.handle.backend.documents()
    doc = str(table.ids[list(table.labels).index("rocket")])
    for mode in ("bm25", "dense", "hybrid"):
        r = client.get(f"/api/similar/{doc}", params={"mode": mode, "k": 4})
        assert as_hits(r) == [(h.id, h.score) for h in searcher.similar(doc, 4, SearchOptions(mode=mode))]
    dense = client.get(f"/api/similar/{doc}", params={"mode": "dense", "k": 1}).json()["hits"][0]
    assert dense["id"] == doc and dense["score"] == pytest.approx(1.0, abs=1e-5)  # itself, at cosine 1
    r = client.get(f"/api/similar/{doc}", params={"mode": "dense", "filter": "NOT label:rocket"})
    assert r.status_code == 200 and "rocket" not in {h["label"] for h in r.json()["hits"]}
    assert client.get("/api/similar/0123456789abcdef0123").status_code == 404


def test_filters_apply_in_every_mode(served, queries):
    client, _, _ = served
    for mode in client.get("/api/info").json()["modes"]:
        r = upload(client, queries / "cat.jpg", mode=mode, k=10, filter=" OR ".join(f"label:{n}" for n in FOUR))
        assert r.status_code == 200, r.text
        labels = [h["label"] for h in r.json()["hits"]]
        # word modes return only images sharing a word with the query (of the 12 passing here)
        assert set(labels) <= set(FOUR) and len(labels) >= (10 if "dense" in mode else 5), mode
    r = upload(client, queries / "cat.jpg", mode="dense", dims=64, filter="label:cat", k=3)
    assert {h["label"] for h in r.json()["hits"]} == {"cat"}
    r = upload(client, queries / "cat.jpg", filter="label:cat width:3")
    assert r.status_code == 400 and r.json()["error"].startswith("bad filter")


def test_thumbnails_by_id_only(served):
    client, searcher, thumbs = served
    doc = str(searcher.handle.backend.documents().ids[0])
    r = client.get(f"/thumb/{doc}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    img = Image.open(io.BytesIO(r.content))
    assert img.format == "JPEG" and max(img.size) <= 256
    assert [p.name for p in thumbs.rglob(f"{doc}*")] == [f"{doc}-256.jpg"]  # cached on disk by id
    assert client.get(f"/thumb/{doc}").content == r.content
    assert client.get("/thumb/0123456789abcdef0123").status_code == 404


def test_the_collection_in_pages_newest_first_or_seeded_random(served):
    client, searcher, _ = served
    table = searcher.handle.backend.documents()
    newest = [str(table.ids[i]) for i in sorted(range(len(table)), key=lambda i: (-table.mtime[i], table.ids[i]))]
    pages = [client.get("/api/browse", params={"offset": o, "limit": 10}).json() for o in (0, 10, 20, 30)]
    assert [p["total"] for p in pages] == [33] * 4 and [len(p["items"]) for p in pages] == [10, 10, 10, 3]
    items = [item for p in pages for item in p["items"]]
    assert [item["id"] for item in items] == newest and [item["rank"] for item in items] == list(range(1, 34))
    assert {"mtime", "path", "label", "width", "height"} <= set(items[0])
    shuffled = client.get("/api/browse", params={"order": "random", "seed": 7, "limit": 33}).json()["items"]
    again = client.get("/api/browse", params={"order": "random", "seed": 7, "limit": 33}).json()["items"]
    other = client.get("/api/browse", params={"order": "random", "seed": 8, "limit": 33}).json()["items"]
    assert shuffled == again and sorted(i["id"] for i in shuffled) == sorted(newest) != [i["id"] for i in other]
    coffee = client.get("/api/browse", params={"filter": "label:coffee", "limit": 100}).json()
    assert coffee["total"] == 3 and {i["label"] for i in coffee["items"]} == {"coffee"}
    for params, needle in [({"order": "oldest"}, "order='oldest'"), ({"limit": 0}, "limit=0"),
                           ({"offset": -1}, "offset=-1"), ({"filter": "label:"}, "bad filter")]:
        r = client.get("/api/browse", params=params)
        assert r.status_code == 400 and needle in r.json()["error"], params


def test_labels_are_the_engines_counts(served):
    client, searcher, _ = served
    body = client.get("/api/labels").json()
    labels = searcher.handle.backend.documents().labels.tolist()
    assert body["labels"] == [{"label": name, "count": labels.count(name)} for name in sorted(set(labels))]
    assert (body["documents"], body["unlabelled"]) == (33, 0)


def test_the_photo_itself_by_id_only(served):
    client, searcher, _ = served
    table = searcher.handle.backend.documents()
    r = client.get(f"/photo/{table.ids[0]}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content == open(str(table.paths[0]), "rb").read()
    assert client.get("/photo/0123456789abcdef0123").status_code == 404
    for script in ("hits.js", "page.js"):
        assert client.get(f"/static/{script}").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/page.css").status_code == 200 and client.get("/static/nope.js").status_code == 404


@pytest.mark.parametrize("url", TRAVERSALS + [u.replace("/thumb/", "/photo/") for u in TRAVERSALS[:4]]
                         + ["/static/..%2F..%2Fapp.py", "/static/%2e%2e/service.py"])
def test_path_traversal_finds_nothing(served, url):
    client, _, _ = served
    r = client.get(url)
    assert r.status_code == 404 and "root:" not in r.text


def test_verify_reranks_uploads_and_similar_as_the_python_api_does(served, photos, tmp_path):
    pytest.importorskip("cv2", reason="verify needs OpenCV: pip install opencv-python-headless")
    from vqgram.copies import EDITS_BY_NAME, make_copy

    client, searcher, _ = served
    original = sorted((photos / "coffee").iterdir())[0]
    copy = tmp_path / "crop.jpg"
    copy.write_bytes(make_copy(Image.open(original).convert("RGB"), EDITS_BY_NAME["crop60"], 0, "c")[0])
    options = SearchOptions(mode="hybrid", verify=5)
    body = upload(client, copy, mode="hybrid", k=5, verify=5).json()
    expected = searcher.search_image(copy, 5, options)
    assert [(h["id"], h["inliers"]) for h in body["hits"]] == [(h.id, h.inliers) for h in expected]
    assert body["hits"][0]["path"] == str(original) and body["hits"][0]["inliers"] >= 15
    doc = expected[0].id
    similar = client.get(f"/api/similar/{doc}", params={"mode": "dense", "k": 4, "verify": 4}).json()["hits"]
    assert [h["id"] for h in similar] == [h.id for h in searcher.similar(doc, 4, replace(options, mode="dense",
                                                                                          verify=4))]


def test_query_words_reach_the_upload_as_in_the_python_api(served, queries):
    client, searcher, _ = served
    query = queries / "cat.jpg"
    body = upload(client, query, mode="hybrid", k=6, query_words=768).json()
    options = SearchOptions(mode="hybrid", query_words=768)
    assert [h["id"] for h in body["hits"]] == [h.id for h in searcher.search_image(query, 6, options)]
    doc = body["hits"][0]["id"]
    r = client.get(f"/api/similar/{doc}", params={"query_words": 768})
    assert r.status_code == 400 and "query_words applies to image queries" in r.json()["error"]


def test_bad_uploads_get_one_line_4xx(served, queries, tmp_path):
    client, _, _ = served

    def post(name, data, **fields):
        return client.post("/api/search", files={"image": (name, data, "application/octet-stream")}, data=fields)

    cases = [
        (post("notes.txt", b"not an image at all"), 415, "not an image"),
        (post("big.jpg", b"\xff" * 500_000), 413, "limit"),
        (post("truncated.jpg", (queries / "cat.jpg").read_bytes()[:3000]), 415, "could not be decoded"),
        (client.post("/api/search", data={"mode": "bm25"}), 400, "multipart file field named 'image'"),
        (post("q.jpg", (queries / "cat.jpg").read_bytes(), mode="nope"), 400, "unknown mode"),
        (post("q.jpg", (queries / "cat.jpg").read_bytes(), mode="bm25", dims="64"), 400, "dims applies"),
        (post("q.jpg", (queries / "cat.jpg").read_bytes(), mode="dense", dims="100"), 400, "not an embedding width"),
        (post("q.jpg", (queries / "cat.jpg").read_bytes(), k="100000"), 400, "k=100000"),
        (post("q.jpg", (queries / "cat.jpg").read_bytes(), verify="1000"), 400, "verify=1000"),
        (post("q.jpg", (queries / "cat.jpg").read_bytes(), mode="dense", query_words="768"), 400,
         "query_words applies to mode bm25 / tfidf / jaccard / hybrid only"),
        (post("q.jpg", (queries / "cat.jpg").read_bytes(), query_words="99999"), 400, "99999 words an image"),
    ]
    bomb = io.BytesIO()
    Image.new("L", (3000, 3000)).save(bomb, format="PNG")  # 9 MP in a few kB: over the 4 MP limit
    cases.append((post("bomb.png", bomb.getvalue()), 413, "3000x3000 pixels"))
    for response, status, needle in cases:
        error = response.json()["error"]
        assert response.status_code == status and needle in error and "\n" not in error, (status, error)


def test_uploads_are_encoded_on_the_engine_thread(served, queries, monkeypatch):
    """One thread runs the network: a thread per request started an OpenMP team each, and encodes took twice as
    long (service.py)."""
    import threading

    client, searcher, _ = served
    tokenizer, threads = searcher.tokenizer, []
    encode = tokenizer.encode_image

    def recorded(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return encode(*args, **kwargs)

    monkeypatch.setattr(tokenizer, "encode_image", recorded)
    for _ in range(3):
        assert upload(client, queries / "cat.jpg", mode="dense").status_code == 200
    assert len(threads) == 3 and all(name.startswith("vqgram-engine") for name in threads)
