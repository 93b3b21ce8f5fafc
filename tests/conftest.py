"""Shared fixtures: the bundled sample photos, the shared imagenette folder, the default tokenizer."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
IMAGENETTE = ROOT.parent / "shared" / "data" / "imagenette" / "train"


@pytest.fixture(scope="session")
def photos() -> Path:
    return EXAMPLES / "photos"


@pytest.fixture(scope="session")
def queries() -> Path:
    return EXAMPLES / "queries"


@pytest.fixture(scope="session")
def imagenette() -> Path:
    if not IMAGENETTE.is_dir():
        pytest.skip(f"imagenette not found at {IMAGENETTE} (the shared data folder beside the repo)")
    return IMAGENETTE


@pytest.fixture(scope="session")
def tokenizer():
    from vqgram import Tokenizer

    return Tokenizer.from_model()


@pytest.fixture(autouse=True)
def _private_feature_cache(tmp_path_factory, monkeypatch):
    """Commands that cache feature maps write into a temp folder, never into the user's home."""
    monkeypatch.setenv("VQGRAM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
