"""The Backend protocol every engine implements, and the plain records it trades.

A backend stores one document per image and answers word queries (a weighted
disjunction of terms), raw engine query strings, and (where it has one) the
dense track. Results are `Hit` records ranked by (-score, id), so ties are
reproducible across engines.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, ClassVar, Iterable, Iterator, Protocol, Sequence, TypeVar

import numpy as np

T = TypeVar("T")


@dataclass(frozen=True)
class DocMeta:
    """What an index keeps about a file to decide whether to re-index it."""

    id: str
    path: str
    mtime: float
    size: int


@dataclass(frozen=True)
class ImageDoc:
    """One image, ready to index: metadata, word text and (optionally) its embedding."""

    id: str  # content hash: stable, the update/delete key
    path: str
    label: str
    width: int
    height: int
    mtime: float
    size: int
    words: str  # whitespace-separated words, each repeated by its count
    vector: np.ndarray | None = None  # float32, L2-normalised full embedding
    positions: bytes = b""  # the local words' positions, opaque (the tokenizer's format); b"": none


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    path: str
    label: str
    width: int
    height: int
    inliers: int | None = None  # geometric verification's evidence, when the search asked for it (--verify)
    # where the query's local words matched (--explain, --verify from stored positions): boxes in the hit's
    # pixels [x0, y0, x1, y1], the best placement first; the query's matching region in its own pixels; the
    # local words that matched there
    boxes: tuple[tuple[int, int, int, int], ...] | None = None
    query_box: tuple[int, int, int, int] | None = None
    matched: tuple[str, ...] | None = None


_EVIDENCE = ("inliers", "boxes", "query_box", "matched")


def hits_json(hits: Sequence[Hit], start: int = 1) -> list[dict]:
    """Hits as JSON objects (`vqgram search --json`, the serve API): their rank (from `start`), then the
    fields; the evidence fields (inliers, boxes, query_box, matched) only where the search gathered them."""
    out = []
    for rank, hit in enumerate(hits, start):
        fields = {"rank": rank, **asdict(hit)}
        for name in _EVIDENCE:
            if fields[name] is None:
                del fields[name]
            elif name in ("boxes", "matched"):
                fields[name] = [list(b) if isinstance(b, tuple) else b for b in fields[name]]
            elif name == "query_box":
                fields[name] = list(fields[name])
        out.append(fields)
    return out


@dataclass(frozen=True)
class Ranking:
    """A ranked list as parallel arrays (ids, scores), best first: full-depth runs without a Hit per document."""

    ids: np.ndarray  # str
    scores: np.ndarray  # float

    @classmethod
    def of(cls, ids: Sequence[str] | np.ndarray, scores: Sequence[float] | np.ndarray) -> "Ranking":
        """Order by descending score, then id (the same order as `rank`)."""
        ids, scores = np.asarray(ids, dtype=str), np.asarray(scores, dtype=np.float64)
        order = np.lexsort((ids, -scores))
        return cls(ids[order], scores[order])

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class DocTable:
    """Every committed document's metadata as columns, sorted by id: filtered exact scans
    (`filters.mask`) and id lookups (a page's thumbnails) without a query per document."""

    ids: np.ndarray  # str, sorted
    paths: np.ndarray  # str
    labels: np.ndarray  # str
    width: np.ndarray  # int64
    height: np.ndarray  # int64
    size: np.ndarray  # int64
    mtime: np.ndarray  # float64

    @classmethod
    def of(cls, rows: Iterable[tuple[str, str, str, int, int, int, float]]) -> "DocTable":
        """From (id, path, label, width, height, size, mtime) rows in any order."""
        cols = list(zip(*sorted(rows))) or [()] * 7
        text = [np.asarray(c, dtype=str) if c else np.zeros(0, dtype=str) for c in cols[:3]]
        return cls(*text, *(np.asarray(c, np.int64) for c in cols[3:6]), np.asarray(cols[6], np.float64))

    def column(self, field: str) -> np.ndarray:
        return {"id": self.ids, "path": self.paths, "label": self.labels, "width": self.width,
                "height": self.height, "size": self.size, "mtime": self.mtime}[field]

    def row(self, doc_id: str) -> int | None:
        """The row of a document id, or None when the index does not hold it."""
        i = int(np.searchsorted(self.ids, doc_id))
        return i if i < len(self.ids) and self.ids[i] == doc_id else None

    def hit(self, row: int, score: float = 0.0) -> Hit:
        return Hit(str(self.ids[row]), score, str(self.paths[row]), str(self.labels[row]), int(self.width[row]),
                   int(self.height[row]))

    def __len__(self) -> int:
        return len(self.ids)


def rank(hits: Iterable[Hit], k: int) -> list[Hit]:
    """Order by descending score, then id, so equal scores rank the same everywhere."""
    return sorted(hits, key=lambda h: (-h.score, h.id))[:k]


class IndexLocked(RuntimeError):
    """Another run holds the index's writer lock."""

    def __init__(self, path: Path):
        super().__init__(f"index {path} is being written by another run (it holds the writer lock); "
                         "wait for that run to finish, or pass --wait to queue behind it")


class IndexCorrupt(RuntimeError):
    """The engine found damaged or missing index files."""

    def __init__(self, path: Path, detail: str):
        self.detail = detail if len(detail) <= 240 else detail[:237] + "..."  # engines quote whole files
        super().__init__(f"index {path} is damaged ({self.detail}); run 'vqgram check {path}' for details, "
                         "then index the folder again into a new index folder")


def take_writer_lock(path: Path, open_writer: Callable[[], T], engine_error: Callable[[Path, Exception], Exception],
                     wait: bool) -> T:
    """open_writer() once it gets the engine's lock; its errors as `engine_error` says. A held lock
    raises IndexLocked, or, with `wait`, is tried again every half second."""
    while True:
        try:
            return open_writer()
        except Exception as exc:
            error = engine_error(path, exc)
            if not (wait and isinstance(error, IndexLocked)):
                raise error from None
            time.sleep(0.5)


def embedding_bytes(vector: np.ndarray) -> bytes:
    """An embedding as stored in a document: float32 little-endian."""
    return np.asarray(vector, dtype="<f4").tobytes()


def embedding_matrix(rows: Sequence[bytes], dim: int) -> np.ndarray:
    """Stored embeddings (equal-length byte strings) -> one (N, dim) float32 matrix."""
    if not rows:
        return np.zeros((0, dim), np.float32)
    return np.frombuffer(b"".join(rows), dtype="<f4").reshape(len(rows), -1).astype(np.float32)


class Backend(Protocol):
    """An index folder opened for reading and writing by one engine."""

    name: ClassVar[str]
    path: Path

    def creation_options(self) -> dict:
        """The options `create` took (e.g. Lucene's HNSW settings), as stored with the index."""

    def begin_writing(self, wait: bool = False) -> None:
        """Take the index's writer lock for this run (held until `close`, across commits).

        Raises IndexLocked when another run holds it, or, with `wait`, waits for it."""

    def add(self, docs: Sequence[ImageDoc]) -> None:
        """Insert or replace (same id) documents, each with its embedding; visible after `commit`."""

    def delete(self, ids: Iterable[str]) -> None:
        """Remove documents by id; visible after `commit`."""

    def commit(self) -> None:
        """Make all changes durable, documents and embeddings in one engine commit (a crash leaves the
        last commit or this one, never a mix); the writer lock stays held."""

    def count(self) -> int:
        """Number of committed documents."""

    def stored(self) -> dict[str, DocMeta]:
        """path -> DocMeta of every committed document (for incremental indexing)."""

    def doc_freqs(self, words: Iterable[str]) -> dict[str, int]:
        """word -> number of committed documents holding it (for query-term pruning by idf)."""

    def vectors(self) -> tuple[list[str], np.ndarray]:
        """(ids, (N, D) float32 L2-normalised embeddings) of the committed documents, read from the
        current commit and handed over (the backend keeps no copy: the searcher owns exact scans)."""

    def ann_dims(self) -> int | None:
        """The embedding prefix `search_vector` answers by approximate (HNSW) search; None when the
        engine has no vector search (then the searcher scans `vectors()` exactly)."""

    def documents(self) -> DocTable:
        """The metadata of every committed document (read once per commit)."""

    def stored_documents(self) -> Iterator[ImageDoc]:
        """Every committed document as it was added (metadata, words text, embedding, positions), read from its
        stored fields one at a time (an export needs no photo; words None in an index made before they were stored)."""

    def stored_positions(self, ids: Sequence[str]) -> dict[str, bytes]:
        """id -> the stored positions blob of each named document, read at once for a page of hits (geometric
        verification); b"" for a document without one (also in an index made before they were stored); ids the
        index does not hold are left out."""

    def label_counts(self) -> dict[str, int]:
        """label -> how many committed documents have it, counted by the engine over its `label` terms
        (deleted documents not counted, though a term's doc freq still includes them); "" left out."""

    def refresh(self) -> bool:
        """Move the reader to the index's last commit when another process (a running `vqgram index`) has
        made a newer one; True when it moved. This backend's own commits are seen at once without it."""

    def stored_words(self, doc_id: str) -> str:
        """The words text a document was indexed with (to search by an indexed image); KeyError for an
        unknown id, ValueError for an index made before words were stored."""

    # `where` (a filters.Filter, or None) restricts a search inside the engine: a filter clause beside
    # the scored query, or the kNN query's filter. (Exact scans mask the matrix: see Searcher.)

    def search_words(self, weights: dict[str, float], k: int, similarity: str = "bm25",
                     k1: float = 1.2, b: float = 0.75, where=None) -> list[Hit]:
        """A disjunction of term queries over `words`, boosted by weight, ranked by `similarity`
        ("bm25", "tfidf" or "jaccard"); ValueError for a similarity the engine lacks."""

    def rank_words(self, weights: dict[str, float], similarity: str = "bm25", k1: float = 1.2,
                   b: float = 0.75, where=None) -> Ranking:
        """Every document `search_words` would return, ranked: the full run, for evaluation and deep fusion."""

    def search_vector(self, vector: np.ndarray, k: int, ef: int | None = None, where=None) -> list[Hit]:
        """Approximate nearest embeddings by cosine on the `ann_dims()` prefix (engines with HNSW only)."""

    def lookup(self, ids: list[str], scores: list[float]) -> list[Hit]:
        """Hits for documents named by id, carrying the given scores, in (-score, id) order."""

    def search_text(self, query: str, k: int, where=None) -> list[Hit]:
        """The engine's own query syntax over `words` and the metadata fields."""

    def close(self) -> None:
        """Release the writer and files."""


def size_on_disk(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
