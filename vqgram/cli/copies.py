"""`vqgram make-copies`: a copy-detection set (originals as queries, edited copies as the database)."""
from __future__ import annotations

from pathlib import Path

import click

from .app import friendly, main


@main.command("make-copies")
@click.argument("sources", nargs=-1, required=True, type=click.Path())
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--originals", type=click.IntRange(1), default=300, help="How many originals to draw.")
@click.option("--seed", type=int, default=0, help="Seeds the choice of originals and every edit.")
@click.option("--edits", "edit_names", default="copies", show_default=True, metavar="SET|NAME,NAME...",
              help="'copies' (ten edits that keep most of the photo), 'partial' (crop25, pip, small_crop: "
                   "only a part survives) or edit names, comma-separated.")
@friendly
def make_copies_(sources, out, originals, seed, edit_names):
    """Draw ORIGINALS images from SOURCES (folders, searched recursively) and write OUT/queries/<orig>/<orig>.jpg
    and OUT/db/<orig>/<edit>.jpg, one copy per edit; OUT/copies.json lists the edits and their parameters.
    Evaluate with `vqgram eval OUT/db --queries OUT/queries` or as a suite set with distractors."""
    from ..copies import edits_named, make_copies

    manifest = make_copies([Path(s) for s in sources], Path(out), originals=originals, seed=seed,
                           edits=edits_named(edit_names))
    done = len(manifest["originals"])
    click.echo(f"{done} originals, {done * len(manifest['edits'])} copies in {out} "
               f"({len(manifest['skipped'])} unreadable originals skipped)", err=True)
