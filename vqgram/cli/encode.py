"""`vqgram encode`: a folder -> Parquet partitions of encoded rows, on a local pool, Ray or Spark."""
from __future__ import annotations

from dataclasses import asdict

import click

from ..config import KGramConfig
from .app import device_option, friendly, main, tokenizer_options


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for part-NNNNN.parquet files.")
@click.option("--engine", type=click.Choice(["local", "ray", "spark"]), default="local")
@click.option("--workers", type=click.IntRange(1), default=1, help="Encoding workers (processes, actors, tasks).")
@click.option("--threads", type=click.IntRange(1), default=1, help="Torch threads per worker.")
@click.option("--partition-size", type=click.IntRange(1), default=256, help="Images per partition (and shard).")
@click.option("--address", default=None, help="Ray: cluster address (ray://host:10001 or auto); Spark: master URL.")
@click.option("--batch-size", type=click.IntRange(1), default=32)
@tokenizer_options
@device_option
@friendly
def encode(folder, out, engine, workers, threads, partition_size, address, batch_size, model, kgram, kernel, padding,
           stride, max_size, device):
    """Encode every image below FOLDER into Parquet rows for 'vqgram index --encoded' (or one shard each)."""
    from ..distributed.engines import encode_folder

    report = encode_folder(folder, out, engine=engine, workers=workers, partition_size=partition_size,
                           address=address, threads=threads, model=model,
                           kgram=asdict(KGramConfig(kgram, kernel, padding, stride)), max_size=max_size,
                           batch_size=batch_size, device=device)
    click.echo(report.summary(), err=True)
