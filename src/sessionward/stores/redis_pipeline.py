"""Auto-pipelining for the Redis store's hot path: one write per event-loop tick, one reader.

Why. Under load most of a request's cost in redis-py's asyncio client is the client
itself (a connection checked out of the pool and back, retry and timeout wrappers, a
parser call per reply): about 50 µs of CPU per command, more than the rest of the
request. The session load (``HGETALL``) and save (``EVALSHA``) of all the requests that
run in one tick of the event loop are therefore queued and written together, on one
long-lived connection, and their replies are read by one task that feeds hiredis and
hands each reply to its caller in order. Redis answers a connection's commands in the
order they were sent, so the n-th reply belongs to the n-th command.

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
connection. A Redis that keeps the connection open but stops answering for the client's
``socket_timeout`` (5 s when it has none) fails them with
:class:`redis.exceptions.TimeoutError` and the connection is replaced, so service
resumes by itself when Redis does (F19). Error replies become redis-py's exception types
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
"""What the reader returns for "no complete reply yet" (a RESP3 reply may be ``False``)."""
_PUSH = getattr(hiredis, "PushNotification", None) if HAVE_HIREDIS else None
"""RESP3 out-of-band messages (e.g. maintenance notices): they answer no command."""

logger = logging.getLogger("sessionward")

DEFAULT_STALL_TIMEOUT_S = 5.0
"""How long replies may be overdue on a client without ``socket_timeout``."""
READ_SIZE = 256 * 1024


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
        stall_timeout_s: How long replies may be overdue before the connection is replaced.
    """

    def __init__(self, pool: ConnectionPool, *, stall_timeout_s: float) -> None:
        self._pool = pool
        self._stall_timeout_s = stall_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queued: list[tuple[bytes, asyncio.Future[Any]]] = []
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._connection: AbstractConnection | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._opening: asyncio.Task[None] | None = None
        self._reading: asyncio.Task[None] | None = None
        self._flush_scheduled = False
        self._progress_at = 0.0
        self._watchdog: asyncio.TimerHandle | None = None
        self._dropping: asyncio.Future[None] | None = None

    async def execute(self, *args: bytes | str | int | float) -> Any:
        """Send one command with the others of this tick; return its reply.

        Raises:
            redis.exceptions.RedisError: an error reply, a lost connection or a stall.
        """
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._adopt(loop)
        future: asyncio.Future[Any] = loop.create_future()
        # hiredis' stub types the argument as a 1-tuple; it takes a command of any length.
        self._queued.append((hiredis.pack_command(args), future))  # type: ignore[arg-type]
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await future

    async def close(self) -> None:
        """Fail what is pending and give the connection back to the pool."""
        if self._opening is not None:
            self._opening.cancel()
        await self._drop(RedisConnectionError("the session store was closed"), fail_queued=True)

    # -- sending --------------------------------------------------------------------------

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        # A store used from a new event loop (tests, a CLI run per command): the old
        # loop's connection and tasks cannot be used from here, so start afresh.
        self._loop = loop
        self._connection = self._writer = self._opening = self._reading = self._watchdog = None
        self._queued, self._waiting = [], deque()
        self._flush_scheduled = False

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._writer is None:
            if self._opening is None and self._queued:
                self._opening = asyncio.ensure_future(self._open())
            return
        batch = [(packed, future) for packed, future in self._queued if not future.done()]
        self._queued = []
        if not batch:
            return
        if not self._waiting:
            self._progress_at = asyncio.get_running_loop().time()
        self._waiting.extend(future for _, future in batch)
        self._writer.write(b"".join(packed for packed, _ in batch))
        if self._watchdog is None:
            self._arm_watchdog(self._progress_at + self._stall_timeout_s)

    async def _open(self) -> None:
        try:
            connection = await self._pool.get_connection()  # type: ignore[no-untyped-call]
        except BaseException as error:
            self._opening = None
            self._fail_queued(error if isinstance(error, Exception) else RedisConnectionError("connect cancelled"))
            if not isinstance(error, Exception):
                raise
            return
        reader = getattr(connection, "_reader", None)
        writer = getattr(connection, "_writer", None)
        if not isinstance(reader, asyncio.StreamReader) or not isinstance(writer, asyncio.StreamWriter):
            # A redis-py whose connections keep their streams elsewhere: give up cleanly.
            await self._pool.release(connection)
            self._opening = None
            self._fail_queued(RedisConnectionError("cannot pipeline on this redis-py connection"))
            return
        self._connection, self._writer, self._opening = connection, writer, None
        self._reading = asyncio.ensure_future(self._read(reader, connection))
        self._flush()

    # -- receiving --------------------------------------------------------------------------

    async def _read(self, reader: asyncio.StreamReader, connection: AbstractConnection) -> None:
        parser = hiredis.Reader(replyError=BaseParser.parse_error, notEnoughData=_NOT_ENOUGH_DATA)
        waiting = self._waiting
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    raise RedisConnectionError("Redis closed the connection")
                self._progress_at = loop.time()
                parser.feed(data)
                while (reply := parser.gets()) is not _NOT_ENOUGH_DATA:
                    if _PUSH is not None and type(reply) is _PUSH:
                        continue
                    future = waiting.popleft()
                    if future.done():
                        continue  # its caller gave up (timeout); the reply is dropped
                    if isinstance(reply, Exception):
                        future.set_exception(reply)
                    else:
                        future.set_result(reply)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if self._connection is connection:
                await self._drop(error if isinstance(error, RedisConnectionError) else _lost(error))

    def _arm_watchdog(self, when: float) -> None:
        assert self._loop is not None
        self._watchdog = self._loop.call_at(when, self._check_stall)

    def _check_stall(self) -> None:
        self._watchdog = None
        if not self._waiting:
            return
        overdue_at = self._progress_at + self._stall_timeout_s
        if self._loop is not None and self._loop.time() < overdue_at:
            self._arm_watchdog(overdue_at)
            return
        error = RedisTimeoutError(f"Redis did not answer within {self._stall_timeout_s} s")
        self._dropping = asyncio.ensure_future(self._drop(error))

    # -- failing ----------------------------------------------------------------------------

    async def _drop(self, error: Exception, *, fail_queued: bool = False) -> None:
        """Fail the commands awaiting replies, forget the connection and give it back."""
        connection, reading = self._connection, self._reading
        self._connection = self._writer = self._reading = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        waiting, self._waiting = self._waiting, deque()
        for future in waiting:
            if not future.done():
                future.set_exception(error)
        if fail_queued:
            self._fail_queued(error)
        if reading is not None and reading is not asyncio.current_task():
            reading.cancel()
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.disconnect()
            with contextlib.suppress(Exception):
                await self._pool.release(connection)
        if self._queued and not self._flush_scheduled and self._loop is not None and not fail_queued:
            # Commands queued meanwhile were never sent: they go out on a new connection.
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _fail_queued(self, error: Exception) -> None:
        queued, self._queued = self._queued, []
        for _, future in queued:
            if not future.done():
                future.set_exception(error)


def _lost(error: Exception) -> RedisConnectionError:
    logger.warning("Redis pipeline connection lost: %s: %s", type(error).__name__, error)
    return RedisConnectionError(f"{type(error).__name__}: {error}")
