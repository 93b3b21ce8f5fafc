"""What a Lucene index folder keeps beside Lucene's own files: `lucene.json`, how its vector field is built."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from ..files import write_atomic

SETTINGS_NAME = "lucene.json"
SETTINGS_FORMAT = 1
MAX_VECTOR_DIMS = 4096  # what Anserini's codec allows (Lucene 9.9 alone: 1024)


@dataclass(frozen=True)
class LuceneSettings:
    """What `lucene.json` in the index folder holds: how the vector field is built."""

    dense_dims: int | None = 256  # HNSW on this prefix of the embedding; None: the whole
    hnsw_m: int = 16
    hnsw_ef_construction: int = 100
    int8: bool = False
    vector_dims: int | None = None  # full embedding size, known after the first vector
    format: int = SETTINGS_FORMAT

    def __post_init__(self) -> None:
        if self.dense_dims is not None and not 1 <= self.dense_dims <= MAX_VECTOR_DIMS:
            raise ValueError(f"dense_dims={self.dense_dims} must be in 1..{MAX_VECTOR_DIMS} or None (whole vector)")
        if not 2 <= self.hnsw_m <= 512:
            raise ValueError(f"hnsw_m={self.hnsw_m} must be in 2..512 (Lucene's bounds)")
        if not 1 <= self.hnsw_ef_construction <= 3200:
            raise ValueError(f"hnsw_ef_construction={self.hnsw_ef_construction} must be in 1..3200 (Lucene's bounds)")
        if self.vector_dims is not None and self.dense_dims is not None and self.dense_dims > self.vector_dims:
            raise ValueError(f"dense_dims={self.dense_dims} is wider than the {self.vector_dims}-d embeddings of "
                             f"this model; choose --dense-dims {self.vector_dims} or less")
        if self.vector_dims is not None and self.dense_dims is None and self.vector_dims > MAX_VECTOR_DIMS:
            raise ValueError(f"a {self.vector_dims}-d embedding is over the {MAX_VECTOR_DIMS}-d HNSW limit; "
                             f"choose --dense-dims {MAX_VECTOR_DIMS} or less")

    def indexed_dims(self) -> int | None:
        """Dimensions of the HNSW field (None until the embedding size is known)."""
        if self.vector_dims is None:
            return self.dense_dims
        return min(self.dense_dims or self.vector_dims, self.vector_dims)


def write_settings(path: Path, settings: LuceneSettings) -> None:
    """Replace `lucene.json` in `path` atomically (write a temporary file, then rename)."""
    write_atomic(path / SETTINGS_NAME, json.dumps(dataclasses.asdict(settings), indent=2) + "\n")


def read_settings(path: Path) -> LuceneSettings:
    """The settings of the index in `path`; FileNotFoundError when it has none, ValueError for another format."""
    f = path / SETTINGS_NAME
    if not f.is_file():
        raise FileNotFoundError(
            f"{path} is not a vqgram Lucene index (no {SETTINGS_NAME}); make one with LuceneBackend.create"
        )
    try:
        data = json.loads(f.read_text())
        if data.get("format") != SETTINGS_FORMAT:
            raise ValueError(f"settings format {data.get('format')!r}, this vqgram reads {SETTINGS_FORMAT}")
        return LuceneSettings(**data)
    except (OSError, ValueError, TypeError, AttributeError) as exc:  # unreadable, empty, truncated, foreign
        raise ValueError(f"Lucene settings {f} are unreadable ({str(exc).splitlines()[0]}); restore the file "
                         "or index the folder again into a new index folder") from None
