"""Lucene's exceptions, which reach Python as jnius.JavaException, as one-line vqgram errors naming the index:
a held write lock as IndexLocked, damaged or missing files as IndexCorrupt, the rest as RuntimeError."""
from __future__ import annotations

from pathlib import Path

from vqgram.indexer.backend import IndexCorrupt, IndexLocked

# Lucene's exceptions (simple class names) that mean damaged or missing index files.
_CORRUPTION = ("CorruptIndexException", "IndexFormatTooOldException", "IndexFormatTooNewException",
               "NoSuchFileException", "FileNotFoundException", "EOFException", "IndexNotFoundException")


def engine_error(path: Path, exc: Exception) -> Exception:
    """A jnius.JavaException from Lucene as a one-line vqgram error naming the index (others unchanged)."""
    if type(exc).__name__ != "JavaException":
        return exc
    name = str(getattr(exc, "classname", "") or "").rsplit(".", 1)[-1]
    if name == "LockObtainFailedException":
        return IndexLocked(path)
    text = str(getattr(exc, "innermessage", None) or exc).strip().splitlines()
    detail = f"{name}: {text[0] if text else ''}".strip(": ")
    if name in _CORRUPTION:
        return IndexCorrupt(path, detail)
    return RuntimeError(f"Lucene failed on index {path} ({detail})")
