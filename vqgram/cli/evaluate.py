"""`vqgram eval`: search modes scored on labelled folders."""
from __future__ import annotations

from pathlib import Path

import click

from .app import cache_options, friendly, main, make_tokenizer, tokenizer_options


@main.command("eval")
@click.argument("db", type=click.Path(), required=False)
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
@click.option("--suite", "suite_file", is_flag=False, flag_value="default", default=None, metavar="[SPEC]",
              help="Score every set of a suite file (bare --suite: the development suite, its paths from the "
                   "current directory; see README) by every mode and baseline, in one table; modes default to "
                   "bm25, dense, hybrid.")
@click.option("--baselines", default=",".join(("gem", "sift", "previous")), show_default=True,
              help="With --suite: comma-separated baseline columns (gem, sift, previous; '' for none).")
@click.option("--baseline-model", type=click.Path(file_okay=False), default=None,
              help="With --suite: the model of the `previous` columns (default: vqgram/models/lift-v3, "
                   "the model the packaged default replaced, if it exists).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write the rows as JSON (with --suite: rewritten as each set is scored).")
@click.option("--resume", is_flag=True,
              help="With --suite and --json: keep the sets that file already holds (scored with the same settings) "
                   "and score the rest.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Write tables, plots, TREC runs and example pages here.")
@click.option("--trec-depth", type=click.IntRange(min=1), default=None, metavar="N",
              help="Hits per query in the report's TREC runs  [default: 100]")
@cache_options
@friendly
def eval_(db, queries, modes, backend, layout, model, kgram, kernel, padding, stride, max_size, sweep_spec,
          suite_file, baselines, baseline_model, json_out, resume, report_dir, trec_depth, cache_root):
    """Compare search modes on a labelled folder (label = sub-folder name), or on a suite of them (--suite)."""
    from ..eval.report import markdown_table, results_json, write_report

    if (db is None) == (suite_file is None):
        raise click.UsageError("give either DB or --suite")
    if suite_file is not None and (queries or sweep_spec is not None):
        raise click.UsageError("--suite takes its query folders from the suite file; drop --queries and --sweep")
    if trec_depth is not None and (report_dir is None or sweep_spec is not None or suite_file is not None):
        raise click.UsageError("--trec-depth sets the depth of the TREC runs that --report writes "
                               "(not with --sweep or --suite)")
    if resume and (suite_file is None or json_out is None):
        raise click.UsageError("--resume continues a suite from the rows its --json file holds: give --suite and "
                               "--json")
    if suite_file is not None:
        return _suite(suite_file, model, modes, baselines, baseline_model, json_out, resume, report_dir, cache_root,
                      (kgram, kernel, padding, stride, max_size))
    tok = make_tokenizer(model, kgram, kernel, padding, stride, max_size)
    if sweep_spec is not None:
        from ..eval.report import sweep_table
        from ..eval.sweep import KEYS, parse_grid, sweep_dims, sweep_tokenizers
        from ..tokenizer.embedding_sizes import embedding_sizes

        if queries:
            raise click.UsageError("--sweep runs leave-one-out over DB; drop --queries")
        grid = parse_grid(sweep_spec)
        rows = sweep_tokenizers(Path(db), tok, grid, modes or ("bm25",), cache_root=cache_root, backend=backend,
                                layout=layout)
        sweep_table(rows, ["mode", *KEYS])
        nested = len(embedding_sizes(tok.config.model)) > 1
        dims = sweep_dims(Path(db), tok, cache_root=cache_root, backend=backend, layout=layout) if nested else []
        click.echo("\n" + markdown_table(dims))
        rows += dims
        if report_dir:
            write_report(report_dir, rows, title=f"vqgram sweep of {db}")
        skipped = None
    else:
        from ..eval.runner import evaluate

        cache = tok.feature_cache(cache_root) if cache_root else None
        result = evaluate(Path(db), modes or ("bm25", "dense", "hybrid", "funnel"), tok,
                          queries=Path(queries) if queries else None, backend=backend, layout=layout, cache=cache)
        rows, skipped = result.rows, result.skipped
        click.echo(markdown_table(rows))
        if skipped:
            click.echo(f"skipped {len(skipped)} unreadable image(s) in every mode (warnings above)", err=True)
        if report_dir:
            from ..eval.runner import TREC_DEPTH, examples, pr_curves, write_trec_runs

            write_report(report_dir, rows, pr_curves(result), examples(result), title=f"vqgram evaluation of {db}",
                         skipped=skipped)
            write_trec_runs(result, Path(report_dir), trec_depth or TREC_DEPTH)
    if json_out:
        Path(json_out).write_text(results_json(rows, skipped))


def _suite(suite_file, model, modes, baselines, baseline_model, json_out, resume, report_dir, cache_root, settings):
    from ..eval.suite import (PREVIOUS_MODEL, column_names, load_suite, resumable_rows, run_suite,
                              suite_json, suite_settings, suite_table)
    from ..eval.suite_plot import plot_suite
    from ..files import write_atomic

    spec = load_suite(None if suite_file == "default" else Path(suite_file))  # missing data: fail first
    tok = make_tokenizer(model, *settings)
    chosen = [b.strip() for b in baselines.split(",") if b.strip()]
    previous = None
    if "previous" in chosen and (baseline_model or PREVIOUS_MODEL.is_dir()):
        previous = make_tokenizer(baseline_model or PREVIOUS_MODEL, *settings)
    modes = modes or ("bm25", "dense", "hybrid")
    scored_under = suite_settings(spec, tok, modes, chosen, previous)
    done = resumable_rows(Path(json_out), scored_under, spec) if resume else []
    write = (lambda result: write_atomic(json_out, suite_json(result, scored_under))) if json_out else None
    result = run_suite(spec, tok, modes, baselines=chosen, previous=previous, cache_root=cache_root, done=done,
                       on_set=write)
    table = suite_table(result)
    click.echo(table)
    if write is not None:
        write(result)  # also when every set was resumed
    if report_dir:
        Path(report_dir).mkdir(parents=True, exist_ok=True)
        (Path(report_dir) / "suite.md").write_text(f"# vqgram suite {suite_file}\n\n{table}")
        (Path(report_dir) / "suite.json").write_text(suite_json(result, scored_under))
        plot_suite(result.rows, column_names(result.rows), Path(report_dir) / "suite.png")
