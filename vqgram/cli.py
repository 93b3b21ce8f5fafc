"""The `vqgram` command: a thin layer of options over the Python API.

Progress and warnings go to stderr, results to stdout; every failure is one
line on stderr and a non-zero exit, never a traceback.
"""
from __future__ import annotations

import functools
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

import click

from .config import KGramConfig, VQConfig
from .progress import set_progress_bars


class UserError(click.ClickException):
    """Printed as 'error: ...' and exits 1."""

    def format_message(self) -> str:
        return self.message

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def friendly(fn):
    """Turn expected failures (bad paths, bad values, locked index) into one-line errors."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (FileNotFoundError, NotADirectoryError, ValueError, RuntimeError, PermissionError) as exc:
            raise UserError(str(exc)) from None

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(package_name="vqgram")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
def main(quiet: bool) -> None:
    """Make images searchable with text search engines (Tantivy, Lucene)."""
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(levelname)s: %(message)s",
                        stream=sys.stderr)
    set_progress_bars(not quiet)


def tokenizer_options(fn):
    """Options that choose the tokenizer (model and k-gram settings)."""
    for opt in reversed([
        click.option("--model", type=click.Path(file_okay=False), default=None,
                     help="Model folder (default: the packaged model)."),
        click.option("--kgram", type=click.Choice(["2d", "3d"]), default="2d", help="k-gram kind."),
        click.option("--kernel", type=click.IntRange(1), default=3, help="k-gram window size."),
        click.option("--padding", type=click.IntRange(0), default=0, help="Grid padding (cells)."),
        click.option("--stride", type=click.IntRange(1), default=1, help="Window stride (cells)."),
        click.option("--max-size", type=click.IntRange(32), default=224,
                     help="Resize the longer image side to this many pixels."),
    ]):
        fn = opt(fn)
    return fn


def cache_options(fn):
    """--cache DIR / --no-cache, handed to the command as cache_root (None: no feature cache)."""

    @click.option("--cache", "cache_dir", type=click.Path(file_okay=False), default=None,
                  help="Feature-map cache folder (default: $VQGRAM_CACHE/features or ~/.cache/vqgram/features).")
    @click.option("--no-cache", is_flag=True, help="Neither read nor write cached feature maps.")
    @functools.wraps(fn)
    def wrapper(*args, cache_dir, no_cache, **kwargs):
        from .tokenizer.feature_cache import default_root

        return fn(*args, cache_root=None if no_cache else Path(cache_dir) if cache_dir else default_root(), **kwargs)

    return wrapper


def make_tokenizer(model, kgram, kernel, padding, stride, max_size):
    from .tokenizer.encoder import Tokenizer

    return Tokenizer.from_model(model, KGramConfig(kgram, kernel, padding, stride), max_size)


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
@friendly
def index(folder, index_path, backend, model, kgram, kernel, padding, stride, max_size, batch_size, workers,
          dense_dims, hnsw_m, hnsw_ef, int8):
    """Index every image below FOLDER (recursively); re-runs update the index."""
    from .indexer.pipeline import index_folder

    tok = make_tokenizer(model, kgram, kernel, padding, stride, max_size)
    options = ({"dense_dims": dense_dims, "hnsw_m": hnsw_m, "hnsw_ef_construction": hnsw_ef, "int8": int8}
               if backend == "lucene" else {})
    report = index_folder(Path(folder), Path(index_path), tok, backend=backend, batch_size=batch_size,
                          workers=workers, **options)
    click.echo(report.summary(), err=True)


def parse_stages(value: str):
    """'16:200,64:50' -> funnel stages (dims:shortlist, dims increasing)."""
    from .searcher.funnel import FunnelStage

    try:
        return tuple(FunnelStage(*map(int, part.split(":"))) for part in value.split(","))
    except (TypeError, ValueError):
        raise click.BadParameter(f"{value!r}; write stages as DIMS:SHORTLIST[,DIMS:SHORTLIST], e.g. 16:200") from None


@main.command()
@click.argument("index", type=click.Path())
@click.option("--image", type=click.Path(), help="Query image.")
@click.option("--query", help="Engine query syntax, e.g. 'label:n01440764' or 'h3i1j2c117 AND h0i0j0c5'.")
@click.option("-k", "k", type=click.IntRange(1), default=10, help="Number of hits.")
@click.option("--mode", type=click.Choice(["bm25", "tfidf", "jaccard", "dense", "hybrid", "funnel"]), default="bm25",
              help="How an image query ranks (tfidf, jaccard and BM25 k1/b need a Lucene index).")
@click.option("--max-terms", type=click.IntRange(1), default=None, help="Keep the N heaviest query words.")
@click.option("--k1", type=float, default=1.2, help="BM25 k1.")
@click.option("--b", type=float, default=0.75, help="BM25 b.")
@click.option("--dims", type=click.IntRange(1), default=None, help="Dense: embedding prefix (Matryoshka).")
@click.option("--ef", type=click.IntRange(1), default=None, help="Dense on Lucene: HNSW efSearch.")
@click.option("--exact", is_flag=True, help="Dense on Lucene: exact scan instead of HNSW.")
@click.option("--fusion", type=click.Choice(["score", "rrf"]), default="score",
              help="Hybrid: min-max score fusion or reciprocal rank fusion.")
@click.option("--weights", type=(float, float), default=(0.2, 1.0), show_default=True,
              help="Hybrid: weights of words and dense.")
@click.option("--depth", type=click.IntRange(1), default=100, help="Hybrid: hits per run before fusing.")
@click.option("--stages", "stages", default="16:200", callback=lambda c, p, v: parse_stages(v),
              help="Funnel: DIMS:SHORTLIST stages, then rerank at full width.")
@click.option("--prf-depth", type=click.IntRange(0), default=0,
              help="Dense, hybrid, funnel: average the query embedding with its N nearest first (0: off).")
@click.option("--json", "as_json", is_flag=True, help="Print hits as JSON.")
@friendly
def search(index, image, query, k, mode, max_terms, k1, b, dims, ef, exact, fusion, weights, depth, stages, prf_depth,
           as_json):
    """Search INDEX by an image (--image) or by a text query (--query)."""
    from .searcher.searcher import SearchOptions, Searcher

    if bool(image) == bool(query):
        raise click.UsageError("give exactly one of --image or --query")
    options = SearchOptions(mode=mode, max_terms=max_terms, k1=k1, b=b, dims=dims, ef=ef, exact=exact,
                            fusion=fusion, weights=tuple(weights), depth=depth, stages=stages, prf_depth=prf_depth)
    with Searcher(index) as searcher:
        hits = searcher.search_image(image, k, options) if image else searcher.search_text(query, k)
    if as_json:
        click.echo(json.dumps({"hits": [{"rank": r, **asdict(h)} for r, h in enumerate(hits, 1)]}, indent=2))
        return
    for r, h in enumerate(hits, 1):
        click.echo(f"{r:>3}  {h.score:10.4f}  {h.path}  {h.label}")
    if not hits:
        click.echo("no hits", err=True)


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
    from .indexer.backend import size_on_disk
    from .indexer.store import open_index

    handle = open_index(Path(index))
    try:
        facts = {"path": str(handle.path), "backend": handle.manifest.backend, "documents": handle.backend.count(),
                 "bytes": size_on_disk(handle.path), "manifest": asdict(handle.manifest)}
    finally:
        handle.close()
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    click.echo(f"index      {facts['path']}\nbackend    {facts['backend']}\ndocuments  {facts['documents']}\n"
               f"size       {facts['bytes'] / 1e6:.1f} MB")
    click.echo("tokenizer  " + json.dumps(facts["manifest"], indent=2).replace("\n", "\n           "))


@main.command("eval")
@click.argument("db", type=click.Path())
@click.option("--queries", type=click.Path(), default=None, help="Query folder (default: leave-one-out over DB).")
@click.option("--mode", "modes", multiple=True,
              help="bm25, tfidf, jaccard, dense, dense@D, hybrid, funnel; a vector mode with +prfN averages "
                   "the query embedding with its N nearest first (dense+prf10); repeat for several "
                   "(default: bm25, dense, hybrid, funnel; with --sweep: bm25).")
@click.option("--backend", type=click.Choice(["tantivy", "lucene"]), default="tantivy")
@click.option("--layout", type=click.Choice(["auto", "folder", "gpr1200"]), default="auto")
@tokenizer_options
@click.option("--sweep", "sweep_spec", is_flag=False, flag_value="default", default=None, metavar="[KEY=V1,V2;...]",
              help="Vary tokenizer settings one at a time (max_size, kernel, padding, kgram, heads, "
                   "codebook_size; bare --sweep: a default grid), then the nesting dimensions.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="Write the rows as JSON.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Write tables, plots, TREC runs and example pages here.")
@cache_options
@friendly
def eval_(db, queries, modes, backend, layout, model, kgram, kernel, padding, stride, max_size, sweep_spec, json_out,
          report_dir, cache_root):
    """Compare search modes on a labelled folder (label = sub-folder name)."""
    from .eval.report import markdown_table, results_json, write_report

    tok = make_tokenizer(model, kgram, kernel, padding, stride, max_size)
    if sweep_spec is not None:
        from .eval.report import sweep_table
        from .eval.sweep import KEYS, parse_grid, sweep_dims, sweep_tokenizers

        if queries:
            raise click.UsageError("--sweep runs leave-one-out over DB; drop --queries")
        grid = parse_grid(sweep_spec)
        rows = sweep_tokenizers(Path(db), tok, grid, modes or ("bm25",), cache_root=cache_root, backend=backend,
                                layout=layout)
        sweep_table(rows, ["mode", *KEYS])
        mrl = tok.config.model.mrl
        dims = sweep_dims(Path(db), tok, cache_root=cache_root, backend=backend, layout=layout) if mrl else []
        click.echo("\n" + markdown_table(dims))
        rows += dims
        if report_dir:
            write_report(report_dir, rows, title=f"vqgram sweep of {db}")
    else:
        from .eval.runner import evaluate

        cache = tok.feature_cache(cache_root) if cache_root else None
        result = evaluate(Path(db), modes or ("bm25", "dense", "hybrid", "funnel"), tok,
                          queries=Path(queries) if queries else None, backend=backend, layout=layout, cache=cache)
        rows = result.rows
        click.echo(markdown_table(rows))
        if report_dir:
            from .eval.runner import examples, pr_curves, write_trec_runs

            write_report(report_dir, rows, pr_curves(result), examples(result), title=f"vqgram evaluation of {db}")
            write_trec_runs(result, Path(report_dir))
    if json_out:
        Path(json_out).write_text(results_json(rows))


@main.group()
def train() -> None:
    """Fit model heads on a folder of images."""


@train.command("vq")
@click.argument("folder", type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Model folder to write.")
@click.option("--backbone", default="efficientnet_lite0", help="Backbone name (see the registry).")
@click.option("--weights", default="default", help="'default' ImageNet weights, or a local state-dict file.")
@click.option("--heads", type=click.IntRange(1), default=VQConfig.heads)
@click.option("--codebook-dim", type=click.IntRange(1), default=VQConfig.codebook_dim)
@click.option("--codebook-size", type=click.IntRange(2), default=VQConfig.codebook_size)
@click.option("--commitment-weight", type=float, default=VQConfig.commitment_weight)
@click.option("--dead-code", "threshold_ema_dead_code", type=click.IntRange(0), default=VQConfig.threshold_ema_dead_code)
@click.option("--separate-codebooks/--shared-codebook", default=VQConfig.separate_codebooks,
              help="One codebook per head, or one shared by all heads (the seed study's).")
@click.option("--projection", type=click.Choice(["rotations", "slices"]), default="rotations",
              help="Heads read the top PCA components in their own rotations, or consecutive PCA slices.")
@click.option("--kmeans-passes", type=click.IntRange(1), default=2, help="EMA k-means passes over the cells.")
@click.option("--epochs", type=click.IntRange(0), default=0, help="Distillation epochs after k-means.")
@click.option("--lr", type=float, default=1e-4, help="Distillation learning rate.")
@click.option("--labels", "use_labels", is_flag=True, help="Also learn the folder labels (sub-folder names).")
@click.option("--max-size", type=click.IntRange(32), default=224)
@click.option("--limit", type=click.IntRange(1), default=None, help="Train on at most N images (evenly spread).")
@cache_options
@friendly
def train_vq(folder, out, backbone, weights, heads, codebook_dim, codebook_size, commitment_weight,
             threshold_ema_dead_code, separate_codebooks, projection, kmeans_passes, epochs, lr, use_labels, max_size,
             limit, cache_root):
    """Fit the VQ head on FOLDER (no labels): PCA + k-means codes, optionally refined by distillation.

    Distillation: the quantized map, pooled and read by the backbone's own frozen
    classifier, should give the unquantized map's ImageNet predictions.
    """
    from .tokenizer.train import train_vq_model

    vq = VQConfig(heads, codebook_dim, codebook_size, commitment_weight, threshold_ema_dead_code,
                  separate_codebooks=separate_codebooks)
    card = train_vq_model(Path(folder), Path(out), backbone=backbone, weights=weights, vq=vq,
                          projection=projection, kmeans_passes=kmeans_passes, epochs=epochs, lr=lr,
                          use_labels=use_labels, max_size=max_size, limit=limit, cache_root=cache_root)
    click.echo(json.dumps(card, indent=2))


@train.command("mrl")
@click.argument("folder", type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Model folder to write.")
@click.option("--model", "base", type=click.Path(file_okay=False), default=None,
              help="Model whose backbone and VQ head to keep (default: the packaged model).")
@click.option("--dim", type=click.IntRange(8), default=1024, help="Embedding width.")
@click.option("--efficient", is_flag=True, help="One classifier shared by every prefix (MRL-E).")
@click.option("--relational-weight", type=click.FloatRange(0), default=1.0,
              help="Weight of the in-batch term that makes each prefix rank like the teacher.")
@click.option("--epochs", type=click.IntRange(1), default=30)
@click.option("--lr", type=float, default=1e-3)
@click.option("--labels", "use_labels", is_flag=True, help="Learn the folder labels instead of distilling.")
@click.option("--max-size", type=click.IntRange(32), default=224)
@click.option("--limit", type=click.IntRange(1), default=None, help="Train on at most N images (evenly spread).")
@cache_options
@friendly
def train_mrl(folder, out, base, dim, efficient, relational_weight, epochs, lr, use_labels, max_size, limit,
              cache_root):
    """Fit a Matryoshka embedding head on FOLDER (nested loss; no labels needed)."""
    from .config import MatryoshkaConfig
    from .tokenizer.train import train_mrl_model

    config = MatryoshkaConfig(dim=dim, efficient=efficient, relational_weight=relational_weight,
                              relational_target="teacher")
    card = train_mrl_model(Path(folder), Path(out), base=Path(base) if base else None, config=config, epochs=epochs,
                           lr=lr, use_labels=use_labels, max_size=max_size, limit=limit, cache_root=cache_root)
    click.echo(json.dumps(card, indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
