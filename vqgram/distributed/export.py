"""`vqgram export`: an index -> files a search cluster loads (docs/SCALE.md, "From one machine to a cluster").

OUT/index.json is the create-index body (PUT /NAME with it); OUT/bulk-NNNNN.ndjson
hold the documents as bulk actions (POST /_bulk with each, or the clients'
bulk helpers), `batch` documents per file.

Each document comes from the index alone, as its engine stores it
(`Backend.stored_documents`: metadata, words text, embedding, positions), so no photo and
no model is needed, or from the encoded rows the index was built from
(`encoded`: a fast path for a cluster pipeline that has them).
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..indexer.rowfiles import iter_records, open_rows
from ..indexer.rows import BadRow, parse_row
from ..indexer.store import IndexHandle, check_tokenizer, open_index
from .cluster import VectorSpec, bulk_actions, index_body


@dataclass
class ExportReport:
    documents: int = 0
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def vector_spec(handle: IndexHandle, vector_dims: int, dense_dims: int | None = None) -> VectorSpec:
    """The index's own HNSW settings (Lucene), else the given prefix (default 256) and Lucene's defaults."""
    if handle.manifest.backend == "lucene":
        s = handle.backend.settings
        dims = dense_dims or s.dense_dims or vector_dims
        return VectorSpec(vector_dims, min(dims, vector_dims), s.hnsw_m, s.hnsw_ef_construction, s.int8)
    return VectorSpec(vector_dims, min(dense_dims or 256, vector_dims))


def export_index(index: str | Path, target: str, out: str | Path, *, encoded: str | Path | None = None,
                 name: str | None = None, dense_dims: int | None = None, batch: int = 10_000) -> ExportReport:
    """Write OUT/index.json and OUT/bulk-*.ndjson for `target` ("opensearch" or "elasticsearch")."""
    index, out = Path(index), Path(out)
    name = name or index.resolve().name
    handle = open_index(index)
    try:
        report = ExportReport()
        records = _encoded_records(handle, encoded, report) if encoded else _stored_records(handle, report)
        out.mkdir(parents=True, exist_ok=True)
        spec, lines, part = None, [], 0
        for record in records:
            if spec is None:
                spec = vector_spec(handle, len(record["vector"]), dense_dims)
                index_body(target, spec)  # checks the target before any file is written
            action, source = bulk_actions(name, record, spec)
            lines += [json.dumps(action), json.dumps(source)]
            report.documents += 1
            if len(lines) >= 2 * batch:
                report.files.append(_write(out, part, lines))
                part, lines = part + 1, []
        if lines:
            report.files.append(_write(out, part, lines))
        if spec is None:
            raise ValueError(f"nothing to export from {index}")
        (out / "index.json").write_text(json.dumps(index_body(target, spec), indent=2) + "\n")
        return report
    finally:
        handle.close()


def _write(out: Path, part: int, lines: list[str]) -> str:
    path = out / f"bulk-{part:05d}.ndjson"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _stored_records(handle: IndexHandle, report: ExportReport) -> Iterator[dict]:
    """Each document as its engine stores it, as an encoded-row record (words as {word: count}); every
    stored field of `ImageDoc` is carried over."""
    for doc in handle.backend.stored_documents():
        if doc.words is None:
            raise ValueError(f"index {handle.path} does not store its words (made by an older vqgram); export it "
                             "with --encoded ROWS, or index the folder again into a new index folder")
        if doc.vector is None:
            report.skipped.append(f"{doc.path}: no embedding")
            continue
        yield {**vars(doc), "words": Counter(doc.words.split())}


def _encoded_records(handle: IndexHandle, encoded, report: ExportReport) -> Iterator[dict]:
    """The rows the index was built from that it still holds, as records (words as {word: count})."""
    source = open_rows(encoded)
    if source.encoded_by is None:
        raise ValueError(f"{encoded} does not say which tokenizer encoded it; export without --encoded")
    check_tokenizer(handle.manifest, source.encoded_by, handle.path)
    indexed = {m.id for m in handle.backend.stored().values()}
    for where, rec in iter_records(source):
        try:
            row = parse_row(rec, where, source.encoded_by.vector_dim)
        except BadRow as exc:
            report.skipped.append(str(exc))
            continue
        if row.id in indexed:  # rows the index dropped (duplicates, later removals) stay out
            indexed.discard(row.id)
            yield {**row.to_record(), "words": row.words}

