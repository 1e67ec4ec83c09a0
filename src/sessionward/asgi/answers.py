"""The answers sessionward's ASGI middlewares give themselves: JSON errors and redirects.

Every such answer says ``Cache-Control: no-store``: it is about one client's session,
and no cache may hand it to another.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import orjson

from sessionward.asgi.types import Send

_NO_STORE = (b"cache-control", b"no-store")


async def send_json(
    send: Send, status: int, body: Mapping[str, object], headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Answer ``status`` with the JSON object ``body``, uncacheable, with ``headers`` added."""
    payload = orjson.dumps(body)
    start = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        _NO_STORE,
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": payload})


async def send_redirect(send: Send, status: int, location: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """Answer ``status`` (a 3xx) to ``location`` with an empty body, uncacheable, with ``headers`` added."""
    start = [(b"location", location.encode("latin-1")), (b"content-length", b"0"), _NO_STORE, *headers]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": b""})
