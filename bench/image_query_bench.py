"""An image query end to end on an existing index: decode, encode (a grid head's query scales included) and
search, timed apart, p50 and p95 over seeded query images of a folder, for each mode asked.

    python -m bench.image_query_bench /tmp/s100k-grid/tantivy-100000 ../shared/data/imagenette/train \\
        --queries 50 --mode bm25 --mode hybrid --mode hybrid+verify50

(`vqgram bench scale --work DIR` leaves its synthetic indexes in DIR; any index made by `vqgram index` works.)
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from vqgram import Searcher
from vqgram.eval.runner import mode_options
from vqgram.images import find_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path)
    parser.add_argument("folder", type=Path, help="query images are drawn from here (seeded)")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--mode", action="append", default=None, help="eval mode names (default: bm25)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    paths = find_images(args.folder)
    picks = np.random.default_rng(args.seed).choice(len(paths), min(args.queries, len(paths)), replace=False)
    images = [paths[i] for i in sorted(picks.tolist())]
    with Searcher(args.index) as searcher:
        searcher.load()
        for mode in args.mode or ["bm25"]:
            options = mode_options(mode)
            options = options.__class__(**{**options.__dict__, "exact": False})  # as a search runs it
            searcher.search_image(images[0], 10, options)  # warm: model, caches
            encode_ms, search_ms = [], []
            for image in images:
                start = time.perf_counter()
                query = searcher.encode_image(image, searcher.query_words_for(options))
                encoded = time.perf_counter()
                searcher.search(query, 10, options)
                encode_ms.append((encoded - start) * 1e3)
                search_ms.append((time.perf_counter() - encoded) * 1e3)
            total = np.add(encode_ms, search_ms)
            print(json.dumps({"index": str(args.index), "documents": searcher.handle.backend.count(), "mode": mode,
                              "queries": len(images), "decode_encode_ms_p50": round(float(np.median(encode_ms)), 1),
                              "search_ms_p50": round(float(np.median(search_ms)), 1),
                              "end_to_end_ms_p50": round(float(np.median(total)), 1),
                              "end_to_end_ms_p95": round(float(np.percentile(total, 95)), 1)}))


if __name__ == "__main__":
    main()
