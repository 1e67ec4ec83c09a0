"""The Redis store: standalone, Sentinel-managed or Cluster, through redis-py's asyncio client.

Layout: see :mod:`sessionward.stores._redis_layout`; scripts: :mod:`sessionward.stores._redis_lua`.
A session is a HASH with one field per data key, so a per-key write is a native
HSET/HDEL and racing writers of different keys lose nothing (F18). Redis expires sessions
and tombstones by TTL (``expires_at`` minus the writer's clock, capped by the absolute
deadline, plus a little slack); :meth:`RedisStore.load` still checks ``expires_at`` itself.

Round trips per request: a load is one ``HGETALL``; a save (data, metadata, idle clock,
TTL) is one script that writes only into a live session, so a concurrent logout is never
undone. On a standalone or Sentinel-managed Redis these two hot-path commands are
auto-pipelined: those of all requests in one event-loop tick travel together
(:mod:`sessionward.stores._redis_pipeline`); nothing is cached, so every request still
reads what Redis holds now. On a standalone or Sentinel-managed Redis, ``establish`` (login, rotation), ``end``
(logout) and ``end_user`` are each one script: one atomic step that also keeps the user
index exact.

Redis Cluster. A script may only touch keys of one slot, and a session and its user's
index hash to different slots, so there the work is split:

* Atomic: everything on one session (load, save, end, write: the session hash and its
  handle key share the tag ``{handle}``), everything on one user's index (the limit
  check and registration of a login, pruning: both index keys share the tag ``{user}``),
  and a counter's hit (one script on its one key, in every mode).
* Not atomic: the steps of a login (check the members' liveness, write the new session,
  admit it into the index under the limit, tombstone the old ID and the displaced
  sessions), of a logout (tombstone, then leave the index) and of ``end_user``.

Why that is safe: the limit itself is decided by one script on the user's slot, so two
racing logins of one user are serialized there and never both pass (F11). The liveness
check that precedes it only removes members that are gone, and a session that has ended
never lives again, so a stale answer can only overcount (a refusal or displacement that
a retry clears), never let a login past the limit. The new session is written *before*
it is admitted (and deleted again if refused), so no reader ever finds an indexed member
whose hash is not there yet and prunes it. Sessions are tombstoned in their own slot
atomically; only their removal from the index may lag by a moment (or, if the app
process dies in between, until the entry's deadline), and readers skip and prune index
entries whose session is gone. The user index carries the absolute deadline of each
session and expires with the last one, so nothing in it outlives its sessions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from types import TracebackType
from typing import Any, cast

from msgspec.structs import replace
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import (
    BusyLoadingError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)

from sessionward.core.engine import Hits, SessionLimit
from sessionward.core.errors import LoginRefusedError, StoreError, StoreUnavailableError
from sessionward.core.ids import is_handle, is_key
from sessionward.core.records import EndReason, Entry, Expected, SessionRecord, Tombstone, Update, dumps, meta_to_json
from sessionward.stores import _redis_lua as lua
from sessionward.stores._redis_layout import (
    DATA_PREFIX,
    check_prefix,
    counter_key,
    decode_entry,
    handle_key,
    is_live,
    number,
    pairs,
    record_fields,
    seal_args,
    seal_key,
    session_key,
    tombstone_json,
    ttl_ms,
    user_keys,
    user_tag,
)
from sessionward.stores._redis_pipeline import auto_pipeline
from sessionward.stores._redis_url import DEFAULT_PREFIX, connect, parse_url
from sessionward.stores.base import Established, SessionStore, StoreStats, check_counter

logger = logging.getLogger("sessionward")

Arg = bytes | str | int | float
"""A script argument."""

SCAN_COUNT = 500
# Server-side conditions that mean "not now" rather than "this data is bad".
_UNAVAILABLE_REPLIES = (ReadOnlyError, TryAgainError, OutOfMemoryError, BusyLoadingError)


class _Translate:
    """Map redis-py's errors to the store contract's (F19: outages become 503s).

    ``with _translate():`` uses one shared, stateless instance: nothing is allocated per
    store call (a generator-based context manager costs two objects on the hot path).
    The hot path uses ``except _TRANSLATED`` with :func:`_translated` instead, which costs
    nothing at all while no error occurs.
    """

    __slots__ = ()

    def __call__(self) -> _Translate:
        return self

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if isinstance(error, _TRANSLATED):
            raise _translated(error) from error


_TRANSLATED = (RedisError, RedisClusterException, OSError)
"""What :func:`_translated` maps; anything else passes unchanged."""


def _translated(error: BaseException) -> StoreError:
    """Return the store contract's error for a redis-py (or socket) error."""
    if isinstance(error, _UNAVAILABLE_REPLIES):
        return StoreUnavailableError(f"Redis store unavailable: {error}")
    if isinstance(error, ResponseError):
        # WRONGTYPE and the like: someone else's value sits at our key; treat as corrupt.
        return StoreError(f"Redis store error: {error}")
    return StoreUnavailableError(f"Redis store unavailable: {type(error).__name__}: {error}")


_translate = _Translate()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _members(reply: Any) -> list[str]:
    return [_text(member) for member in reply]


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisStore(SessionStore):
    """Sessions in Redis; see the module docstring for layout, atomicity and cluster mode.

    Args:
        client: A redis-py asyncio client (``Redis``, ``RedisCluster``, or a Sentinel
            ``master_for`` client), created with ``decode_responses=False``. It is used
            as given: nothing connects to a default host.
        key_prefix: Prefix of every key; lets several applications share one Redis.
        cluster: Whether the client talks to a Redis Cluster (scripts then stay within
            one slot). Guessed from the client's type when ``None``.
    """

    def __init__(self, client: Redis | RedisCluster, *, key_prefix: str = DEFAULT_PREFIX, cluster: bool | None = None):
        self.client = client
        self.prefix = check_prefix(key_prefix)
        self.cluster = isinstance(client, RedisCluster) if cluster is None else cluster
        self._ready = not isinstance(client, RedisCluster)
        self._ready_lock = asyncio.Lock()
        register = client.register_script
        self._save = register(lua.SAVE)
        self._end = register(lua.END)
        self._write = register(lua.WRITE)
        self._admit = register(lua.ADMIT)
        self._unindex = register(lua.UNINDEX)
        self._prune = register(lua.PRUNE)
        self._login = register(lua.LOGIN)
        self._claim_script = register(lua.CLAIM)
        self._end_user = register(lua.END_USER)
        self._count_hit = register(lua.COUNT_HIT)
        # The hot path's auto-pipeline, or None (a cluster client; the generated blocking
        # twin of this store). Typed Any so that twin, which never uses it, still checks.
        self._pipeline: Any = auto_pipeline(client)

    @classmethod
    def from_url(cls, url: str, *, setting: str = "SESSIONWARD_STORE", timeout_s: float = 1.0) -> RedisStore:
        """Build a store from a ``redis://``, ``rediss://``, ``redis+cluster://`` or ``redis+sentinel://`` URL.

        Raises:
            ConfigError: the URL is malformed or names no host; the message names ``setting``.
        """
        target = parse_url(url, setting=setting)
        client = connect(target, timeout_s=timeout_s, setting=setting)
        return cls(client, key_prefix=target.key_prefix, cluster=target.kind == "cluster")

    async def setup(self) -> None:
        """Check that Redis answers and load the scripts (there is no schema).

        Scripts also load themselves on first use (after a restart or a flush); loading
        them here spares the first requests racing to load them on every node.
        """
        await self._connect()
        with _translate():
            await self.client.ping()
            for source in lua.SCRIPTS:
                await self.client.script_load(source)

    async def _connect(self) -> None:
        """Learn the cluster's topology once, before any command (a no-op for one server).

        redis-py's asyncio cluster client (8.1) tears connections down mid-handshake when
        many first commands race its lazy start-up; discovering the nodes first avoids it.
        """
        if self._ready:
            return
        async with self._ready_lock:
            if not self._ready and isinstance(self.client, RedisCluster):
                with _translate():
                    await self.client.initialize()
            self._ready = True

    async def close(self) -> None:
        if self._pipeline is not None:
            await self._pipeline.close()
        await self.client.aclose()
        # redis-py's blocking cluster client (the generated twin of this store) leaves its
        # nodes' pools connected on close; the asyncio one has no such method (nor need).
        disconnect = getattr(self.client, "disconnect_connection_pools", None)
        if disconnect is not None:
            disconnect()
        # A Sentinel-managed client also holds connections to the sentinels themselves.
        manager = getattr(getattr(self.client, "connection_pool", None), "sentinel_manager", None)
        for sentinel in getattr(manager, "sentinels", ()):
            await sentinel.aclose()

    # -- key names ---------------------------------------------------------------------------

    def _session_keys(self, key: str) -> list[str]:
        return [session_key(self.prefix, key), handle_key(self.prefix, key)]

    def _user_keys(self, tag: str) -> list[str]:
        return list(user_keys(self.prefix, tag))

    # -- reading -----------------------------------------------------------------------------

    async def load(self, key: str, now: float) -> Entry | None:
        if not self._ready:
            await self._connect()
        name = session_key(self.prefix, key)
        pipeline = self._pipeline
        # One HGETALL; the hash comes flat (RESP2) or as a dict (RESP3, redis-py).
        try:
            if pipeline is not None:
                fields = await pipeline.execute(b"HGETALL", name)
            else:
                fields = await self.client.hgetall(name)
        except _TRANSLATED as error:
            raise _translated(error) from error
        entry = decode_entry(key, fields)
        if entry is None:
            return None
        if isinstance(entry, SessionRecord):
            # An expired record stays loadable until kept_until, so the engine can tell why it ended.
            return entry if entry.kept_until > now else None
        if entry.expires_at <= now:
            return None
        if entry.successor_key is not None and entry.grace_until is not None and now <= entry.grace_until:
            # A renewal within its grace: the sealed successor lives beside it (rarely read).
            try:
                sealed = await self.client.get(seal_key(self.prefix, key))
            except _TRANSLATED as error:
                raise _translated(error) from error
            if sealed is not None:
                return replace(entry, sealed_successor=_text(sealed))
        return entry

    async def _evaluate(self, source: str, keys: list[str], args: Sequence[Arg]) -> Any:
        """Run a script through the pipeline by its source (Redis lost it: restarted, flushed).

        ``EVAL`` also caches the script again, so the ``EVALSHA`` of later calls succeed.
        """
        return await self._pipeline.execute(b"EVAL", source, len(keys), *keys, *args)

    async def find_handle(self, handle: str, now: float) -> SessionRecord | None:
        await self._connect()
        if not is_handle(handle):
            return None
        with _translate():
            found = await self.client.get(handle_key(self.prefix, handle))
        if found is None:
            return None
        key = _text(found)
        if not is_key(key) or not key.startswith(handle):
            return None
        entry = await self.load(key, now)
        return entry if isinstance(entry, SessionRecord) and entry.expires_at > now else None

    async def find_moved(self, handle: str, now: float) -> Tombstone | None:
        await self._connect()
        if not is_handle(handle):
            return None
        with _translate():
            found = await self.client.get(handle_key(self.prefix, handle))
        if found is None or not is_key(key := _text(found)) or not key.startswith(handle):
            return None
        try:
            entry = await self.load(key, now)
        except StoreError:
            return None
        return entry if isinstance(entry, Tombstone) and entry.successor_key is not None else None

    async def list_user(self, user: str, now: float) -> list[SessionRecord]:
        await self._connect()
        tag = user_tag(user)
        index = self._user_keys(tag)
        with _translate():
            members = _members(await self.client.zrange(index[0], 0, -1))
            replies = await self._pipelined([("hgetall", session_key(self.prefix, m)) for m in members])
        records, gone = [], []
        for member, fields in zip(members, replies, strict=True):
            try:
                entry = decode_entry(member, fields)
            except StoreError:
                logger.warning("corrupt session record %s skipped in the user list", member[:16])
                continue
            if isinstance(entry, SessionRecord):
                if entry.expires_at > now:
                    records.append(entry)
            else:
                gone.append(member)  # ended or expired by Redis: nothing to list, prune it
        if gone:
            with _translate():
                await self._unindex(keys=index, args=[self.prefix, *gone])
        return records

    async def _pipelined(self, commands: Sequence[tuple[str, ...] | tuple[str, str, list[str]]]) -> list[Any]:
        """Send ``commands`` in one pipeline (per node, in cluster mode); return the replies."""
        if not commands:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for name, *args in commands:
                getattr(pipe, name)(*args)
            replies: list[Any] = await pipe.execute()
        return replies

    async def stats(self, now: float) -> StoreStats:
        await self._connect()
        live = authenticated = tombstones = 0
        users: set[bytes] = set()
        with _translate():
            async with aclosing(self._scan(f"{_glob_escape(self.prefix)}s:*")) as batches:
                async for batch in batches:
                    replies = await self._pipelined([("hmget", k, ["e", "t", "u"]) for k in batch])
                    for expires, tomb, tag in replies:
                        if expires is None or float(expires) <= now:
                            continue
                        if tomb is not None:
                            tombstones += 1
                            continue
                        live += 1
                        if tag is not None:
                            authenticated += 1
                            users.add(tag)
        counters = 0
        with _translate():
            async with aclosing(self._scan(f"{_glob_escape(self.prefix)}c:*")) as batches:
                async for batch in batches:
                    replies = await self._pipelined([("hget", k, "e") for k in batch])
                    counters += sum(1 for ends in replies if _ends_after(ends, now))
        return StoreStats(
            live_sessions=live,
            authenticated_sessions=authenticated,
            users=len(users),
            tombstones=tombstones,
            counters=counters,
        )

    # -- counters ----------------------------------------------------------------------------

    async def count_hit(self, name: str, window_s: float, now: float) -> Hits:
        """Count a hit in one script; the counter also gets a real TTL, so Redis forgets it by itself."""
        check_counter(name, window_s)
        await self._connect()
        resets_at = now + window_s
        args: list[Arg] = [number(now), number(resets_at), ttl_ms(resets_at, now)]
        with _translate():
            count, ends = await self._count_hit(keys=[counter_key(self.prefix, name)], args=args)
        return Hits(count=int(count), resets_at=float(ends))

    async def reset_counter(self, name: str) -> None:
        check_counter(name)
        await self._connect()
        with _translate():
            await self.client.delete(counter_key(self.prefix, name))

    async def _scan(self, pattern: str) -> AsyncGenerator[list[str], None]:
        """Yield the keys matching ``pattern`` in batches (on every primary, in cluster mode)."""
        batch: list[str] = []
        scan = cast(AsyncGenerator[bytes | str, None], self.client.scan_iter(match=pattern, count=SCAN_COUNT))
        async with aclosing(scan) as keys:
            async for found in keys:
                batch.append(_text(found))
                if len(batch) >= SCAN_COUNT:
                    yield batch
                    batch = []
        if batch:
            yield batch

    # -- writing -----------------------------------------------------------------------------

    async def save(self, key: str, update: Update) -> bool:
        if not self._ready:
            await self._connect()
        args: list[Arg] = [self.prefix]
        if update.meta_changed:
            meta = update.meta
            args += [meta_to_json(meta), number(update.expires_at), number(update.retain_until)]
            args += [ttl_ms(update.kept_until, meta.last_access_at), "1" if update.touches_data else "0"]
            args.append(len(update.set))
        else:
            # Only data changed: the script leaves metadata, expiry and TTL as they are.
            args += ["", "", "", "", "1" if update.touches_data else "0", len(update.set)]
        for name, value in update.set.items():
            args += [DATA_PREFIX + name.encode(), dumps(value)]
        args += [DATA_PREFIX + name.encode() for name in update.delete]
        keys = self._session_keys(key)
        pipeline = self._pipeline
        try:
            if pipeline is not None:
                try:
                    saved = await pipeline.execute(b"EVALSHA", self._save.sha, 2, *keys, *args)
                except NoScriptError:
                    saved = await self._evaluate(lua.SAVE, keys, args)
            else:
                saved = await self._save(keys=keys, args=args)
        except _TRANSLATED as error:
            raise _translated(error) from error
        return bool(saved)

    async def end(self, tombstone: Tombstone) -> SessionRecord | None:
        await self._connect()
        fields = await self._end_session(tombstone.key, tombstone)
        if fields is None:
            return None
        return _live_record(tombstone.key, fields)

    async def discard(self, tombstone: Tombstone) -> None:
        await self._connect()
        await self._end_session(tombstone.key, tombstone, discard=True)

    async def _end_session(
        self, key: str, tomb: Tombstone, *, only_existing: bool = False, discard: bool = False
    ) -> dict[bytes, bytes] | None:
        """Tombstone ``key``; return the fields it held when it was live. Leaves the user index too."""
        args: list[Arg] = [
            self.prefix,
            key,
            tombstone_json(tomb.unsealed()),
            number(tomb.expires_at),
            ttl_ms(tomb.expires_at, tomb.ended_at),
            "0" if self.cluster else "1",
            "1" if only_existing else "0",
            *seal_args(tomb),
            "1" if discard else "0",
        ]
        with _translate():
            previous = await self._end(keys=self._session_keys(key), args=args)
        if not previous:
            return None
        fields = pairs(previous)
        tag = fields.get(b"u")
        if self.cluster and tag is not None:
            # Cluster: the index is in another slot, so this is a second step (see module docstring).
            with _translate():
                await self._unindex(keys=self._user_keys(_text(tag)), args=[self.prefix, key])
        return fields

    async def establish(
        self,
        record: SessionRecord,
        *,
        retire: Tombstone | None = None,
        limit: SessionLimit | None = None,
        expect: Expected | None = None,
    ) -> Established:
        await self._connect()
        if record.meta.user is None:
            limit = None
        if self.cluster:
            return await self._establish_in_steps(record, retire, limit, expect)
        user = record.meta.user
        displaced_tomb = _displaced(user, limit)
        args: list[Arg] = [
            self.prefix,
            record.key,
            ttl_ms(record.kept_until, record.meta.last_access_at),
            user_tag(user) if user is not None else "",
            number(limit.now if limit else record.meta.last_access_at),
            limit.max_sessions if limit else 0,
            "1" if limit and limit.prevent_login else "0",
            number(record.meta.created_at),
            number(record.meta.absolute_deadline),
        ]
        retired = retire.unsealed() if retire is not None else None
        args += [*_tomb_args(displaced_tomb), retire.key if retire else "", *_tomb_args(retired)]
        args += [expect.key, str(expect.version)] if expect is not None else ["", ""]
        args += [*seal_args(retire), *record_fields(record)]
        with _translate():
            result = await self._login(keys=self._session_keys(record.key), args=args)
        if result[0] == 2:
            assert expect is not None
            return _not_applied(expect.key, result[1])
        if result[0] == 0:
            assert limit is not None
            assert user is not None
            raise LoginRefusedError(user, limit.max_sessions)
        displaced = [_live_record(_text(result[i]), pairs(result[i + 1])) for i in range(1, len(result), 2)]
        return Established(displaced=[r for r in displaced if r is not None])

    async def _establish_in_steps(
        self, record: SessionRecord, retire: Tombstone | None, limit: SessionLimit | None, expect: Expected | None
    ) -> Established:
        """Cluster mode: the steps of ``establish``, each atomic in its slot (module docstring)."""
        if expect is not None and expect.key == record.key:
            # A login that keeps its ID: the check and the write are on one key, one step.
            ttl = ttl_ms(record.kept_until, record.meta.last_access_at)
            reply = await self._claim(expect, ["write", ttl, *record_fields(record)])
            if reply[0] == 0:
                return _not_applied(expect.key, reply[1])
            expect = None
        user = record.meta.user
        tag = user_tag(user) if user is not None else None
        now = limit.now if limit else record.meta.last_access_at
        skip = [retire.key] if retire is not None else []
        dead: list[str] = []
        existing = False
        if limit is not None and tag is not None:
            dead, existing = await self._find_dead(tag, record.key, skip, now)
        written = False
        previous_tag: bytes | None = None
        if not existing:
            # Written before it is admitted, so no reader finds it indexed but missing.
            previous_tag = await self._write_record(record)
            written = True
        victims: list[str] = []
        if tag is not None:
            args: list[Arg] = [self.prefix, number(now), limit.max_sessions if limit else 0]
            args += ["1" if limit and limit.prevent_login else "0", record.key]
            args += [number(record.meta.created_at), number(record.meta.absolute_deadline), len(skip), *skip, *dead]
            with _translate():
                result = await self._admit(keys=self._user_keys(tag), args=args)
            if result[0] == 0:
                assert limit is not None
                assert user is not None
                if written:
                    with _translate():
                        await self.client.delete(*self._session_keys(record.key))
                raise LoginRefusedError(user, limit.max_sessions)
            victims = [_text(v) for v in result[1]]
        if not written:
            previous_tag = await self._write_record(record)
        if previous_tag is not None and _text(previous_tag) != tag:
            with _translate():
                await self._unindex(keys=self._user_keys(_text(previous_tag)), args=[self.prefix, record.key])
        if retire is not None and retire.key != record.key and expect is not None:
            # The precondition and the retirement, atomic on the old key's slot. The new
            # session is already written (and admitted): a concurrent "end all sessions"
            # finds it through the index or through this tombstone's successor key.
            reply = await self._claim(expect, ["end", *_tomb_args(retire.unsealed()), *seal_args(retire)])
            if reply[0] == 0:
                await self._withdraw(record.key, tag, victims)
                return _not_applied(expect.key, reply[1])
            old_tag = pairs(reply[1]).get(b"u")
            if old_tag is not None:
                with _translate():
                    await self._unindex(keys=self._user_keys(_text(old_tag)), args=[self.prefix, retire.key])
        elif retire is not None and retire.key != record.key:
            await self._end_session(retire.key, retire)
        displaced: list[SessionRecord] = []
        displaced_tomb = _displaced(user, limit)
        for victim in victims:
            assert displaced_tomb is not None
            fields = await self._end_session(victim, displaced_tomb, only_existing=True)
            victim_record = _live_record(victim, fields) if fields is not None else None
            if victim_record is not None:
                displaced.append(victim_record)
        return Established(displaced=displaced)

    async def _claim(self, expect: Expected, tail: list[Arg]) -> Any:
        """Run CLAIM on the expected key's slot (cluster mode)."""
        args: list[Arg] = [self.prefix, expect.key, str(expect.version), *tail]
        with _translate():
            return await self._claim_script(keys=self._session_keys(expect.key), args=args)

    async def _withdraw(self, key: str, tag: str | None, victims: list[str]) -> None:
        """Undo the first steps of a cluster move whose precondition failed: drop the new session."""
        if victims:
            logger.warning("a login lost a race after displacing %d session(s); they stay live", len(victims))
        with _translate():
            if tag is not None:
                await self._unindex(keys=self._user_keys(tag), args=[self.prefix, key])
            await self.client.delete(*self._session_keys(key))

    async def _find_dead(self, tag: str, key: str, skip: list[str], now: float) -> tuple[list[str], bool]:
        """Return the user's indexed sessions that are no longer live, and whether ``key`` is live."""
        with _translate():
            members = _members(await self.client.zrange(self._user_keys(tag)[0], 0, -1))
            candidates = [m for m in members if m != key and m not in skip]
            replies = await self._pipelined(
                [("hmget", session_key(self.prefix, m), ["e", "t"]) for m in [*candidates, key]]
            )
        dead = [m for m, reply in zip(candidates, replies, strict=False) if not is_live(reply, now)]
        return dead, is_live(replies[-1], now)

    async def _write_record(self, record: SessionRecord) -> bytes | None:
        ttl = ttl_ms(record.kept_until, record.meta.last_access_at)
        with _translate():
            previous: bytes | None = await self._write(
                keys=self._session_keys(record.key), args=[self.prefix, record.key, ttl, *record_fields(record)]
            )
        return previous

    async def end_user(
        self,
        user: str,
        reason: EndReason,
        now: float,
        tombstone_expires_at: float,
        *,
        keep_key: str | None = None,
    ) -> list[SessionRecord]:
        await self._connect()
        tomb = Tombstone(key="", reason=reason, user=user, ended_at=now, expires_at=tombstone_expires_at)
        tag = user_tag(user)
        index = self._user_keys(tag)
        ended: list[tuple[str, dict[bytes, bytes]]] = []
        if not self.cluster:
            args: list[Arg] = [self.prefix, keep_key or "", *_tomb_args(tomb)]
            with _translate():
                result = await self._end_user(keys=index, args=args)
            ended = [(_text(result[i]), pairs(result[i + 1])) for i in range(0, len(result), 2)]
        else:
            with _translate():
                members = _members(await self.client.zrange(index[0], 0, -1))
            members = [m for m in members if m != keep_key]
            followed: list[SessionRecord] = []
            for member in members:
                fields = await self._end_session(member, tomb, only_existing=True)
                if fields is not None:
                    ended.append((member, fields))
                    continue
                # Not atomic with a move of this session on another slot: a renewal may
                # have retired the member just now, naming a successor not yet indexed.
                moved = await self.end_following(replace(tomb, key=member), now)
                if moved is not None and moved.key != keep_key:
                    followed.append(moved)
            if members:
                with _translate():
                    await self._unindex(keys=index, args=[self.prefix, *members])
            records = [_live_record(key, fields) for key, fields in ended] + followed
            return [r for r in records if r is not None and r.expires_at > now]
        records = [_live_record(key, fields) for key, fields in ended]
        return [r for r in records if r is not None and r.expires_at > now]

    async def purge_expired(self, now: float, batch_size: int = 500) -> int:
        """Prune user-index entries past their deadline; Redis expires the sessions and counters themselves."""
        await self._connect()
        removed = 0
        index_prefix = f"{self.prefix}ux:"
        with _translate():
            async with aclosing(self._scan(f"{_glob_escape(index_prefix)}*")) as batches:
                async for batch in batches:
                    for by_deadline in batch:
                        by_creation = f"{self.prefix}u:{by_deadline[len(index_prefix) :]}"
                        args: list[Arg] = [self.prefix, number(now), batch_size - removed]
                        removed += int(await self._prune(keys=[by_creation, by_deadline], args=args))
                        if removed >= batch_size:
                            return removed
        return removed


def _ends_after(ends: bytes | str | None, now: float) -> bool:
    """Tell whether a counter's window end (its ``e`` field) is after ``now``."""
    try:
        return ends is not None and float(ends) > now
    except ValueError:
        return False


def _displaced(user: str | None, limit: SessionLimit | None) -> Tombstone | None:
    if limit is None:
        return None
    return Tombstone(
        key="", reason=EndReason.DISPLACED, user=user, ended_at=limit.now, expires_at=limit.tombstone_expires_at
    )


def _not_applied(key: str, fields: Any) -> Established:
    """Return the result of a move whose precondition failed, with what ``key`` holds."""
    try:
        found = decode_entry(key, pairs(fields)) if fields else None
    except StoreError:
        logger.warning("corrupt session record %s met by a move", key[:16])
        found = None
    return Established(applied=False, found=found)


def _tomb_args(tomb: Tombstone | None) -> list[Arg]:
    if tomb is None:
        return ["", "0", 1]
    return [tombstone_json(tomb), number(tomb.expires_at), ttl_ms(tomb.expires_at, tomb.ended_at)]


def _live_record(key: str, fields: dict[bytes, bytes]) -> SessionRecord | None:
    """Decode the fields a session had when it ended; ``None`` unless it was a live record."""
    try:
        entry = decode_entry(key, fields)
    except StoreError:
        logger.warning("corrupt session record %s ended", key[:16])
        return None
    return entry if isinstance(entry, SessionRecord) else None
