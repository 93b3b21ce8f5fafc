"""Latency of `vqgram serve` against its targets (issue 14), on an index you built.

    python -m bench.serve_bench IDX --images QUERY_FOLDER [--port 8765] [--queries 30]
        [--clients 16 --requests 500] [--json out.json]

Starts `vqgram serve IDX` as its own process (so the clients here do not share
its interpreter), then measures, one request at a time:

  upload   POST /api/search p50 per mode, beside the p50 of the encode time
           the server reports for the same requests (`encode_ms`: decoding
           and the network), and the p50 of each request's latency minus its
           encode time (target: <= 30 ms)
  text     GET /api/search?q=label:X p50 (target <= 50 ms)
  similar  GET /api/similar/{id} p50 per mode (target <= 50 ms)

and then `--clients` threads sending `--requests` requests in all (a mix of
the three), counting errors (target: 0). Prints one JSON document.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vqgram import Searcher
from vqgram.images import walk_images
from vqgram.serve.client import get_json, search_image, search_text, similar


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return 1000 * (time.perf_counter() - start)


def p(values: list[float], q: float = 0.5) -> float:
    return round(statistics.quantiles(values, n=100)[int(q * 100) - 1] if len(values) > 1 else values[0], 1)


def start_server(index: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-m", "vqgram.cli", "-q", "serve", str(index), "--port", str(port)],
                              stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline:
        try:
            get_json(f"http://127.0.0.1:{port}/api/info")
            return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"vqgram serve {index} exited with {server.returncode}")
            time.sleep(0.5)
    server.kill()
    raise SystemExit("the server did not come up in 10 minutes")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("index", type=Path)
    ap.add_argument("--images", type=Path, required=True, help="Folder of query images (a sample is used).")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--queries", type=int, default=30, help="Query images / ids / labels per measurement.")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=500, help="Requests in all, across the clients.")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    rng = random.Random(0)
    paths = rng.sample(walk_images(args.images), args.queries)
    images = [p.read_bytes() for p in paths]
    with Searcher(args.index) as searcher:
        table = searcher.handle.backend.documents()
    ids = rng.sample(table.ids.tolist(), args.queries)
    labels = sorted(set(table.labels.tolist()))

    server = start_server(args.index, args.port)
    url = f"http://127.0.0.1:{args.port}"
    try:
        info = get_json(f"{url}/api/info")
        modes = [m for m in ("bm25", "dense", "hybrid") if m in info["modes"]]
        search_image(url, images[0])  # warm up
        result = {"index": str(args.index), "backend": info["backend"], "documents": info["documents"],
                  "load_average": os.getloadavg(), "upload_p50_ms": {}, "encode_p50_ms": {},
                  "upload_minus_encode_p50_ms": {}, "similar_p50_ms": {}}
        for mode in modes:
            runs = []
            for b in images:
                start = time.perf_counter()
                encode_ms = search_image(url, b, mode=mode, k=10)["encode_ms"]
                runs.append((1000 * (time.perf_counter() - start), encode_ms))
            result["upload_p50_ms"][mode] = p([t for t, _ in runs])
            result["encode_p50_ms"][mode] = p([e for _, e in runs])
            result["upload_minus_encode_p50_ms"][mode] = p([t - e for t, e in runs])
        result["text_p50_ms"] = p([timed(lambda q=q: search_text(url, f"label:{q}", k=10))
                                   for q in (labels * args.queries)[: args.queries]])
        for mode in modes:
            result["similar_p50_ms"][mode] = p([timed(lambda i=i: similar(url, i, mode=mode, k=10))
                                                for i in ids])

        calls = [lambda i=i: search_text(url, f"label:{labels[i % len(labels)]}", k=10) for i in range(5)]
        calls += [lambda i=i: similar(url, ids[i], mode="hybrid", k=10) for i in range(5)]
        calls += [lambda b=b: search_image(url, b, mode="dense", k=10) for b in images[:2]]
        plan = [calls[i % len(calls)] for i in range(args.requests)]
        errors, latencies = [], []

        def one(call):
            try:
                latencies.append(timed(call))
            except Exception as exc:  # noqa: BLE001 (counted, that is the measurement)
                errors.append(f"{type(exc).__name__}: {exc}")

        start = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(one, plan))
        seconds = time.perf_counter() - start
        result["concurrent"] = {"clients": args.clients, "requests": args.requests, "errors": len(errors),
                                "first_errors": errors[:3], "seconds": round(seconds, 1),
                                "requests_per_s": round(args.requests / seconds, 1), "p50_ms": p(latencies),
                                "p95_ms": p(latencies, 0.95)}
    finally:
        server.terminate()
        server.wait(60)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
