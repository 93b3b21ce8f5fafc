"""Where vqgram keeps what it can rebuild (feature maps, thumbnails, lift atoms, Spark's launcher)."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir(name: str) -> Path:
    """$VQGRAM_CACHE/name, else ~/.cache/vqgram/name (not created here)."""
    return Path(os.environ.get("VQGRAM_CACHE") or Path.home() / ".cache" / "vqgram") / name
