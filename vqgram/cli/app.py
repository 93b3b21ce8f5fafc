"""The `vqgram` group, its one-line errors and the options several commands share."""
from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path

import click

from ..config import KGramConfig
from ..progress import set_progress_bars


class UserError(click.ClickException):
    """Printed as 'error: ...' and exits 1."""

    def format_message(self) -> str:
        return self.message

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def friendly(fn):
    """Turn expected failures (bad paths, bad values, locked or damaged index, an engine's own error)
    into one-line errors."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (OSError, ValueError, RuntimeError) as exc:
            raise UserError(_first_line(exc)) from None
        except Exception as exc:
            if type(exc).__name__ != "JavaException":  # jnius: a Lucene error no backend translated
                raise
            raise UserError(f"Lucene failed: {_first_line(exc)} (if an index is damaged, 'vqgram check INDEX' "
                            "says what is wrong)") from None

    return wrapper


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
def main(quiet: bool) -> None:
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
