"""`vqgram eval` on the bundled sample: one row per mode, metrics in range, TREC runs that trec_eval agrees with."""
import json

import numpy as np
import pytest

from vqgram.eval.runner import evaluate, mode_options, write_trec_runs

MODES = ("bm25", "dense", "dense@16", "hybrid", "funnel", "bm25+words768", "hybrid+words384", "hybrid+words768")


@pytest.fixture(scope="module")
def evaluation(photos, tokenizer, tmp_path_factory):
    return evaluate(photos, MODES, tokenizer, work_dir=tmp_path_factory.mktemp("eval"), latency_queries=5)


def test_one_row_per_mode_with_the_contract_fields(evaluation):
    rows = {r["mode"]: r for r in evaluation.rows}
    assert tuple(rows) == MODES
    for r in rows.values():
        assert {"map", "map@32", "p@10", "query_ms_p50", "query_ms_p95", "index_bytes", "build_s"} <= set(r)
        assert 0 < r["map"] <= 1 and r["query_ms_p50"] > 0 and r["index_bytes"] > 0
    assert rows["dense@16"]["dims"] == 16
    assert rows["dense"]["dims"] == 1024  # the packaged model's full embedding, so dims plots end there
    assert "dims" not in rows["hybrid"]
    chance = 2 / 32  # 3 images a label: 2 relevant among the 32 others
    assert all(r["map"] > 2 * chance for r in rows.values())
    assert rows["hybrid+words768"]["map"] > 2 * chance
    assert set(rows["bm25"]["labels"]) == {"astronaut", "brick", "camera", "cat", "cell", "coffee", "grass", "gravel",
                                           "hubble", "retina", "rocket"}


def test_rankings_leave_the_query_out(evaluation):
    ranked = evaluation.rankings["bm25"]
    assert ranked.shape == (33, 32)
    assert all(q not in row for q, row in enumerate(ranked))


def test_query_words_encoded_again_give_the_indexing_pass_words(evaluation):
    """A +wordsN mode re-encodes the queries; with the model's own 384 words hybrid ranks exactly as with the
    indexing pass's words. bm25 on this small index takes twice the words, as an image search would."""
    rows = {r["mode"]: r for r in evaluation.rows}
    assert np.array_equal(evaluation.rankings["hybrid+words384"], evaluation.rankings["hybrid"])
    assert np.array_equal(evaluation.rankings["bm25"], evaluation.rankings["bm25+words768"])
    assert rows["bm25"]["query_words"] == 768 and "query_words" not in rows["hybrid"]


def test_mode_names_are_checked():
    assert mode_options("dense@32").dims == 32
    with pytest.raises(ValueError, match="unknown mode 'bm26'"):
        mode_options("bm26")
    with pytest.raises(ValueError, match="dense@D"):
        mode_options("bm25@8")
    assert (mode_options("dense@16+prf10").dims, mode_options("dense@16+prf10").prf_depth) == (16, 10)
    assert mode_options("hybrid+prf5").prf_depth == 5 and mode_options("hybrid").prf_depth == 0
    assert mode_options("bm25+verify20").verify == 20 and mode_options("bm25").verify == 0
    both = mode_options("dense+prf10+verify5")
    assert (both.prf_depth, both.verify) == (10, 5)
    assert mode_options("hybrid+words768").query_words == 768 and mode_options("bm25").query_words is None
    for bad in ("bm25+prf10", "dense+prf", "dense+prfx", "dense@x", "bm25+verify", "bm25+check3", "hybrid+",
                "dense+words768", "funnel+words500"):
        with pytest.raises(ValueError, match="unknown mode"):
            mode_options(bad)


@pytest.mark.jvm
def test_trec_eval_agrees_with_our_map(evaluation, tmp_path):
    from vqgram.eval.trec import run_filename, trec_eval

    write_trec_runs(evaluation, tmp_path)
    ours = {r["mode"]: r["map"] for r in evaluation.rows}
    theirs = trec_eval(tmp_path / "qrels.txt", tmp_path / run_filename("dense"))["map"]
    assert theirs == pytest.approx(ours["dense"], abs=1e-4)


@pytest.mark.jvm
def test_trec_runs_stop_at_their_depth(evaluation, tmp_path):
    from vqgram.eval import metrics
    from vqgram.eval.trec import run_filename, trec_eval

    write_trec_runs(evaluation, tmp_path, depth=3)
    lines = (tmp_path / run_filename("bm25")).read_text().splitlines()
    assert len(lines) == 33 * 3  # 33 queries, 3 of their 32 others each
    plan = evaluation.plan
    rel = metrics.relevance_matrix(plan.query_labels, evaluation.rankings["bm25"], plan.db_labels)
    # trec_eval's AP of a cut run: precision summed over the top 3, divided by all R (ours divides by min(3, R))
    cut = np.minimum(3, plan.n_relevant)
    expected = np.mean(metrics.average_precision_at_k(rel, plan.n_relevant, 3) * cut / plan.n_relevant)
    assert trec_eval(tmp_path / "qrels.txt", tmp_path / run_filename("bm25"))["map"] == pytest.approx(expected, abs=1e-4)
    with pytest.raises(ValueError, match="depth 0"):
        write_trec_runs(evaluation, tmp_path, depth=0)


def test_pr_curves_and_examples_feed_the_report(evaluation, tmp_path):
    from vqgram.eval.report import write_report
    from vqgram.eval.runner import examples, pr_curves

    curves = pr_curves(evaluation)
    assert set(curves) == set(MODES) - {"dense@16"}  # prefixes are plotted against dims instead
    recall, precision = curves["dense"]
    assert recall[0] == 0 and recall[-1] == 1 and all(a >= b - 1e-12 for a, b in zip(precision, precision[1:]))
    shown = examples(evaluation, queries=2, k=3)
    assert len(shown) == 2 * len(MODES) and all(len(e.hits) == 3 for e in shown)
    written = write_report(tmp_path, evaluation.rows, curves, shown)
    assert "examples.html" in written and written["examples.html"].read_text().count("<img") >= 2 * len(MODES)


def test_the_eval_command_writes_json(photos, tmp_path):
    from click.testing import CliRunner

    from vqgram.cli import main

    out = tmp_path / "rows.json"
    result = CliRunner().invoke(main, ["-q", "eval", str(photos), "--mode", "bm25", "--mode", "dense@8",
                                       "--json", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["results"]
    assert [r["mode"] for r in rows] == ["bm25", "dense@8"]


def test_trec_depth_needs_a_report(photos):
    from click.testing import CliRunner

    from vqgram.cli import main

    result = CliRunner().invoke(main, ["eval", str(photos), "--trec-depth", "50"])
    assert result.exit_code == 2 and "--trec-depth sets the depth of the TREC runs that --report writes" in result.output
    result = CliRunner().invoke(main, ["eval", str(photos), "--report", "out", "--trec-depth", "0"])
    assert result.exit_code == 2 and "--trec-depth" in result.output
