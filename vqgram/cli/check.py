"""`vqgram check`: is an index whole (manifest, engine files, one embedding per document)?"""
from __future__ import annotations

import click

from .app import friendly, main


@main.command()
@click.argument("index", type=click.Path())
@friendly
def check(index):
    """Read INDEX completely and report what is wrong; exits 1 when anything is."""
    from ..indexer.health import check_index

    report = check_index(index)
    for problem in report.problems:
        click.echo(f"problem: {problem}", err=True)
    click.echo(report.summary())
    if not report.ok:
        raise SystemExit(1)
