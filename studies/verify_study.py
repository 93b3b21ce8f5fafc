"""Which verification rule: every rule scored on every set of a suite, from one ranking per set.

    python -m studies.verify_study [--suite studies/devsuite-200.json] [--mode hybrid] [--depth 20] [--json FILE]

For each set, `vqgram eval`'s runner ranks the queries once by `--mode`; the
inliers of each query's top `--depth` hits are then counted under every rule
(RANSAC model, inlier distance, inliers needed) with the searcher's own
`query_inliers`, the top re-ordered as `--verify` would, and scored with the
runner's metrics. Prints the mAP change of each rule against the ranking
alone, per set (docs/RESULTS.md, "Geometric verification").
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from vqgram import Tokenizer
from vqgram.eval.runner import evaluate, quality
from vqgram.eval.suite import load_suite
from vqgram.searcher.verify import VerifyConfig, Verifier, query_inliers, verified_order

# (RANSAC model, inlier distance in px, inliers needed)
RULES = [("affine", 8.0, 15), ("affine", 4.0, 15), ("affine", 4.0, 20), ("affine", 4.0, 25),
         ("similarity", 4.0, 15), ("similarity", 4.0, 20)]


def rule_name(rule) -> str:
    return f"{rule[0]} {rule[1]:g}px >={rule[2]}"


def inliers_by_rule(verifier: Verifier, query: str, paths: list[str]) -> dict[tuple, list[int]]:
    """{(transform, px): inliers of each path} against the query or its mirror (0 for an unreadable file)."""
    q = verifier.features(query, mirrored=True)
    out = {(t, px): [] for t, px, _ in RULES}
    for path in paths:
        found = verifier.features(path)
        for t, px in out:
            config = replace(verifier.config, transform=t, reprojection_px=px)
            out[t, px].append(0 if found is None or q is None else query_inliers(q, found[0], config))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", type=Path, default=Path(__file__).resolve().parent / "devsuite-200.json")
    ap.add_argument("--mode", default="hybrid")
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    tokenizer = Tokenizer.from_model()
    verifier = Verifier(VerifyConfig(cached_images=4 * args.depth))
    report = {}
    for s in load_suite(args.suite).sets:
        ev = evaluate(Path(s.db), [args.mode], tokenizer, queries=s.queries and Path(s.queries),
                      distractors=s.distractors and Path(s.distractors), max_queries=s.max_queries,
                      cache=tokenizer.feature_cache(), progress=False, latency_queries=1)
        ranked, items = ev.rankings[args.mode], ev.dataset.items
        counts = [inliers_by_rule(verifier, q.path, [items[p].path for p in ranked[i, :args.depth]])
                  for i, q in enumerate(ev.plan.queries)]
        base = quality(ranked, ev.plan, ev.dataset)["map"]
        row = {args.mode: base}
        for rule in RULES:
            new = ranked.copy()
            for i, c in enumerate(counts):
                new[i, :args.depth] = ranked[i, :args.depth][verified_order(c[rule[:2]], rule[2])]
            row[rule_name(rule)] = quality(new, ev.plan, ev.dataset)["map"] - base
        report[s.name] = row
        print(s.name, f"{args.mode} {base:.4f}", "  ".join(f"{k}: {v:+.4f}" for k, v in list(row.items())[1:]),
              flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
