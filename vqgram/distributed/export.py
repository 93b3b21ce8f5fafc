"""`vqgram export`: an index -> files a search cluster loads (docs/SCALE.md, "From one machine to a cluster").

OUT/index.json is the create-index body (PUT /NAME with it); OUT/bulk-NNNNN.ndjson
hold the documents as bulk actions (POST /_bulk with each, or the clients'
bulk helpers), `batch` documents per file.

The engines keep word counts in their postings, not as stored text, so the
words come either from the encoded rows the index was built from (`encoded`:
fast, what a cluster path uses) or by encoding the indexed files again with
the index's own tokenizer; a file that is gone or changed since indexing is
named and left out.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..images import ImageFile, probe
from ..indexer.rowfiles import iter_records, open_rows
from ..indexer.rows import BadRow, EncodedRow, parse_row, rows_from_batch
from ..indexer.store import IndexHandle, check_tokenizer, open_index, tokenizer_for
from .cluster import VectorSpec, bulk_actions, index_body

log = logging.getLogger("vqgram")


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
        rows = _rows_from_file(handle, encoded, report) if encoded else _rows_by_encoding(handle, report)
        out.mkdir(parents=True, exist_ok=True)
        spec, lines, part = None, [], 0
        for row in rows:
            if spec is None:
                spec = vector_spec(handle, len(row.vector), dense_dims)
                index_body(target, spec)  # checks the target before any file is written
            action, source = bulk_actions(name, {**row.to_record(), "words": row.words}, spec)
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


def _rows_from_file(handle: IndexHandle, encoded, report: ExportReport) -> Iterator[EncodedRow]:
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
            yield row


def _rows_by_encoding(handle: IndexHandle, report: ExportReport, batch: int = 256) -> Iterator[EncodedRow]:
    tokenizer = tokenizer_for(handle.manifest, handle.path)
    stored = sorted(handle.backend.stored().values(), key=lambda m: m.path)
    for s in range(0, len(stored), batch):
        metas = stored[s:s + batch]
        labels = {h.id: h.label for h in handle.backend.lookup([m.id for m in metas], [0.0] * len(metas))}
        files: list[ImageFile] = []
        for m in metas:
            item = probe(Path(m.path), Path(m.path).parent)
            if not isinstance(item, ImageFile) or item.sha != m.id:
                reason = "gone or unreadable" if not isinstance(item, ImageFile) else "changed since indexing"
                log.warning("left out %s: %s", m.path, reason)
                report.skipped.append(f"{m.path}: {reason}")
                continue
            files.append(ImageFile(item.path, labels.get(m.id, ""), item.width, item.height, m.mtime, m.size, m.id))
        for ok, encoded, bad in tokenizer.encode_files(files, workers=0):
            report.skipped += [f"{files[i].path}: {reason}" for i, reason in bad]
            yield from rows_from_batch(files, ok, encoded, tokenizer.vocabulary) if ok else ()
