"""`vqgram merge`: shard indexes (one per encoded partition) into one index; `vqgram forcemerge`: one
Lucene index's segments into fewer."""
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


@main.command()
@click.argument("index", type=click.Path(exists=True, file_okay=False))
@click.option("--max-segments", type=click.IntRange(1), default=1, show_default=True,
              help="Segments to leave (each holds its own HNSW graph).")
@click.option("--wait", is_flag=True, help="If another run is writing the index, wait for it instead of failing.")
@friendly
def forcemerge(index, max_segments, wait):
    """Merge a Lucene INDEX down to few segments (Elasticsearch's _forcemerge): faster kNN once it stops growing."""
    from ..indexer.store import force_merge

    before, after = force_merge(index, max_segments, wait)
    click.echo(f"{index}: {before} segments -> {after}", err=True)
