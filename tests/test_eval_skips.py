"""Evaluation that never loses work: unreadable images (a dangling link) are left out of every stage and
counted; a suite writes each set's row as soon as it is scored and `--resume` continues from those rows;
linked folders are followed; an empty query set is a one-line error naming its folder."""
import json
import shutil

import pytest
from click.testing import CliRunner

from vqgram.cli import main
from vqgram.tokenizer.model import DEFAULT_MODEL

CLASSES = ("astronaut", "brick", "camera", "cat", "coffee", "grass", "hubble", "rocket")


def run(*args):
    return CliRunner().invoke(main, ["-q", *map(str, args)])


@pytest.fixture(scope="module")
def broken(tmp_path_factory, photos):
    """24 photos (8 classes of 3) and a dangling link among them, as a suite lists it."""
    root = tmp_path_factory.mktemp("broken")
    for name in CLASSES:
        shutil.copytree(photos / name, root / "db" / name)
    (root / "db" / "coffee" / "zz_gone.JPEG").symlink_to(root / "nowhere" / "n01440764_00000293.JPEG")
    return root


def test_a_dangling_link_is_left_out_of_every_stage_and_counted(broken, tmp_path):
    """The issue's failure: the index skipped the link, then hashing the dataset died on it and nothing was
    written. Now the query plan, the model's modes, GeM, the previous model and the reports all score the
    24 readable photos."""
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"sets": [{"name": "broken", "db": str(broken / "db")}]}))
    out = tmp_path / "out.json"
    result = run("eval", "--suite", suite, "--mode", "bm25", "--mode", "dense", "--baselines", "gem,previous",
                 "--baseline-model", DEFAULT_MODEL, "--json", out, "--report", tmp_path / "report")
    assert result.exit_code == 0, result.output
    row = json.loads(out.read_text())["sets"][0]
    assert (row["queries"], row["database"], row["skipped"]) == (24, 24, 1)
    assert list(row["columns"]) == ["bm25", "dense", "gem", "previous bm25", "previous dense"]
    assert row["columns"]["previous dense"] == row["columns"]["dense"]  # the same model: the same images
    note = "broken: 1 unreadable image(s) left out of every column"
    assert note in result.output and note in (tmp_path / "report" / "suite.md").read_text()


def test_one_eval_counts_what_it_skipped(broken, tmp_path):
    out = tmp_path / "rows.json"
    result = run("eval", broken / "db", "--mode", "bm25", "--json", out, "--report", tmp_path / "report")
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert [s["path"] for s in data["skipped"]] == [str(broken / "db" / "coffee" / "zz_gone.JPEG")]
    assert "No such file" in data["skipped"][0]["reason"]
    assert "skipped 1 unreadable image(s) in every mode" in result.output
    assert (tmp_path / "report" / "qrels.txt").read_text().count("zz_gone") == 0


def test_rows_are_written_as_scored_and_resume_continues(broken, tmp_path, photos):
    """The second set's query folder is empty: the run stops there with one line naming it, and the first
    set's row is already in --json. Its sub-folder then becomes a link to an album (a linked query folder),
    and --resume scores only the second set."""
    queries = tmp_path / "queries"
    queries.mkdir()
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"sets": [{"name": "first", "db": str(broken / "db"), "max_queries": 8},
                                          {"name": "second", "db": str(broken / "db"), "queries": str(queries)}]}))
    out = tmp_path / "out.json"
    args = ("eval", "--suite", suite, "--mode", "bm25", "--baselines", "", "--json", out)
    failed = run(*args)
    assert failed.exit_code == 1 and failed.output.strip().splitlines()[-1].startswith(
        f"error: no query images in {queries.resolve()}")
    first = json.loads(out.read_text())["sets"]
    assert [r["set"] for r in first] == ["first"] and first[0]["queries"] == 8

    (queries / "cat").symlink_to(photos / "cat", target_is_directory=True)
    resumed = run(*args, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "resumed: first" in resumed.output
    rows = json.loads(out.read_text())["sets"]
    assert rows[0] == first[0]  # kept as written, not scored again (its seconds too)
    assert (rows[1]["set"], rows[1]["queries"], rows[1]["database"]) == ("second", 3, 24)

    other = run("eval", "--suite", suite, "--mode", "dense", "--baselines", "", "--json", out, "--resume")
    assert other.exit_code == 1 and "was written with other settings (modes differ)" in other.output
    assert len(other.output.strip().splitlines()) == 1
    alone = run("eval", "--suite", suite, "--resume")
    assert alone.exit_code == 2 and "give --suite and --json" in alone.output


def test_an_empty_query_folder_is_one_line(broken, tmp_path):
    (tmp_path / "q").mkdir()
    result = run("eval", broken / "db", "--queries", tmp_path / "q", "--mode", "bm25")
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [f"error: no query images in {(tmp_path / 'q').resolve()} "
                                                  "(none found, or none readable); give a folder of images to "
                                                  "query with"]
