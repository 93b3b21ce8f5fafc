"""JPEG thumbnails (longer side <= 256 px) of indexed images, cached on disk by document id.

A document id is the hash of the file's bytes, so a thumbnail never goes stale
and indexes of the same photos share one cache. Files are written beside
their final name and renamed, so a concurrent reader sees a whole file or none.
"""
from __future__ import annotations

from pathlib import Path

from ..cache_dir import cache_dir
from ..files import write_atomic
from ..images import thumbnail_jpeg

THUMB_SIZE = 256


def default_root() -> Path:
    """$VQGRAM_CACHE/thumbs, else ~/.cache/vqgram/thumbs."""
    return cache_dir("thumbs")


class ThumbnailCache:
    def __init__(self, root: str | Path | None = None, size: int = THUMB_SIZE):
        self.root, self.size = Path(root) if root else default_root(), size

    def get(self, doc_id: str, image: Path) -> bytes:
        """The thumbnail of document `doc_id` (whose file is `image`), made on first use.

        `doc_id` must come from the index (the caller checks it), never from a client as such:
        it names the cache file. Raises OSError/ValueError when the image cannot be read."""
        cached = self.root / doc_id[:2] / f"{doc_id}-{self.size}.jpg"
        try:
            return cached.read_bytes()
        except FileNotFoundError:
            pass
        data = thumbnail_jpeg(image, self.size)
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(cached, data)
        return data
