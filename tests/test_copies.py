"""make-copies: every edit is deterministic, opens, and has the geometry it promises."""
import io
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from vqgram.cli import main
from vqgram.copies import EDITS, EDITS_BY_NAME, make_copies, make_copy


@pytest.fixture(scope="module")
def original(photos):
    return Image.open(sorted((photos / "coffee").iterdir())[0]).convert("RGB")


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


@pytest.mark.parametrize("edit", EDITS, ids=lambda e: e.name)
def test_each_edit_is_deterministic_and_opens(edit, original):
    first, params = make_copy(original, edit, 0, "coffee_0")
    again, params_again = make_copy(original, edit, 0, "coffee_0")
    assert first == again and params == params_again
    assert decode(first).size[0] >= 1


def test_seeded_edits_differ_by_seed_and_by_original(original):
    for name in ("crop60", "rotate_crop", "overlay", "colour", "perspective"):
        edit = EDITS_BY_NAME[name]
        a = make_copy(original, edit, 0, "x")[1]
        assert a != make_copy(original, edit, 1, "x")[1] or a != make_copy(original, edit, 0, "y")[1], name


def test_geometry(original):
    w, h = original.size
    size = {e.name: decode(make_copy(original, e, 0, "o")[0]).size for e in EDITS}
    assert size["crop60"] == (round(0.6 * w), round(0.6 * h))
    assert size["resize25"] == (round(w / 4), round(h / 4))
    cw, ch = size["crop16x9"]
    assert abs(cw / ch - 16 / 9) < 0.02 and (cw == w or ch == h)
    for same in ("hflip", "jpeg10_blur", "grey_contrast", "overlay", "colour", "perspective"):
        assert size[same] == (w, h), same
    # the rotated crop lies inside the rotated image: smaller than the original, larger than a 10-degree bound
    # (the largest crop of the image's own shape inside it turned by 10 degrees; 1 / (cos + sin) when square)
    rw, rh = size["rotate_crop"]
    c, s = np.cos(np.radians(10)), np.sin(np.radians(10))
    bound = min(w / (w * c + h * s), h / (w * s + h * c))
    assert int(bound * min(w, h)) - 4 <= min(rw, rh) < min(w, h)


@pytest.mark.parametrize("name", ["rotate_crop", "perspective"])
def test_no_empty_corners(name):
    white = Image.new("RGB", (300, 200), "white")
    out = np.asarray(decode(make_copy(white, EDITS_BY_NAME[name], 3, "w")[0]).convert("L"))
    assert out.min() > 230  # a black corner would show as dark pixels


def test_greyscale_and_flip(original):
    grey = np.asarray(decode(make_copy(original, EDITS_BY_NAME["grey_contrast"], 0, "o")[0])).astype(int)
    assert np.abs(grey - grey[..., :1]).max() <= 8  # JPEG chroma noise only
    flipped = np.asarray(decode(make_copy(original, EDITS_BY_NAME["hflip"], 0, "o")[0]).convert("L"), float)
    plain = np.asarray(original.convert("L"), float)
    assert np.abs(flipped[:, ::-1] - plain).mean() < np.abs(flipped - plain).mean()


def test_make_copies_layout_and_same_bytes(tmp_path, photos):
    result = CliRunner().invoke(main, ["make-copies", str(photos), str(tmp_path / "a"), "--originals", "2"])
    assert result.exit_code == 0, result.output
    manifest = make_copies([photos], tmp_path / "b", originals=2)
    names = [o["name"] for o in manifest["originals"]]
    assert len(names) == 2 and json.loads((tmp_path / "a" / "copies.json").read_text())["originals"][0]["name"] \
        == names[0]
    for name in names:
        assert (tmp_path / "a" / "queries" / name / f"{name}.jpg").is_file()
        for edit in EDITS:
            a, b = (tmp_path / d / "db" / name / f"{edit.name}.jpg" for d in "ab")
            assert a.read_bytes() == b.read_bytes()
    assert sorted(manifest["originals"][0]["copies"]) == sorted(e.name for e in EDITS)


def test_too_few_images_is_a_one_line_error(tmp_path, photos):
    result = CliRunner().invoke(main, ["make-copies", str(photos), str(tmp_path / "o"), "--originals", "999"])
    assert result.exit_code == 1 and "only 33 images" in result.output
