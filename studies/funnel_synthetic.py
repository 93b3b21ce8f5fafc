"""Funnel vs exact full-width search on a synthetic Matryoshka-like database.

    python -m studies.funnel_synthetic [--n 1000000] [--dim 1024] [--queries 500]

Data: `--clusters` centres; every vector is centre + noise, and both are
scaled per dimension by (j+1)^(-decay/2), so the variance of dimension j
falls as (j+1)^-decay and a prefix holds most of the energy (decay 1: the
first 16 of 1024 dims hold ~45 % of it, the first 64 ~63 %), like a
Matryoshka embedding. float32, N x dim x 4 bytes (4.1 GB at 1M x 1024), plus
the index's normalised copy of the same size: ~8.5 GB peak.
Queries are fresh draws from random clusters. Ground truth: exact cosine
top-10 at full width. Prints the time per query, the speed-up and
recall@10 against that ground truth. Prints numbers; not a test.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from vqgram.searcher.exact import ExactIndex
from vqgram.searcher.funnel import FunnelStage, funnel_search


def make_data(n: int, dim: int, clusters: int, decay: float, noise: float, seed: int, chunk: int = 100_000):
    g = np.random.default_rng(seed)
    scale = (np.arange(1, dim + 1, dtype=np.float32) ** (-decay / 2)).astype(np.float32)
    centres = g.standard_normal((clusters, dim), dtype=np.float32)
    x = np.empty((n, dim), dtype=np.float32)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        block = centres[g.integers(0, clusters, m)]
        block += noise * g.standard_normal((m, dim), dtype=np.float32)
        block *= scale
        x[s : s + m] = block
    return x, centres, scale


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--decay", type=float, default=1.0)
    ap.add_argument("--noise", type=float, default=1.0)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.perf_counter()
    x, centres, scale = make_data(args.n, args.dim, args.clusters, args.decay, args.noise, args.seed)
    g = np.random.default_rng(args.seed + 1)
    q = (centres[g.integers(0, args.clusters, args.queries)]
         + args.noise * g.standard_normal((args.queries, args.dim), dtype=np.float32)) * scale
    energy = np.cumsum(scale**2) / np.sum(scale**2)
    print(f"data: {args.n:,} x {args.dim} float32 ({x.nbytes / 2**30:.1f} GiB), {args.clusters} clusters, "
          f"decay {args.decay}: energy in first 16/64/256 dims = "
          f"{energy[15]:.0%}/{energy[63]:.0%}/{energy[255]:.0%}; made in {time.perf_counter() - t0:.0f} s")
    t0 = time.perf_counter()
    index = ExactIndex(x, prefix_dims=(16, 32, 64, 128))
    del x
    print(f"index (normalised full + prefixes 16/32/64/128) built in {time.perf_counter() - t0:.0f} s; "
          f"torch threads {torch.get_num_threads()}")

    # warm-up, then exact full-width search = ground truth and the baseline time
    index.search(q[:8], args.k, batch_size=args.batch)
    t0 = time.perf_counter()
    truth, _ = index.search(q, args.k, batch_size=args.batch)
    t_exact = (time.perf_counter() - t0) / args.queries
    print(f"\nexact full ({args.dim}-d): {t_exact * 1e3:.1f} ms/query (batches of {args.batch})\n")

    settings = [
        [FunnelStage(16, 100)],
        [FunnelStage(16, 1000)],
        [FunnelStage(16, 10000)],
        [FunnelStage(32, 1000)],
        [FunnelStage(64, 1000)],
        [FunnelStage(128, 1000)],
        [FunnelStage(16, 10000), FunnelStage(64, 1000)],
        [FunnelStage(16, 20000), FunnelStage(64, 2000), FunnelStage(256, 200)],
    ]
    print(f"{'funnel (d:shortlist -> ... -> full)':44s} {'ms/query':>9s} {'speed-up':>9s} {'recall@10':>10s}")
    for stages in settings:
        funnel_search(index, q[:8], args.k, stages, batch_size=args.batch)
        t0 = time.perf_counter()
        ids, _ = funnel_search(index, q, args.k, stages, batch_size=args.batch)
        t = (time.perf_counter() - t0) / args.queries
        recall = np.mean([len(set(a) & set(b)) / args.k for a, b in zip(ids, truth)])
        name = " -> ".join(f"{s.dim}:{s.shortlist}" for s in stages) + f" -> {args.dim}"
        print(f"{name:44s} {t * 1e3:9.2f} {t_exact / t:8.1f}x {recall:10.3f}")
    for d in (16, 64):
        t0 = time.perf_counter()
        ids, _ = index.search(q, args.k, dim=d, batch_size=args.batch)
        t = (time.perf_counter() - t0) / args.queries
        recall = np.mean([len(set(a) & set(b)) / args.k for a, b in zip(ids, truth)])
        print(f"{f'exact {d}-d only (no rerank)':44s} {t * 1e3:9.2f} {t_exact / t:8.1f}x {recall:10.3f}")


if __name__ == "__main__":
    main()
