"""Show where, and what verification from stored positions costs (issue 30).

A `make-copies --edits partial` set (e.g. runs/partial) is indexed with its distractors; each original
searches with `--explain` in each mode. Of the `pip` copies found in the top 10, how many have the centre of
their first box inside the rectangle the manifest says the original was pasted at? And how much does
`--verify N` (a Hough vote over the top N hits' stored positions) add to a search, timed on the same
encoded queries?

    .venv/bin/python -m studies.partial_boxes runs/partial --distractors ../shared/data/imagenette/train \\
        --index runs/partial-index --json runs/partial-boxes.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from vqgram import SearchOptions, Searcher, Tokenizer, index_folder


def _inside(box, rect) -> bool:
    x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return rect[0] <= x <= rect[2] and rect[1] <= y <= rect[3]


def _ms(search) -> float:
    start = time.perf_counter()
    search()
    return (time.perf_counter() - start) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", type=Path, help="a make-copies folder with pip copies (copies.json, queries/, db/)")
    parser.add_argument("--distractors", type=Path, default=None, help="a folder indexed beside the copies")
    parser.add_argument("--index", type=Path, required=True, help="built here unless it exists")
    parser.add_argument("--modes", default="bm25,dense,hybrid")
    parser.add_argument("--verify", type=int, default=50, help="hits re-ranked in the timing")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    tokenizer = Tokenizer.from_model()
    if not args.index.exists():
        for folder in filter(None, (args.set / "db", args.distractors)):
            index_folder(folder, args.index, tokenizer, cache=tokenizer.feature_cache())
    originals = json.loads((args.set / "copies.json").read_text())["originals"]
    modes = args.modes.split(",")
    found = {m: 0 for m in modes}
    inside = {m: 0 for m in modes}
    plain_ms, verified_ms = [], []
    with Searcher(args.index, tokenizer) as searcher:
        for original in originals:
            name = original["name"]
            query = searcher.encode_image(args.set / "queries" / name / f"{name}.jpg")
            rect = original["copies"]["pip"]["rect"]
            for mode in modes:
                hits = searcher.search(query, 10, SearchOptions(mode=mode, explain=True))
                pip = [h for h in hits if h.path.endswith(f"/{name}/pip.jpg")]
                if pip:
                    found[mode] += 1
                    inside[mode] += bool(pip[0].boxes) and _inside(pip[0].boxes[0], rect)
            plain_ms.append(_ms(lambda: searcher.search(query, 10, SearchOptions(mode="hybrid"))))
            verified_ms.append(_ms(lambda: searcher.search(query, 10, SearchOptions(mode="hybrid",
                                                                                     verify=args.verify))))
    result = {"originals": len(originals),
              "pip_found_top10": found,
              "first_box_inside": inside,
              "inside_share": {m: inside[m] / found[m] if found[m] else None for m in modes},
              "hybrid_ms_p50": float(np.median(plain_ms)),
              f"hybrid_verify{args.verify}_ms_p50": float(np.median(verified_ms)),
              "verify_adds_ms_p50": float(np.median(np.subtract(verified_ms, plain_ms)))}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
