"""JPEG thumbnails (longer side <= 256 px) of indexed images, cached on disk by document id.

A document id is the hash of the file's bytes, so a thumbnail never goes stale
and indexes of the same photos share one cache. Files are written beside
their final name and renamed, so a concurrent reader sees a whole file or none.
"""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

from ..cache_dir import cache_dir

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
        data = self._make(image)
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cached.parent, suffix=".tmp", delete=False) as f:
            f.write(data)
        os.replace(f.name, cached)
        return data

    def _make(self, image: Path) -> bytes:
        with Image.open(image) as img:
            img.draft("RGB", (self.size, self.size))  # JPEG: decode at a reduced scale, much faster
            img = ImageOps.exif_transpose(img).convert("RGB")
        img.thumbnail((self.size, self.size))
        out = io.BytesIO()
        img.save(out, format="JPEG", quality=85)
        return out.getvalue()
