"""`vqgram eval --suite` on a tiny suite: a copy set hidden among the sample photos, and a leave-one-out set."""
import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from vqgram.cli import main
from vqgram.copies import make_copies
from vqgram.tokenizer.model import DEFAULT_MODEL

MODES = ("bm25", "dense", "hybrid")


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory, photos):
    folder = tmp_path_factory.mktemp("suite")
    make_copies([photos], folder / "copies", originals=2)
    spec = {"sift_train": str(photos), "sift_words": 64, "sets": [
        {"name": "copies", "db": "copies/db", "queries": "copies/queries", "distractors": str(photos)},
        {"name": "photos", "db": str(photos), "max_queries": 10}]}
    path = folder / "suite.json"
    path.write_text(json.dumps(spec))
    return path


@pytest.fixture(scope="module")
def suite_run(suite_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    args = ["-q", "eval", "--suite", str(suite_file), "--baseline-model", str(DEFAULT_MODEL),
            "--json", str(out / "suite.json"), "--report", str(out / "report")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result.output, json.loads((out / "suite.json").read_text()), out


def test_table_has_every_set_mode_and_baseline(suite_run):
    table, data, out = suite_run
    columns = [*MODES, "gem", "sift", *(f"previous {m}" for m in MODES)]
    header = next(line for line in table.splitlines() if line.startswith("| set"))
    assert [c.strip() for c in header.strip("|").split("|")][3:] == columns
    assert [r["set"] for r in data["sets"]] == ["copies", "photos"]
    assert "| **mean** |" in table and (out / "report" / "suite.md").read_text().count("| copies |") == 1
    assert (out / "report" / "suite.png").stat().st_size > 1000
    for row in data["sets"]:
        assert list(row["columns"]) == columns
        for cell in row["columns"].values():
            assert all(0 <= cell[m] <= 1 for m in ("map", "map@100"))
    for col in columns:
        expected = sum(r["columns"][col]["map"] for r in data["sets"]) / 2
        assert math.isclose(data["mean"][col]["map"], expected)


def test_sets_have_the_queries_and_database_they_name(suite_run, photos):
    _, data, _ = suite_run
    copies, loo = data["sets"]
    assert (copies["queries"], copies["database"]) == (2, 20 + 33)  # originals; 10 copies each + distractors
    assert (loo["queries"], loo["database"]) == (10, 33)


def test_the_same_model_as_previous_scores_the_same(suite_run):
    _, data, _ = suite_run
    for row in data["sets"]:
        for mode in MODES:
            assert row["columns"][f"previous {mode}"] == row["columns"][mode]


def test_missing_data_is_a_one_line_error(tmp_path):
    spec = tmp_path / "suite.json"
    spec.write_text(json.dumps({"sets": [{"name": "gone", "db": "nowhere"}]}))
    result = CliRunner().invoke(main, ["eval", "--suite", str(spec)])
    assert result.exit_code == 1 and str(tmp_path / "nowhere") in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_the_default_suite_names_its_data():
    from vqgram.eval.suite import load_suite

    try:
        spec = load_suite()
    except FileNotFoundError as exc:
        pytest.skip(f"development suite data missing: {exc}")
    assert [s.name for s in spec.sets] == ["partial", "copies", "imagenette", "att_faces", "omniglot_a", "flowers_a", "dtd_a"]


def test_the_development_suite_ships_in_the_package_and_reads_from_the_working_directory(tmp_path, monkeypatch):
    import vqgram
    from vqgram.eval.suite import DEVSUITE

    assert DEVSUITE.is_file() and DEVSUITE.parent.is_relative_to(Path(vqgram.__file__).parent)
    monkeypatch.chdir(tmp_path)  # not a repository root: no ../shared/data here
    result = CliRunner().invoke(main, ["eval", "--suite"])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "paths are from the current directory" in result.output
    assert str(tmp_path / "runs" / "partial" / "db") in result.output  # the first set's database
