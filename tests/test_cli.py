"""The CLI end to end on the bundled sample: results on stdout, one-line errors, non-zero exits."""
import json
import shutil
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from vqgram.cli import main


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


@pytest.fixture(scope="module")
def index(tmp_path_factory, photos):
    idx = tmp_path_factory.mktemp("cli") / "idx"
    result = run("-q", "index", photos, "--index", idx, "--workers", 0)
    assert result.exit_code == 0, result.output
    assert "indexed 33" in result.output
    assert "indexing" not in result.output  # -q hides the progress bar
    return idx


def test_search_prints_rank_score_path_label(index, queries):
    result = run("search", index, "--image", queries / "astronaut.jpg", "-k", 3)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3
    rank, score, path, label = lines[0].split()
    assert rank == "1" and float(score) > 0 and path.endswith(".jpg") and label == "astronaut"


def test_search_json(index, queries):
    result = run("search", index, "--image", queries / "coffee.jpg", "-k", 4, "--json")
    hits = json.loads(result.stdout)["hits"]
    assert [h["rank"] for h in hits] == [1, 2, 3, 4]
    assert {"id", "score", "path", "label", "width", "height"} <= set(hits[0])
    assert hits[0]["score"] >= hits[-1]["score"]


def test_text_query(index):
    result = run("search", index, "--query", "label:cat", "-k", 50, "--json")
    assert {h["label"] for h in json.loads(result.stdout)["hits"]} == {"cat"}


def test_words_and_info(index, queries):
    shown = json.loads(run("words", queries / "cat.jpg", "--json").stdout)
    counts, cells, (rows, cols) = shown["words"], shown["cells"], shown["grid"]
    assert counts and all(isinstance(c, int) and c > 0 for c in counts.values())
    # the default model's grid head: each local word once a cell it occurs in, every cell of the grid once
    assert cells and all(len(where) == counts[word] for word, where in cells.items())
    assert sorted(tuple(rc) for where in cells.values() for rc in where) == [(r, c) for r in range(rows)
                                                                              for c in range(cols)]
    info = json.loads(run("info", index, "--json").stdout)
    assert info["documents"] == 33 and info["bytes"] > 0 and info["backend"] == "tantivy"
    assert info["manifest"]["tokenizer"]["kgram"]["kernel"] == 3


@pytest.mark.parametrize("args,message", [
    (["index", "{tmp}/missing", "--index", "{tmp}/i"], "folder not found"),
    (["index", "{tmp}/empty", "--index", "{tmp}/i"], "no images found"),
    (["index", "{photos}", "--index", "{tmp}/afile"], "index path is a file"),
    (["search", "{tmp}/missing", "--query", "x"], "index not found"),
    (["search", "{index}", "--image", "{tmp}/afile"], "cannot read query image"),
    (["search", "{index}", "--image", "{tmp}/nope.jpg"], "query image not found"),
    (["search", "{index}", "--query", "label:(x"], "cannot parse query"),
    (["words", "{tmp}/afile"], "cannot read image"),
])
def test_errors_are_one_line_and_non_zero(tmp_path, photos, index, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile").write_text("not an image")
    args = [a.format(tmp=tmp_path, photos=photos, index=index) for a in args]
    result = run(*args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_progress_bars_show_without_quiet(tmp_path, photos):
    result = run("index", photos / "cat", "--index", tmp_path / "idx", "--workers", 0)
    assert result.exit_code == 0, result.output
    assert "indexing: 100%" in result.output


def test_the_installed_command_runs(index):
    exe = shutil.which("vqgram") or f"{sys.executable} -m vqgram.cli"
    proc = subprocess.run([*exe.split(), "search", str(index), "--query", "label:(x"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: cannot parse query")


def test_search_defaults_are_the_search_options_defaults() -> None:
    from vqgram.cli.search import search
    from vqgram.searcher.searcher import SearchOptions

    defaults = {p.name: p.default for p in search.params}
    assert defaults["fusion"] == SearchOptions.fusion and defaults["weights"] is SearchOptions.weights is None
    assert defaults["depth"] == SearchOptions.depth and defaults["k1"] == SearchOptions.k1


def test_forcemerge_refuses_a_tantivy_index(tmp_path, photo_index):
    tantivy = tmp_path / "tantivy"
    shutil.copytree(photo_index("tantivy"), tantivy)
    result = run("forcemerge", tantivy)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "only Lucene indexes can be force-merged" in result.output


@pytest.fixture
def failing_command():
    """A command on the real group whose body fails as a caller asks: `vqgram fail KIND`."""
    import numpy as np

    from vqgram.cli.app import friendly
    from vqgram.config import KGramConfig

    failures = {
        "mistake": lambda: KGramConfig(kind="4d"),  # vqgram refuses a value: a user's mistake
        "missing": lambda: open("/nonexistent/vqgram-file"),  # the environment
        "bug": lambda: np.zeros(3).reshape(2, 2),  # a library's error vqgram did not expect
        "lookup": lambda: [][0],  # a LookupError, but the interpreter's, not one vqgram raised
    }

    @main.command("fail")
    @click.argument("kind")
    @friendly
    def fail(kind):
        failures[kind]()

    yield
    main.commands.pop("fail")


@pytest.mark.parametrize("kind,line", [
    ("mistake", "error: k-gram kind '4d' is not one of '2d', '3d'"),
    ("missing", "error: [Errno 2] No such file or directory: '/nonexistent/vqgram-file'"),
    ("bug", "error: unexpected ValueError: cannot reshape array of size 3 into shape (2,2) (maybe a bug in "
            "vqgram: run again with --debug, or VQGRAM_DEBUG=1, to see the traceback, and report it)"),
    ("lookup", "error: unexpected IndexError: list index out of range (maybe a bug"),
])
def test_expected_errors_are_one_line_and_unexpected_ones_say_how_to_see_more(failing_command, kind, line):
    result = run("fail", kind)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert result.output.startswith(line), result.output
    for debug in (run("--debug", "fail", kind), CliRunner(env={"VQGRAM_DEBUG": "1"}).invoke(main, ["fail", kind])):
        assert debug.exit_code == 1 and not isinstance(debug.exception, SystemExit)  # the error itself, traceback
        assert type(debug.exception).__name__ in ("ValueError", "FileNotFoundError", "IndexError")
        assert debug.exc_info[2] is not None and "error:" not in debug.output
