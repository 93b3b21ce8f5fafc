"""`vqgram bench scale`: query cost and quality on synthetic collections from 10k to 1M documents."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .app import friendly, main
from .search import parse_stages


@main.group()
def bench() -> None:
    """Measurements (not tests): see docs/SCALE.md."""


def _sizes(value: str) -> list[int]:
    try:
        sizes = [int(x) for x in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r}; write sizes as N[,N...], e.g. 10000,100000") from None
    if any(n < 1 for n in sizes):
        raise click.BadParameter(f"{value!r}: sizes must be positive")
    return sizes


@bench.command()
@click.option("--rows", "source", required=True, type=click.Path(exists=True),
              help="Encoded rows of real images (vqgram encode FOLDER --out DIR) to derive documents from.")
@click.option("--docs", default="10000", callback=lambda c, p, v: _sizes(v),
              help="Collection sizes, e.g. 10000,100000.")
@click.option("--backend", "backends", multiple=True,
              type=click.Choice(["tantivy", "lucene", "lucene-words", "lucene-hnsw", "lucene-hnsw-int8", "numpy"]),
              default=("tantivy", "lucene", "lucene-hnsw-int8", "numpy"),
              help="Engines to build: words indexes (tantivy; lucene, with HNSW; lucene-words, without), "
                   "vectors-only Lucene HNSW (lucene-hnsw, lucene-hnsw-int8), numpy = the exact dense scan and funnels.")
@click.option("--json", "json_out", required=True, type=click.Path(dir_okay=False), help="Write the rows here.")
@click.option("--work", type=click.Path(file_okay=False), default="runs/scale", help="Where the indexes are built.")
@click.option("--queries", type=click.IntRange(5), default=50, help="Real images held out as queries.")
@click.option("--prune", default="200,100,50", callback=lambda c, p, v: _sizes(v),
              help="Query-word budgets for words-prune-N.")
@click.option("--funnel", "funnels", multiple=True, default=("16:2000,64:400",),
              callback=lambda c, p, v: [parse_stages(x) for x in v],
              help="Funnel stages DIMS:SHORTLIST[,...] for a dense-funnel row; repeat for more rows.")
@click.option("--force-merge", type=click.IntRange(1), default=None, metavar="N",
              help="Merge each Lucene index down to N segments before querying it (one HNSW graph per segment).")
@click.option("--ef", "efs", default=None, callback=lambda c, p, v: _sizes(v) if v else [None],
              help="HNSW efSearch values, e.g. 100,400 (one row each; default: the backend's, sized to its "
                   "largest segment).")
@click.option("--reuse", is_flag=True,
              help="Query the indexes an earlier run left in --work (same --rows) instead of building them again.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Also draw p50 and recall vs N here.")
@friendly
def scale(source, docs, backends, json_out, work, queries, prune, funnels, force_merge, efs, reuse, plot):
    """One row per (docs, backend, mode): p50_ms, p99_ms, recall_at_100, index_mib, build_s."""
    from ..eval.scale import ScaleRun

    out = Path(json_out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def log(row: dict) -> None:
        click.echo(json.dumps(row), err=True)

    run = ScaleRun(source, work, queries=queries, prune=prune, funnels=funnels, force_merge=force_merge,
                   reuse=reuse, efs=efs, log=log)
    rows = run.run(docs, backends)
    out.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    if plot:
        from ..eval.scale_plot import plot_scale

        plot_scale(rows, Path(plot))
