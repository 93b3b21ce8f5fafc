"""An index folder: one backend's files plus `vqgram.json`, the manifest that names its tokenizer.

Opening an index checks the manifest against the tokenizer in hand, so words
made by one tokenizer are never searched with another's. A new index is made
whole in a hidden sibling folder (engine files and manifest) and renamed into
place, so a crash or a bad setting never leaves a half-made index behind.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import MANIFEST_NAME, IndexManifest, load_json, save_json, to_dict
from ..tokenizer.weights import DEFAULT_MODEL, current_sha256, packaged_model, retired_model, weights_sha256
from ..version import __version__
from .backend import Backend

if TYPE_CHECKING:  # the tokenizer (so torch) is imported only where a model is loaded: index-only commands skip it
    from ..tokenizer.encoder import Tokenizer

BACKENDS = ("tantivy", "lucene")


def backend_class(name: str):
    if name == "tantivy":
        from .tantivy_index import TantivyBackend

        return TantivyBackend
    if name == "lucene":
        from .lucene_index import LuceneBackend

        return LuceneBackend
    raise ValueError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")


@dataclass
class IndexHandle:
    """An open index: its backend and its manifest."""

    path: Path
    backend: Backend
    manifest: IndexManifest

    def close(self) -> None:
        self.backend.close()


def read_manifest(path: Path) -> IndexManifest:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"index not found: {path} (create it with 'vqgram index FOLDER --index {path}')")
    if not path.is_dir():
        raise NotADirectoryError(f"index path is a file, not an index folder: {path}")
    manifest = path / MANIFEST_NAME
    if not manifest.is_file():
        raise ValueError(f"not a vqgram index (no {MANIFEST_NAME}): {path}")
    try:
        return load_json(IndexManifest, manifest)
    except (OSError, ValueError, TypeError) as exc:  # unreadable, empty, truncated or foreign JSON
        raise ValueError(f"index manifest {manifest} is unreadable ({str(exc).splitlines()[0]}); restore it "
                         f"or index the folder again into a new index folder ('vqgram check {path}' checks it)"
                         ) from None


def manifest_for(tokenizer: Tokenizer, backend: str) -> IndexManifest:
    return IndexManifest(backend=backend, tokenizer=tokenizer.config, model_path=tokenizer.model_path,
                         model_sha256=tokenizer.model_sha256, vqgram_version=__version__)


def check_tokenizer(manifest: IndexManifest, tokenizer: Tokenizer, path: Path) -> None:
    """Raise ValueError naming the differing settings if `tokenizer` did not make this index."""
    made, given = to_dict(manifest.tokenizer), to_dict(tokenizer.config)
    diffs = [f"{k}: index {made[k]} vs given {given[k]}" for k in made if made[k] != given.get(k)]
    if current_sha256(manifest.model_sha256) != current_sha256(tokenizer.model_sha256):
        diffs.append(f"model checksum: index {manifest.model_sha256[:12]} vs given {tokenizer.model_sha256[:12]}")
    if diffs:
        raise ValueError(f"index {path} was made by another tokenizer ({'; '.join(diffs)}); "
                         "use the same model and settings, or index into a new folder")


def tokenizer_for(manifest: IndexManifest, path: Path, device: str = "cpu") -> Tokenizer:
    """The tokenizer the manifest names (the same model and k-gram settings), checked against it; an
    index made by an earlier packaged default gets that model, kept in the package beside today's (found by
    its checksum, maybe its heads.pt's); one whose model was retired from the package says how to rebuild it."""
    model = None if manifest.model_path == "default" else manifest.model_path
    if model is None and current_sha256(manifest.model_sha256) != weights_sha256(DEFAULT_MODEL):
        model = packaged_model(manifest.model_sha256)  # None if no packaged model has it: refused below
        if model is None and (retired := retired_model(manifest.model_sha256)):
            raise ValueError(f"index {path} was made by the model {retired['name']} (checksum "
                             f"{manifest.model_sha256[:12]}), which this vqgram no longer ships; rebuild it with "
                             f"'{retired['command']}' and index the photos again into a new folder with --model "
                             f"{retired['name']} (or with today's default model)")
    from ..tokenizer.encoder import Tokenizer

    tok = Tokenizer.from_model(model, manifest.tokenizer.kgram, manifest.tokenizer.max_size, device=device)
    check_tokenizer(manifest, tok, path)
    return tok


def open_index(path: Path, tokenizer: Tokenizer | None = None) -> IndexHandle:
    """Open an existing index; with `tokenizer`, also check that it made this index."""
    path = Path(path)
    manifest = read_manifest(path)
    if tokenizer is not None:
        check_tokenizer(manifest, tokenizer, path)
    return IndexHandle(path, backend_class(manifest.backend).open(path), manifest)


def force_merge(path: Path, max_segments: int = 1, wait: bool = False) -> tuple[int, int]:
    """Merge the Lucene index at `path` down to `max_segments` segments; returns (segments before, after).

    A kNN query searches one HNSW graph per segment, so a grown index answers
    faster merged. Tantivy merges segments by its own policy and tantivy-py
    exposes no merge call: ValueError. `wait`: for another writer's lock."""
    handle = open_index(path)
    try:
        if handle.manifest.backend != "lucene":
            raise ValueError(f"index {path} uses the {handle.manifest.backend} backend; only Lucene indexes can be "
                             "force-merged (Tantivy merges its segments by itself)")
        handle.backend.begin_writing(wait)
        before = handle.backend.segments()
        handle.backend.force_merge(max_segments)
        return before, handle.backend.segments()
    finally:
        handle.close()


def create_or_open(path: Path, tokenizer: Tokenizer, backend: str = "tantivy", **backend_options) -> IndexHandle:
    """Open the index at `path` if it exists (same tokenizer required), else create it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"index path is a file, not a folder: {path}")
    if (path / MANIFEST_NAME).is_file():
        handle = open_index(path, tokenizer)
        if handle.manifest.backend != backend:
            handle.close()
            raise ValueError(f"index {path} uses the {handle.manifest.backend} backend, not {backend}")
        made = handle.backend.creation_options()
        differ = [f"{k}={v} (index: {made.get(k)})" for k, v in backend_options.items() if made.get(k) != v]
        if differ:
            handle.close()
            raise ValueError(f"index {path} was made with other settings: {', '.join(differ)}; leave them out to "
                             "update it, or index into a new folder")
        return handle
    if path.exists() and any(path.iterdir()):
        raise ValueError(f"folder {path} is not empty and is not a vqgram index; choose a new index folder")
    _create(path, tokenizer, backend, backend_options)
    return create_or_open(path, tokenizer, backend)


def _create(path: Path, tokenizer: Tokenizer, backend: str, backend_options: dict) -> None:
    """Make the index in a hidden sibling folder, then rename it into place (an empty `path` is replaced).

    Settings the engine refuses (e.g. an HNSW prefix wider than the model's
    embedding) raise here, before `path` exists. When another run wins the
    race to create it, its index is kept and ours dropped."""
    cls = backend_class(backend)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.creating-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        cls.create(tmp, embedding_dim=tokenizer.embedding_dim, **backend_options).close()
        save_json(manifest_for(tokenizer, backend), tmp / MANIFEST_NAME)
        try:
            os.rename(tmp, path)
        except OSError:
            if not (path / MANIFEST_NAME).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
