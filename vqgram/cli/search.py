"""`vqgram search`: an index by image or by engine query."""
from __future__ import annotations

import json

import click

from ..searcher.fusion import DEFAULT_WEIGHTS
from ..searcher.options import MODES
from .app import friendly, given, main, option_flag


def parse_stages(value: str):
    """'16:200,64:50' -> funnel stages (dims:shortlist, dims increasing)."""
    from ..searcher.funnel import FunnelStage

    try:
        return tuple(FunnelStage(*map(int, part.split(":"))) for part in value.split(","))
    except (TypeError, ValueError):
        raise click.BadParameter(f"{value!r}; write stages as DIMS:SHORTLIST[,DIMS:SHORTLIST], e.g. 16:200") from None


def parse_weights(value: str) -> tuple[float, ...]:
    """'0.5,1' -> (0.5, 1.0)."""
    try:
        return tuple(float(w) for w in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}; write weights as numbers separated by commas, e.g. 0.5,1") from None


@main.command()
@click.argument("index", type=click.Path())
@click.option("--image", type=click.Path(), help="Query image.")
@click.option("--query", help="Engine query syntax, e.g. 'label:n01440764' or 'h3i1j2c117 AND h0i0j0c5'.")
@click.option("-k", "k", type=click.IntRange(1), default=10, help="Number of hits.")
@click.option("--mode", type=click.Choice(MODES), default="bm25",
              help="How an image query ranks (tfidf, jaccard and BM25 k1/b need a Lucene index).")
@click.option("--max-terms", type=click.IntRange(1), default=None, help="Keep the N heaviest query words.")
@click.option("--query-words", type=click.IntRange(1), default=None, metavar="N",
              help="Lifted words of the query image: an indexed image's words and the next strongest (more finds "
                   "more, costs more postings; docs/RESULTS.md). Default: twice the model's in the words modes "
                   "on up to 50,000 documents, else the model's own.")
@click.option("--prune", "prune_terms", type=click.IntRange(1), default=None,
              help="Keep the N query words of highest weight x idf (faster on large indexes; docs/SCALE.md).")
@click.option("--k1", type=float, default=1.2, help="BM25 k1.")
@click.option("--b", type=float, default=0.75, help="BM25 b.")
@click.option("--dims", type=click.IntRange(1), default=None, help="Dense: embedding prefix (Matryoshka).")
@click.option("--ef", type=click.IntRange(1), default=None, help="Dense on Lucene: HNSW efSearch.")
@click.option("--exact", is_flag=True, help="Dense on Lucene: exact scan instead of HNSW.")
@click.option("--centre/--no-centre", default=True,
              help="Exact dense scores: cosines of embeddings minus the index's mean embedding, or raw cosines.")
@click.option("--fusion", type=click.Choice(["score", "rrf"]), default="score",
              help="Hybrid: min-max score fusion or reciprocal rank fusion.")
@click.option("--weights", default=None, callback=lambda c, p, v: v and parse_weights(v), metavar="W,W[,W]",
              help="Hybrid: a weight a run: global words, local words, dense for a model with local words "
                   "[default: 0.5,0.5,1], else words, dense [default: 0.5,1].")
@click.option("--depth", type=click.IntRange(1), default=100, help="Hybrid: hits per run before fusing.")
@click.option("--stages", "stages", default=None, callback=lambda c, p, v: v and parse_stages(v),
              help="Funnel: DIMS:SHORTLIST stages, then rerank at full width "
                   "[default: 16:200 up to 10k images; above, 32:(2% of them),128:(0.4%)].")
@click.option("--prf-depth", type=click.IntRange(0), default=0,
              help="Dense, hybrid, funnel: average the query embedding with its N nearest first (0: off).")
@click.option("--filter", "filter_", default=None,
              help="Only documents passing it, e.g. 'label:cats AND width:[1000 TO *]' (fields: label, id, "
                   "path (a prefix), folder, width, height, size, mtime; see README).")
@click.option("--verify", type=click.IntRange(0), default=0, metavar="N",
              help="Re-rank the top N hits by geometric verification, most inliers first (finds edited copies; "
                   "0: off): shared local words that agree on one placement, read from the index (models with "
                   "local words), else RootSIFT matches with each hit's image file.")
@click.option("--verify-files", is_flag=True,
              help="Verify from the hits' image files (RootSIFT) even where the index stores local words.")
@click.option("--explain", is_flag=True,
              help="Show where each hit matched: boxes in the hit's pixels, the query's region, the matched "
                   "local words (from the index; with --json as 'boxes', 'query_box', 'matched').")
@click.option("--json", "as_json", is_flag=True, help="Print hits as JSON.")
@click.option("--print-query", type=click.Choice(["opensearch", "elasticsearch"]), default=None,
              help="Print the cluster request body for this image query (bm25, dense, hybrid) instead of searching.")
@click.pass_context
@friendly
def search(ctx, index, image, query, k, mode, max_terms, query_words, prune_terms, k1, b, dims, ef, exact, centre,
           fusion, weights, depth, stages, prf_depth, filter_, verify, verify_files, explain, as_json, print_query):
    """Search INDEX by an image (--image) or by a text query (--query)."""
    from ..searcher.options import OPTION_MODES, SearchOptions, unused_options
    from ..searcher.searcher import Searcher

    if bool(image) == bool(query):
        raise click.UsageError("give exactly one of --image or --query")
    options = SearchOptions(mode=mode, max_terms=max_terms, query_words=query_words, prune_terms=prune_terms, k1=k1,
                            b=b, dims=dims, ef=ef, exact=exact, fusion=fusion, weights=weights, depth=depth,
                            stages=stages, prf_depth=prf_depth, filter=filter_, verify=verify,
                            verify_files=verify_files, explain=explain)
    with Searcher(index, centre=centre) as searcher:
        if query:
            image_only = given(ctx, ("mode", *OPTION_MODES))
            if image_only:
                raise click.UsageError(f"{', '.join(option_flag(ctx, n) for n in image_only)} apply to --image "
                                       "searches only, not to --query")
        else:
            unused = unused_options(given(ctx, OPTION_MODES), mode, searcher.handle.manifest.backend)
            if unused:
                raise click.UsageError("; ".join(f"{option_flag(ctx, n)} {why}" for n, why in unused))
            searcher.check_options(options)
        if print_query:
            if verify:
                raise click.UsageError("--verify re-ranks hits here, a cluster query cannot carry it; drop --verify "
                                       "with --print-query")
            click.echo(json.dumps(_cluster_query(searcher, print_query, image, k, options), indent=2))
            return
        hits = searcher.search_image(image, k, options) if image else searcher.search_text(query, k, filter_)
    if as_json:
        from ..indexer.backend import hits_json

        click.echo(json.dumps({"hits": hits_json(hits)}, indent=2))
        return
    for r, h in enumerate(hits, 1):
        inliers = "" if not (verify or explain) else f"{'-' if h.inliers is None else h.inliers:>5}  "
        click.echo(f"{r:>3}  {h.score:10.4f}  {inliers}{h.path}  {h.label}")
        if explain and h.boxes:
            boxes = "  ".join(f"[{x0},{y0},{x1},{y1}]" for x0, y0, x1, y1 in h.boxes)
            click.echo(f"{'':>16}boxes {boxes}  query {list(h.query_box) if h.query_box else '-'}  "
                       f"{len(h.matched)} words")
    if not hits:
        click.echo("no hits", err=True)


def _cluster_query(searcher, target: str, image, k: int, options) -> dict:
    from ..distributed.cluster import query_body
    from ..distributed.export import vector_spec

    if not image:
        raise click.UsageError("--print-query needs --image (a text query is already the engine's own syntax)")
    query = searcher.encode_image(image, searcher.query_words_for(options))
    spec = vector_spec(searcher.handle, len(query.vector), options.dims)
    return query_body(target, options.mode, k, searcher.query_weights(query.words, options), query.vector, spec,
                      ef=options.ef or 100, fusion_weights=options.weights or DEFAULT_WEIGHTS)
