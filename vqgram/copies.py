"""A copy-detection set: originals as queries, seeded edited copies of each as the database.

Two families of edits: `EDITS` keep most of the photo (crops of 60 %, rotation, JPEG, colour, overlays...),
`PARTIAL_EDITS` keep only a part of it (a quarter of the area enlarged, the photo pasted small into another
one, a small rotated crop saved small and badly): what a global descriptor cannot find.

`make_copies` picks originals from source folders (seeded), writes each one to
OUT/queries/<orig>/<orig>.jpg and its edited copies to OUT/db/<orig>/<edit>.jpg,
so the label of a copy is the original it came from (relevant = same
original); hide the copies among distractors (a suite set's `distractors`).
OUT/copies.json records the seed, every original's source path and every
copy's edit parameters. Each edit draws its parameters from a generator
seeded by (seed, original's name, edit), and the JPEG encoder is
deterministic, so the same seed writes identical bytes. PIL and numpy only.
"""
from __future__ import annotations

import io
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from .images import DECODE_ERRORS, walk_images

MANIFEST = "copies.json"
QUALITY = 90  # JPEG quality of every written image but the `jpeg10_blur` copy


@dataclass(frozen=True)
class Edit:
    """A named edit: (image, generator) -> (edited image, the parameters it drew)."""

    name: str
    description: str
    apply: Callable[..., tuple[Image.Image, dict]]  # (image, generator[, host]) -> (edited, parameters)
    needs_host: bool = False  # apply takes a third argument: another image to paste into


def _crop_box(w: int, h: int, cw: int, ch: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return left, top, left + cw, top + ch


def crop60(img, rng):
    w, h = img.size
    box = _crop_box(w, h, max(1, round(0.6 * w)), max(1, round(0.6 * h)), rng)
    return img.crop(box), {"box": box}


def rotate_crop(img, rng):
    angle = float(rng.uniform(7, 10) * rng.choice([-1, 1]))
    out = _rotate_inside(img, angle)
    return out, {"angle": round(angle, 3), "size": list(out.size)}


def _rotate_inside(img: Image.Image, angle: float) -> Image.Image:
    """`img` rotated by `angle` degrees about its centre, cropped to the largest upright rectangle inside."""
    w, h = img.size
    cw, ch = _inner_rect(w, h, np.radians(abs(angle)))
    rotated = img.rotate(angle, resample=Image.BICUBIC, expand=False)
    left, top = (w - cw) // 2, (h - ch) // 2
    return rotated.crop((left, top, left + cw, top + ch))


def _inner_rect(w: int, h: int, a: float) -> tuple[int, int]:
    """Largest axis-aligned rectangle inside a w x h image rotated by `a` radians about its centre."""
    long, short = max(w, h), min(w, h)
    sin, cos = abs(np.sin(a)), abs(np.cos(a))
    if short <= 2 * sin * cos * long or abs(sin - cos) < 1e-10:
        x = 0.5 * short
        cw, ch = (x / sin, x / cos) if w >= h else (x / cos, x / sin)
    else:
        cos2 = cos * cos - sin * sin
        cw, ch = (w * cos - h * sin) / cos2, (h * cos - w * sin) / cos2
    return max(1, int(cw) - 2), max(1, int(ch) - 2)  # 1 px margin each side: no interpolated black edge


def jpeg10_blur(img, rng):
    radius = round(float(rng.uniform(1.0, 2.0)), 3)
    return img.filter(ImageFilter.GaussianBlur(radius)), {"blur_radius": radius, "quality": 10}


def grey_contrast(img, rng):
    factor = round(float(rng.uniform(1.3, 1.8)), 3)
    grey = ImageOps.grayscale(img).convert("RGB")
    return ImageEnhance.Contrast(grey).enhance(factor), {"contrast": factor}


def resize25(img, rng):
    w, h = img.size
    size = (max(1, round(w / 4)), max(1, round(h / 4)))
    return img.resize(size, Image.BICUBIC), {"size": list(size)}


def hflip(img, rng):
    return ImageOps.mirror(img), {}


def crop16x9(img, rng):
    w, h = img.size
    cw, ch = (w, round(w * 9 / 16)) if w * 9 <= h * 16 else (round(h * 16 / 9), h)
    box = _crop_box(w, h, cw, ch, rng)
    return img.crop(box), {"box": box}


def overlay(img, rng):
    """A caption in PIL's default font and a filled logo shape, at seeded places and colours."""
    out = img.copy()
    w, h = out.size
    draw = ImageDraw.Draw(out)
    size = max(8, h // 8)
    text = "".join(rng.choice(list("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"), 8))
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    x, y = int(rng.integers(0, max(1, w // 3))), int(rng.integers(0, max(1, h - size)))
    draw.text((x, y), text, font=ImageFont.load_default(size=size), fill=colour)
    r = max(4, min(w, h) // 8)
    cx, cy = int(rng.integers(r, max(r + 1, w - r))), int(rng.integers(r, max(r + 1, h - r)))
    logo = tuple(int(c) for c in rng.integers(0, 256, 3))
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=logo, outline=(255, 255, 255), width=max(1, r // 5))
    return out, {"text": text, "text_xy": [x, y], "text_px": size, "logo_xy": [cx, cy], "logo_radius": r}


def colour(img, rng):
    bright = round(float(rng.choice([-1, 1]) * rng.uniform(0.25, 0.4) + 1), 3)
    sat = round(float(rng.choice([0.4, 1.8]) * rng.uniform(0.9, 1.1)), 3)
    return ImageEnhance.Color(ImageEnhance.Brightness(img).enhance(bright)).enhance(sat), \
        {"brightness": bright, "saturation": sat}


def perspective(img, rng):
    """Each output corner samples a point moved 3-8 % of the size inward: a mild warp with no empty corners."""
    w, h = img.size
    inward = rng.uniform(0.03, 0.08, size=(4, 2)) * [w, h]
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], float)
    source = corners + inward * [[1, 1], [-1, 1], [-1, -1], [1, -1]]
    coeffs = _perspective_coeffs(corners, source)
    warped = img.transform((w, h), Image.PERSPECTIVE, coeffs, resample=Image.BICUBIC)
    return warped, {"source_corners": np.round(source, 2).tolist()}


def _perspective_coeffs(out_pts: np.ndarray, in_pts: np.ndarray) -> tuple[float, ...]:
    """The 8 coefficients PIL wants: output (x, y) -> input ((ax+by+c)/(gx+hy+1), (dx+ey+f)/(gx+hy+1))."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(out_pts, in_pts):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return tuple(float(c) for c in np.linalg.solve(np.array(rows), np.array(rhs)))


def crop25(img, rng):
    """Half the width and height (a quarter of the area) at a seeded place, enlarged back to the original size."""
    w, h = img.size
    box = _crop_box(w, h, max(1, round(w / 2)), max(1, round(h / 2)), rng)
    return img.crop(box).resize((w, h), Image.BICUBIC), {"box": box}


def pip(img, rng, host):
    """The original shrunk to 30-50 % of the host's side (its aspect kept) and pasted at a seeded place;
    `rect` is where it lies in the copy's pixels."""
    hw, hh = host.size
    scale = float(rng.uniform(0.3, 0.5)) * min(hw / img.width, hh / img.height)
    pw, ph = max(1, round(img.width * scale)), max(1, round(img.height * scale))
    left, top = int(rng.integers(0, hw - pw + 1)), int(rng.integers(0, hh - ph + 1))
    out = host.convert("RGB").copy()
    out.paste(img.resize((pw, ph), Image.BICUBIC), (left, top))
    return out, {"rect": [left, top, left + pw, top + ph], "scale": round(scale, 4)}


def small_crop(img, rng):
    """10-16 % of the area at a seeded place, rotated by 3-6 degrees (cropped inside), halved, JPEG quality 30."""
    w, h = img.size
    side = float(np.sqrt(rng.uniform(0.10, 0.16)))
    box = _crop_box(w, h, max(1, round(side * w)), max(1, round(side * h)), rng)
    angle = float(rng.uniform(3, 6) * rng.choice([-1, 1]))
    turned = _rotate_inside(img.crop(box), angle)
    half = (max(1, turned.width // 2), max(1, turned.height // 2))
    return turned.resize(half, Image.BICUBIC), {"box": box, "angle": round(angle, 3), "size": list(half),
                                                  "quality": 30}


EDITS = (
    Edit("crop60", "a crop of 60 % of the width and height at a seeded place", crop60),
    Edit("rotate_crop", "rotation by 7-10 degrees (either way), cropped to the largest upright rectangle "
                        "inside (no empty corners)", rotate_crop),
    Edit("jpeg10_blur", "Gaussian blur (radius 1-2 px), saved as JPEG quality 10", jpeg10_blur),
    Edit("grey_contrast", "greyscale, contrast x1.3-1.8", grey_contrast),
    Edit("resize25", "resized to 25 % of the width and height", resize25),
    Edit("hflip", "horizontal flip", hflip),
    Edit("crop16x9", "the largest 16:9 crop at a seeded place", crop16x9),
    Edit("overlay", "an 8-character caption in PIL's default font and a filled circle logo, "
                    "seeded places and colours", overlay),
    Edit("colour", "brightness x0.6-0.75 or x1.25-1.4, saturation about x0.4 or x1.8", colour),
    Edit("perspective", "a mild perspective warp: each corner pulled 3-8 % inward", perspective),
)
PARTIAL_EDITS = (
    Edit("crop25", "half the width and height (a quarter of the area) at a seeded place, enlarged back", crop25),
    Edit("pip", "the original pasted at 30-50 % of the side into another image of the sources (not an original); "
                "`rect` records where", pip, needs_host=True),
    Edit("small_crop", "10-16 % of the area, rotated 3-6 degrees, halved, JPEG quality 30", small_crop),
)
EDITS_BY_NAME = {e.name: e for e in EDITS + PARTIAL_EDITS}


def edits_named(names: str) -> tuple[Edit, ...]:
    """'copies' (EDITS), 'partial' (PARTIAL_EDITS) or comma-separated edit names -> those edits."""
    sets = {"copies": EDITS, "partial": PARTIAL_EDITS}
    if names in sets:
        return sets[names]
    unknown = [n for n in names.split(",") if n not in EDITS_BY_NAME]
    if unknown or not names:
        raise ValueError(f"unknown edit(s) {', '.join(unknown) or repr(names)}: choose 'copies', 'partial' or "
                         f"names among {', '.join(EDITS_BY_NAME)}")
    return tuple(EDITS_BY_NAME[n] for n in names.split(","))


def edit_rng(seed: int, original: str, edit: str) -> np.random.Generator:
    """The generator of one edit of one original: independent of the others, so each copy is reproducible alone."""
    return np.random.default_rng([seed, zlib.crc32(original.encode()), zlib.crc32(edit.encode())])


def jpeg_bytes(img: Image.Image, quality: int = QUALITY) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality, optimize=False)
    return buf.getvalue()


def make_copy(img: Image.Image, edit: Edit, seed: int, original: str,
              host: Image.Image | None = None) -> tuple[bytes, dict]:
    """JPEG bytes of one edited copy and the parameters it used (`host`: the image a pasting edit pastes into)."""
    args = (img.convert("RGB"), edit_rng(seed, original, edit.name))
    if edit.needs_host:
        if host is None:
            raise ValueError(f"edit {edit.name!r} pastes into another image: give it a host")
        args += (host,)
    out, params = edit.apply(*args)
    return jpeg_bytes(out, params.get("quality", QUALITY)), params


def original_name(path: Path, root: Path) -> str:
    """A label naming an original uniquely: its path below the source folder, as one safe word."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", str(path.relative_to(root).with_suffix("")))


def pick_originals(sources: Sequence[Path], count: int, seed: int
                   ) -> tuple[list[tuple[Path, str]], list[Path]]:
    """`count` (path, name) pairs drawn without replacement from every image below `sources` (seeded), and the
    images left over (the hosts a pasting edit draws from)."""
    found = [(p, (f"{Path(s).name}_" if len(sources) > 1 else "") + original_name(p, Path(s)))
             for s in sources for p in walk_images(Path(s))]
    if len(found) < count:
        raise ValueError(f"{count} originals asked for, but only {len(found)} images below "
                         f"{', '.join(map(str, sources))}")
    picks = set(np.random.default_rng(seed).choice(len(found), count, replace=False).tolist())
    return [found[i] for i in sorted(picks)], [p for i, (p, _) in enumerate(found) if i not in picks]


def _read(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def _host(hosts: Sequence[Path], seed: int, original: str) -> tuple[Path, Image.Image]:
    """The image a pasting edit of `original` pastes into: a seeded draw among the images that are not
    originals (so no copy holds two originals); the next one if that one does not decode."""
    if not hosts:
        raise ValueError("a pasting edit needs images beside the originals to paste into: ask for fewer originals")
    start = int(edit_rng(seed, original, "host").integers(len(hosts)))
    for i in range(len(hosts)):
        path = hosts[(start + i) % len(hosts)]
        try:
            return path, _read(path)
        except DECODE_ERRORS:
            continue
    raise ValueError("no image to paste into decodes")


def make_copies(sources: Sequence[Path], out: Path, originals: int = 300, seed: int = 0,
                edits: Sequence[Edit] = EDITS) -> dict:
    """Write the set to `out` (see the module docstring); returns the manifest. Unreadable originals are
    skipped and listed in the manifest."""
    out = Path(out)
    manifest = {"seed": seed, "sources": [str(s) for s in sources],
                "edits": {e.name: e.description for e in edits}, "originals": [], "skipped": []}
    picked, hosts = pick_originals(sources, originals, seed)
    for path, name in picked:
        try:
            img = _read(path)
        except DECODE_ERRORS as exc:
            manifest["skipped"].append({"path": str(path), "reason": str(exc) or type(exc).__name__})
            continue
        _write(out / "queries" / name / f"{name}.jpg", jpeg_bytes(img))
        copies = {}
        for edit in edits:
            host_path, host = _host(hosts, seed, name) if edit.needs_host else (None, None)
            data, params = make_copy(img, edit, seed, name, host)
            _write(out / "db" / name / f"{edit.name}.jpg", data)
            copies[edit.name] = {**params, "host": str(host_path)} if host_path else params
        manifest["originals"].append({"name": name, "source": str(path), "size": list(img.size), "copies": copies})
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
