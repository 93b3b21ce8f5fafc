"""`vqgram merge`: shard indexes (one per encoded partition) into one index."""
from __future__ import annotations

import click

from .app import friendly, main


@main.command()
@click.argument("shards", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--into", required=True, type=click.Path(), help="New index folder.")
@friendly
def merge(shards, into):
    """Merge SHARDS (indexes of one tokenizer and backend) into a new index; Lucene addIndexes or Tantivy segments."""
    from ..distributed.shards import merge_shards

    n = merge_shards(list(shards), into)
    click.echo(f"merged {len(shards)} shards: {n} documents in {into}", err=True)
