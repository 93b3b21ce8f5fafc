"""Encoded rows on disk: Parquet partitions (what `vqgram encode` writes) and JSON Lines (what anyone can write).

A source is one file (`.parquet`, `.jsonl`, `.ndjson`) or a folder of them.
Who made the rows (`EncodedBy`) travels with them: in a Parquet file's schema
metadata under `vqgram`, in a JSON Lines file as a first line
`{"encoded_by": {...}}`. Rows stream in batches, so a million of them never sit
in memory at once. A row's `positions` blob is a binary column in Parquet and
base64 text in JSON Lines; rows written without it read as b"".
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .rows import EncodedBy, EncodedRow

PARQUET_SUFFIXES = (".parquet",)
JSONL_SUFFIXES = (".jsonl", ".ndjson")
METADATA_KEY = b"vqgram"
BATCH_ROWS = 1024


def _pa():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise RuntimeError("reading or writing Parquet needs pyarrow: pip install pyarrow") from None
    return pa, pq


@dataclass(frozen=True)
class RowSource:
    """The files of an encoded source and who encoded them (None when they do not say)."""

    files: tuple[Path, ...]
    encoded_by: EncodedBy | None


def open_rows(path: str | Path) -> RowSource:
    """Find the row files at `path` and read who made them; ValueError when they disagree or there are none."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"encoded rows not found: {path}")
    suffixes = PARQUET_SUFFIXES + JSONL_SUFFIXES
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes) if path.is_dir() else [path]
    if not files:
        raise ValueError(f"no encoded rows in {path} (looked for {', '.join(suffixes)})")
    for f in files:
        if f.suffix.lower() not in suffixes:
            raise ValueError(f"{f}: unknown row file type; use {', '.join(suffixes)}")
    makers = {json.dumps(m.to_json(), sort_keys=True) for m in map(_encoded_by, files) if m is not None}
    if len(makers) > 1:
        raise ValueError(f"the files in {path} were encoded by different tokenizers; index them separately")
    return RowSource(tuple(files), EncodedBy.from_json(json.loads(makers.pop())) if makers else None)


def _encoded_by(file: Path) -> EncodedBy | None:
    if file.suffix.lower() in PARQUET_SUFFIXES:
        meta = _pa()[1].read_schema(file).metadata or {}
        return EncodedBy.from_json(json.loads(meta[METADATA_KEY])) if METADATA_KEY in meta else None
    with open(file, encoding="utf-8") as f:
        first = f.readline()
    try:
        header = json.loads(first)
    except json.JSONDecodeError:
        return None
    return EncodedBy.from_json(header["encoded_by"]) if isinstance(header, dict) and "encoded_by" in header else None


def iter_records(source: RowSource, columns: Sequence[str] | None = None) -> Iterator[tuple[str, object]]:
    """(where, record) for every row: `where` names the file and row for error messages.

    columns: read only these (Parquet reads just those columns; JSON Lines parses whole lines).
    A JSON line that does not parse yields its error text as the record.
    """
    for file in source.files:
        if file.suffix.lower() in PARQUET_SUFFIXES:
            yield from _parquet_records(file, columns)
        else:
            yield from _jsonl_records(file)


def _parquet_records(file: Path, columns) -> Iterator[tuple[str, object]]:
    pq = _pa()[1]
    pf = pq.ParquetFile(file)
    names = set(pf.schema_arrow.names)
    cols = None if columns is None else [c for c in columns if c in names]
    n = 0
    for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=cols):
        for record in batch.to_pylist():
            n += 1
            yield f"{file.name} row {n}", record


def _jsonl_records(file: Path) -> Iterator[tuple[str, object]]:
    with open(file, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield f"{file.name} line {n}", f"not JSON ({exc.msg})"
                continue
            if n == 1 and isinstance(record, dict) and "encoded_by" in record:
                continue
            yield f"{file.name} line {n}", record


def write_parquet(rows: Sequence[EncodedRow], path: str | Path, encoded_by: EncodedBy) -> Path:
    """One Parquet file of rows (written beside, then renamed, so a reader never sees half a file)."""
    pa, pq = _pa()
    path = Path(path)
    dim = encoded_by.vector_dim
    vectors = np.stack([np.asarray(r.vector, np.float32) for r in rows]) if rows else np.zeros((0, dim), np.float32)
    word_counts = [len(r.words) for r in rows]
    offsets = np.concatenate([[0], np.cumsum(word_counts)]).astype(np.int32)
    words = pa.MapArray.from_arrays(
        pa.array(offsets), pa.array([w for r in rows for w in r.words], pa.string()),
        pa.array([c for r in rows for c in r.words.values()], pa.int32()))
    table = pa.table({
        "id": pa.array([r.id for r in rows], pa.string()),
        "path": pa.array([r.path for r in rows], pa.string()),
        "label": pa.array([r.label for r in rows], pa.string()),
        "width": pa.array([r.width for r in rows], pa.int32()),
        "height": pa.array([r.height for r in rows], pa.int32()),
        "mtime": pa.array([r.mtime for r in rows], pa.float64()),
        "size": pa.array([r.size for r in rows], pa.int64()),
        "words": words,
        "vector": pa.ListArray.from_arrays(pa.array(np.arange(len(rows) + 1, dtype=np.int32) * dim),
                                           pa.array(vectors.reshape(-1), pa.float32())),
        "positions": pa.array([r.positions for r in rows], pa.binary()),
    })
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(encoded_by.to_json()).encode()})
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


def write_jsonl(rows: Sequence[EncodedRow], path: str | Path, encoded_by: EncodedBy | None = None) -> Path:
    """JSON Lines of rows (words as {word: count}, positions as base64), headed by who encoded them when known."""
    path = Path(path)
    with open(path, "w", encoding="utf-8") as f:
        if encoded_by is not None:
            f.write(json.dumps({"encoded_by": encoded_by.to_json()}) + "\n")
        for r in rows:
            record = {**r.to_record(), "words": dict(r.words), "vector": np.asarray(r.vector, float).tolist(),
                      "positions": base64.b64encode(r.positions).decode("ascii")}
            f.write(json.dumps(record) + "\n")
    return path
