"""The `vqgram` command: a thin layer of options over the Python API.

Progress and warnings go to stderr, results to stdout; every failure is one
line on stderr and a non-zero exit, never a traceback. Each command lives in
its own module and registers itself on the `main` group when imported here.
"""
from . import copies, evaluate, index, inspect, search, train  # noqa: F401  (register the commands)
from .app import UserError, main

__all__ = ["UserError", "main"]
