"""Encoding throughput: `vqgram encode` on each engine with 1 and 2 workers (1 torch thread each)
against the single-process `vqgram index` on the same images (docs/SCALE.md).

    nice -n 10 python -m bench.encode_bench FOLDER --json runs/encode_bench.json [--engines local,ray,spark]

Each run is a fresh process (engine startup included, as a user meets it);
the load average before and after each run is printed beside it, because on a
shared machine it says how much the numbers can be trusted.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RATE = re.compile(r"([\d.]+) images/s")


def run(args: list[str]) -> dict:
    load = os.getloadavg()[0]
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", "vqgram.cli", "-q", *args], capture_output=True, text=True)
    wall = time.time() - start
    if proc.returncode:
        raise RuntimeError(f"{' '.join(args)} failed: {proc.stderr.strip().splitlines()[-1]}")
    rate = float(RATE.findall(proc.stderr)[-1])
    return {"images_per_s": rate, "wall_s": round(wall, 1), "load_before": round(load, 1),
            "load_after": round(os.getloadavg()[0], 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--engines", default="local,ray,spark")
    ap.add_argument("--partition-size", type=int, default=50)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        r = run(["index", str(args.folder), "--index", f"{tmp}/index"])
        rows.append({"engine": "vqgram index (one process)", "workers": 1, **r})
        print(rows[-1], flush=True)
        for engine in args.engines.split(","):
            for workers in (1, 2):
                out = f"{tmp}/{engine}-{workers}"
                r = run(["encode", str(args.folder), "--out", out, "--engine", engine, "--workers", str(workers),
                         "--threads", "1", "--partition-size", str(args.partition_size)])
                rows.append({"engine": engine, "workers": workers, **r})
                print(rows[-1], flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"folder": str(args.folder), "cpus": os.cpu_count(), "results": rows}, indent=2))


if __name__ == "__main__":
    main()
