"""The package's import surface: every public name resolves, and neither `import vqgram` nor `vqgram --help`
loads torch (names are imported on first use, so the CLI answers at once)."""
import re
import subprocess
import sys
from pathlib import Path

import vqgram

ROOT = Path(__file__).resolve().parent.parent


def test_every_public_name_resolves():
    assert sorted(vqgram.__all__) == sorted([*vqgram._HOME, "__version__"])
    for name in vqgram.__all__:
        assert getattr(vqgram, name) is not None
    assert vqgram.Tokenizer.__module__ == "vqgram.tokenizer.encoder"


def _imports_torch(code: str) -> bool:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    return out.stdout.split()[-1] == "True"


def test_import_and_help_do_not_load_torch():
    assert not _imports_torch("import vqgram")
    assert not _imports_torch("import sys; sys.argv = ['vqgram', '--help']\n"
                              "from vqgram.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass")
    assert _imports_torch("from vqgram import Tokenizer")


def test_index_only_commands_do_not_load_torch(photo_index):
    """info, check and text searches (the CLI's and the API's, which serve's text search calls) read the
    index alone: no model, so no torch (~2 s a process)."""
    index = str(photo_index("tantivy"))
    for argv in (["info", index], ["info", index, "--json"], ["check", index],
                 ["search", index, "--query", "label:cat"]):
        assert not _imports_torch(f"import sys; sys.argv = ['vqgram', *{argv!r}]\nfrom vqgram.cli import main\n"
                                  "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code")
    assert not _imports_torch(f"from vqgram import Searcher\nwith Searcher({index!r}) as s:\n"
                              "    assert s.search_text('label:cat', 3)")


def test_the_version_is_written_once():
    import importlib.metadata

    assert vqgram.__version__ == importlib.metadata.version("vqgram")
    assert not re.search(r"^__version__ = ", (ROOT / "vqgram" / "__init__.py").read_text(), re.M)
    layers = [p for d in ("config.py", "images.py", "tokenizer", "indexer") for p in
              ((ROOT / "vqgram" / d).rglob("*.py") if d[-3:] != ".py" else [ROOT / "vqgram" / d])]
    assert not [p for p in layers if re.search(r"^from (\.\.|vqgram) import", p.read_text(), re.M)]


def test_every_declared_package_file_exists():
    """pyproject's package data (py.typed, the models' JSON and tensors, the page, the Java helper) names
    files the package has, so a wheel ships what it claims."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["vqgram"]
    assert "py.typed" in patterns
    assert not [p for p in patterns if not list((ROOT / "vqgram").glob(p))]
