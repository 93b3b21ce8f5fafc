"""Index a labelled folder end to end and print what issue #2 asks to measure.

    python -m bench.index_bench [FOLDER] [--queries 200] [--loo all|N]

1. indexing images/s (scan + decode in workers + network + words + Tantivy),
   next to the backbone's own forward throughput on the same batches (before and after);
2. peak memory (PSS) of this process and its decoding workers, sampled during indexing;
3. query latency p50/p95 over `--queries` images, encoding excluded and included;
4. index size on disk;
5. leave-one-out mAP and MAP@100 of the word track (BM25 in the engine) next to
   cosine kNN on the model's embeddings (same run).
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from vqgram import Tokenizer, index_folder
from vqgram.eval.metrics import mean_average_precision, mean_average_precision_at_k, rank_by_score
from vqgram.images import iter_batches, probe
from vqgram.indexer.backend import size_on_disk
from vqgram.indexer.pipeline import find_images
from vqgram.indexer.store import open_index
from vqgram.searcher.queries import term_weights

DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenette" / "train"


class RssSampler(threading.Thread):
    """Sums the memory of this process and all its descendants every `every` seconds.

    PSS (proportional set size) rather than RSS: decoding workers are forked
    and share the parent's pages (torch, the model); RSS would count those
    pages once per worker.
    """

    def __init__(self, every: float = 2.0):  # a sample of the tree costs ~80 ms of CPU: at 4 a second the
        # sampler took ~15 % of two cores and the pipeline measured 39.6 instead of ~48 images/s
        super().__init__(daemon=True)
        self.every, self.peak, self.samples, self._halt = every, 0, [], threading.Event()

    @staticmethod
    def tree_pss(pid: int) -> int:
        total, stack = 0, [pid]
        while stack:
            p = stack.pop()
            try:
                with open(f"/proc/{p}/smaps_rollup") as f:
                    total += next(int(line.split()[1]) for line in f if line.startswith("Pss:")) * 1024
                for task in os.listdir(f"/proc/{p}/task"):
                    with open(f"/proc/{p}/task/{task}/children") as f:
                        stack.extend(int(c) for c in f.read().split())
            except (OSError, StopIteration):
                pass
        return total

    def run(self) -> None:
        while not self._halt.is_set():
            rss = self.tree_pss(os.getpid())
            self.peak = max(self.peak, rss)
            self.samples.append((time.time(), rss))
            time.sleep(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def backbone_throughput(model: Path | None, files, batches: int, batch_size: int) -> float:
    """Images/s of the backbone alone on `batches` decoded batches of `files`, in a process of its own
    (`spawned`): run here, its freed heap would be inherited by the pipeline's forked decode workers and
    copied as they write to it (+0.6 GB PSS measured)."""
    tok = Tokenizer.from_model(model)
    spec, backbone = tok.spec, tok.model.backbone
    seconds, images = 0.0, 0
    with torch.inference_mode():
        for n, (pixels, ok, _) in enumerate(iter_batches(files, max_size=tok.config.max_size,
                                                         multiple=spec.stride, mean=spec.mean, std=spec.std,
                                                         resample=spec.interpolation, batch_size=batch_size,
                                                         workers=0)):
            x = pixels.contiguous(memory_format=torch.channels_last)
            start = time.perf_counter()
            backbone.forward_features(x)
            if n:  # the first forward warms up
                seconds, images = seconds + time.perf_counter() - start, images + len(x)
            if n == batches:
                break
    return images / seconds


def spawned(fn, *args, **kwargs):
    """fn(*args, **kwargs) in a fresh (spawned, not forked) process."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def percentiles(ms: list[float]) -> str:
    return f"p50 {np.percentile(ms, 50):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    ap.add_argument("--queries", type=int, default=200, help="query images for the latency numbers")
    ap.add_argument("--loo", default="all", help="leave-one-out queries: 'all', a number (evenly spaced), or 0")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=None, help="decoding processes (default: the library's choice)")
    ap.add_argument("--index", type=Path, default=None, help="index folder (default: a temp folder)")
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: the packaged model)")
    args = ap.parse_args()

    tok = Tokenizer.from_model(args.model)
    index = args.index or Path(tempfile.mkdtemp(prefix="vqgram-bench-")) / "index"
    # id -> (label, word ids, their counts, float16 embedding): a few kB an image, so the memory
    # numbers stay the pipeline's
    kept: dict[str, tuple[str, dict[str, int], np.ndarray]] = {}

    def keep(files, encoded):
        emb = encoded.embedding.numpy().astype(np.float16)
        for row, f in enumerate(files):
            kept[f.sha] = (f.label, encoded.words[row], emb[row])

    def words_of(doc_id: str) -> dict[str, int]:
        return kept[doc_id][1]

    # the backbone alone before and after the run: this short measure drifts with the machine (72-128
    # images/s across runs of the same code), so the ratio is taken against the mean of the two
    folder = args.folder.resolve()
    paths = find_images(folder)
    sample_files = [probe(p, folder) for p in paths[:: max(1, len(paths) // 1200)]]
    bb_before = spawned(backbone_throughput, args.model, sample_files, batches=30, batch_size=args.batch_size)
    sampler = RssSampler()
    sampler.start()
    report = index_folder(args.folder, index, tok, batch_size=args.batch_size, workers=args.workers,
                          on_batch=None if args.loo == "0" else keep)  # the hook costs ~1 % of the run
    sampler.stop()
    print(f"\n== indexing {args.folder}\n{report.summary()}")
    if report.indexed == 0:
        raise SystemExit("nothing was indexed (the index existed already?); pass a fresh --index")

    handle = open_index(index)
    meta = handle.backend.stored()
    ids = sorted(kept or (m.id for m in meta.values()))
    bb_after = spawned(backbone_throughput, args.model, sample_files, batches=30, batch_size=args.batch_size)
    bb = (bb_before + bb_after) / 2
    print(f"pipeline {report.images_per_second:.1f} images/s; backbone alone {bb_before:.1f} before and "
          f"{bb_after:.1f} after the run on the same batches; ratio {report.images_per_second / bb:.0%} of "
          f"their mean")
    samples = sampler.samples
    marks = [samples[int(len(samples) * q) - 1][1] / 1e9 for q in (0.25, 0.5, 0.75, 1.0)]
    print(f"peak PSS (process + workers) {sampler.peak / 1e9:.2f} GB; at 25/50/75/100% of the run: "
          + " / ".join(f"{m:.2f}" for m in marks) + " GB")
    print(f"index size {size_on_disk(index) / 1e6:.1f} MB for {report.total} documents "
          f"({size_on_disk(index) / report.total / 1e3:.1f} kB/doc)")

    # latency over evenly spaced query images
    step = max(1, len(ids) // args.queries)
    qidx = list(range(0, len(ids), step))[: args.queries]
    id_to_path = {m.id: m.path for m in meta.values()}
    enc_ms, search_ms = [], []
    for q in qidx:
        t0 = time.perf_counter()
        words = tok.encode_image(id_to_path[ids[q]]).words[0]
        t1 = time.perf_counter()
        handle.backend.search_words(term_weights(words), k=10)
        t2 = time.perf_counter()
        enc_ms.append((t1 - t0) * 1e3)
        search_ms.append((t2 - t1) * 1e3)
    total_ms = [a + b for a, b in zip(enc_ms, search_ms)]
    print(f"\n== query latency over {len(qidx)} images (k=10)\nsearch only: {percentiles(search_ms)}\n"
          f"encode + search: {percentiles(total_ms)}")

    if args.loo == "0":
        return
    # leave-one-out quality
    labels = np.array([kept[i][0] for i in ids])
    emb = np.stack([kept[i][2] for i in ids]).astype(np.float32)
    n = len(ids)
    loo = range(n) if args.loo == "all" else range(0, n, max(1, n // int(args.loo)))
    pos = {i: k for k, i in enumerate(ids)}
    n_rel = np.array([(labels == labels[q]).sum() - 1 for q in loo])
    rel_words = np.zeros((len(loo), n - 1), dtype=bool)
    t0 = time.time()
    for row, q in enumerate(loo):
        hits = handle.backend.search_words(term_weights(words_of(ids[q])), k=n)
        order = [pos[h.id] for h in hits if h.id != ids[q]]
        seen = set(order)
        order += [i for i in range(n) if i not in seen and i != q]  # unmatched documents last, by id
        rel_words[row] = labels[order] == labels[q]
    word_s = time.time() - t0
    sims = emb[list(loo)] @ emb.T
    sims[np.arange(len(loo)), list(loo)] = -np.inf  # leave the query out
    ranked = rank_by_score(sims)[:, : n - 1]
    rel_dense = labels[ranked] == labels[list(loo)][:, None]
    cut = min(100, n - 1)
    print(f"\n== leave-one-out over {len(loo)} queries, relevant = same label")
    for name, rel in (("words BM25 (Tantivy)", rel_words), ("cosine kNN, the embeddings", rel_dense)):
        print(f"{name:30s} mAP {mean_average_precision(rel, n_rel).value:.4f}  "
              f"MAP@{cut} {mean_average_precision_at_k(rel, n_rel, cut).value:.4f}")
    print(f"(word-track leave-one-out took {word_s:.0f} s: full rankings of {n} documents per query)")
    handle.close()


if __name__ == "__main__":
    main()
