"""Atomic writes: a whole new file or the old one, never a part, and no temporary file left behind."""
import os

import numpy as np
import pytest

from vqgram.files import atomic_file, write_atomic


def test_a_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "settings.json"
    write_atomic(path, "old\n")
    write_atomic(path, "néw\n")
    assert path.read_text(encoding="utf-8") == "néw\n" and os.listdir(tmp_path) == ["settings.json"]
    write_atomic(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "atoms.npy"
    write_atomic(path, b"old")
    with pytest.raises(RuntimeError):
        with atomic_file(path) as f:
            np.save(f, np.arange(10))
            raise RuntimeError("killed halfway")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["atoms.npy"]


def test_the_file_gets_the_umasks_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "thumb.jpg", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "thumb.jpg").stat().st_mode & 0o777 == 0o644  # readable by others, as open() makes it
