"""The `vqgram` group, its one-line errors and the options several commands share.

Every failure prints one line. An expected one names what went wrong: the
environment's (OSError: a missing file, a full disk), or one vqgram raised on
purpose (a `raise` of ValueError, RuntimeError or LookupError in a vqgram
module: a user's mistake, a locked or damaged index, an engine error a
backend translated), or an engine's own (a Lucene exception). Anything else
(a library's error vqgram did not expect, an AssertionError) may be a bug:
its line says so and how to see the traceback (`--debug` or VQGRAM_DEBUG=1,
which shows every error's traceback).
"""
from __future__ import annotations

import dis
import functools
import logging
import sys
from pathlib import Path

import click

from ..config import KGramConfig
from ..progress import set_progress_bars

PACKAGE = str(Path(__file__).resolve().parent.parent) + "/"
_ON_PURPOSE = (ValueError, RuntimeError, LookupError)


class UserError(click.ClickException):
    """Printed as 'error: ...' and exits 1."""

    def format_message(self) -> str:
        return self.message

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def friendly(fn):
    """Turn every failure of a command into one line (the module docstring says which are expected);
    with --debug, let it through with its traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if _debugging():
                raise
            raise UserError(one_line(exc)) from None

    return wrapper


def one_line(exc: Exception) -> str:
    """The line a failure prints: its message when expected, else its type and how to see the traceback."""
    if expected(exc):
        return _first_line(exc)
    if type(exc).__name__ == "JavaException":  # jnius: a Lucene error no backend translated
        return (f"Lucene failed: {_first_line(exc)} (if an index is damaged, 'vqgram check INDEX' says what is "
                "wrong; --debug shows the traceback)")
    return (f"unexpected {type(exc).__name__}: {_first_line(exc)} (maybe a bug in vqgram: run again with "
            "--debug, or VQGRAM_DEBUG=1, to see the traceback, and report it)")


def expected(exc: BaseException) -> bool:
    """An OSError, or a ValueError / RuntimeError / LookupError that a raise statement in a vqgram module
    raised (not one a library raised, nor one out of a call vqgram made into compiled code)."""
    if isinstance(exc, OSError):
        return True
    if not isinstance(exc, _ON_PURPOSE) or isinstance(exc, NotImplementedError) or exc.__traceback__ is None:
        return False
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    in_vqgram = str(Path(code.co_filename).resolve()).startswith(PACKAGE)
    return in_vqgram and dis.opname[code.co_code[tb.tb_lasti]] == "RAISE_VARARGS"


def _debugging() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().params.get("debug"))


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "innermessage", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def given(ctx: click.Context, names) -> list[str]:
    """Those of `names` (parameter names) the user set on the command line (not left at their defaults)."""
    return [n for n in names if ctx.get_parameter_source(n) not in (None, click.core.ParameterSource.DEFAULT)]


def option_flag(ctx: click.Context, name: str) -> str:
    """A parameter's name as typed (--dense-dims for dense_dims)."""
    param = next(p for p in ctx.command.params if p.name == name)
    return max(param.opts, key=len)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(package_name="vqgram")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@click.option("--debug", is_flag=True, envvar="VQGRAM_DEBUG",
              help="Show the traceback of an error instead of one line (also VQGRAM_DEBUG=1).")
def main(quiet: bool, debug: bool) -> None:
    """Make images searchable with text search engines (Tantivy, Lucene)."""
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(levelname)s: %(message)s",
                        stream=sys.stderr)
    set_progress_bars(not quiet)


def tokenizer_options(fn):
    """Options that choose the tokenizer (model and k-gram settings)."""
    for opt in reversed([
        click.option("--model", type=click.Path(file_okay=False), default=None,
                     help="Model folder (default: the packaged model)."),
        click.option("--kgram", type=click.Choice(["2d", "3d"]), default="2d", help="k-gram kind."),
        click.option("--kernel", type=click.IntRange(1), default=3, help="k-gram window size."),
        click.option("--padding", type=click.IntRange(0), default=0, help="Grid padding (cells)."),
        click.option("--stride", type=click.IntRange(1), default=1, help="Window stride (cells)."),
        click.option("--max-size", type=click.IntRange(32), default=224,
                     help="Resize the longer image side to this many pixels."),
    ]):
        fn = opt(fn)
    return fn


def cache_options(fn):
    """--cache DIR / --no-cache, handed to the command as cache_root (None: no feature cache)."""

    @click.option("--cache", "cache_dir", type=click.Path(file_okay=False), default=None,
                  help="Feature-map cache folder (default: $VQGRAM_CACHE/features or ~/.cache/vqgram/features).")
    @click.option("--no-cache", is_flag=True, help="Neither read nor write cached feature maps.")
    @functools.wraps(fn)
    def wrapper(*args, cache_dir, no_cache, **kwargs):
        from ..tokenizer.feature_cache import default_root

        return fn(*args, cache_root=None if no_cache else Path(cache_dir) if cache_dir else default_root(), **kwargs)

    return wrapper


def device_option(fn):
    """--device auto|cpu|cuda|mps: where the network runs (bf16 autocast and channels_last on CUDA)."""
    return click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="cpu",
                        help="Where the network runs; auto picks cuda, then mps, then cpu.")(fn)


def make_tokenizer(model, kgram, kernel, padding, stride, max_size, device="cpu"):
    from ..tokenizer.encoder import Tokenizer

    return Tokenizer.from_model(model, KGramConfig(kgram, kernel, padding, stride), max_size, device=device)
