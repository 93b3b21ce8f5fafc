"""Synthetic collections of any size made from real images' word bags and embeddings (`vqgram bench scale`).

Generator (docs/SCALE.md, "The synthetic collections"): real encoded rows are
split into `queries` query images and the rest, the bases. Document j takes a
base drawn at random and
- words: the base's word occurrences (each word repeated by its count), of
  which a fraction `redraw` (25 %) is replaced by occurrences drawn from the
  bases' pooled occurrences, i.e. by the collection's own word frequencies;
- vector: the base's embedding plus Gaussian noise of norm about `noise`,
  renormalised (about 0.9 cosine to its base at the default 0.5);
- label, width, height: the base's.
Nothing depends on the word format beyond "a whitespace word string", so a
new vocabulary needs no change here. Every batch is drawn from its own seed
(seed, first document), so a collection of N documents is the same whatever
the batch size, and the bigger collections extend the smaller ones.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from ..indexer.backend import ImageDoc
from ..indexer.rows import EncodedRow


def doc_id(j: int) -> str:
    """The id of synthetic document j."""
    return f"s{j:08d}"


class SyntheticCollection:
    def __init__(self, rows: Sequence[EncodedRow], *, queries: int = 50, redraw: float = 0.25, noise: float = 0.5,
                 seed: int = 0):
        if len(rows) <= queries:
            raise ValueError(f"{len(rows)} real rows cannot give {queries} queries and some bases; encode more images")
        if not 0 <= redraw <= 1:
            raise ValueError(f"redraw={redraw} must lie in 0..1")
        self.redraw, self.noise, self.seed = redraw, noise, seed
        order = np.random.default_rng(seed).permutation(len(rows))
        self.queries = [rows[i] for i in order[:queries]]
        self.bases = [rows[i] for i in order[queries:]]
        self.vocab = np.array(sorted({w for r in self.bases for w in r.words}))
        word_id = {w: i for i, w in enumerate(self.vocab.tolist())}
        self._tokens = [np.repeat(np.array([word_id[w] for w in r.words], np.int32),
                                  np.array(list(r.words.values()))) for r in self.bases]
        self._pool = np.concatenate(self._tokens)
        self._vectors = np.stack([np.asarray(r.vector, np.float32) for r in self.bases])
        self.dim = self._vectors.shape[1]

    def _draw(self, start: int, m: int) -> tuple[np.random.Generator, np.ndarray, np.ndarray]:
        """Documents start..start+m-1: their generator (to draw the words next), bases and vectors."""
        rng = np.random.default_rng((self.seed, start))
        base = rng.integers(len(self.bases), size=m)
        noise = rng.normal(0.0, self.noise / np.sqrt(self.dim), size=(m, self.dim)).astype(np.float32)
        vecs = self._vectors[base] + noise
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        return rng, base, vecs

    def vectors(self, n: int, batch: int = 5000) -> np.ndarray:
        """(n, dim) vectors of documents 0..n-1, as `batches` makes them, without their words."""
        out = np.empty((n, self.dim), np.float32)
        for start in range(0, n, batch):
            out[start:start + batch] = self._draw(start, min(batch, n - start))[2]
        return out

    def labels(self, n: int, batch: int = 5000) -> np.ndarray:
        """The labels of documents 0..n-1 (their bases'), as `batches` makes them."""
        base_labels = np.array([b.label for b in self.bases])
        return np.concatenate([base_labels[self._draw(start, min(batch, n - start))[1]]
                               for start in range(0, n, batch)])

    def batches(self, n: int, batch: int = 5000) -> Iterator[list[ImageDoc]]:
        """Documents 0..n-1 with their words and vectors, `batch` at a time."""
        for start in range(0, n, batch):
            m = min(batch, n - start)
            rng, base, vecs = self._draw(start, m)
            docs = []
            for r in range(m):
                b = self.bases[base[r]]
                tokens = self._tokens[base[r]].copy()
                redrawn = rng.random(len(tokens)) < self.redraw
                tokens[redrawn] = self._pool[rng.integers(len(self._pool), size=int(redrawn.sum()))]
                j = start + r
                docs.append(ImageDoc(id=doc_id(j), path=f"synthetic/{b.label}/{j:08d}", label=b.label,
                                     width=b.width, height=b.height, mtime=0.0, size=0,
                                     words=" ".join(self.vocab[tokens].tolist()), vector=vecs[r]))
            yield docs
