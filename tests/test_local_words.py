"""Local words (the default model's grid head): a copy of which only a part survives is found by its original and
boxed where it matched, from the positions the engine stores; the partial edits of make-copies."""
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import BACKENDS, EXAMPLES
from vqgram import Query, SearchOptions, Searcher, index_folder
from vqgram.copies import PARTIAL_EDITS, make_copies
from vqgram.local_words import LocalWords, is_local


@pytest.fixture(scope="module")
def partial_set(tmp_path_factory):
    """Four sample photos as queries; their three partial copies each (crop25, pip, small_crop), 12 in all,
    the pip copies pasted into other sample photos."""
    folder = tmp_path_factory.mktemp("partial")
    manifest = make_copies([EXAMPLES / "photos"], folder, originals=4, seed=1, edits=PARTIAL_EDITS)
    return folder, {o["name"]: o for o in manifest["originals"]}


@pytest.fixture(scope="module")
def partial_index(partial_set, tokenizer, tmp_path_factory):
    folder, _ = partial_set
    made = {}

    def index_of(backend):
        if backend not in made:
            made[backend] = tmp_path_factory.mktemp(f"partial-{backend}") / "index"
            index_folder(folder / "db", made[backend], tokenizer, backend=backend, progress=False, workers=0)
        return made[backend]
    return index_of


def _inside(box, rect) -> bool:
    x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return rect[0] <= x <= rect[2] and rect[1] <= y <= rect[3]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_pasted_copy_is_found_by_its_original_and_boxed_where_it_lies(partial_set, partial_index, backend):
    folder, originals = partial_set
    cat = originals["cat_chelsea"]
    with Searcher(partial_index(backend)) as s:
        query = s.encode_image(folder / "queries" / "cat_chelsea" / "cat_chelsea.jpg")
        assert query.local is not None and len(query.local.grids) > 1  # read at several scales
        hits = s.search(query, 3, SearchOptions(explain=True))
    assert {h.label for h in hits} == {"cat_chelsea"}  # its three partial copies first, of 12
    pip = next(h for h in hits if h.path.endswith("pip.jpg"))
    assert pip.boxes and pip.matched and all(is_local(w) for w in pip.matched)
    assert all(0 <= x0 < x1 <= pip.width and 0 <= y0 < y1 <= pip.height for x0, y0, x1, y1 in pip.boxes)
    assert _inside(pip.boxes[0], cat["copies"]["pip"]["rect"])  # the manifest's rectangle, in the copy's pixels
    qw, qh = cat["size"]
    x0, y0, x1, y1 = pip.query_box
    assert 0 <= x0 < x1 <= qw and 0 <= y0 < y1 <= qh


def test_verification_reads_stored_positions_not_the_files(partial_set, partial_index, tmp_path):
    """--verify from stored positions re-ranks with every indexed file gone; from files it cannot."""
    folder, _ = partial_set
    index = tmp_path / "index"
    shutil.copytree(partial_index("tantivy"), index)
    query_image = tmp_path / "query.jpg"
    shutil.copyfile(folder / "queries" / "rocket_rocket" / "rocket_rocket.jpg", query_image)
    db = folder / "db"
    moved = tmp_path / "moved"
    db.rename(moved)  # no indexed image can be opened now
    try:
        with Searcher(index) as s:
            query = s.encode_image(query_image)
            plain = s.search(query, 12)
            checked = s.search(query, 12, SearchOptions(verify=12))
    finally:
        moved.rename(db)
    assert sorted(h.id for h in checked) == sorted(h.id for h in plain)
    assert all(h.inliers is not None for h in checked)
    inliers = [h.inliers for h in checked]
    verified = [n for n in inliers if n >= 4]
    assert verified and inliers[: len(verified)] == sorted(verified, reverse=True)  # verified first, most first
    assert checked[0].label == "rocket_rocket"


def test_stored_positions_are_the_documents_local_words(partial_set, partial_index, tokenizer):
    folder, _ = partial_set
    image = folder / "db" / "cell_cell" / "crop25.jpg"
    words, local = tokenizer.document(image)
    with Searcher(partial_index("tantivy")) as s:
        (hit,) = [h for h in s.search(Query(words), 12) if h.path == str(image.resolve())]
        stored = LocalWords.from_bytes(s.handle.backend.stored_positions([hit.id])[hit.id])
    assert np.array_equal(stored.codes, local.codes) and stored.grids == local.grids
    assert np.array_equal(stored.rows, local.rows) and np.array_equal(stored.cols, local.cols)
    assert sum(n for w, n in words.items() if is_local(w)) == len(local.codes) == local.grids[0][0] * local.grids[0][1]


def test_make_copies_partial_edits(partial_set):
    folder, originals = partial_set
    manifest = json.loads((folder / "copies.json").read_text())
    assert list(manifest["edits"]) == ["crop25", "pip", "small_crop"]
    chosen = set(originals)
    for name, original in originals.items():
        w, h = original["size"]
        copies = {p.stem: Image.open(p) for p in (folder / "db" / name).glob("*.jpg")}
        assert set(copies) == {"crop25", "pip", "small_crop"}
        assert copies["crop25"].size == (w, h)  # a quarter of the area, enlarged back
        x0, y0, x1, y1 = original["copies"]["crop25"]["box"]
        assert (x1 - x0, y1 - y0) == (round(w / 2), round(h / 2))
        pip = original["copies"]["pip"]
        host = Image.open(pip["host"])
        assert copies["pip"].size == host.size
        assert host.filename.rsplit("/", 2)[-2] + "_" + host.filename.rsplit("/", 1)[-1][:-4] not in chosen
        rx0, ry0, rx1, ry1 = pip["rect"]
        side = max((rx1 - rx0) / host.width, (ry1 - ry0) / host.height)
        assert 0 <= rx0 < rx1 <= host.width and 0 <= ry0 < ry1 <= host.height and 0.29 <= side <= 0.51
        sw, sh = copies["small_crop"].size
        assert sw * sh <= 0.16 * w * h / 4 + 1  # at most 16 % of the area, halved in each side
