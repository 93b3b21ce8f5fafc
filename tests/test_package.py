"""The package's import surface: every public name resolves, and neither `import vqgram` nor `vqgram --help`
loads torch (names are imported on first use, so the CLI answers at once)."""
import subprocess
import sys

import vqgram


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
