"""`vqgram eval --sweep`: the grid syntax, one-at-a-time settings, and real sweeps on the bundled sample."""
import json

import pytest
from conftest import KGRAM_MODEL

from vqgram.eval.sweep import DEFAULT_GRID, KEYS, TokenizerSetting, one_at_a_time, parse_grid, sweep_dims, sweep_tokenizers


def test_parse_grid() -> None:
    assert parse_grid("") == DEFAULT_GRID and parse_grid("default") == DEFAULT_GRID
    assert parse_grid("kernel=1,3; kgram=3d ;max-size=160") == {"kernel": (1, 3), "kgram": ("3d",), "max_size": (160,)}
    for bad in ("kernel", "colour=1", "kernel=", "heads=two"):
        with pytest.raises(ValueError, match="bad sweep setting"):
            parse_grid(bad)


def test_one_at_a_time_varies_a_single_setting_per_row() -> None:
    base = TokenizerSetting(224, 3, 0, "2d", 8, 64)
    rows = one_at_a_time(base, {"kernel": (1, 3), "heads": (8, 16)})
    assert rows == [base, TokenizerSetting(224, 1, 0, "2d", 8, 64), TokenizerSetting(224, 3, 0, "2d", 16, 64)]


def test_sweep_tokenizers_fits_heads_and_reuses_cached_maps(photos, kgram_tokenizer, tmp_path) -> None:
    rows = sweep_tokenizers(photos, kgram_tokenizer, {"kernel": (1,), "heads": (4,)}, ("bm25",), cache_root=tmp_path / "c",
                            work_dir=tmp_path / "w", latency_queries=3)
    assert [(r["kernel"], r["heads"]) for r in rows] == [(3, 8), (1, 8), (3, 4)]
    assert all(set(KEYS) <= set(r) and 0 < r["map"] <= 1 for r in rows)
    assert len(list((tmp_path / "c").glob("*/*/*.npy"))) == 33  # one backbone pass for all three settings
    assert rows[0]["index_bytes"] != rows[2]["index_bytes"]  # 4 heads make other words


def test_a_model_without_k_grams_cannot_sweep_them(photos, tokenizer, tmp_path) -> None:
    with pytest.raises(ValueError, match="lifted words"):
        sweep_tokenizers(photos, tokenizer, {"kernel": (1,)}, work_dir=tmp_path)


def test_sweep_dims_gives_a_row_per_nesting_size(photos, tokenizer, tmp_path) -> None:
    rows = sweep_dims(photos, tokenizer, (8, 64), work_dir=tmp_path, latency_queries=3)
    assert [(r["mode"], r["dims"]) for r in rows] == [("dense@8", 8), ("dense@64", 64)]


def test_the_sweep_command(photos, tmp_path) -> None:
    from click.testing import CliRunner

    from vqgram.cli import main

    out = tmp_path / "rows.json"
    result = CliRunner().invoke(main, ["-q", "eval", str(photos), "--sweep", "kernel=2", "--json", str(out),
                                       "--model", str(KGRAM_MODEL)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["results"]
    assert [r.get("kernel") for r in rows[:2]] == [3, 2] and rows[-1]["mode"] == "dense@1024"
    assert "| mode | max_size | kernel |" in result.output
    bad = CliRunner().invoke(main, ["eval", str(photos), "--sweep", "kernal=2"])
    assert bad.exit_code != 0 and "bad sweep setting 'kernal=2'" in bad.output
