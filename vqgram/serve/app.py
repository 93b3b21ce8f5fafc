"""The HTTP layer of `vqgram serve`: Starlette routes over a SearchService, and one-line JSON errors.

    POST /api/search        multipart: image, mode, k, filter, dims, verify, query_words
    GET  /api/search?q=     the engine's query syntax (k, filter)
    GET  /api/similar/{id}  more like an indexed image (mode, k, filter, dims, verify)
    GET  /api/browse        the collection a page at a time (order newest|random, seed, offset, limit, filter)
    GET  /api/labels        documents per label, as the engine counts its `label` terms
    GET  /api/info          documents, commits taken in, backend, model, modes, widths, which modes read
                            which option, limits
    GET  /thumb/{id}        a JPEG thumbnail, <= 256 px
    GET  /photo/{id}        the indexed file itself
    GET  /                  the page (static/index.html, with /static/hits.js, page.js and page.css)

Errors are {"error": "one line"}: 400 for a bad field, 404 for an id the index
does not hold, 413 for an upload over the byte or pixel limit, 415 for one that
is not an image. Files are served only by document id, looked up in the index.
"""
from __future__ import annotations

import mimetypes
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..images import DECODE_ERRORS
from ..searcher.options import SearchOptions
from .service import RELOAD_EVERY, SearchService, UnknownDocument, UploadRejected
from .thumbnails import ThumbnailCache


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _int(value: str | None, name: str, default: int | None) -> int | None:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a whole number") from None


def create_app(service: SearchService, thumbnails: ThumbnailCache | None = None) -> Starlette:
    """The app serving `service` (its index and model are already loaded); closes it on shutdown."""
    thumbs = thumbnails or ThumbnailCache()
    static = files("vqgram.serve").joinpath("static")
    page = static.joinpath("index.html").read_text(encoding="utf-8")
    assets = {name: (static.joinpath(name).read_text(encoding="utf-8"), media)
              for name, media in (("hits.js", "text/javascript"), ("page.js", "text/javascript"),
                                  ("page.css", "text/css"))}

    def options(fields) -> tuple[int, SearchOptions]:
        """(k, options) from form or query fields; ValueError (400) for a bad one."""
        k = service.check_k(_int(fields.get("k"), "k", 10))
        dims = _int(fields.get("dims"), "dims", None)
        verify = _int(fields.get("verify"), "verify", 0)
        query_words = _int(fields.get("query_words"), "query_words", None)
        return k, service.options(fields.get("mode") or "bm25", fields.get("filter"), dims, verify, query_words)

    async def search_upload(request: Request) -> Response:
        length = _int(request.headers.get("content-length"), "content-length", None)
        limit = service.limits.upload_bytes
        if length is not None and length > limit + 64 * 1024:  # the form's other fields and boundaries
            raise UploadRejected(413, f"the upload is {length:,} bytes; the limit is {limit:,}")
        async with request.form(max_files=1, max_fields=10) as form:
            image = form.get("image")
            if not isinstance(image, UploadFile):
                raise ValueError("send the image as a multipart file field named 'image'")
            data = await image.read(limit + 1)
            k, opts = options(form)
        return JSONResponse(await run_in_threadpool(service.search_upload, data, k, opts))

    async def search_text(request: Request) -> Response:
        q = request.query_params
        k = service.check_k(_int(q.get("k"), "k", 10))
        return JSONResponse(await run_in_threadpool(service.search_text, q.get("q", ""), k, q.get("filter")))

    async def similar(request: Request) -> Response:
        k, opts = options(request.query_params)
        return JSONResponse(await run_in_threadpool(service.similar, request.path_params["id"], k, opts))

    async def browse(request: Request) -> Response:
        q = request.query_params
        return JSONResponse(service.browse(q.get("order") or "newest", _int(q.get("seed"), "seed", 0),
                                           _int(q.get("offset"), "offset", 0), _int(q.get("limit"), "limit", 60),
                                           q.get("filter")))

    async def labels(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(service.labels))

    async def info(request: Request) -> Response:
        return JSONResponse(service.info())

    async def thumb(request: Request) -> Response:
        doc_id = request.path_params["id"]
        path = service.path_of(doc_id)  # UnknownDocument (404) unless the index holds this id
        try:
            data = await run_in_threadpool(thumbs.get, doc_id, path)
        except DECODE_ERRORS:
            return _error(404, f"the image of document {doc_id} is gone or unreadable; re-index its folder")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})

    async def photo(request: Request) -> Response:
        doc_id = request.path_params["id"]
        path = service.path_of(doc_id)  # UnknownDocument (404) unless the index holds this id
        if not path.is_file():
            return _error(404, f"the image of document {doc_id} is gone; re-index its folder")
        return FileResponse(path, media_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream")

    async def index_page(request: Request) -> Response:
        return HTMLResponse(page)

    async def asset(request: Request) -> Response:
        found = assets.get(request.path_params["name"])
        if found is None:
            return _error(404, f"no file {request.path_params['name']!r} here")
        return Response(found[0], media_type=found[1])

    async def on_value_error(request: Request, exc: ValueError) -> Response:
        status = exc.status if isinstance(exc, UploadRejected) else 400
        return _error(status, str(exc).splitlines()[0] if str(exc) else "bad request")

    async def on_unknown_id(request: Request, exc: UnknownDocument) -> Response:
        return _error(404, str(exc))

    async def on_http_error(request: Request, exc: HTTPException) -> Response:
        return _error(exc.status_code, str(exc.detail))

    @asynccontextmanager
    async def lifespan(app):
        yield
        await run_in_threadpool(service.close)

    return Starlette(
        routes=[
            Route("/", index_page),
            Route("/api/info", info),
            Route("/api/search", search_upload, methods=["POST"]),
            Route("/api/search", search_text, methods=["GET"]),
            Route("/api/similar/{id}", similar),
            Route("/api/browse", browse),
            Route("/api/labels", labels),
            Route("/thumb/{id}", thumb),
            Route("/photo/{id}", photo),
            Route("/static/{name}", asset),
        ],
        exception_handlers={ValueError: on_value_error, UnknownDocument: on_unknown_id, HTTPException: on_http_error},
        lifespan=lifespan,
    )


def serve(index: str | Path, host: str = "127.0.0.1", port: int = 8000, thumbnails: str | Path | None = None,
          on_ready: Callable[[], None] | None = None, reload_every: float = RELOAD_EVERY, **limits) -> None:
    """Load the index and model, then serve the page and API until interrupted (taking in other processes'
    commits every `reload_every` seconds; 0: never)."""
    import uvicorn

    from .service import Limits

    service = SearchService(index, Limits(**limits), reload_every)
    if on_ready is not None:
        on_ready()
    uvicorn.run(create_app(service, ThumbnailCache(thumbnails)), host=host, port=port, log_level="warning")
