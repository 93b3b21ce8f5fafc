"""A classic baseline: RootSIFT bag of visual words with tf-idf (Sivic & Zisserman's Video Google, 2003;
Arandjelović & Zisserman's RootSIFT, 2012), ranked by cosine over the full database.

Images are read in greyscale and shrunk so the longer side is at most
`max_side` px; OpenCV's SIFT finds up to `max_keypoints` keypoints (the
strongest); each descriptor is L1-normalised and square-rooted (RootSIFT). The
vocabulary is k-means (faiss) on a seeded sample of descriptors from a
training folder (imagenette train, never a suite set's own images); every
descriptor gets its nearest word (hard assignment). Vectors are tf x idf (idf
from the database ranked against), L2-normalised, compared by a sparse
product. The vocabulary and each image's word ids are cached on disk under the
feature cache's root, keyed by the settings and the image's content hash, so
re-runs only count. Extraction runs in worker processes.
"""
from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..files import atomic_file, write_atomic
from ..images import file_sha, walk_images
from ..localfeatures import NONE, need_opencv, read_grey, root_sift
from ..progress import progress_bar

log = logging.getLogger("vqgram")
logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # which CPU build it picked: noise on every run


@dataclass(frozen=True)
class SiftConfig:
    """Everything that decides an image's visual words (part of the cache key)."""

    words: int = 20_000
    max_side: int = 512
    max_keypoints: int = 1_000
    train_images: int = 2_000  # images sampled from the training folder for k-means
    per_image: int = 100  # descriptors sampled from each of them
    iterations: int = 10
    seed: int = 0


def _need():
    need_opencv("the SIFT baseline")
    try:
        import faiss  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"the SIFT baseline needs faiss: pip install faiss-cpu ({exc})") from None


def _descriptors(path: str, config: SiftConfig) -> np.ndarray:
    """(n, 128) float32 RootSIFT descriptors of one image; (0, 128) when it has none or cannot be read."""
    img = read_grey(path, config.max_side)
    return NONE.desc if img is None else root_sift(img, config.max_keypoints).desc


_worker: dict = {}


def _init_worker(config: SiftConfig, vocabulary: np.ndarray | None) -> None:
    import cv2
    import faiss

    cv2.setNumThreads(1)
    faiss.omp_set_num_threads(1)
    _worker["config"] = config
    if vocabulary is not None:
        index = faiss.IndexFlatL2(vocabulary.shape[1])
        index.add(vocabulary)
        _worker["index"] = index


def _sample(path: str) -> np.ndarray:
    config = _worker["config"]
    desc = _descriptors(path, config)
    rng = np.random.default_rng([config.seed, int(hashlib.sha1(Path(path).name.encode()).hexdigest()[:8], 16)])
    return desc[np.sort(rng.permutation(len(desc))[:config.per_image])]


def _assign(path: str) -> np.ndarray:
    desc = _descriptors(path, _worker["config"])
    if not len(desc):
        return np.zeros(0, np.int32)
    return _worker["index"].search(desc, 1)[1][:, 0].astype(np.int32)


class SiftBoW:
    """Visual words of images under one SiftConfig and one training folder, cached below `root`."""

    def __init__(self, root: str | Path, train_folder: Path, config: SiftConfig = SiftConfig(), workers: int = 2,
                 progress: bool = True):
        _need()
        self.config, self.workers, self.progress = config, workers, progress
        self.train_folder = Path(train_folder)
        key = {**asdict(config), "train_folder": str(self.train_folder.resolve())}
        name = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        self.folder = Path(root) / f"sift-{name}"
        self.folder.mkdir(parents=True, exist_ok=True)
        if not (self.folder / "key.json").is_file():  # for people reading the folder; the name holds the key
            write_atomic(self.folder / "key.json", json.dumps(key, indent=2, sort_keys=True) + "\n")
        self._vocabulary: np.ndarray | None = None

    def _map(self, fn, paths: Sequence[str], vocabulary: np.ndarray | None, desc: str) -> Iterator[np.ndarray]:
        """fn over paths in worker processes, results in order as they come (so a killed run keeps its cache)."""
        # Spawned, not forked: a child forked after this process used OpenCV (--verify) inherits its thread
        # pool's locks and hangs in its first cv2 call.
        with ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_worker, initargs=(self.config, vocabulary)) as pool:
            yield from progress_bar(pool.map(fn, paths, chunksize=16), total=len(paths), desc=desc, unit="img",
                                    show=self.progress)

    @property
    def vocabulary(self) -> np.ndarray:
        """(words, 128) float32 k-means centroids, fit once and cached."""
        if self._vocabulary is None:
            path = self.folder / "vocabulary.npy"
            if not path.is_file():
                _save(path, self._fit())
            self._vocabulary = np.load(path)
        return self._vocabulary

    def _fit(self) -> np.ndarray:
        import faiss

        c = self.config
        paths = [str(p) for p in walk_images(self.train_folder)]
        picks = np.random.default_rng(c.seed).choice(len(paths), min(c.train_images, len(paths)), replace=False)
        sample = np.concatenate(list(self._map(_sample, [paths[i] for i in sorted(picks)], None, "sift sample")))
        if len(sample) < c.words:
            raise ValueError(f"{len(sample)} SIFT descriptors from {self.train_folder} cannot make {c.words} words")
        log.info("sift: k-means of %d descriptors into %d words", len(sample), c.words)
        kmeans = faiss.Kmeans(128, c.words, niter=c.iterations, seed=c.seed, max_points_per_centroid=10**6)
        kmeans.train(sample)
        return kmeans.centroids.astype(np.float32)

    def words(self, paths: Sequence[str]) -> list[np.ndarray]:
        """Word ids of each image (its descriptors' nearest words), from the cache or extracted in workers."""
        shas = [file_sha(Path(p)) for p in paths]
        files = [self.folder / s[:2] / f"{s}.npy" for s in shas]
        todo = [i for i, f in enumerate(files) if not f.is_file()]
        if todo:
            for i, ids in zip(todo, self._map(_assign, [str(paths[i]) for i in todo], self.vocabulary, "sift")):
                files[i].parent.mkdir(exist_ok=True)
                _save(files[i], ids)
        return [np.load(f) for f in files]

    def vectors(self, words: Sequence[np.ndarray], idf: np.ndarray | None = None):
        """(len(words), K) tf-idf rows, L2-normalised, as a scipy CSR matrix; idf from these rows when None.
        Returns (matrix, idf)."""
        from scipy import sparse

        k = self.config.words
        rows = np.repeat(np.arange(len(words)), [len(w) for w in words])
        cols = np.concatenate(list(words)) if words else np.zeros(0, np.int32)
        tf = sparse.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(len(words), k))
        tf.sum_duplicates()
        if idf is None:
            df = np.bincount(tf.indices, minlength=k)
            idf = np.where(df > 0, np.log(len(words) / np.maximum(df, 1)), 0).astype(np.float32)
        weighted = tf.multiply(idf[None, :]).tocsr()
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        return sparse.diags(1 / np.maximum(norms, 1e-12)) @ weighted, idf


def sift_scores(bow: SiftBoW, db: Sequence[str], queries: Sequence[str] | None = None,
                self_ids: np.ndarray | None = None) -> np.ndarray:
    """(Q, N) cosine scores of tf-idf vectors: `queries` (paths) or, for leave-one-out, database rows
    `self_ids` against the database."""
    db_vec, idf = bow.vectors(bow.words(db))
    q_vec = db_vec[self_ids] if queries is None else bow.vectors(bow.words(queries), idf)[0]
    return np.asarray((q_vec @ db_vec.T).todense(), dtype=np.float32)


def _save(path: Path, array: np.ndarray) -> None:
    """Atomically: a killed run leaves no half-written entry."""
    with atomic_file(path) as f:
        np.save(f, array)
