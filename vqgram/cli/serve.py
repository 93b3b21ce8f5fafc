"""`vqgram serve`: a search page and JSON API over one index."""
from __future__ import annotations

import click

from .app import UserError, friendly, main


@main.command()
@click.argument("index", type=click.Path())
@click.option("--host", default="127.0.0.1", help="Address to bind (0.0.0.0 opens the page to the network).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000)
@click.option("--max-upload-mb", type=click.FloatRange(0, min_open=True), default=20.0,
              help="Largest query image accepted, in MB.")
@click.option("--max-pixels", type=click.IntRange(1), default=40_000_000,
              help="Largest query image accepted, in decoded pixels.")
@click.option("--thumbs", type=click.Path(file_okay=False), default=None,
              help="Thumbnail cache folder (default: $VQGRAM_CACHE/thumbs or ~/.cache/vqgram/thumbs).")
@click.option("--reload-every", type=click.FloatRange(0), default=2.0, show_default=True, metavar="SECONDS",
              help="How often to look for commits another process (vqgram index) made to INDEX, and serve them "
                   "(0: never).")
@friendly
def serve(index, host, port, max_upload_mb, max_pixels, thumbs, reload_every):
    """Serve a search page for INDEX at http://HOST:PORT/ (drop an image, type a query, compare modes)."""
    try:
        from ..serve import serve as run
    except ImportError as exc:
        raise UserError(f"vqgram serve needs Starlette and uvicorn: pip install 'vqgram[serve]' ({exc})") from None

    click.echo(f"loading {index} ...", err=True)
    run(index, host=host, port=port, thumbnails=thumbs, reload_every=reload_every,
        upload_bytes=int(max_upload_mb * 1024 * 1024),
        upload_pixels=max_pixels, on_ready=lambda: click.echo(f"serving http://{host}:{port}/", err=True))
