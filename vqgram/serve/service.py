"""What the page's API does, as plain methods: one index and one model, loaded once, shared by all clients.

Every engine call runs on one dedicated thread. The backends keep per-commit
caches in plain dicts, and Lucene's objects live in the JVM, where a thread
must be attached before its first call (and detached before it ends): one
long-lived thread gives both safety and a single attach. Encoding an upload
(decode, the network) runs on that thread too: torch already spreads one image
over all cores, and every other thread that runs the network starts an OpenMP
team of its own; with more such threads than cores, libgomp stops spinning
between parallel regions and each region waits for its threads to wake (an
encode took 80-124 ms in a request thread against ~50 ms in one thread, on two
cores). Header checks of an upload stay in the caller's thread.

While it serves, another process may add to the index (`vqgram index`): every
`reload_every` seconds the engine thread asks the backend whether a newer
commit exists (`Backend.refresh`) and, when one does, opens a new Searcher on
it (the model is kept) and swaps it in, so new photos are found and counted
within seconds of their commit, without a restart.
"""
from __future__ import annotations

import io
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, TypeVar

from PIL import Image

from ..images import DECODE_ERRORS
from ..indexer.backend import Hit, hits_json
from ..searcher.local_match import MIN_LOCAL_INLIERS
from ..searcher.options import OPTION_MODES, SearchOptions, backend_modes, unused_options
from ..searcher.rankers import Query
from ..searcher.searcher import Searcher
from ..tokenizer.embedding_sizes import embedding_sizes
from .collection import Collection

T = TypeVar("T")
log = logging.getLogger("vqgram")

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_UPLOAD_PIXELS = 40_000_000  # 40 megapixels: a big phone photo, not a decompression bomb
MAX_K = 200
MAX_VERIFY = 100  # hits re-ranked by geometric verification: about 20 ms each on two cores
RELOAD_EVERY = 2.0  # seconds between checks for another process's commit


class UnknownDocument(LookupError):
    """A document id the index does not hold (the API answers 404)."""

    def __init__(self, doc_id: str):
        super().__init__(f"no document {doc_id!r} in this index")


class UploadRejected(ValueError):
    """An upload the server will not decode: `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    upload_bytes: int = MAX_UPLOAD_BYTES
    upload_pixels: int = MAX_UPLOAD_PIXELS
    k: int = MAX_K
    verify: int = MAX_VERIFY


class SearchService:
    """An index opened for serving: searches by upload, text and indexed image, and document lookups."""

    def __init__(self, index: str | Path, limits: Limits = Limits(), reload_every: float = RELOAD_EVERY):
        self.index, self.limits = Path(index), limits
        self._engine = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vqgram-engine")
        self.searcher: Searcher = self._on_engine(lambda: Searcher(index))
        self.backend_name = self.searcher.handle.manifest.backend
        self._on_engine(self.searcher.load)  # the model, embeddings and metadata: now, not on the first query
        self.tokenizer = self.searcher.tokenizer
        self.collection = Collection(self._on_engine(self.searcher.handle.backend.documents))
        self.generation = 0  # commits taken in since start: the page reloads what it shows when it moves
        self._behind = False
        self._stop = threading.Event()
        self._watcher = None
        if reload_every > 0:
            self._watcher = threading.Thread(target=self._watch, args=(reload_every,), daemon=True,
                                             name="vqgram-reload")
            self._watcher.start()

    def _on_engine(self, fn: Callable[[], T]) -> T:
        return self._engine.submit(fn).result()

    @property
    def documents(self):
        """The metadata of every document of the commit being served (a DocTable)."""
        return self.collection.table

    # --- another process's commits --------------------------------------------------------

    def _watch(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self._on_engine(self.reload)
            except Exception as exc:  # a commit being replaced, a damaged one: keep serving the last good one
                if self._stop.is_set():  # closing: the engine thread is shutting down
                    return
                log.warning("index %s: reload failed (%s); serving the last commit read", self.index,
                            str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    def reload(self) -> bool:
        """On the engine thread: a Searcher on the index's last commit when it is newer than the one served
        (the backend's reader reopened, its caches dropped with the old Searcher); True when it was."""
        if not (self.searcher.handle.backend.refresh() or self._behind):
            return False
        self._behind = True  # until the new commit is served: a failure below is tried again at the next check
        fresh = Searcher(self.index, tokenizer=self.tokenizer)
        old, self.searcher = self.searcher, fresh
        self.collection = Collection(fresh.handle.backend.documents())
        self.generation += 1
        self._behind = False
        old.close()
        log.info("index %s: serving its commit of %d documents", self.index, len(self.documents))
        return True

    # --- what the page asks ---------------------------------------------------------------

    def info(self) -> dict:
        manifest = self.searcher.handle.manifest
        lift = manifest.tokenizer.model.lift
        return {"documents": len(self.documents), "generation": self.generation, "backend": self.backend_name,
                "modes": list(backend_modes(self.backend_name)),
                "dims": list(embedding_sizes(manifest.tokenizer.model)), "model": manifest.model_path,
                "model_sha256": manifest.model_sha256, "tokenizer": asdict(manifest.tokenizer.kgram),
                "words_per_image": lift.active if lift is not None else None,  # None: no query_words option
                "option_modes": {name: OPTION_MODES[name] for name in ("dims", "query_words")},
                "max_upload_bytes": self.limits.upload_bytes, "max_k": self.limits.k,
                "max_verify": self.limits.verify,
                "min_local_inliers": MIN_LOCAL_INLIERS}  # fewer: a hit's boxes are a guess (drawn dashed)

    def options(self, mode: str = "bm25", filter: str | None = None, dims: int | None = None,
                verify: int = 0, query_words: int | None = None) -> SearchOptions:
        """SearchOptions from request fields; ValueError (one line) for a bad mode, filter, width or depth."""
        modes = backend_modes(self.backend_name)
        if mode not in modes:
            raise ValueError(f"unknown mode {mode!r} for a {self.backend_name} index; choose one of: "
                             f"{', '.join(modes)}")
        given = [name for name, value in (("dims", dims), ("query_words", query_words)) if value is not None]
        unused = unused_options(given, mode, self.backend_name)
        if unused:
            raise ValueError("; ".join(f"{name} {why}" for name, why in unused))
        if not 0 <= verify <= self.limits.verify:
            raise ValueError(f"verify={verify} must be in 0..{self.limits.verify} (hits re-ranked; 0: off)")
        # an index whose model makes local words shows where each hit matched (boxes from stored positions)
        explain = self.searcher.handle.manifest.tokenizer.model.grid is not None
        options = SearchOptions(mode=mode, filter=filter or None, dims=dims, verify=verify, query_words=query_words,
                                explain=explain)
        self.searcher.check_options(options)
        return options

    def check_k(self, k: int) -> int:
        if not 1 <= k <= self.limits.k:
            raise ValueError(f"k={k} must be in 1..{self.limits.k}")
        return k

    def encode_upload(self, data: bytes, query_words: int | None = None) -> Query:
        """An uploaded image as a query (`query_words` lifted words); UploadRejected (413, 415) for one we
        will not decode."""
        if len(data) > self.limits.upload_bytes:
            raise UploadRejected(413, f"the image is {len(data):,} bytes; the limit is {self.limits.upload_bytes:,}")
        try:
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
        except DECODE_ERRORS:
            raise UploadRejected(415, "the upload is not an image this server can read (jpg, png, webp, bmp, gif, "
                                      "tiff)") from None
        if width * height > self.limits.upload_pixels:
            raise UploadRejected(413, f"the image is {width}x{height} pixels; the limit is "
                                      f"{self.limits.upload_pixels:,} pixels")
        try:
            return self._on_engine(lambda: self.searcher.encode_image(data, query_words))
        except (*DECODE_ERRORS, ValueError) as exc:
            raise UploadRejected(415, f"the image could not be decoded ({str(exc).splitlines()[0]})") from None

    def search_upload(self, data: bytes, k: int, options: SearchOptions) -> dict:
        start = time.perf_counter()
        query = self.encode_upload(data, self._on_engine(lambda: self.searcher.query_words_for(options)))
        encoded = time.perf_counter()
        hits = self._on_engine(lambda: self.searcher.search(query, k, options))
        done = time.perf_counter()
        return {"hits": hits_json(hits), "took_ms": 1000 * (done - start), "encode_ms": 1000 * (encoded - start),
                "query_size": list(query.size)}

    def search_text(self, query: str, k: int, filter: str | None = None) -> dict:
        if not query.strip():
            raise ValueError("the query is empty; give q=TEXT in the engine's query syntax, e.g. label:cat")
        SearchOptions(filter=filter or None)  # a bad filter fails here, in one line
        return self._timed(lambda: self.searcher.search_text(query, k, filter or None))

    def similar(self, doc_id: str, k: int, options: SearchOptions) -> dict:
        """More like an indexed image; UnknownDocument for an id the index does not hold."""
        row = self.documents.row(doc_id)
        if row is None:
            raise UnknownDocument(doc_id)
        size = [int(self.documents.width[row]), int(self.documents.height[row])]
        return {**self._timed(lambda: self.searcher.similar(doc_id, k, options)), "query_size": size}

    def browse(self, order: str = "newest", seed: int = 0, offset: int = 0, limit: int = 60,
               filter: str | None = None) -> dict:
        """A page of the collection (Collection.page); ValueError for a bad order, offset, limit or filter."""
        if not 1 <= limit <= self.limits.k:
            raise ValueError(f"limit={limit} must be in 1..{self.limits.k}")
        return self.collection.page(order, seed, offset, limit, filter)

    def labels(self) -> dict:
        """{"labels": [{"label", "count"}] by name, "unlabelled": count, "documents": count}: the engine's
        counts over its `label` terms, of the commit being served."""
        def count() -> tuple[dict[str, int], int]:
            backend = self.searcher.handle.backend
            return backend.label_counts(), backend.count()

        counts, documents = self._on_engine(count)
        return {"labels": [{"label": label, "count": n} for label, n in sorted(counts.items())],
                "unlabelled": documents - sum(counts.values()), "documents": documents}

    def path_of(self, doc_id: str) -> Path:
        """The file of an indexed document (never a client path); UnknownDocument for an id the index
        does not hold."""
        row = self.documents.row(doc_id)
        if row is None:
            raise UnknownDocument(doc_id)
        return Path(str(self.documents.paths[row]))

    def _timed(self, search: Callable[[], list[Hit]]) -> dict:
        start = time.perf_counter()
        hits = self._on_engine(search)
        return {"hits": hits_json(hits), "took_ms": 1000 * (time.perf_counter() - start)}

    def close(self) -> None:
        """Stop watching for commits; close the index on its thread, detach that thread from the JVM (if it
        used one), stop it."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()

        def shut() -> None:
            self.searcher.close()
            if self.backend_name == "lucene":
                import jnius

                jnius.detach()

        self._on_engine(shut)
        self._engine.shutdown()
