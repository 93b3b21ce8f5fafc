"""Files written whole or not at all.

A file is written under a temporary name beside its final one, then renamed
over it: a concurrent reader, or a run killed halfway, sees the old file or
the new one, never a part. The temporary name is unique per process and call,
so two writers of one file never write into each other's; the last rename wins.
"""
from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


@contextmanager
def atomic_file(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """A file object ("wb" or "w", UTF-8) renamed to `path` when the block ends; removed if it raises.
    The file gets the permissions a plain `open` would (the umask's), not a temporary file's 0600."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Replace `path` with `data` (text as UTF-8) in one rename."""
    with atomic_file(path, "w" if isinstance(data, str) else "wb") as f:
        f.write(data)
