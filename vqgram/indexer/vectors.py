"""A dense-vector sidecar for engines without vector fields (Tantivy): exact cosine search.

Vectors live in memory as {id: float32 vector} and are written on commit to
`vectors.npy` + `vectors.ids.json` (written beside, then renamed), so the
sidecar commits with its index and a crash keeps the last commit.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

MATRIX_NAME = "vectors.npy"
IDS_NAME = "vectors.ids.json"


class VectorStore:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._vectors: dict[str, np.ndarray] = {}
        self._matrix: tuple[list[str], np.ndarray] | None = None
        self._dirty = False
        ids_path = self.folder / IDS_NAME
        if ids_path.is_file():
            ids = json.loads(ids_path.read_text())
            matrix = np.load(self.folder / MATRIX_NAME)
            self._vectors = dict(zip(ids, matrix))

    def upsert(self, doc_id: str, vector: np.ndarray) -> None:
        self._vectors[doc_id] = np.asarray(vector, dtype=np.float32)
        self._matrix, self._dirty = None, True

    def delete(self, doc_id: str) -> None:
        if self._vectors.pop(doc_id, None) is not None:
            self._matrix, self._dirty = None, True

    def commit(self) -> None:
        if not self._dirty:
            return
        ids, matrix = self.matrix()
        tmp_m, tmp_i = self.folder / (MATRIX_NAME + ".tmp"), self.folder / (IDS_NAME + ".tmp")
        with open(tmp_m, "wb") as f:
            np.save(f, matrix)
        tmp_i.write_text(json.dumps(ids))
        tmp_m.replace(self.folder / MATRIX_NAME)
        tmp_i.replace(self.folder / IDS_NAME)
        self._dirty = False

    def matrix(self) -> tuple[list[str], np.ndarray]:
        """(ids, (N, D) float32 matrix) of every vector, in id order."""
        if self._matrix is None:
            ids = sorted(self._vectors)
            dim = len(next(iter(self._vectors.values()))) if ids else 0
            mat = np.stack([self._vectors[i] for i in ids]) if ids else np.zeros((0, dim), np.float32)
            self._matrix = (ids, mat)
        return self._matrix
