"""A minimal client of the serve API in the standard library (scripts, the bench, the live tests)."""
from __future__ import annotations

import json
import urllib.parse
import urllib.request
import uuid


def get_json(url: str, timeout: float = 300) -> dict:
    """GET `url` and decode its JSON; urllib's HTTPError for a 4xx/5xx answer."""
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def search_image(base_url: str, image: bytes, timeout: float = 300, **fields) -> dict:
    """POST /api/search with `image` (bytes) and form `fields` (mode, k, filter, dims) as multipart."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="query"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n".encode() + image + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{base_url}/api/search", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=timeout) as r:
        return json.load(r)


def search_text(base_url: str, query: str, timeout: float = 300, **params) -> dict:
    """GET /api/search?q=... (k, filter)."""
    return get_json(f"{base_url}/api/search?{urllib.parse.urlencode({'q': query, **params})}", timeout)


def similar(base_url: str, doc_id: str, timeout: float = 300, **params) -> dict:
    """GET /api/similar/{id} (mode, k, filter, dims)."""
    return get_json(f"{base_url}/api/similar/{urllib.parse.quote(doc_id)}?{urllib.parse.urlencode(params)}", timeout)
