"""Reading request bodies within limits: size first, then gzip, then JSON."""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from aiohttp import web

from collector.errors import RequestRejected

__all__ = ["parse_json", "read_body"]

_CHUNK = 64 * 1024
_ENCODINGS = frozenset({"", "identity", "gzip", "x-gzip", "deflate"})


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, gunzipped or inflated here (not by aiohttp); 413 past ``limit`` bytes, 400 if corrupt."""
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in _ENCODINGS:
        raise RequestRejected(415, f"Content-Encoding: {encoding[:40]!r} is not supported (use gzip)")
    if request.content_length is not None and request.content_length > limit:
        raise RequestRejected(413, f"body: larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise RequestRejected(413, f"body: larger than {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if encoding in ("", "identity"):
        return raw
    return _inflate(raw, encoding, limit)


def _inflate(raw: bytes, encoding: str, limit: int) -> bytes:
    """Decompress a gzip or deflate body, never past ``limit`` bytes (a zip bomb stops there)."""
    wbits = 16 + zlib.MAX_WBITS if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        body = inflater.decompress(raw, limit + 1)
    except zlib.error:
        raise RequestRejected(400, f"body: invalid {encoding} data (cannot decompress it)") from None
    if len(body) > limit:
        raise RequestRejected(413, f"body: larger than {limit} bytes once decompressed")
    if not inflater.eof:
        raise RequestRejected(400, f"body: truncated {encoding} data")
    return body


def parse_json(raw: bytes) -> Any:
    """Parse JSON (UTF-8 only); 400 naming the problem when it is not valid."""
    if not raw:
        raise RequestRejected(400, "body: empty; expected a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RequestRejected(400, f"body: invalid JSON: {exc}") from None
