"""A TCP proxy between an application and its store, with network faults on demand.

The proxy listens on a loopback port and forwards bytes both ways to one upstream
address. It runs its own event loop in a daemon thread, so the code that drives it (a
test, a script, synchronous or async) only calls its methods:

* :meth:`TcpProxy.pass_traffic` — forward everything (the normal state; it also ends the
  other faults);
* :meth:`TcpProxy.blackhole` — keep accepting connections but move no byte in either
  direction: a network that hangs. Nothing is dropped: bytes read before or during the
  blackhole are delivered once traffic passes again, as TCP retransmission would, so a
  command sent into the blackhole may still run late, exactly as on a real network;
* :meth:`TcpProxy.reset` — abort every open connection with a TCP RST, both sides (a
  restarted server or a failover as the client sees it); new connections still work;
* :meth:`TcpProxy.refuse` — stop listening, so new connections are refused
  (``ECONNREFUSED``, a server that is down); open connections are left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")

CHUNK_BYTES = 64 * 1024
CONTROL_TIMEOUT_S = 10.0
_LINGER_NOW = struct.pack("ii", 1, 0)
"""``SO_LINGER`` on, zero seconds: ``close`` then sends RST instead of FIN."""


class _Link:
    """One client connection and its upstream twin."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream

    def abort(self) -> None:
        """Close both sides with RST."""
        for writer in (self.client, self.upstream):
            _abort(writer)


def _abort(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_NOW)
    writer.transport.abort()


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream``; faults on demand (module docstring).

    Args:
        upstream_host: Where to forward to.
        upstream_port: The upstream port.

    Use it as a context manager (or call :meth:`start` and :meth:`close`).
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._flowing: asyncio.Event | None = None
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections_accepted = 0
        """Connections accepted so far (to tell that the app really goes through the proxy)."""

    def __enter__(self) -> TcpProxy:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``, to put in a store URL instead of the upstream's."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the loop's thread and listen on a free port, forwarding."""
        self._thread.start()
        self._call(self._start())

    def close(self) -> None:
        """Stop listening, abort every connection and stop the thread."""
        if not self._thread.is_alive():
            return
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CONTROL_TIMEOUT_S)
        self._loop.close()

    def pass_traffic(self) -> None:
        """Forward everything again: listen if refused, release what the blackhole held."""
        self._call(self._pass())

    def blackhole(self) -> None:
        """Accept connections but forward no byte until :meth:`pass_traffic`."""
        self._call(self._blackhole())

    def reset(self) -> None:
        """Abort every open connection, both sides, with a TCP RST."""
        self._call(self._reset())

    def refuse(self) -> None:
        """Stop listening: new connections are refused until :meth:`pass_traffic`."""
        self._call(self._refuse())

    # -- on the proxy's loop -----------------------------------------------------------------

    def _call(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(CONTROL_TIMEOUT_S)

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        await self._listen()

    async def _listen(self) -> None:
        if self._server is not None:
            return
        # reuse_address: listen again on the same port right after refusing.
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _pass(self) -> None:
        await self._listen()
        assert self._flowing is not None
        self._flowing.set()

    async def _blackhole(self) -> None:
        assert self._flowing is not None
        self._flowing.clear()

    async def _reset(self) -> None:
        for link in list(self._links):
            link.abort()

    async def _refuse(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()  # not wait_closed(): on 3.12+ it waits for every connection to end

    async def _close(self) -> None:
        await self._refuse()
        await self._pass_held()
        await self._reset()
        # The pumps end by themselves on their aborted sockets. Cancelling a connection's
        # task instead would make asyncio's streams log its CancelledError as an error.
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=CONTROL_TIMEOUT_S / 2)

    async def _pass_held(self) -> None:
        assert self._flowing is not None
        self._flowing.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_accepted += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                _abort(writer)  # the store is down: the client sees its connection reset
                return
            link = _Link(writer, upstream_writer)
            self._links.add(link)
            try:
                await asyncio.gather(self._pump(reader, upstream_writer), self._pump(upstream_reader, writer))
            finally:
                self._links.discard(link)
        finally:
            self._tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction until end of stream; the blackhole holds the bytes read."""
        flowing = self._flowing
        assert flowing is not None
        try:
            while True:
                await flowing.wait()
                data = await reader.read(CHUNK_BYTES)
                if not data:
                    break
                await flowing.wait()
                writer.write(data)
                await writer.drain()
        except OSError:
            pass  # reset by a peer or by reset(): the other pump ends on its own
        finally:
            writer.close()
