"""`vqgram index`: a folder (or encoded rows) into an index."""
from __future__ import annotations

from pathlib import Path

import click

from ..config import MANIFEST_NAME
from .app import device_option, friendly, given, main, make_tokenizer, option_flag, tokenizer_options

LUCENE_OPTIONS = ("dense_dims", "hnsw_m", "hnsw_ef", "int8")
TOKENIZER_OPTIONS = ("model", "kgram", "kernel", "padding", "stride", "max_size")


def existing_tokenizer(index: Path, device: str):
    """The tokenizer that made the index at `index` (None for a new index): a re-run without model
    options keeps adding with it, also after the packaged default changed."""
    from ..indexer.store import read_manifest, tokenizer_for

    if not (index / MANIFEST_NAME).is_file():
        return None
    return tokenizer_for(read_manifest(index), index, device)


@main.command()
@click.argument("folder", type=click.Path(), required=False)
@click.option("--encoded", type=click.Path(exists=True), default=None,
              help="Index encoded rows instead of a folder: a JSON Lines or Parquet file, or a folder of them "
                   "(what 'vqgram encode' writes).")
@click.option("--index", "index_path", required=True, type=click.Path(), help="Index folder (created if missing).")
@click.option("--backend", type=click.Choice(["tantivy", "lucene"]), default="tantivy")
@tokenizer_options
@device_option
@click.option("--batch-size", type=click.IntRange(1), default=32)
@click.option("--workers", type=click.IntRange(0), default=None,
              help="Decoding processes [default: 2; none on a CPU of 2 cores, where they slow the network].")
@click.option("--dense-dims", type=click.IntRange(1), default=256,
              help="Lucene: embedding prefix in the HNSW field (the full embedding is stored too).")
@click.option("--hnsw-m", type=click.IntRange(2), default=16, help="Lucene: HNSW M.")
@click.option("--hnsw-ef", type=click.IntRange(1), default=100, help="Lucene: HNSW beam width at build time.")
@click.option("--int8", is_flag=True, help="Lucene: int8 scalar-quantized HNSW vectors.")
@click.option("--wait", is_flag=True, help="If another run is writing the index, wait for it instead of failing.")
@click.pass_context
@friendly
def index(ctx, folder, encoded, index_path, backend, model, kgram, kernel, padding, stride, max_size, device,
          batch_size, workers, dense_dims, hnsw_m, hnsw_ef, int8, wait):
    """Index every image below FOLDER (recursively), or the rows of --encoded; re-runs update the index.

    One run writes an index at a time: a second one fails at once, or waits with --wait."""
    if bool(folder) == bool(encoded):
        raise click.UsageError("give exactly one of FOLDER or --encoded FILE")
    misplaced = given(ctx, LUCENE_OPTIONS) if backend != "lucene" else []
    if misplaced:
        raise click.UsageError(f"{', '.join(option_flag(ctx, n) for n in misplaced)} only apply to "
                               "--backend lucene")
    # only the options given: an existing index keeps its own (a different one is an error), a new one
    # takes the backend's defaults, which are these options' defaults
    values = {"dense_dims": dense_dims, "hnsw_m": hnsw_m, "hnsw_ef_construction": hnsw_ef, "int8": int8}
    options = {k: values[k] for k, n in zip(values, LUCENE_OPTIONS) if n in given(ctx, LUCENE_OPTIONS)}
    if encoded:
        from ..indexer.ingest import index_encoded
        from ..indexer.rowfiles import open_rows

        # rows that name their tokenizer need no model here; others were made by the one the options name
        tok = None if open_rows(encoded).encoded_by else make_tokenizer(model, kgram, kernel, padding, stride,
                                                                         max_size, device)
        report = index_encoded(Path(encoded), Path(index_path), backend=backend, tokenizer=tok, wait=wait,
                               **options)
    else:
        from ..indexer.pipeline import index_folder

        tok = (existing_tokenizer(Path(index_path), device) if not given(ctx, TOKENIZER_OPTIONS) else None
               ) or make_tokenizer(model, kgram, kernel, padding, stride, max_size, device)
        report = index_folder(Path(folder), Path(index_path), tok, backend=backend, batch_size=batch_size,
                              workers=workers, wait=wait, **options)
    click.echo(report.summary(), err=True)
