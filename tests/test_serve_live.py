"""A real `vqgram serve` (uvicorn on a loopback port): 16 concurrent clients, raw traversal requests."""
from __future__ import annotations

import socket
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import BACKENDS, free_port, wait_for_serve

from vqgram.serve.client import search_image, search_text, similar

pytest.importorskip("uvicorn")

CLIENTS = 16


def ranked(body: dict) -> list[tuple[str, float]]:
    return [(h["id"], round(h["score"], 4)) for h in body["hits"]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_16_concurrent_clients_get_their_own_answers(backend, live_server, queries):
    """Text, upload and similar requests from 16 threads at once: no errors, and every answer equals
    the one the same request got alone (no results crossed between clients)."""
    url = live_server(backend)
    labels = sorted(p.stem for p in queries.glob("*.jpg"))
    images = {name: (queries / f"{name}.jpg").read_bytes() for name in labels}
    ids = [h["id"] for h in search_text(url, "label:coffee OR label:cat", k=6)["hits"]]  # 4 similar requests below
    requests = ([("text", lambda n=n: search_text(url, f"label:{n}", k=6)) for n in labels]
                + [("upload", lambda n=n, m=m: search_image(url, images[n], mode=m, k=8)) for n in labels[:4]
                   for m in ("bm25", "dense")]
                + [("similar", lambda i=i: similar(url, i, mode="hybrid", k=8)) for i in ids[:4]])
    expected = [ranked(call()) for _kind, call in requests]
    assert all(expected)

    def client(c: int) -> list[tuple[int, list]]:
        order = [(c + j) % len(requests) for j in range(len(requests))]
        return [(r, ranked(requests[r][1]())) for r in order]

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = [a for got in pool.map(client, range(CLIENTS)) for a in got]
    assert len(answers) == CLIENTS * len(requests)
    assert all(got == expected[r] for r, got in answers)


def raw_get(url: str, path: str) -> tuple[int, bytes]:
    """One HTTP request with the path sent exactly as given (no client-side normalisation)."""
    host, port = urllib.parse.urlsplit(url).hostname, urllib.parse.urlsplit(url).port
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize("path", ["/thumb/../../etc/passwd", "/thumb/..%2f..%2fetc%2fpasswd",
                                  "/thumb/%2e%2e/%2e%2e/etc/passwd", "/thumb/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                                  "/thumb//etc/passwd", "/../../etc/passwd", "/api/similar/../../../etc/passwd"])
def test_raw_traversal_paths_are_refused(live_server, path):
    status, body = raw_get(live_server("tantivy"), path)
    assert status in (400, 404) and b"root:" not in body


def test_binds_loopback_by_default():
    import inspect

    from vqgram.serve import serve

    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_serve_command(backend, photo_index, tmp_path):
    """`vqgram serve` as users run it: a bad index is one error line; a good one answers, then shuts down
    cleanly on SIGTERM (the engine thread closes the index and leaves the JVM)."""
    import subprocess
    import sys

    bad = subprocess.run([sys.executable, "-m", "vqgram.cli", "serve", str(tmp_path / "nope")], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1].startswith("error: index not found")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "vqgram.cli", "-q", "serve", str(photo_index(backend)),
                               "--port", str(port), "--thumbs", str(tmp_path / "thumbs")], stderr=subprocess.PIPE,
                              text=True)
    try:
        info = wait_for_serve(f"http://127.0.0.1:{port}", server)
        assert info["documents"] == 33 and info["backend"] == backend
    finally:
        server.terminate()
        _out, err = server.communicate(timeout=60)
    assert server.returncode in (0, -15) and "Traceback" not in err and "Fatal" not in err, err  # uvicorn
    # re-raises the SIGTERM it handled, after its graceful shutdown
