"""Hostile sites for ``sessionward audit``: a site attacks the terminal or the memory of its auditor.

* :func:`terminal_injection_site` answers with a session cookie whose attributes, security
  headers and links carry terminal escape sequences (CSI, OSC), C1 control codes, Unicode
  line separators, bidi overrides and Rich markup: what a site does to overwrite its own
  FAIL rows in the report of the administrator auditing it.
* :func:`gzip_bomb_site` serves a gzip bomb (a small body inflating to a gibibyte) at ``/``
  and ``/login``, with a fresh session cookie each time so that the audit keeps sampling.
* :func:`dripping_site` sends the headers of ``/`` and ``/login``, then a body a byte at a time, forever.
* :func:`silent_site` accepts requests and never answers them.
* :func:`huge_page_site` answers 100 MB pages; :func:`slow_pages_site` answers every page,
  slowly; :func:`header_dripping_server` (raw TCP) sends its response head a byte at a time.

They are served by :func:`serve_h11`: uvicorn's default HTTP parser (httptools) refuses to
send control characters in a header, which a hostile server, unlike uvicorn, would send.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import struct
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from cli_sites import ASGIApp, Message, Scope, serve

Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# What the terminal-injection site puts in its session cookie's attributes (UTF-8 on the
# wire). Each would change the auditor's screen if printed as it came:
HOSTILE_PATH = "/\x1b[1A\x1b[2K[link=http://evil.test/]PASS[/link]"  # cursor up, erase line; a Rich link
HOSTILE_SAMESITE = "[/x]Lax"  # a closing tag with no opening one: Rich raised MarkupError
HOSTILE_DOMAIN = "evil.test\x9b2J\u2028\u202etset"  # C1 CSI "erase screen", a line separator, a bidi override
HOSTILE_EXPIRES = "Wed, 21 Oct 2099 07:28:00 GMT\x9d0\x07\x7f"  # C1 OSC, BEL, DEL
HOSTILE_CSP = "default-src 'self' \x1b]8;;http://evil.test/\x1b\\[bold red]ok[/]"  # an OSC 8 hyperlink
HOSTILE_CACHE = "no-store\x1b[2K\x08\x08\x08[reverse]FAIL hidden[/reverse]"  # erase, backspaces
HOSTILE_LINK = "/account?session=1[/x]\x1b[2J"  # a session ID in a link: a FAIL quoting the URL
HOSTILE_COOKIE_ATTRIBUTES = (
    f"Path={HOSTILE_PATH}; SameSite={HOSTILE_SAMESITE}; Domain={HOSTILE_DOMAIN}; Expires={HOSTILE_EXPIRES}"
)

GZIP_BOMB_INFLATED_BYTES = 1 << 30
"""What the bomb inflates to: a gibibyte of zeros, from about a megabyte on the wire."""


def serve_h11(app: ASGIApp) -> AbstractContextManager[str]:
    """Serve ``app`` with uvicorn's h11 protocol (:func:`cli_sites.serve`); yield its base URL."""
    return serve(app, http="h11", log_level="critical")


async def _drain(receive: Receive) -> None:
    while (await receive()).get("more_body", False):
        pass


def _fresh_id() -> bytes:
    return secrets.token_hex(16).encode()


def terminal_injection_site() -> ASGIApp:
    """Every page sets a fresh ``sid`` whose attributes, and the page's headers and links, attack the terminal."""
    attributes = HOSTILE_COOKIE_ATTRIBUTES.encode()
    body = f'<a href="{HOSTILE_LINK}">account</a> \x9b31m <a href="/login">sign in</a>'.encode()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await _drain(receive)
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"set-cookie", b"sid=" + _fresh_id() + b"; " + attributes),
            (b"cache-control", HOSTILE_CACHE.encode()),
            (b"content-security-policy", HOSTILE_CSP.encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


@functools.cache
def gzip_bomb(inflated_bytes: int = GZIP_BOMB_INFLATED_BYTES) -> bytes:
    """A valid gzip stream of ``inflated_bytes`` zeros (a whole number of MiB), built in milliseconds.

    A mebibyte of zeros is compressed once and ended with a full flush, which resets the
    compressor: every further mebibyte compresses to the very same bytes, so they are
    repeated rather than computed. The trailer's CRC-32 and length are those of the whole.
    """
    block = bytes(1 << 20)
    count, remainder = divmod(inflated_bytes, len(block))
    assert remainder == 0
    assert count >= 2
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    head = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    final_block = compressor.flush()[:-8]  # an empty final block, without the trailer
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    trailer = struct.pack("<II", crc, inflated_bytes & 0xFFFFFFFF)
    return head + repeated * (count - 1) + final_block + trailer


def gzip_bomb_site(*, stacked: bool = False) -> ASGIApp:
    """``/`` and ``/login`` answer a gzip bomb as HTML and set a fresh session cookie.

    ``stacked`` gzips the bomb once more and says ``Content-Encoding: gzip, gzip``: two
    kilobytes on the wire, where one decoding step inflates a megabyte into a gibibyte.
    """
    bomb = gzip_bomb()
    encoding = b"gzip"
    if stacked:
        bomb = zlib.compress(bomb, 9, wbits=16 + zlib.MAX_WBITS)
        encoding = b"gzip, gzip"
    cookie = b"; Path=/; HttpOnly; Secure; SameSite=Lax"

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await _drain(receive)
        if scope["path"] not in ("/", "/login"):
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"not found"})
            return
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-encoding", encoding),
            (b"content-length", str(len(bomb)).encode()),
            (b"set-cookie", b"sid=" + _fresh_id() + cookie),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        step = 64 * 1024
        for start in range(0, len(bomb), step):
            more = start + step < len(bomb)
            await send({"type": "http.response.body", "body": bomb[start : start + step], "more_body": more})

    return app


def dripping_site(interval_s: float = 0.02, give_up_s: float = 30) -> ASGIApp:
    """``/`` and ``/login`` send their headers, then a byte of HTML every ``interval_s``, until the client leaves.

    Other paths answer 404. The drip stops after ``give_up_s`` so that a test run cannot hang.
    """

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await _drain(receive)
        if scope["path"] not in ("/", "/login"):
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"not found"})
            return
        headers = [(b"content-type", b"text/html"), (b"set-cookie", b"sid=" + _fresh_id() + b"; Path=/")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        left = asyncio.ensure_future(receive())  # the request is read: the next message is the disconnect
        give_up = time.monotonic() + give_up_s
        while not left.done() and time.monotonic() < give_up:
            await send({"type": "http.response.body", "body": b" ", "more_body": True})
            await asyncio.sleep(interval_s)
        left.cancel()

    return app


def silent_site() -> ASGIApp:
    """Never answers (until the client leaves or 30 s pass)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await _drain(receive)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(receive(), 30)  # returns at the disconnect

    return app


def huge_page_site(total_bytes: int = 100 * 1024 * 1024) -> ASGIApp:
    """``/`` and ``/login`` answer ``total_bytes`` of HTML (made as it is sent) with a fresh session cookie."""
    chunk = b"<p>" + b"x" * (64 * 1024 - 7) + b"</p>\n"

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await _drain(receive)
        if scope["path"] not in ("/", "/login"):
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"not found"})
            return
        headers = [
            (b"content-type", b"text/html"),
            (b"content-length", str(total_bytes).encode()),
            (b"set-cookie", b"sid=" + _fresh_id() + b"; Path=/; HttpOnly"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        sent = 0
        while sent < total_bytes:
            piece = chunk[: total_bytes - sent]
            sent += len(piece)
            await send({"type": "http.response.body", "body": piece, "more_body": sent < total_bytes})

    return app


def slow_pages_site(delay_s: float) -> ASGIApp:
    """Every page answers after ``delay_s`` with a fresh session cookie: slow, but each page in time."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await _drain(receive)
        await asyncio.sleep(delay_s)
        headers = [(b"content-type", b"text/html"), (b"set-cookie", b"sid=" + _fresh_id() + b"; Path=/")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"<p>slow</p>"})

    return app


@contextlib.contextmanager
def header_dripping_server(interval_s: float = 0.1, give_up_s: float = 20) -> Iterator[str]:
    """A raw TCP server that sends its status line and headers a byte every ``interval_s``; yield its URL.

    No ASGI server can do this (they send a response head at once): it is written on
    asyncio streams, in a thread with its own event loop. Each connection gives up after
    ``give_up_s`` so that a test run cannot hang.
    """
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"x-drip-%d: %s\r\n" % (n, b"y" * 40) for n in range(200)) + b"\r\n"
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                await reader.readuntil(b"\r\n\r\n")
                give_up = time.monotonic() + give_up_s
                for byte in head:
                    if time.monotonic() > give_up or writer.is_closing():
                        break
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(interval_s)
        except asyncio.CancelledError:
            pass  # the server is stopping: asyncio would log a cancelled handler as an error
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        state["port"] = server.sockets[0].getsockname()[1]
        state["stop"] = asyncio.Event()
        state["loop"] = asyncio.get_running_loop()
        ready.set()
        async with server:
            await state["stop"].wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the header-dripping server did not start")
    try:
        yield f"http://127.0.0.1:{state['port']}"
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(10)
