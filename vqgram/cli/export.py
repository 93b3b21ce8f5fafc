"""`vqgram export`: an index as an OpenSearch / Elasticsearch mapping and bulk NDJSON."""
from __future__ import annotations

import click

from .app import friendly, main


@main.command()
@click.argument("index", type=click.Path(exists=True, file_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--to", "target", required=True, type=click.Choice(["opensearch", "elasticsearch"]))
@click.option("--encoded", type=click.Path(exists=True), default=None,
              help="The encoded rows the index was built from (a fast path; else each document's stored "
                   "words and embedding are read from the index).")
@click.option("--name", default=None, help="Cluster index name (default: the index folder's name).")
@click.option("--dense-dims", type=click.IntRange(1), default=None,
              help="HNSW prefix width (default: the Lucene index's own, or 256).")
@click.option("--batch", type=click.IntRange(1), default=10_000, help="Documents per bulk file.")
@friendly
def export(index, out, target, encoded, name, dense_dims, batch):
    """Write OUT/index.json (create-index body) and OUT/bulk-*.ndjson (bulk actions) for a search cluster."""
    from ..distributed.export import export_index

    report = export_index(index, target, out, encoded=encoded, name=name, dense_dims=dense_dims, batch=batch)
    click.echo(f"exported {report.documents} documents into {len(report.files)} bulk files and index.json in {out}; "
               f"left out {len(report.skipped)}", err=True)
