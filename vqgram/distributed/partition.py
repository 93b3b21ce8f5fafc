"""One partition of a folder -> one Parquet file of encoded rows: the unit of work every engine runs.

A `PartitionEncoder` loads the tokenizer once (one per engine worker: a Ray
actor, a Spark executor's Python worker, a local process) and then encodes
partition after partition with `threads` torch threads, decoding in its own
process. It returns a small summary, never the rows: the rows go to the
partition's file, so the driver's memory does not grow with the folder.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..config import KGramConfig
from ..images import ImageFile, Skipped, probe
from ..indexer.rowfiles import write_parquet
from ..indexer.rows import EncodedBy, rows_from_batch

PART_NAME = "part-{:05d}.parquet"


@dataclass(frozen=True)
class EncodeSettings:
    """What every worker needs to encode like the others (plain data: it travels to remote workers)."""

    folder: str  # labels are sub-folder names below it; removals apply below it
    out: str
    model: str | None = None  # model folder; None: the packaged model
    kgram: dict = field(default_factory=lambda: asdict(KGramConfig()))
    max_size: int = 224
    batch_size: int = 32
    threads: int = 1  # torch threads per worker
    device: str = "cpu"


@dataclass(frozen=True)
class Partition:
    number: int
    paths: tuple[str, ...]


def partitions(paths: list[Path], size: int) -> list[Partition]:
    """Consecutive runs of `size` paths (sorted, so a re-run makes the same partitions)."""
    if size < 1:
        raise ValueError(f"partition size {size} must be at least 1")
    return [Partition(n, tuple(map(str, paths[s:s + size]))) for n, s in enumerate(range(0, len(paths), size))]


class PartitionEncoder:
    """Callable: Partition -> {part, file, rows, skipped [(path, reason)], seconds}. Model loaded once."""

    def __init__(self, settings: EncodeSettings):
        import torch

        from ..tokenizer.encoder import Tokenizer

        torch.set_num_threads(settings.threads)
        self.settings = settings
        self.tokenizer = Tokenizer.from_model(settings.model, KGramConfig(**settings.kgram), settings.max_size,
                                              device=settings.device)
        self.encoded_by = EncodedBy.of(self.tokenizer, settings.folder)

    def __call__(self, part: Partition | dict) -> dict:
        if isinstance(part, dict):  # Ray Data hands rows as dicts
            part = Partition(int(part["number"]), tuple(part["paths"]))
        start = time.time()
        root = Path(self.settings.folder)
        files: list[ImageFile] = []
        skipped: list[Skipped] = []
        for p in part.paths:
            item = probe(Path(p), root)
            (skipped if isinstance(item, Skipped) else files).append(item)
        rows = []
        for ok, encoded, bad in self.tokenizer.encode_files(files, batch_size=self.settings.batch_size, workers=0):
            skipped += [Skipped(files[i].path, reason) for i, reason in bad]
            if ok:
                rows += rows_from_batch(files, ok, encoded)
        out = Path(self.settings.out) / PART_NAME.format(part.number)
        write_parquet(rows, out, self.encoded_by)
        return {"part": part.number, "file": str(out), "rows": len(rows),
                "skipped": [[s.path, s.reason] for s in skipped], "seconds": time.time() - start}
