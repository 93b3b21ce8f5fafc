"""Shards: one index per partition, merged into one index that counts and ranks like an index built in one go.

Each partition of `vqgram encode` can become a shard (`vqgram index --encoded
part-00003.parquet --index shard-3`) on any machine; `merge_shards` then joins
them without re-encoding or re-indexing a document:
- Lucene: `IndexWriter.addIndexes(Directory...)` copies the shards' segments;
- Tantivy: the shards' segment files (embeddings included: they are stored
  fields) are copied and listed in one meta.json, what Tantivy's own segment
  merge starts from (tantivy-py exposes no merge call).
Scores then use collection statistics over all shards (document counts,
document frequencies, average lengths), so results equal those of one index.
Shards must come from the same tokenizer and backend settings and hold
disjoint ids; identical images in two partitions are refused with their count
(index such partitions with one `vqgram index --encoded DIR`, which drops
duplicates). A Tantivy shard made before documents stored their local words'
positions has another schema and is refused, named; Lucene documents carry
their own fields, so such a shard merges and its documents read b"" positions.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Sequence

from ..config import MANIFEST_NAME, save_json, to_dict
from ..indexer.store import open_index, read_manifest

TANTIVY_META = "meta.json"
TANTIVY_MANAGED = ".managed.json"


def merge_shards(shards: Sequence[str | Path], into: str | Path) -> int:
    """Merge shard indexes into a new index at `into`; returns its document count."""
    shards, into = [Path(s) for s in shards], Path(into)
    if not shards:
        raise ValueError("no shards to merge")
    if into.exists() and (not into.is_dir() or any(into.iterdir())):
        raise ValueError(f"{into} exists and is not an empty folder; merge into a new folder")
    manifest = read_manifest(shards[0])
    for s in shards[1:]:
        if to_dict(read_manifest(s)) != to_dict(manifest):
            raise ValueError(f"shard {s} was made by another tokenizer, backend or vqgram than {shards[0]}")
    _check_disjoint(shards)
    into.mkdir(parents=True, exist_ok=True)
    if manifest.backend == "lucene":
        _merge_lucene(shards, into)
    else:
        _merge_tantivy(shards, into)
    save_json(manifest, into / MANIFEST_NAME)
    handle = open_index(into)
    try:
        return handle.backend.count()
    finally:
        handle.close()


def _check_disjoint(shards: list[Path]) -> None:
    seen: dict[str, Path] = {}
    shared = 0
    for s in shards:
        handle = open_index(s)
        try:
            ids = [m.id for m in handle.backend.stored().values()]
        finally:
            handle.close()
        shared += sum(i in seen for i in ids)
        seen.update((i, s) for i in ids)
    if shared:
        raise ValueError(f"the shards share {shared} document ids (identical images in two partitions); "
                         "index those partitions together with 'vqgram index --encoded DIR' instead")


def _merge_lucene(shards: list[Path], into: Path) -> None:
    from ..indexer.lucene_index import LuceneBackend
    from ..indexer.lucene_settings import read_settings

    settings = [read_settings(s) for s in shards]
    shape = {(s.dense_dims, s.hnsw_m, s.hnsw_ef_construction, s.int8) for s in settings}
    dims = {s.vector_dims for s in settings} - {None}
    if len(shape) > 1 or len(dims) > 1:
        raise ValueError("the shards' Lucene settings differ (dense dims, HNSW, int8 or vector width); "
                         "build every shard with the same 'vqgram index' options")
    first = settings[0]
    target = LuceneBackend.create(into, embedding_dim=next(iter(dims), None), dense_dims=first.dense_dims,
                                  hnsw_m=first.hnsw_m, hnsw_ef_construction=first.hnsw_ef_construction,
                                  int8=first.int8)
    try:
        target.add_indexes(shards)
        target.commit()
    finally:
        target.close()


def _merge_tantivy(shards: list[Path], into: Path) -> None:
    metas = [json.loads((s / TANTIVY_META).read_text()) for s in shards]
    for shard, meta in zip(shards[1:], metas[1:]):
        if meta["schema"] != metas[0]["schema"]:
            ours, first = ({f["name"]: f for f in m["schema"]} for m in (meta, metas[0]))
            differ = sorted(n for n in ours.keys() | first.keys() if ours.get(n) != first.get(n)) or ["order"]
            raise ValueError(f"shard {shard} has another Tantivy schema than {shards[0]} (fields differ: "
                             f"{', '.join(differ)}; made by another vqgram); index the older shard's rows again")
    segments, copied = [], []
    for shard, meta in zip(shards, metas):
        for seg in meta["segments"]:
            prefix = seg["segment_id"].replace("-", "")
            for f in shard.glob(f"{prefix}.*"):
                shutil.copy2(f, into / f.name)
                copied.append(f.name)
            segments.append(seg)
    # Tantivy's garbage collector only deletes files it manages: list the copies so that later
    # segment merges of this index reclaim them
    (into / TANTIVY_MANAGED).write_text(json.dumps(copied + [TANTIVY_META]))
    merged = {**metas[0], "segments": segments, "opstamp": max(m["opstamp"] for m in metas)}
    tmp = into / (TANTIVY_META + ".tmp")
    tmp.write_text(json.dumps(merged))
    tmp.replace(into / TANTIVY_META)
