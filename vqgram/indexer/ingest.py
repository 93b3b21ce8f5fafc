"""Encoded rows (JSON Lines or Parquet, made anywhere) -> backend, with the folder pipeline's rules.

The same manifest check (the rows' tokenizer must be the index's), the same
incremental rules and the same commits (`RowWriter`) as `index_folder`:
- a row whose path the index holds with the same id is unchanged;
- a row with a new id for a stored path replaces that document;
- a row whose id is already indexed (under another path) is a duplicate;
- where the rows say which folder they cover (`vqgram encode` does), stored
  documents of that folder whose paths no row names are removed.
A row that does not fit is named in one warning line and skipped; the
document its path had stays.

Rows are read twice, first only (id, path) to learn which paths are present,
then whole and streamed in batches into the writer, so memory holds the
index's paths, not the rows.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from ..images import Skipped
from ..progress import progress_bar
from .pipeline import IndexReport, RowWriter
from .rowfiles import RowSource, iter_records, open_rows
from .rows import BadRow, EncodedBy, parse_row
from .store import IndexHandle, create_or_open

log = logging.getLogger("vqgram")

ADD_BATCH = 256


def index_encoded(source: str | Path, index: str | Path, *, backend: str = "tantivy", tokenizer=None,
                  commit_every: int = 2048, progress: bool = True, wait: bool = False,
                  **backend_options) -> IndexReport:
    """Index the encoded rows at `source` (a file or a folder of them) into `index` (created if missing).

    tokenizer: who encoded rows that do not say so themselves (a JSON Lines
    file without its header line); rows that do say are checked against the index.
    The run holds the writer lock throughout, as `index_folder` does (`wait`: wait for another run).
    """
    rows = open_rows(source)
    made_by = rows.encoded_by
    if made_by is None:
        if tokenizer is None:
            raise ValueError(f"{source} does not say which tokenizer encoded it; name the model and k-gram settings "
                             "that did (vqgram index --encoded FILE --model ...)")
        made_by = EncodedBy.of(tokenizer)
    start = time.time()
    handle = create_or_open(Path(index), made_by, backend, **backend_options)
    try:
        handle.backend.begin_writing(wait)
        return _ingest(rows, handle, made_by, commit_every, progress, start)
    finally:
        handle.close()


def _present_paths(rows: RowSource) -> dict[str, object]:
    """path -> id of every row that names a path (bad rows too: their paths' documents must stay)."""
    present: dict[str, object] = {}
    for _where, rec in iter_records(rows, columns=("id", "path")):
        if isinstance(rec, dict) and isinstance(rec.get("path"), str):
            present.setdefault(rec["path"], rec.get("id"))
    return present


def _ingest(rows: RowSource, handle: IndexHandle, made_by: EncodedBy, commit_every: int,
            progress: bool, start: float) -> IndexReport:
    engine = handle.backend
    stored = engine.stored()
    present = _present_paths(rows)
    folder = Path(made_by.folder) if made_by.folder else None
    stale = {m.id for p, m in stored.items() if p not in present and folder and Path(p).is_relative_to(folder)}
    keep_ids = {m.id for p, m in stored.items() if present.get(p) == m.id}
    report = IndexReport()
    out = RowWriter(engine, report, commit_every)
    added: set[str] = set()
    seen: set[str] = set()
    batch = []
    with progress_bar(total=len(present), unit="row", desc="indexing rows", show=progress) as bar:
        for where, rec in iter_records(rows):
            bar.update(1)
            try:
                if isinstance(rec, str):
                    raise BadRow(f"{where}: {rec}")
                row = parse_row(rec, where, made_by.vector_dim)
                if row.path in seen:
                    raise BadRow(f"{where}: path {row.path} was given by an earlier row")
            except BadRow as exc:
                log.warning("skipped %s", exc)
                report.skipped.append(Skipped(where, str(exc).removeprefix(f"{where}: ")))
                continue
            seen.add(row.path)
            old = stored.get(row.path)
            if old is not None and old.id == row.id:
                report.unchanged += 1
                continue
            if old is not None:
                stale.add(old.id)  # same path, new content
            if row.id in keep_ids:
                report.duplicates += 1
                continue
            keep_ids.add(row.id)
            added.add(row.id)
            batch.append(row)
            if len(batch) >= ADD_BATCH:
                out.add(batch)
                batch = []
        if batch:
            out.add(batch)
    remove = sorted(stale - added)  # an id added again (a moved or swapped file) was replaced, not removed
    if remove:
        engine.delete(remove)
        report.removed = len(remove)
    out.finish(start)
    return report
