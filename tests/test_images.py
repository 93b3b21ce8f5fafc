from pathlib import Path

import pytest
from PIL import Image

from vqgram.images import ImageFile, Skipped, bucket_batches, iter_batches, load_rgb, probe, target_size, walk_images


def save(path: Path, size=(40, 30), fmt=None, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 30, 30)).save(path, fmt, **kw)
    return path


def test_walk_is_recursive_any_case_and_skips_hidden(tmp_path):
    save(tmp_path / "a" / "x.JPG")
    save(tmp_path / "a" / "b" / "y.png")
    save(tmp_path / "z.TIFF", fmt="TIFF")
    save(tmp_path / ".hidden" / "h.jpg")
    (tmp_path / "notes.txt").write_text("hi")
    found = [p.relative_to(tmp_path).as_posix() for p in walk_images(tmp_path)]
    assert found == ["a/b/y.png", "a/x.JPG", "z.TIFF"]


def test_walk_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder not found"):
        walk_images(tmp_path / "nope")
    f = save(tmp_path / "x.jpg")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        walk_images(f)


def test_probe_reads_header_label_and_hash(tmp_path):
    item = probe(save(tmp_path / "cats" / "c.jpg", (64, 48)), tmp_path)
    assert isinstance(item, ImageFile)
    assert (item.label, item.width, item.height) == ("cats", 64, 48)
    assert len(item.sha) == 20


@pytest.mark.parametrize("content,reason", [
    (b"", "empty file"),
    (b"this is not an image", "not a readable image"),
])
def test_probe_skips_bad_files(tmp_path, content, reason):
    p = tmp_path / "bad.jpg"
    p.write_bytes(content)
    item = probe(p, tmp_path)
    assert isinstance(item, Skipped) and reason in item.reason


def test_exif_orientation_swaps_size(tmp_path):
    img = Image.new("RGB", (60, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90
    p = tmp_path / "r.jpg"
    img.save(p, exif=exif)
    assert (probe(p, tmp_path).width, probe(p, tmp_path).height) == (20, 60)
    assert load_rgb(p).size == (20, 60)


def test_gif_first_frame_and_grayscale_become_rgb(tmp_path):
    frames = [Image.new("P", (16, 16), i) for i in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    Image.new("L", (16, 16), 7).save(tmp_path / "g.png")
    for name in ("a.gif", "g.png"):
        assert load_rgb(tmp_path / name).mode == "RGB"


@pytest.mark.parametrize("w,h,expected", [
    (224, 224, (224, 224)),
    (640, 480, (224, 160)),
    (4000, 100, (224, 32)),  # panorama: the short side is at least one cell
    (1, 1, (224, 224)),
])
def test_target_size_keeps_aspect_and_stride(w, h, expected):
    assert target_size(w, h, 224, 32) == expected


def test_buckets_share_one_shape(tmp_path):
    files = [ImageFile(f"{i}", "", w, h, 0, 1, f"{i}") for i, (w, h) in
             enumerate([(100, 100), (640, 480), (100, 101), (480, 640), (200, 200)])]
    batches = bucket_batches(files, 224, 32, batch_size=2)
    assert sorted(i for b in batches for i in b) == list(range(5))
    for b in batches:
        assert len({target_size(files[i].width, files[i].height, 224, 32) for i in b}) == 1
        assert len(b) <= 2


def test_a_corrupt_file_in_a_batch_is_reported_not_fatal(tmp_path):
    good = save(tmp_path / "good.jpg", (64, 64))
    bad = save(tmp_path / "bad.jpg", (64, 64))
    files = [probe(good, tmp_path), probe(bad, tmp_path)]
    bad.write_bytes(bad.read_bytes()[:200])  # truncated after probing
    out = list(iter_batches(files, max_size=64, multiple=32, mean=(0.5,) * 3, std=(0.5,) * 3, workers=0))
    pixels, ok, skipped = out[0]
    assert ok == [0] and pixels.shape == (1, 3, 64, 64)
    assert skipped[0][0] == 1 and "not a readable image" in skipped[0][1]
