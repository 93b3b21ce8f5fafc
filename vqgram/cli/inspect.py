"""`vqgram words` and `vqgram info`: what the engine sees of an image and of an index."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from .app import friendly, main, make_tokenizer, tokenizer_options

@main.command()
@click.argument("image", type=click.Path())
@tokenizer_options
@click.option("--json", "as_json", is_flag=True, help="Print {word: count} as JSON.")
@friendly
def words(image, model, kgram, kernel, padding, stride, max_size, as_json):
    """Print IMAGE's words with their counts (what the engine sees)."""
    path = Path(image)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    tok = make_tokenizer(model, kgram, kernel, padding, stride, max_size)
    try:
        counts = tok.words(path)
    except OSError as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from None
    if as_json:
        click.echo(json.dumps(counts))
        return
    for w, c in counts.items():
        click.echo(f"{w}\t{c}")
    click.echo(f"{len(counts)} distinct words, {sum(counts.values())} in all", err=True)


@main.command()
@click.argument("index", type=click.Path())
@click.option("--json", "as_json", is_flag=True)
@friendly
def info(index, as_json):
    """Print INDEX's document count, size on disk and tokenizer configuration."""
    from ..indexer.backend import size_on_disk
    from ..indexer.store import open_index

    handle = open_index(Path(index))
    try:
        facts = {"path": str(handle.path), "backend": handle.manifest.backend, "documents": handle.backend.count(),
                 "bytes": size_on_disk(handle.path), "manifest": asdict(handle.manifest)}
        if handle.manifest.backend == "lucene":  # one HNSW graph each: `vqgram forcemerge` merges them
            facts["segments"] = handle.backend.segments()
    finally:
        handle.close()
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    click.echo(f"index      {facts['path']}\nbackend    {facts['backend']}\ndocuments  {facts['documents']}\n"
               f"size       {facts['bytes'] / 1e6:.1f} MB")
    if "segments" in facts:
        click.echo(f"segments   {facts['segments']}")
    click.echo("tokenizer  " + json.dumps(facts["manifest"], indent=2).replace("\n", "\n           "))
