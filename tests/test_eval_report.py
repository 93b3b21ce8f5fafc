"""Report tables, JSON, plots and the example page from hand-built rows."""
from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
import sys
from pathlib import Path

import pytest
from PIL import Image

from vqgram.eval.report import (
    Example,
    Hit,
    csv_text,
    human_bytes,
    markdown_table,
    results_json,
    sweep_table,
    write_examples,
    write_plots,
    write_report,
)

ROWS = [
    {"mode": "dense@32", "map": 0.31, "map@100": 0.25, "p@10": 0.4, "query_ms_p50": 1.234, "query_ms_p95": 2.5,
     "index_bytes": 3 * 2**20, "build_s": 12.25, "dims": 32},
    {"mode": "bm25", "map": 0.35899, "map@100": 0.3, "p@10": 0.45, "query_ms_p50": 8.0, "query_ms_p95": 15.75,
     "index_bytes": 1536, "build_s": 40.0},
    {"mode": "dense@64", "map": 0.33, "map@100": 0.27, "p@10": 0.42, "query_ms_p50": 1.5, "query_ms_p95": 3.0,
     "index_bytes": 6 * 2**20, "build_s": 12.5, "dims": 64},
]

MARKDOWN = """\
| mode | dims | mAP | MAP@100 | P@10 | p50 ms | p95 ms | index | build s |
|---|---|---|---|---|---|---|---|---|
| bm25 |  | 0.3590 | 0.3000 | 0.4500 | 8.00 | 15.75 | 1.5 KiB | 40.0 |
| dense@64 | 64 | 0.3300 | 0.2700 | 0.4200 | 1.50 | 3.00 | 6.0 MiB | 12.5 |
| dense@32 | 32 | 0.3100 | 0.2500 | 0.4000 | 1.23 | 2.50 | 3.0 MiB | 12.2 |
"""

CSV = """\
mode,dims,mAP,MAP@100,P@10,p50 ms,p95 ms,index,build s
bm25,,0.35899,0.3,0.45,8.0,15.75,1536,40.0
dense@64,64,0.33,0.27,0.42,1.5,3.0,6291456,12.5
dense@32,32,0.31,0.25,0.4,1.234,2.5,3145728,12.25
"""


def test_markdown_csv_json_exact() -> None:
    assert markdown_table(ROWS) == MARKDOWN
    assert csv_text(ROWS) == CSV
    assert json.loads(results_json(ROWS)) == {"results": ROWS}  # as given, in the given order


def test_missing_values_nan_and_numpy() -> None:
    np = pytest.importorskip("numpy")
    rows = [{"mode": "a", "map": float("nan"), "index_bytes": np.int64(2048)}, {"mode": "b", "map": np.float64(0.5)}]
    assert markdown_table(rows).splitlines()[2:] == ["| b | 0.5000 |  |", "| a | nan | 2.0 KiB |"]
    plain = [{"mode": "a", "map": None, "index_bytes": 2048}, {"mode": "b", "map": 0.5}]
    assert json.loads(results_json(rows)) == {"results": plain}
    assert human_bytes(512) == "512 B" and human_bytes(5 * 2**30) == "5.0 GiB"


def test_subsets_and_sweep_table_like_the_seed_study(capsys) -> None:
    rows = [
        {"mode": "tfidf", "kernel": 3, "padding": 0, "map": 0.356071,
         "subsets": {"Landmarks": 0.58348, "iNat": 0.23403}},
        {"mode": "tfidf", "kernel": 4, "padding": 0, "map": 0.358996,
         "subsets": {"Landmarks": 0.58213, "iNat": 0.24168}},
    ]
    expected = """\
| kernel | padding | mAP | Landmarks | iNat |
|---|---|---|---|---|
| 4 | 0 | 0.3590 | 0.5821 | 0.2417 |
| 3 | 0 | 0.3561 | 0.5835 | 0.2340 |
"""
    assert sweep_table(rows, ["kernel", "padding"]) == expected
    assert capsys.readouterr().out == expected
    # the full table puts configuration keys after the mode, sub-scores last
    assert markdown_table(rows).splitlines()[0] == "| mode | kernel | padding | mAP | Landmarks | iNat |"
    assert csv_text(rows).splitlines()[1] == "tfidf,4,0,0.358996,0.58213,0.24168"


def _photo(path: Path, colour: tuple[int, int, int]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (300, 200), colour).save(path)
    return str(path)


def test_example_page(tmp_path: Path) -> None:
    q = _photo(tmp_path / "img" / "q.jpg", (0, 0, 255))
    a = _photo(tmp_path / "img" / "a b.jpg", (0, 255, 0))
    b = _photo(tmp_path / "img" / "b.jpg", (255, 0, 0))
    broken = tmp_path / "img" / "broken.jpg"
    broken.write_bytes(b"not an image")
    examples = [
        Example("bm25", q, [Hit(a, 3.0, True), Hit(b, 2.0, False), Hit(str(broken), 1.0, False)], "cat"),
        Example("dense", q, [Hit(b, 0.9, False)]),
    ]
    report = tmp_path / "report"
    page = write_examples(report, examples, thumb_px=64).read_text()
    assert page.count('<section class="query">') == 2
    assert page.count('class="hit rel"') == 1 and page.count('class="hit nonrel"') == 3
    assert ".rel img{border-color:#1a9850}" in page and ".nonrel img{border-color:#d73027}" in page
    assert "<h2>bm25 &middot; cat</h2>" in page and "a b.jpg" in page
    thumbs = sorted((report / "thumbs").iterdir())
    assert len(thumbs) == 3  # q, a, b once each; the broken file shows its name only
    assert all(max(Image.open(t).size) == 64 for t in thumbs)
    assert sorted(set(re.findall(r'src="([^"]+)"', page))) == [f"thumbs/{t.name}" for t in thumbs]  # relative


def test_write_report_writes_tables_and_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    rows = [dict(r, labels={"cat": r["map"], "dog": 0.1}) for r in ROWS]
    curves = {"bm25": ([0.0, 0.5, 1.0], [1.0, 0.6, 0.2])}
    written = write_report(tmp_path / "r", rows, pr_curves=curves)
    assert set(written) == {
        "results.md", "results.csv", "results.json", "labels.csv",
        "map_vs_dims.png", "latency_vs_dims.png", "size_vs_dims.png", "pr.png",
    }
    for name in ("map_vs_dims.png", "latency_vs_dims.png", "size_vs_dims.png", "pr.png"):
        assert written[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(written[name]) as img:
            img.verify()
    md = written["results.md"].read_text()
    assert md.startswith("# vqgram evaluation\n\n" + MARKDOWN)
    assert "| cat | 0.3590 | 0.3300 | 0.3100 |" in md
    assert list(csv.reader(io.StringIO(written["labels.csv"].read_text()))) == [
        ["label", "bm25", "dense@64", "dense@32"], ["cat", "0.35899", "0.33", "0.31"], ["dog", "0.1", "0.1", "0.1"],
    ]


def test_plots_skipped_without_matplotlib(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails as if not installed
    caplog.set_level(logging.INFO, logger="vqgram")
    assert write_plots(tmp_path, ROWS, {"bm25": ([0, 1], [1, 0])}) == []
    assert "plots skipped" in caplog.text
    written = write_report(tmp_path / "r", ROWS)
    assert set(written) == {"results.md", "results.csv", "results.json"}
    assert not math.isnan(json.loads(written["results.json"].read_text())["results"][0]["map"])
