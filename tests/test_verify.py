"""Geometric verification (--verify): edited copies verify, other photos do not, and searches re-rank by it."""
import json
import logging
import shutil
from dataclasses import replace
from functools import partial

import pytest
from click.testing import CliRunner
from PIL import Image

pytest.importorskip("cv2", reason="--verify needs OpenCV: pip install opencv-python-headless")

from vqgram.cli import main  # noqa: E402
from vqgram.copies import EDITS_BY_NAME, make_copy  # noqa: E402
from vqgram.localfeatures import read_grey, root_sift  # noqa: E402
from vqgram.searcher.searcher import SearchOptions, Searcher  # noqa: E402
from vqgram.searcher.verify import VerifyConfig, Verifier, count_inliers, verified_order  # noqa: E402

FILES = partial(SearchOptions, verify_files=True)  # --verify by RootSIFT on the files (the default reads positions)

EDITS = ("crop60", "rotate_crop", "overlay", "perspective", "colour", "hflip")


@pytest.fixture(scope="module")
def original(photos):
    return sorted((photos / "coffee").iterdir())[0]


@pytest.fixture(scope="module")
def copies(original, tmp_path_factory):
    """{edit: path} of edited copies of one sample photo (make-copies' edits, seed 0)."""
    folder = tmp_path_factory.mktemp("copies")
    img = Image.open(original).convert("RGB")
    out = {}
    for name in EDITS:
        out[name] = folder / f"{name}.jpg"
        out[name].write_bytes(make_copy(img, EDITS_BY_NAME[name], 0, "coffee_0")[0])
    return out


@pytest.fixture(scope="module")
def verifier():
    v = Verifier()
    yield v
    v.close()


def test_verified_hits_move_ahead_by_inliers_and_the_rest_keep_their_order():
    assert verified_order([3, 40, None, 15, 90, 15], 15).tolist() == [4, 1, 3, 5, 0, 2]
    assert verified_order([0, 1, 2], 15).tolist() == [0, 1, 2]


def test_edited_copies_verify_and_other_photos_do_not(verifier, original, copies, photos):
    needed = VerifyConfig().min_inliers
    found = dict(zip(copies, verifier.inliers(original, [str(p) for p in copies.values()])))
    assert all(n >= needed for n in found.values()), found
    others = [str(p) for p in sorted(photos.rglob("*.jpg")) if p.parent != original.parent]  # not its copies
    assert max(verifier.inliers(original, others)) < needed


def test_a_mirrored_copy_verifies_through_the_mirrored_query(original, copies):
    config = VerifyConfig()

    def features(path):
        return root_sift(read_grey(path, config.max_side, config.min_side), config.max_keypoints)

    # a cup on a table is nearly symmetric, so some plain matches survive (23 here), but mirroring finds them
    # all (337)
    plain = count_inliers(features(original), features(copies["hflip"]), config)
    assert Verifier(config).inliers(original, [str(copies["hflip"])])[0] > 5 * max(plain, config.min_inliers)


def test_search_puts_the_original_first_and_only_reorders(photo_index, tokenizer, original, copies):
    with Searcher(photo_index("tantivy"), tokenizer) as searcher:
        for name in ("crop60", "hflip"):
            plain = searcher.search_image(copies[name], 10, SearchOptions(mode="hybrid"))
            hits = searcher.search_image(copies[name], 10, FILES(mode="hybrid", verify=10))
            assert sorted(h.id for h in hits) == sorted(h.id for h in plain)
            assert hits[0].path == str(original) and hits[0].inliers >= VerifyConfig().min_inliers
            others = [h for h in hits if h.label != original.parent.name]  # not the original's indexed copies
            assert others and all(h.inliers < VerifyConfig().min_inliers for h in others)
            assert len(searcher.search_image(copies[name], 3, FILES(mode="hybrid", verify=10))) == 3
        # a full ranking: the head permuted, the tail untouched
        query = searcher.encode_image(copies["crop60"])
        full = searcher.rank(query, None, SearchOptions(mode="dense")).ranking
        checked = searcher.rank(query, None, FILES(mode="dense", verify=8)).ranking
        assert sorted(checked.ids[:8]) == sorted(full.ids[:8]) and (checked.ids[8:] == full.ids[8:]).all()
        assert checked.ids[0] == hits[0].id
        with pytest.raises(ValueError, match="query image"):
            searcher.rank(replace(query, image=None), None, FILES(mode="dense", verify=8))


def test_a_hit_whose_file_is_gone_keeps_its_place_behind_the_verified(tmp_path, tokenizer, photos, original, caplog):
    from vqgram import index_folder

    folder = tmp_path / "photos"
    shutil.copytree(photos / "coffee", folder)
    index_folder(folder, tmp_path / "idx", tokenizer, progress=False, workers=0)
    gone = sorted(folder.iterdir())[-1]
    gone.unlink()
    with Searcher(tmp_path / "idx", tokenizer) as searcher, caplog.at_level(logging.WARNING, "vqgram"):
        hits = searcher.search_image(original, 6, FILES(verify=6))
    assert hits[0].path == str(folder / original.name) and hits[0].inliers >= VerifyConfig().min_inliers
    assert [h.inliers for h in hits if h.path == str(gone)] == [None]
    assert "1 of 3 hit images could not be read" in caplog.text


def test_cli_prints_inliers_and_refuses_verify_where_it_cannot_run(photo_index, copies, original):
    index = str(photo_index("tantivy"))
    out = CliRunner().invoke(main, ["search", index, "--image", str(copies["overlay"]), "--verify", "5", "-k", "3"])
    assert out.exit_code == 0, out.output
    first = out.output.splitlines()[0].split()
    assert first[0] == "1" and int(first[2]) >= VerifyConfig().min_inliers and first[3] == str(original)
    out = CliRunner().invoke(main, ["search", index, "--image", str(copies["overlay"]), "--verify", "5", "--json"])
    hits = json.loads(out.output)["hits"]
    assert hits[0]["path"] == str(original) and hits[0]["inliers"] >= VerifyConfig().min_inliers
    assert "inliers" in hits[4] and "inliers" not in hits[5]  # counted for the top 5 only
    for extra in (["--query", "label:coffee"], ["--image", str(original), "--print-query", "opensearch"]):
        out = CliRunner().invoke(main, ["search", index, *extra, "--verify", "5"])
        assert out.exit_code == 2 and "--verify" in out.output, out.output


def test_an_unreadable_query_is_one_line(verifier, tmp_path, original):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot read the query image .*bad.jpg"):
        verifier.inliers(bad, [str(original)])
    assert verifier.inliers(original, [str(bad)]) == [None]  # an unreadable hit is left unverified


def test_a_query_without_keypoints_says_so_and_verifies_nothing(verifier, tmp_path, original, caplog):
    flat = tmp_path / "flat.png"
    Image.new("RGB", (300, 200), (120, 120, 120)).save(flat)
    with caplog.at_level(logging.WARNING, "vqgram"):
        assert verifier.inliers(flat, [str(original)]) == [0]
    assert "no keypoints in the query image" in caplog.text


def test_the_transform_is_checked_and_both_kinds_verify_a_crop(original, copies):
    with pytest.raises(ValueError, match="transform='homography'"):
        VerifyConfig(transform="homography")
    for kind in ("affine", "similarity"):
        config = VerifyConfig(transform=kind)
        features = [root_sift(read_grey(p, config.max_side, config.min_side), config.max_keypoints)
                    for p in (original, copies["crop60"])]
        assert count_inliers(*features, config) >= config.min_inliers, kind
