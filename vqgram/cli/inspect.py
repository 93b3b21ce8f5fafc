"""`vqgram words` and `vqgram info`: what the engine sees of an image and of an index."""
from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import click

from .app import friendly, main, make_tokenizer, tokenizer_options

@main.command()
@click.argument("image", type=click.Path())
@tokenizer_options
@click.option("--json", "as_json", is_flag=True, help="Print {\"words\": {word: count}, \"cells\": {local word: [[row, col], ...]}, \"grid\": [rows, cols]} as JSON.")
@friendly
def words(image, model, kgram, kernel, padding, stride, max_size, as_json):
    """Print IMAGE's words with their counts (what the engine sees); a local word also with the grid cells it
    occurs in (row,col on the grid, whose size is printed after the words)."""
    from ..local_words import local_word

    path = Path(image)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    tok = make_tokenizer(model, kgram, kernel, padding, stride, max_size)
    try:
        counts, local = tok.document(path)
    except OSError as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from None
    cells: dict[str, list[list[int]]] = {}
    if local is not None:
        for code, r, c in zip(local.codes.tolist(), local.rows.tolist(), local.cols.tolist()):
            cells.setdefault(local_word(code), []).append([r, c])
    if as_json:
        click.echo(json.dumps({"words": counts, "cells": cells, "grid": list(local.grids[0]) if local else None}))
        return
    for w, c in counts.items():
        where = " ".join(f"{r},{col}" for r, col in cells.get(w, ()))
        click.echo(f"{w}\t{c}" + (f"\t{where}" if where else ""))
    grid = f"; local words on a {local.grids[0][0]}x{local.grids[0][1]} grid" if local is not None else ""
    click.echo(f"{len(counts)} distinct words, {sum(counts.values())} in all{grid}", err=True)


@main.command()
@click.argument("index", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the facts and the whole manifest as JSON.")
@friendly
def info(index, as_json):
    """Print a summary of INDEX: documents, size, backend, model, words, embedding, when last written."""
    from ..indexer.backend import size_on_disk
    from ..indexer.store import open_index

    handle = open_index(Path(index))
    try:
        facts = {"path": str(handle.path), "backend": handle.manifest.backend, "documents": handle.backend.count(),
                 "bytes": size_on_disk(handle.path), "written": _last_written(handle.path),
                 "model": model_name(handle.manifest), "manifest": asdict(handle.manifest)}
        if handle.manifest.backend == "lucene":  # one HNSW graph each: `vqgram forcemerge` merges them
            facts["segments"] = handle.backend.segments()
    finally:
        handle.close()
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    manifest = handle.manifest
    lines = [("index", facts["path"]), ("documents", f"{facts['documents']:,}"),
             ("size", f"{facts['bytes'] / 1e6:.1f} MB"), ("backend", facts["backend"])]
    if "segments" in facts:
        lines.append(("segments", f"{facts['segments']} ('vqgram forcemerge' merges them into one HNSW graph)"))
    lines += [("model", f"{facts['model']}, checksum {manifest.model_sha256[:12]}"),
              ("words", word_heads(manifest.tokenizer)), ("embedding", embedding_summary(manifest.tokenizer.model)),
              ("written", f"{facts['written']} (created by vqgram {manifest.vqgram_version})")]
    click.echo("\n".join(f"{name:<10} {value}" for name, value in lines))


def model_name(manifest) -> str:
    """The model an index names: its folder, or the packaged model its checksum finds (by name)."""
    from ..tokenizer.weights import DEFAULT_MODEL, packaged_model, retired_model

    if manifest.model_path != "default":
        return manifest.model_path
    folder = packaged_model(manifest.model_sha256)
    if folder == DEFAULT_MODEL:
        return "default"
    if folder is not None:
        return f"{folder.name} (packaged; the default when this index was made)"
    retired = retired_model(manifest.model_sha256)
    return f"{retired['name']} (no longer packaged)" if retired else "an unknown packaged default"


def word_heads(config) -> str:
    """The word heads of a tokenizer config: each one's vocabulary and words an image, '; '-separated."""
    model, heads = config.model, []
    if model.lift:
        heads.append(f"lifted: {model.lift.atoms:,} in the vocabulary, {model.lift.active} an image")
    if model.grid:
        g = model.grid
        heads.append(f"local: {g.vocab_size:,} in the vocabulary, one a cell of stage {g.stage} at "
                     f"{g.size or config.max_size} px, queries at {len(g.query_scales)} scales")
    if model.vq:
        k = config.kgram
        heads.append(f"{k.kind} k-grams: {model.vq.heads} heads x {k.kernel}x{k.kernel} offsets x "
                     f"{model.vq.codebook_size} codes, stride {k.stride}, padding {k.padding}, images at "
                     f"{config.max_size} px")
    return "; ".join(heads)


def embedding_summary(model) -> str:
    from ..tokenizer.embedding_sizes import embedding_sizes

    sizes = embedding_sizes(model)
    return f"{sizes[-1]}-d" + (f", prefixes {', '.join(map(str, sizes[:-1]))}" if len(sizes) > 1 else "")


def _last_written(path: Path) -> str:
    """When the engine last wrote a file of the index (local time, to the minute)."""
    newest = max((p.stat().st_mtime for p in path.rglob("*") if p.is_file()), default=0.0)
    return datetime.fromtimestamp(newest).strftime("%Y-%m-%d %H:%M")
