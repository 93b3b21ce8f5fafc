"""The RootSIFT bag-of-words baseline finds an image's edited copies first."""
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("cv2", reason="the SIFT baseline needs opencv-python-headless")
pytest.importorskip("faiss", reason="the SIFT baseline needs faiss-cpu")

from vqgram.copies import EDITS_BY_NAME, make_copy  # noqa: E402
from vqgram.eval.sift import SiftBoW, SiftConfig, sift_scores  # noqa: E402


def test_copies_rank_each_other_first(tmp_path, photos):
    paths = sorted(str(p) for p in photos.rglob("*.jpg"))
    original = str(sorted((photos / "cat").iterdir())[0])  # the photo; its folder holds two copies of it
    img = Image.open(original)
    copies = []
    for name in ("crop60", "rotate_crop"):
        path = tmp_path / f"{name}.jpg"
        path.write_bytes(make_copy(img, EDITS_BY_NAME[name], 0, "o")[0])
        copies.append(str(path))
    bow = SiftBoW(tmp_path / "cache", photos, SiftConfig(words=256, train_images=33), progress=False)
    db = paths + copies
    scores = sift_scores(bow, db, copies + [original])
    top = np.argsort(-scores, axis=1, kind="stable")
    group = {original, *copies, *(str(p) for p in (photos / "cat").iterdir())}
    for row in top:  # each of the three finds the five images of its photo first, above the 30 other images
        assert {db[i] for i in row[:5]} == group
    again = SiftBoW(tmp_path / "cache", photos, SiftConfig(words=256, train_images=33), progress=False)
    assert np.array_equal(again.vocabulary, bow.vocabulary)  # cached on disk


def test_workers_start_after_opencv_ran_in_this_process(tmp_path, photos):
    """--verify runs OpenCV in the parent; forked workers then hung in their first cv2 call."""
    import subprocess
    import sys

    script = f"""
from pathlib import Path
from vqgram.eval.sift import SiftBoW, SiftConfig
from vqgram.searcher.verify import Verifier
if __name__ == "__main__":
    photos = sorted(Path({str(photos)!r}).rglob("*.jpg"))
    Verifier().inliers(photos[0], [str(photos[1])])
    bow = SiftBoW(Path({str(tmp_path)!r}), Path({str(photos)!r}), SiftConfig(words=64, train_images=10), progress=False)
    print(len(bow.words([str(p) for p in photos[:4]])))
"""
    (tmp_path / "run.py").write_text(script)
    done = subprocess.run([sys.executable, str(tmp_path / "run.py")], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and done.stdout.split() == ["4"], done.stderr[-2000:]
