"""`check_index`: is an index whole? Its manifest reads, its engine opens and reads every document,
and every document has its embedding.

Used by `vqgram check`, and the first thing to run when an index error says
an index is damaged.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .backend import IndexCorrupt
from .store import backend_class, read_manifest


@dataclass
class IndexCheck:
    """What `check_index` found: counts, and one sentence per problem (none: the index is whole)."""

    path: Path
    backend: str = "?"
    documents: int = 0
    embeddings: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        return (f"index {self.path} ({self.backend}): {self.documents} documents, {self.embeddings} embeddings; "
                + ("ok" if self.ok else f"{len(self.problems)} problem(s)"))


def check_index(path: str | Path) -> IndexCheck:
    """Read the whole index at `path` (last commit; readers never wait for a writer) and report problems."""
    report = IndexCheck(Path(path))
    try:
        manifest = read_manifest(report.path)
    except (OSError, ValueError) as exc:
        report.problems.append(str(exc))
        return report
    report.backend = manifest.backend
    try:
        engine = backend_class(manifest.backend).open(report.path)
    except Exception as exc:  # whatever the engine raises on damaged files: that is the finding
        report.problems.append(f"the {manifest.backend} engine cannot open it: {_line(exc)}")
        return report
    try:
        _check_contents(engine, report)
    except Exception as exc:
        report.problems.append(f"the {manifest.backend} engine cannot read every document: {_line(exc)}")
    finally:
        engine.close()
    return report


def _check_contents(engine, report: IndexCheck) -> None:
    report.documents = engine.count()
    stored = engine.stored()
    ids, matrix = engine.vectors()
    report.embeddings = len(ids)
    if len(stored) != report.documents:
        report.problems.append(f"{report.documents} documents but {len(stored)} distinct paths stored")
    missing = {m.id for m in stored.values()} - set(ids)
    if missing or len(ids) != report.documents:
        report.problems.append(f"{report.documents} documents but {len(ids)} embeddings "
                               f"({len(missing)} documents have none)")
    if len(set(ids)) != len(ids):
        report.problems.append(f"{len(ids) - len(set(ids))} ids have more than one embedding")
    if len(ids) and not np.isfinite(matrix).all():
        report.problems.append(f"{int((~np.isfinite(matrix).all(1)).sum())} embeddings hold NaN or infinity")


def _line(exc: BaseException) -> str:
    if isinstance(exc, IndexCorrupt):
        return exc.detail
    text = str(getattr(exc, "innermessage", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
