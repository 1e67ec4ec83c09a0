"""Running the demo under uvicorn: ``sessionward demo`` and ``python -m sessionward.demo``.

Start-up problems end the process with one clear line and exit code 2 (bad settings) or
1 (the store cannot be reached), never a traceback.

Oversize request heads are refused by the server, before the application or the store
sees them. Two bounds, because neither alone holds:

* While a head arrives, its bytes are counted: uvicorn's httptools protocol (the faster
  parser, which by itself buffers a head of any size) is used through
  :func:`bounded_httptools`, which answers 431 once a head passes
  :data:`MAX_HEADER_BYTES`; without httptools, h11's ``h11_max_incomplete_event_size``
  (400). Either way a huge or endless head costs at most that much memory plus one read.
* :class:`HeaderLimits`, in front of the application, answers 431 to a request with more
  than :data:`MAX_HEADER_FIELDS` fields or more than :data:`MAX_HEADER_BYTES` of them
  (20,000 empty fields fit in one read and pass a byte count made while they arrive).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from collections.abc import Sequence

from sessionward.asgi.types import ASGIApp, Receive, Scope, Send
from sessionward.cli.common import redact_url
from sessionward.core.errors import ConfigError, StoreError
from sessionward.core.extras import needs_extra
from sessionward.stores import open_store

with needs_extra("demo", "the demo"):
    from sessionward.demo.app import create_app


MAX_HEADER_BYTES = 32 * 1024
"""The most bytes of request headers served (twice h11's default; the session cookie itself
is never read from more than 16 KiB of ``Cookie`` headers: :mod:`sessionward.core.cookies`)."""

MAX_HEADER_FIELDS = 100
"""The most header fields a request may carry (gunicorn's default; browsers send ~20)."""

_TOO_LARGE_BODY = b'{"error":"request_header_fields_too_large"}'


class HeaderLimits:
    """Answer 431 to a request whose headers exceed :data:`MAX_HEADER_FIELDS` or :data:`MAX_HEADER_BYTES`.

    Args:
        app: The application served.
        max_fields: The most header fields accepted.
        max_bytes: The most bytes of header names and values (with their separators).
    """

    def __init__(self, app: ASGIApp, *, max_fields: int = MAX_HEADER_FIELDS, max_bytes: int = MAX_HEADER_BYTES) -> None:
        self.app = app
        self.max_fields = max_fields
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self._within(scope["headers"]):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1009})  # refused before the handshake: 403
            return
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(_TOO_LARGE_BODY)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 431, "headers": headers})
        await send({"type": "http.response.body", "body": _TOO_LARGE_BODY})

    def _within(self, headers: Sequence[tuple[bytes, bytes]]) -> bool:
        if len(headers) > self.max_fields:
            return False
        # Each field as sent: "name: value" and CRLF.
        return sum(len(name) + len(value) + 4 for name, value in headers) <= self.max_bytes


def serve(host: str = "127.0.0.1", port: int = 8000, store_url: str | None = None, debug: bool = False) -> None:
    """Serve the demo until interrupted.

    Args:
        host: The address to listen on.
        port: The TCP port.
        store_url: The session store's URL; ``None`` reads ``SESSIONWARD_STORE`` or uses
            ``sqlite:///./.sessionward/sessions.db``.
        debug: Serve the development-only debug endpoint.
    """
    try:
        app = create_app(store_url, debug, audit_stream=sys.stderr)
    except ConfigError as error:
        print(f"sessionward demo: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as error:  # e.g. the SQLite file's folder cannot be created
        print(f"sessionward demo: cannot open the session store: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    url = app.state.demo.settings.store_url
    try:
        asyncio.run(_check_store(url))
    except (StoreError, OSError) as error:
        print(f"sessionward demo: the session store {redact_url(url)} is not usable: {error}", file=sys.stderr)
        raise SystemExit(1) from None

    with needs_extra("demo", "the demo"):
        import uvicorn

    # Everything built so far (modules, classes, the app) lives as long as the process:
    # taken out of the cyclic collector's sight, a full collection no longer walks its
    # ~60 000 objects while every request in flight waits (25-30 ms each time; it is
    # what set the p99 latency of writing requests). See benchmarks/README.md.
    gc.freeze()
    uvicorn.run(
        HeaderLimits(app),
        host=host,
        port=port,
        # The head is bounded while it arrives (see the module docstring): httptools (the
        # faster parser) through bounded_httptools(), else h11 with its own limit.
        http=bounded_httptools() or "h11",
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        # The session middleware decides which proxies to believe (SESSIONWARD_TRUSTED_PROXIES);
        # uvicorn's own X-Forwarded-For handling would let any local client spoof its address.
        proxy_headers=False,
        server_header=False,
        log_level="debug" if debug else "info",
    )


def bounded_httptools() -> type[asyncio.Protocol] | None:
    """Return uvicorn's httptools protocol with the request head bounded, or ``None`` without httptools.

    httptools buffers a head of any size; this counts the bytes of each head as they
    arrive and answers 431 (and closes) once they pass :data:`MAX_HEADER_BYTES`, before
    the parser has buffered more than that plus one read. Bytes after the head's blank
    line (a body in the same read) do not count.
    """
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools not installed: h11 it is
        return None

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        _head_bytes = 0
        _in_body = False
        _tail = b""

        def on_headers_complete(self) -> None:
            self._in_body = True
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._in_body = False
            self._head_bytes = 0
            self._tail = b""
            super().on_message_complete()

        def data_received(self, data: bytes) -> None:
            if not self._in_body:
                seen = self._tail + data
                end = seen.find(b"\r\n\r\n")
                head = len(data) if end < 0 else max(0, end + 4 - len(self._tail))
                self._head_bytes += head
                if self._head_bytes > MAX_HEADER_BYTES:
                    self._refuse_head()
                    return
                self._tail = seen[-3:] if end < 0 else b""
            super().data_received(data)

        def _refuse_head(self) -> None:
            self.logger.warning("request head over %d bytes refused", MAX_HEADER_BYTES)
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
                b"content-length: "
                + str(len(_TOO_LARGE_BODY)).encode()
                + b"\r\nconnection: close\r\n\r\n"
                + _TOO_LARGE_BODY
            )
            self.transport.close()

    return BoundedHttpToolsProtocol


async def _check_store(url: str) -> None:
    # Set the store up once before serving, so a bad URL or a down database is one line
    # of error here instead of a lifespan traceback inside uvicorn.
    store = open_store(url)
    try:
        await store.setup()
    finally:
        await store.close()


def _display_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m sessionward.demo [--host H] [--port P] [--store URL] [--debug]``."""
    parser = argparse.ArgumentParser(prog="python -m sessionward.demo", description="Serve the sessionward demo.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--store", default=None, help="session store URL (default $SESSIONWARD_STORE or SQLite)")
    parser.add_argument("--debug", action="store_true", help="serve the development-only /api/session/debug")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a TCP port (0-65535)")
    print(f"sessionward demo on http://{_display_host(args.host)}:{args.port}/", file=sys.stderr)
    serve(args.host, args.port, args.store, args.debug)
