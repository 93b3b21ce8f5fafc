"""Folder -> tokenizer -> backend, incrementally.

A re-run indexes new files, re-indexes changed ones (size or mtime differ and
the content hash changed) and removes documents whose files are gone from the
folder. Batches stream into the backend and are committed every
`commit_every` images, so a crash loses at most the uncommitted batches and a
re-run resumes from the last commit. A run holds the index's writer lock from
start to end (a second run is refused, or waits), so the plan it made from the
index stays true while it runs. A file that cannot be read (also a dangling or
looping link, or one that vanishes mid-run) is skipped with one warning line;
it never stops the folder.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..images import ImageFile, Skipped, find_images, probe_all
from ..progress import progress_bar
from ..tokenizer.encoder import Encoded, Tokenizer
from ..tokenizer.feature_cache import FeatureCache
from .backend import Backend, DocMeta
from .rows import EncodedRow, rows_from_batch
from .store import IndexHandle, create_or_open

log = logging.getLogger("vqgram")

BatchHook = Callable[[list[ImageFile], Encoded], None]


@dataclass
class IndexReport:
    indexed: int = 0
    unchanged: int = 0
    removed: int = 0
    duplicates: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    total: int = 0  # documents in the index afterwards

    @property
    def images_per_second(self) -> float:
        return self.indexed / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        return (f"indexed {self.indexed}, unchanged {self.unchanged}, removed {self.removed}, "
                f"duplicates {self.duplicates}, skipped {len(self.skipped)}; "
                f"{self.total} documents in the index ({self.seconds:.1f} s, {self.images_per_second:.1f} images/s)")


@dataclass
class Plan:
    """What a run must do to bring the index in line with the folder."""

    todo: list[ImageFile]
    remove: list[str]  # document ids
    unchanged: int
    duplicates: int
    skipped: list[Skipped]


def plan_changes(folder: Path, stored: dict[str, DocMeta], threads: int = 4,
                 paths: list[Path] | None = None) -> Plan:
    """Compare the folder (or its already listed `paths`) with what the index holds; hash only files that
    look changed."""
    folder = Path(folder).resolve()
    paths = find_images(folder) if paths is None else paths
    on_disk = {str(p) for p in paths}
    remove = [m.id for p, m in stored.items() if p not in on_disk and _is_under(p, folder)]
    keep_ids: set[str] = set()
    to_probe = []
    for p in paths:
        meta = stored.get(str(p))
        try:
            st = p.stat()
        except OSError:  # dangling or looping link, vanished: probe() reports it
            to_probe.append(p)
            continue
        if meta and meta.size == st.st_size and meta.mtime == st.st_mtime:
            keep_ids.add(meta.id)
        else:
            to_probe.append(p)
    probed, skipped = probe_all(to_probe, folder, threads)
    todo, duplicates = [], 0
    for item in probed:
        old = stored.get(item.path)
        if old and old.id != item.sha:
            remove.append(old.id)  # same path, new content
        if item.sha in keep_ids:
            duplicates += 1  # identical bytes already indexed (under this or another path)
            continue
        keep_ids.add(item.sha)
        todo.append(item)
    return Plan(todo, remove, len(paths) - len(to_probe), duplicates, skipped)


def _is_under(path: str, folder: Path) -> bool:
    return Path(path).is_relative_to(folder)


def index_folder(folder: Path, index: Path, tokenizer: Tokenizer, *, backend: str = "tantivy",
                 batch_size: int = 32, workers: int | None = None, commit_every: int = 2048,
                 progress: bool = True, on_batch: BatchHook | None = None, cache: FeatureCache | None = None,
                 wait: bool = False, **backend_options) -> IndexReport:
    """Index every image below `folder` into `index` (created if missing).

    on_batch(files, encoded) sees every encoded batch (e.g. to keep the word
    counts and embeddings for an evaluation without encoding twice); a feature
    cache lets images it holds skip decoding and the backbone. The run holds
    the writer lock throughout: another run holding it raises IndexLocked,
    or, with `wait`, is waited for.
    """
    start = time.time()
    paths = find_images(Path(folder).resolve())  # before anything is created: an empty folder leaves no index
    handle = create_or_open(index, tokenizer, backend, **backend_options)
    try:
        handle.backend.begin_writing(wait)
        return _run(folder, paths, handle, tokenizer, batch_size, workers, commit_every, progress, on_batch,
                    cache, start)
    finally:
        handle.close()


def _run(folder, paths, handle: IndexHandle, tokenizer, batch_size, workers, commit_every, progress, on_batch,
         cache, start) -> IndexReport:
    engine = handle.backend
    plan = plan_changes(folder, engine.stored(), paths=paths)
    report = IndexReport(unchanged=plan.unchanged, duplicates=plan.duplicates, skipped=list(plan.skipped))
    if plan.remove:
        engine.delete(plan.remove)
        report.removed = len(plan.remove)
    files = plan.todo
    out = RowWriter(engine, report, commit_every)
    with progress_bar(total=len(files), unit="img", desc="indexing", show=progress and bool(files)) as bar:
        for ok, encoded, bad in tokenizer.encode_files(files, batch_size=batch_size, workers=workers, cache=cache):
            for i, reason in bad:
                log.warning("skipped %s: %s", files[i].path, reason)
                report.skipped.append(Skipped(files[i].path, reason))
            if ok:
                out.add(rows_from_batch(files, ok, encoded))
                if on_batch is not None:
                    on_batch([files[i] for i in ok], encoded)
            bar.update(len(ok) + len(bad))
    out.finish(start)
    return report


class RowWriter:
    """Encoded rows into a backend, committed every `commit_every` rows and at the end (both pipelines)."""

    def __init__(self, engine: Backend, report: IndexReport, commit_every: int):
        self.engine, self.report, self.commit_every = engine, report, commit_every
        self._since_commit = 0

    def add(self, rows: list[EncodedRow]) -> None:
        self.engine.add([r.to_doc() for r in rows])
        self.report.indexed += len(rows)
        self._since_commit += len(rows)
        if self._since_commit >= self.commit_every:
            self.engine.commit()
            self._since_commit = 0

    def finish(self, start: float) -> None:
        self.engine.commit()
        self.report.seconds = time.time() - start
        self.report.total = self.engine.count()
