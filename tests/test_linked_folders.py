"""A library whose sub-folders are links (albums linked in from other disks): every command that walks a
folder follows them, each real folder once, and a loop of links ends."""
import logging
import shutil

import pytest
from click.testing import CliRunner

from vqgram.cli import main
from vqgram.images import walk_images

ALBUMS = ("brick", "cat", "cell", "coffee", "hubble", "rocket")  # 18 photos


@pytest.fixture(scope="module")
def library(tmp_path_factory, photos):
    """library/<album> are links to albums elsewhere; library/cat/back links up to library (a loop) and
    library/zz_again is a second link to the rocket album."""
    root = tmp_path_factory.mktemp("linked")
    for name in ALBUMS:
        shutil.copytree(photos / name, root / "elsewhere" / name)
        (root / "library").mkdir(exist_ok=True)
        (root / "library" / name).symlink_to(root / "elsewhere" / name, target_is_directory=True)
    (root / "elsewhere" / "cat" / "back").symlink_to(root / "library", target_is_directory=True)
    (root / "library" / "zz_again").symlink_to(root / "elsewhere" / "rocket", target_is_directory=True)
    return root / "library"


def test_the_walk_follows_linked_folders_once_each(library, caplog):
    with caplog.at_level(logging.WARNING, logger="vqgram"):
        found = walk_images(library)
    assert len(found) == 18 and len(set(found)) == 18
    assert {p.relative_to(library).parts[0] for p in found} == set(ALBUMS)  # paths keep the links' names
    skipped = [r.getMessage() for r in caplog.records if "each folder is walked once" in r.getMessage()]
    assert len(skipped) == 2  # the loop back up, and the second link to rocket
    assert any("cat/back" in m for m in skipped) and any("zz_again" in m for m in skipped)


def test_index_labels_by_the_links_names(library, tmp_path):
    from vqgram import open_index

    result = CliRunner().invoke(main, ["-q", "index", str(library), "--index", str(tmp_path / "idx"),
                                       "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert "indexed 18" in result.output
    handle = open_index(tmp_path / "idx")
    try:
        labels = handle.backend.documents().labels.tolist()
    finally:
        handle.close()
    assert sorted(set(labels)) == sorted(ALBUMS) and len(labels) == 18


def test_train_scans_linked_folders(library):
    from vqgram.tokenizer.train import scan_folder

    files = scan_folder(library)
    assert len(files) == 18 and {f.label for f in files} == set(ALBUMS)


def test_encode_reads_linked_folders(library, tmp_path):
    from vqgram.distributed.engines import encode_folder
    from vqgram.indexer.rowfiles import iter_records, open_rows

    report = encode_folder(library, tmp_path / "rows", engine="local", workers=1, partition_size=9)
    assert (report.rows, report.skipped) == (18, [])
    labels = [record["label"] for _where, record in iter_records(open_rows(tmp_path / "rows"))]
    assert sorted(set(labels)) == sorted(ALBUMS)
