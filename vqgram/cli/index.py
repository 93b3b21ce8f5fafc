"""`vqgram index`: a folder into an index."""
from __future__ import annotations

from pathlib import Path

import click

from .app import friendly, given, main, make_tokenizer, option_flag, tokenizer_options

LUCENE_OPTIONS = ("dense_dims", "hnsw_m", "hnsw_ef", "int8")

@main.command()
@click.argument("folder", type=click.Path())
@click.option("--index", "index_path", required=True, type=click.Path(), help="Index folder (created if missing).")
@click.option("--backend", type=click.Choice(["tantivy", "lucene"]), default="tantivy")
@tokenizer_options
@click.option("--batch-size", type=click.IntRange(1), default=32)
@click.option("--workers", type=click.IntRange(0), default=2, help="Decoding processes.")
@click.option("--dense-dims", type=click.IntRange(1), default=256,
              help="Lucene: embedding prefix in the HNSW field (the full embedding is stored too).")
@click.option("--hnsw-m", type=click.IntRange(2), default=16, help="Lucene: HNSW M.")
@click.option("--hnsw-ef", type=click.IntRange(1), default=100, help="Lucene: HNSW beam width at build time.")
@click.option("--int8", is_flag=True, help="Lucene: int8 scalar-quantized HNSW vectors.")
@click.option("--wait", is_flag=True, help="If another run is writing the index, wait for it instead of failing.")
@click.pass_context
@friendly
def index(ctx, folder, index_path, backend, model, kgram, kernel, padding, stride, max_size, batch_size, workers,
          dense_dims, hnsw_m, hnsw_ef, int8, wait):
    """Index every image below FOLDER (recursively); re-runs update the index.

    One run writes an index at a time: a second one fails at once, or waits with --wait."""
    from ..indexer.pipeline import index_folder

    misplaced = given(ctx, LUCENE_OPTIONS) if backend != "lucene" else []
    if misplaced:
        raise click.UsageError(f"{', '.join(option_flag(ctx, n) for n in misplaced)} only apply to "
                               "--backend lucene")
    tok = make_tokenizer(model, kgram, kernel, padding, stride, max_size)
    # only the options given: an existing index keeps its own (a different one is an error), a new one
    # takes the backend's defaults, which are these options' defaults
    values = {"dense_dims": dense_dims, "hnsw_m": hnsw_m, "hnsw_ef_construction": hnsw_ef, "int8": int8}
    options = {k: values[k] for k, n in zip(values, LUCENE_OPTIONS) if n in given(ctx, LUCENE_OPTIONS)}
    report = index_folder(Path(folder), Path(index_path), tok, backend=backend, batch_size=batch_size,
                          workers=workers, wait=wait, **options)
    click.echo(report.summary(), err=True)
