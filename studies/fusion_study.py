"""Words vs dense vs hybrid fusions on all of imagenette, scored in numpy (docs/RESULTS.md, "The comparison").

    python -m studies.fusion_study [MODEL_DIR] [--data DIR] [--queries 2000]

Every image's words and embedding come from the model (backbone maps from the
feature cache, so a second run skips the network); 2,000 random queries
(seed 0) are ranked against all other images with Tantivy's BM25 (k1 = 1.2,
b = 0.75, query words weighted 1 + ln count), dense cosine, and rank / score
fusions of the two at several weights. A full engine leave-one-out at this
size fetches 9,469 hits per query and takes hours here; `vqgram eval` on a
subset checks that the engines rank as this does. Prints numbers; not a test.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vqgram.eval.metrics import mean_average_precision, rank_by_score
from vqgram.tokenizer.encoder import Tokenizer
from vqgram.tokenizer.feature_cache import feature_maps
from vqgram.tokenizer.train import scan_folder


def encode(model: str | None, data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    files = scan_folder(data)
    tok = Tokenizer.from_model(model)
    counts, emb = [None] * len(files), [None] * len(files)
    for ok, fmap, _bad in feature_maps(tok.model, files, tok.config.max_size, cache=tok.feature_cache()):
        enc = tok.encode_features(fmap)
        for row, i in enumerate(ok):
            counts[i], emb[i] = enc.counts[row].numpy(), enc.embedding[row].numpy()
    names = sorted({f.label for f in files})
    return np.stack(counts).astype(np.float32), np.stack(emb), np.array([names.index(f.label) for f in files])


def bm25_scores(tf: np.ndarray, qs: np.ndarray, k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    n = len(tf)
    dl = tf.sum(1, keepdims=True)
    df = (tf > 0).sum(0)
    idf = np.log(1 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
    w = idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / dl.mean()))
    q = np.where(tf[qs] > 0, 1 + np.log(np.maximum(tf[qs], 1)), 0).astype(np.float32)
    return q @ w.T


def loo_map(scores: np.ndarray, qs: np.ndarray, labels: np.ndarray) -> float:
    """mAP of (Q, N) scores for queries `qs` against all N items, each query left out, relevant = same label."""
    n, nq = len(labels), len(qs)
    s = scores.copy()
    s[np.arange(nq), qs] = -np.inf  # the query itself ranks last, then is cut
    ranked = rank_by_score(s)[:, : n - 1]
    relevant = np.bincount(labels)[labels[qs]] - 1
    return mean_average_precision(labels[ranked] == labels[qs][:, None], relevant).value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", nargs="?", default=None, help="model folder (default: the packaged one)")
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/imagenette/train"))
    ap.add_argument("--queries", type=int, default=2000)
    args = ap.parse_args()
    tf, emb, labels = encode(args.model, args.data)
    n, nq = len(labels), args.queries
    qs = np.random.default_rng(0).choice(n, nq, replace=False)

    def score(s: np.ndarray) -> float:
        return loo_map(s, qs, labels)

    def ranks(s: np.ndarray) -> np.ndarray:
        s = s.copy()
        s[np.arange(nq), qs] = -np.inf
        order = rank_by_score(s)
        out = np.empty_like(order)
        np.put_along_axis(out, order, np.broadcast_to(np.arange(1, n + 1), order.shape), 1)
        return out

    def minmax(s: np.ndarray) -> np.ndarray:
        lo = s.min(1, keepdims=True)
        return (s - lo) / (s.max(1, keepdims=True) - lo + 1e-9)

    words, dense = bm25_scores(tf, qs), emb[qs] @ emb.T
    print(f"{n} images, {nq} queries\nbm25 {score(words):.4f}\ndense {score(dense):.4f}")
    rw, rd = ranks(words), ranks(dense)
    for w in (1.0, 0.5, 0.25):
        print(f"rrf k=60 words {w} / dense 1: {score(w / (60 + rw) + 1 / (60 + rd)):.4f}")
    for w in (1.0, 0.5, 0.3, 0.2, 0.1):
        print(f"min-max score fusion words {w} / dense 1: {score(w * minmax(words) + minmax(dense)):.4f}")


if __name__ == "__main__":
    main()
