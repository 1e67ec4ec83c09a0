"""Auto-pipelining for the Redis store's hot path: one write per event-loop tick, replies read in place.

Why. Under load most of a request's cost in redis-py's asyncio client is the client
itself (a connection checked out of the pool and back, retry and timeout wrappers, a
parser call per reply): about 50 µs of CPU per command, more than the rest of the
request. The session load and save of all the requests that run in one tick of the event
loop are therefore queued and written together, on one long-lived connection. Replies
are parsed by hiredis right where the event loop delivers the bytes (the connection's
protocol is ours while the pipeline holds it: no reader task, no stream buffer) and each
is handed to its caller in order. Redis answers a connection's commands in the order
they were sent, so the n-th reply belongs to the n-th command.

What stays with redis-py. The connection comes from the client's own pool, so redis-py
still connects, authenticates, selects the database, speaks TLS and (Sentinel) finds the
current primary; every other command of the store still goes through redis-py. A Redis
Cluster client gets no pipeline at all (its commands need redis-py's slot routing).

Correctness across app servers. Nothing is cached: every request still reads Redis
(a session revoked by another server fails at its next request here); the pipeline is
not a transaction and changes only how commands travel on the wire. Commands of one
request stay in order because one connection carries them all.

Failures. A closed connection fails the commands waiting for replies with
:class:`redis.exceptions.ConnectionError`; commands not sent yet go out on a new
connection. A Redis that keeps the connection open but leaves the oldest command sent
unanswered for the client's ``socket_timeout`` (5 s when it has none) fails them with
:class:`redis.exceptions.TimeoutError` and the connection is replaced, so service
resumes by itself when Redis does. Error replies become redis-py's exception types
(``NOSCRIPT`` → :class:`~redis.exceptions.NoScriptError`…) and reach only their caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

try:
    import hiredis
    from redis._parsers.base import BaseParser

    HAVE_HIREDIS = True
except ImportError:  # pragma: no cover - hiredis comes with the 'redis' extra
    HAVE_HIREDIS = False

_NOT_ENOUGH_DATA = object()
"""What the parser returns for "no complete reply yet" (a RESP3 reply may be ``False``)."""
_PUSH = getattr(hiredis, "PushNotification", None) if HAVE_HIREDIS else None
"""RESP3 out-of-band messages (e.g. maintenance notices): they answer no command."""

logger = logging.getLogger("sessionward")

DEFAULT_STALL_TIMEOUT_S = 5.0
"""How long the oldest command may wait for its reply on a client without ``socket_timeout``."""


def auto_pipeline(client: object) -> AutoPipeline | None:
    """Return an auto-pipeline over ``client``'s pool, or ``None`` where none applies.

    Only a standalone or Sentinel-managed asyncio client qualifies, with hiredis
    installed and replies left as bytes; anything else keeps the plain redis-py path
    (a cluster client, the generated blocking store, a client decoding replies).
    """
    if not HAVE_HIREDIS or type(client) is not Redis:
        return None
    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    if kwargs.get("decode_responses"):
        return None
    timeout = kwargs.get("socket_timeout")
    return AutoPipeline(pool, stall_timeout_s=float(timeout) if timeout else DEFAULT_STALL_TIMEOUT_S)


class AutoPipeline:
    """Coalesces concurrent commands into one write per event-loop tick (module docstring).

    Args:
        pool: The redis-py pool the connection is taken from (and given back to).
        stall_timeout_s: How long the oldest command sent may wait for its reply before
            the connection is replaced.

    Attributes:
        commands_sent: Commands written so far (for benchmarks: commands per write).
        writes: Writes made so far, each carrying one tick's commands.
    """

    def __init__(self, pool: ConnectionPool, *, stall_timeout_s: float) -> None:
        self._pool = pool
        self._stall_timeout_s = stall_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        # Two parallel lists rather than a list of pairs: no tuple per command.
        self._queued: list[bytes] = []
        self._queued_futures: list[asyncio.Future[Any]] = []
        self._link: _Link | None = None
        self._opening: asyncio.Task[None] | None = None
        self._flush_scheduled = False
        self._releasing: set[asyncio.Task[None]] = set()
        self.commands_sent = 0
        self.writes = 0

    def execute(self, *args: bytes | str | int | float) -> asyncio.Future[Any]:
        """Queue one command with the others of this tick; return the future of its reply.

        Awaiting the future raises :class:`redis.exceptions.RedisError` for an error
        reply, a lost connection or a stall. It is a plain future (no coroutine per call).
        """
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._adopt(loop)
        future: asyncio.Future[Any] = loop.create_future()
        # hiredis' stub types the argument as a 1-tuple; it takes a command of any length.
        self._queued.append(hiredis.pack_command(args))  # type: ignore[arg-type]
        self._queued_futures.append(future)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return future

    async def close(self) -> None:
        """Fail what is pending and give the connection back to the pool."""
        if self._opening is not None:
            self._opening.cancel()
        self._fail_queued(RedisConnectionError("the session store was closed"))
        link, self._link = self._link, None
        if link is not None:
            await link.drop(RedisConnectionError("the session store was closed"))

    # -- sending --------------------------------------------------------------------------

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        # A store used from a new event loop (tests, a CLI run per command): the old
        # loop's connection and tasks cannot be used from here, so start afresh.
        self._loop = loop
        self._link = self._opening = None
        self._queued, self._queued_futures = [], []
        self._flush_scheduled = False

    def _flush(self) -> None:
        self._flush_scheduled = False
        link = self._link
        if link is None or link.closed:
            if self._opening is None and self._queued:
                self._opening = asyncio.ensure_future(self._open())
            return
        packed, futures = self._queued, self._queued_futures
        if not packed:
            return
        self._queued, self._queued_futures = [], []
        for future in futures:
            if future.done():
                # Its caller gave up (cancelled, timed out) before it was sent: never send
                # it, so a write the caller saw fail is not applied behind its back.
                keep = [i for i, f in enumerate(futures) if not f.done()]
                packed, futures = [packed[i] for i in keep], [futures[i] for i in keep]
                break
        if futures:
            link.send(b"".join(packed), futures)
            self.commands_sent += len(futures)
            self.writes += 1

    async def _open(self) -> None:
        try:
            connection = await self._pool.get_connection()  # type: ignore[no-untyped-call]
        except BaseException as error:
            self._opening = None
            self._fail_queued(error if isinstance(error, Exception) else RedisConnectionError("connect cancelled"))
            if not isinstance(error, Exception):
                raise
            return
        link = _Link.take_over(self, connection)
        self._opening = None
        if link is None:
            # A redis-py whose connections keep their streams elsewhere: give up cleanly.
            await self._pool.release(connection)
            self._fail_queued(RedisConnectionError("cannot pipeline on this redis-py connection"))
            return
        self._link = link
        self._flush()

    def _lost(self, link: _Link) -> None:
        """Forget a link that failed; what is queued goes out on a new connection."""
        if self._link is link:
            self._link = None
        if self._queued and not self._flush_scheduled and self._loop is not None:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _fail_queued(self, error: Exception) -> None:
        futures = self._queued_futures
        self._queued, self._queued_futures = [], []
        for future in futures:
            if not future.done():
                future.set_exception(error)


class _Link(asyncio.Protocol):
    """One pipelined connection: writes batches, parses replies as the loop delivers them.

    It replaces the stream protocol of a redis-py connection for as long as the pipeline
    holds it; connection loss is passed on to that protocol, so redis-py's own
    ``disconnect`` (which waits for the stream to close) still completes.
    """

    def __init__(
        self,
        pipeline: AutoPipeline,
        connection: AbstractConnection,
        transport: Any,
        original: asyncio.BaseProtocol,
    ) -> None:
        self._pipeline = pipeline
        self._connection = connection
        self._transport = transport
        self._original = original
        self._parser = hiredis.Reader(replyError=BaseParser.parse_error, notEnoughData=_NOT_ENOUGH_DATA)
        self._waiting: deque[asyncio.Future[Any]] = deque()
        # When each write still awaiting replies went out, and how many commands it held.
        self._sent: deque[list[Any]] = deque()
        self._watchdog: asyncio.TimerHandle | None = None
        self._released = False
        self.closed = False

    @classmethod
    def take_over(cls, pipeline: AutoPipeline, connection: AbstractConnection) -> _Link | None:
        """Make a link of a freshly connected redis-py connection, or ``None`` if it cannot be."""
        reader = getattr(connection, "_reader", None)
        writer = getattr(connection, "_writer", None)
        if not isinstance(reader, asyncio.StreamReader) or not isinstance(writer, asyncio.StreamWriter):
            return None
        # uvloop's transports are not registered as asyncio.Transport: test for what is used.
        transport: Any = writer.transport
        if not all(hasattr(transport, name) for name in ("set_protocol", "get_protocol", "write", "is_closing")):
            return None
        if transport.is_closing():
            return None
        link = cls(pipeline, connection, transport, transport.get_protocol())
        leftover = bytes(getattr(reader, "_buffer", b""))  # read past redis-py's handshake: none expected
        transport.set_protocol(link)
        if leftover:
            link.data_received(leftover)
        return link

    # -- writing ----------------------------------------------------------------------------

    def send(self, data: bytes, futures: list[asyncio.Future[Any]]) -> None:
        """Write one batch; ``futures`` receive its replies in order."""
        self._waiting.extend(futures)
        loop = self._pipeline._loop
        assert loop is not None
        self._sent.append([loop.time(), len(futures)])
        self._transport.write(data)
        if self._watchdog is None:
            self._arm_watchdog()

    def _arm_watchdog(self) -> None:
        loop = self._pipeline._loop
        assert loop is not None
        self._watchdog = loop.call_at(self._sent[0][0] + self._pipeline._stall_timeout_s, self._check_stall)

    def _check_stall(self) -> None:
        self._watchdog = None
        if not self._sent:
            return
        loop = self._pipeline._loop
        assert loop is not None
        if loop.time() < self._sent[0][0] + self._pipeline._stall_timeout_s:
            self._arm_watchdog()
            return
        timeout = self._pipeline._stall_timeout_s
        self._fail(RedisTimeoutError(f"Redis did not answer within {timeout} s"))

    # -- reading (asyncio.Protocol) -----------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return  # the link already failed; what still arrives answers nobody
        parser, waiting, sent = self._parser, self._waiting, self._sent
        try:
            parser.feed(data)
            while (reply := parser.gets()) is not _NOT_ENOUGH_DATA:
                if _PUSH is not None and type(reply) is _PUSH:
                    continue
                future = waiting.popleft()
                batch = sent[0]
                batch[1] -= 1
                if not batch[1]:
                    sent.popleft()
                if future.done():
                    continue  # its caller gave up (timeout); the reply is dropped
                if isinstance(reply, Exception):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except Exception as error:  # a protocol error, or more replies than commands
            self._fail(_lost(error))

    def eof_received(self) -> bool | None:
        self._fail(RedisConnectionError("Redis closed the connection"))
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RedisConnectionError(f"Redis connection lost: {exc}" if exc else "Redis closed the connection"))
        self._original.connection_lost(exc)

    # -- failing ----------------------------------------------------------------------------

    def _fail(self, error: Exception, *, release: bool = True) -> None:
        """Fail the commands awaiting replies and retire the connection (once)."""
        if self.closed:
            return
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        waiting, self._waiting = self._waiting, deque()
        self._sent.clear()
        for future in waiting:
            if not future.done():
                future.set_exception(error)
        self._pipeline._lost(self)
        loop = self._pipeline._loop
        if release and loop is not None and not loop.is_closed():
            releasing = self._pipeline._releasing
            task = loop.create_task(self._release())
            releasing.add(task)
            task.add_done_callback(releasing.discard)

    async def drop(self, error: Exception) -> None:
        """Fail what waits and give the connection back now (the pipeline is closing)."""
        self._fail(error, release=False)
        await self._release()

    async def _release(self) -> None:
        if self._released:
            return
        self._released = True
        with contextlib.suppress(Exception):
            await self._connection.disconnect()
        with contextlib.suppress(Exception):
            await self._pipeline._pool.release(self._connection)


def _lost(error: Exception) -> RedisConnectionError:
    logger.warning("Redis pipeline connection lost: %s: %s", type(error).__name__, error)
    return RedisConnectionError(f"{type(error).__name__}: {error}")
