"""The `vqgram` command: a thin layer of options over the Python API.

Progress and warnings go to stderr, results to stdout; every failure is one
line on stderr and a non-zero exit, never a traceback. Each command lives in
its own module and registers itself on the `main` group when imported here.
"""
from . import (bench, check, copies, encode, evaluate, export, index, inspect, merge, search,  # noqa: F401
               serve, train)  # (register the commands)
from .app import UserError, main

__all__ = ["UserError", "main"]
