"""`vqgram info`: a summary of an index read at a glance, the whole manifest behind --json."""
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner

from vqgram.cli import main

from conftest import BACKENDS


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("backend", BACKENDS)
def test_info_is_a_summary_read_at_a_glance(photo_index, backend):
    from vqgram.tokenizer.weights import DEFAULT_MODEL, read_card, weights_sha256

    result = run("info", photo_index(backend))
    assert result.exit_code == 0, result.output
    lines = dict(line.split(None, 1) for line in result.stdout.strip().splitlines())
    lift, grid = read_card(DEFAULT_MODEL)["config"]["lift"], read_card(DEFAULT_MODEL)["config"]["grid"]
    assert lines["documents"] == "33" and lines["backend"] == backend and lines["size"].endswith(" MB")
    assert lines["model"] == f"default, checksum {weights_sha256(DEFAULT_MODEL)[:12]}"
    assert lines["words"] == (f"lifted: {lift['atoms']:,} in the vocabulary, {lift['active']} an image; local: "
                              f"{grid['coarse'] * grid['fine']:,} in the vocabulary, one a cell of stage "
                              f"{grid['stage']} at 224 px, queries at {len(grid['query_scales'])} scales")
    assert lines["embedding"].startswith(f"{lift['dims']}-d, prefixes 8, 16, ")
    written = datetime.strptime(lines["written"][:16], "%Y-%m-%d %H:%M")
    assert abs(datetime.now() - written) < timedelta(days=1)
    assert ("segments" in lines) == (backend == "lucene") and len(lines) <= 9


def test_info_names_the_packaged_model_an_old_index_was_made_with(photo_index):
    from dataclasses import replace

    from vqgram.cli.inspect import model_name
    from vqgram.indexer.store import read_manifest
    from vqgram.tokenizer.weights import MODELS, read_card

    manifest = read_manifest(photo_index("tantivy"))
    earlier = replace(manifest, model_sha256=read_card(MODELS / "lift-v2")["legacy_sha256"])
    assert model_name(earlier) == "lift-v2 (packaged; the default when this index was made)"
    retired = replace(manifest, model_sha256="cb0e7542ca82153275e60c33153fc89ea2a4ddc0efac375f1966a6e6092423e0")
    assert model_name(retired) == "lift-v1 (no longer packaged)"
    assert model_name(replace(manifest, model_path="/models/mine")) == "/models/mine"
