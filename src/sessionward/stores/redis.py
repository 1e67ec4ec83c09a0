"""The Redis store for a standalone or Sentinel-managed Redis, through redis-py's asyncio client.

Layout: see :mod:`sessionward.stores._redis_layout`; scripts: :mod:`sessionward.stores._redis_lua`.
A session is a HASH with one field per data key, so a per-key write is a native
HSET/HDEL and racing writers of different keys lose nothing. Redis expires sessions
and tombstones by TTL (``expires_at`` minus the writer's clock, capped by the absolute
deadline, plus a little slack); :meth:`RedisStore.load` still checks ``expires_at`` itself.

Round trips per request: a load is one ``HGETALL``; a save (data, metadata, idle clock,
TTL) is one script that writes only into a live session, so a concurrent logout is never
undone. These two hot-path commands are auto-pipelined: those of all requests in one
event-loop tick travel together (:mod:`sessionward.stores._redis_pipeline`); the generated
blocking twin sends them on a pooled connection without redis-py's per-command wrapping
(:mod:`sessionward.stores._redis_direct`). Nothing is cached, so every request still reads
what Redis holds now.

Atomicity: ``establish`` (login, rotation), ``end`` (logout) and ``end_user`` are each one
script: one atomic step that also keeps the user index exact, whatever slots its keys
hash to. A Redis Cluster allows no such script; :class:`~sessionward.stores.redis_cluster.RedisClusterStore`
splits that work into steps and argues why they are safe.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from typing import Any, ClassVar, cast
from urllib.parse import urlencode

from msgspec.structs import replace
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from sessionward.core.engine import Hits, SessionLimit
from sessionward.core.errors import ConfigError, LoginRefusedError, StoreError
from sessionward.core.ids import is_handle, is_key
from sessionward.core.records import EndReason, Entry, Expected, SessionRecord, Tombstone, Update, dumps
from sessionward.stores import _redis_lua as lua
from sessionward.stores._contract import Established, StoreStats, check_counter
from sessionward.stores._redis_direct import direct_link
from sessionward.stores._redis_errors import TRANSLATED, translate, translated
from sessionward.stores._redis_layout import (
    DATA_PREFIX,
    RECORD_FORMATS,
    Arg,
    check_prefix,
    counter_key,
    decode_entry,
    displacement,
    ends_after,
    glob_escape,
    handle_key,
    live_record,
    members,
    meta_fields,
    not_applied,
    number,
    pairs,
    record_fields,
    seal_args,
    seal_key,
    session_key,
    text,
    tomb_args,
    ttl_ms,
    user_keys,
    user_tag,
)
from sessionward.stores._redis_pipeline import auto_pipeline
from sessionward.stores._redis_url import DEFAULT_PREFIX, RedisTarget, parse_url
from sessionward.stores.base import SessionStore

logger = logging.getLogger("sessionward")

SCAN_COUNT = 500


def connect(target: RedisTarget, *, timeout_s: float, setting: str = "SESSIONWARD_STORE") -> Redis | RedisCluster:
    """Build the client for ``target`` (it connects lazily, on first use).

    Every client gets socket timeouts and at most one quick retry: a pooled connection
    found closed (after a Redis restart) is replaced at once, while an outage surfaces
    within the timeout instead of behind redis-py's default ten retries with backoff.

    Raises:
        ConfigError: naming ``setting``, when redis-py refuses the target's options.
    """
    timeouts: dict[str, Any] = {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "retry": Retry(NoBackoff(), 1),
    }
    auth: dict[str, Any] = {"username": target.username, "password": target.password}
    try:
        if target.kind == "sentinel":
            assert target.service is not None
            sentinel = Sentinel(  # type: ignore[no-untyped-call, unused-ignore]
                target.hosts,
                sentinel_kwargs={"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s},
                ssl=target.tls,
                **timeouts,
                **auth,
            )
            master: Redis = sentinel.master_for(target.service, db=target.db, **target.options)
            return master
        scheme = "rediss" if target.tls else "redis"
        host, port = target.hosts[0]
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        query = "?" + urlencode(target.options) if target.options else ""
        if target.kind == "cluster":
            nodes = [ClusterNode(h, p) for h, p in target.hosts]  # type: ignore[no-untyped-call, unused-ignore]
            cluster: RedisCluster = RedisCluster.from_url(
                f"{scheme}://{netloc}{query}", startup_nodes=nodes, **timeouts, **auth
            )
            return cluster
        url = f"{scheme}://{netloc}/{target.db}{query}"
        client: Redis = Redis.from_url(url, **timeouts, **auth)
        return client
    except (ValueError, TypeError, RedisError) as error:
        raise ConfigError(setting, f"cannot open the Redis store: {error}") from None


class RedisStore(SessionStore):
    """Sessions in a standalone or Sentinel-managed Redis; see the module docstring.

    Args:
        client: A redis-py asyncio client (``Redis``, or a Sentinel ``master_for``
            client), created with ``decode_responses=False``. It is used as given:
            nothing connects to a default host. A ``RedisCluster`` client needs
            :class:`~sessionward.stores.redis_cluster.RedisClusterStore`.
        key_prefix: Prefix of every key; lets several applications share one Redis.
        record_format: ``"compact"`` (the default) writes metadata and tombstones in
            about half the memory; ``"json"`` writes them as sessionward 0.1 did, so that 0.1 servers
            sharing the Redis can still read every session while a fleet is upgraded
            one server at a time. Both are always read.

    Raises:
        TypeError: the client is a Redis Cluster client.
        ValueError: ``record_format`` is neither, or the client decodes replies to text.
    """

    cluster: ClassVar[bool] = False
    """Whether the store talks to a Redis Cluster (then every script stays within one slot)."""

    def __init__(
        self, client: Redis | RedisCluster, *, key_prefix: str = DEFAULT_PREFIX, record_format: str = "compact"
    ) -> None:
        if isinstance(client, RedisCluster) is not self.cluster:
            wanted = "RedisClusterStore" if isinstance(client, RedisCluster) else "RedisStore"
            raise TypeError(f"{type(self).__name__} cannot use a {type(client).__name__} client; use {wanted}")
        if record_format not in RECORD_FORMATS:
            raise ValueError(f"record_format must be one of {', '.join(RECORD_FORMATS)}, not {record_format!r}")
        if client.get_encoder().decode_responses:
            # Compact records are binary: a client decoding replies to text fails on them.
            raise ValueError(f"{type(self).__name__} needs a client made with decode_responses=False")
        self.client = client
        self.prefix = check_prefix(key_prefix)
        self.compact = record_format == "compact"
        self._ready = True
        register = client.register_script
        self._save = register(lua.SAVE)
        self._end = register(lua.END)
        self._unindex = register(lua.UNINDEX)
        self._prune = register(lua.PRUNE)
        self._login = register(lua.LOGIN)
        self._end_user = register(lua.END_USER)
        self._count_hit = register(lua.COUNT_HIT)
        # The hot path's auto-pipeline (an asyncio client), its direct blocking link (the
        # generated blocking twin of this store), or None (a cluster client). Typed Any:
        # each twin calls ``execute`` the way its own link answers.
        self._pipeline: Any = auto_pipeline(client) or direct_link(client)

    @classmethod
    def from_url(cls, url: str, *, setting: str = "SESSIONWARD_STORE", timeout_s: float = 1.0) -> RedisStore:
        """Build a store from a ``redis://``, ``rediss://``, ``redis+cluster://`` or ``redis+sentinel://`` URL.

        A ``redis+cluster://`` (or ``rediss+cluster://``) URL gives a
        :class:`~sessionward.stores.redis_cluster.RedisClusterStore`.

        Raises:
            ConfigError: the URL is malformed or names no host; the message names ``setting``.
        """
        target = parse_url(url, setting=setting)
        client = connect(target, timeout_s=timeout_s, setting=setting)
        if isinstance(client, RedisCluster):
            from sessionward.stores.redis_cluster import RedisClusterStore

            return RedisClusterStore(client, key_prefix=target.key_prefix, record_format=target.record_format)
        return cls(client, key_prefix=target.key_prefix, record_format=target.record_format)

    async def setup(self) -> None:
        """Check that Redis answers and load the scripts (there is no schema).

        Scripts also load themselves on first use (after a restart or a flush); loading
        them here spares the first requests racing to load them on every node.
        """
        await self._connect()
        with translate():
            await self.client.ping()
            for source in lua.SCRIPTS:
                await self.client.script_load(source)

    async def _connect(self) -> None:
        """Make the client ready for its first command: nothing to do for one server."""

    async def close(self) -> None:
        if self._pipeline is not None:
            await self._pipeline.close()
        await self.client.aclose()
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
        except TRANSLATED as error:
            raise translated(error) from error
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
            except TRANSLATED as error:
                raise translated(error) from error
            if sealed is not None:
                return replace(entry, sealed_successor=text(sealed))
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
        with translate():
            found = await self.client.get(handle_key(self.prefix, handle))
        if found is None:
            return None
        key = text(found)
        if not is_key(key) or not key.startswith(handle):
            return None
        entry = await self.load(key, now)
        return entry if isinstance(entry, SessionRecord) and entry.expires_at > now else None

    async def find_moved(self, handle: str, now: float) -> Tombstone | None:
        await self._connect()
        if not is_handle(handle):
            return None
        with translate():
            found = await self.client.get(handle_key(self.prefix, handle))
        if found is None or not is_key(key := text(found)) or not key.startswith(handle):
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
        with translate():
            indexed = members(await self.client.zrange(index[0], 0, -1))
            replies = await self._pipelined([("hgetall", session_key(self.prefix, m)) for m in indexed])
        records, gone = [], []
        for member, fields in zip(indexed, replies, strict=True):
            try:
                entry = decode_entry(member, fields)
            except StoreError:
                logger.warning("corrupt session record %s skipped in the user list", member[:16])
                continue
            if isinstance(entry, SessionRecord) and entry.meta.user != user:
                # Indexed here by mistake (a hand edit, a buggy migration): not this user's
                # to list, and pruned. A key changes user only by a login that keeps its ID,
                # and that login takes it out of this index itself.
                logger.warning("session %s of another user skipped in the user list", member[:16])
                gone.append(member)
            elif isinstance(entry, SessionRecord):
                if entry.expires_at > now:
                    records.append(entry)
            else:
                gone.append(member)  # ended or expired by Redis: nothing to list, prune it
        if gone:
            with translate():
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
        with translate():
            async with aclosing(self._scan(f"{glob_escape(self.prefix)}s:*")) as batches:
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
        with translate():
            async with aclosing(self._scan(f"{glob_escape(self.prefix)}c:*")) as batches:
                async for batch in batches:
                    replies = await self._pipelined([("hget", k, "e") for k in batch])
                    counters += sum(1 for ends in replies if ends_after(ends, now))
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
        with translate():
            count, ends = await self._count_hit(keys=[counter_key(self.prefix, name)], args=args)
        return Hits(count=int(count), resets_at=float(ends))

    async def reset_counter(self, name: str) -> None:
        check_counter(name)
        await self._connect()
        with translate():
            await self.client.delete(counter_key(self.prefix, name))

    async def _scan(self, pattern: str) -> AsyncGenerator[list[str], None]:
        """Yield the keys matching ``pattern`` in batches (on every primary, in cluster mode)."""
        batch: list[str] = []
        scan = cast(AsyncGenerator[bytes | str, None], self.client.scan_iter(match=pattern, count=SCAN_COUNT))
        async with aclosing(scan) as keys:
            async for found in keys:
                batch.append(text(found))
                if len(batch) >= SCAN_COUNT:
                    yield batch
                    batch = []
        if batch:
            yield batch

    # -- writing -----------------------------------------------------------------------------

    async def save(self, key: str, update: Update) -> bool:
        if not self._ready:
            await self._connect()
        args: list[Arg]
        if update.meta_changed:
            meta = update.meta
            written = meta_fields(meta, compact=self.compact)
            args = [self.prefix, len(written) // 2, number(update.expires_at), number(update.retain_until)]
            args += [ttl_ms(update.kept_until, meta.last_access_at), "1" if update.touches_data else "0"]
            args.append(len(update.set))
            args += written
        else:
            # Only data changed: the script leaves metadata, expiry and TTL as they are.
            args = [self.prefix, 0, "", "", "", "1" if update.touches_data else "0", len(update.set)]
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
        except TRANSLATED as error:
            raise translated(error) from error
        return bool(saved)

    async def end(self, tombstone: Tombstone) -> SessionRecord | None:
        await self._connect()
        fields = await self._end_session(tombstone.key, tombstone)
        if fields is None:
            return None
        return live_record(tombstone.key, fields)

    async def discard(self, tombstone: Tombstone) -> None:
        await self._connect()
        await self._end_session(tombstone.key, tombstone, discard=True)

    async def _end_session(
        self, key: str, tomb: Tombstone, *, only_existing: bool = False, discard: bool = False, owner: str = ""
    ) -> dict[bytes, bytes] | None:
        """Tombstone ``key`` and take it out of its user's index, in one script.

        Returns:
            The fields it held when it was live, else ``None``.
        """
        previous = await self._run_end(
            key, tomb, only_existing=only_existing, discard=discard, unindex=True, owner=owner
        )
        return pairs(previous) if previous else None

    async def _run_end(
        self, key: str, tomb: Tombstone, *, only_existing: bool, discard: bool, unindex: bool, owner: str = ""
    ) -> Any:
        """Run the END script on ``key``'s slot (``unindex``: leave the user index in it too).

        ``owner``, a user tag: end the session only if it is that user's (a user-wide end).
        """
        args: list[Arg] = [
            self.prefix,
            key,
            *tomb_args(tomb.unsealed(), compact=self.compact),
            "1" if unindex else "0",
            "1" if only_existing else "0",
            *seal_args(tomb),
            "1" if discard else "0",
            owner,
        ]
        with translate():
            return await self._end(keys=self._session_keys(key), args=args)

    async def establish(
        self,
        record: SessionRecord,
        *,
        retire: Tombstone | None = None,
        limit: SessionLimit | None = None,
        expect: Expected | None = None,
    ) -> Established:
        await self._connect()
        user = record.meta.user
        if user is None:
            limit = None
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
        args += [*tomb_args(displacement(user, limit), compact=self.compact), retire.key if retire else ""]
        args += tomb_args(retired, compact=self.compact)
        args += [expect.key, str(expect.version)] if expect is not None else ["", ""]
        args += [*seal_args(retire), *record_fields(record, compact=self.compact)]
        with translate():
            result = await self._login(keys=self._session_keys(record.key), args=args)
        if result[0] == 2:
            assert expect is not None
            return not_applied(expect.key, result[1])
        if result[0] == 0:
            assert limit is not None
            assert user is not None
            raise LoginRefusedError(user, limit.max_sessions)
        displaced = [live_record(text(result[i]), pairs(result[i + 1])) for i in range(1, len(result), 2)]
        return Established(displaced=[r for r in displaced if r is not None])

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
        args: list[Arg] = [self.prefix, keep_key or "", *tomb_args(tomb, compact=self.compact), tag]
        with translate():
            result = await self._end_user(keys=self._user_keys(tag), args=args)
        records = [live_record(text(result[i]), pairs(result[i + 1])) for i in range(0, len(result), 2)]
        return [r for r in records if r is not None and r.expires_at > now]

    async def purge_expired(self, now: float, batch_size: int = 500) -> int:
        """Prune user-index entries past their deadline; Redis expires the sessions and counters themselves."""
        await self._connect()
        removed = 0
        index_prefix = f"{self.prefix}ux:"
        with translate():
            async with aclosing(self._scan(f"{glob_escape(index_prefix)}*")) as batches:
                async for batch in batches:
                    for by_deadline in batch:
                        by_creation = f"{self.prefix}u:{by_deadline[len(index_prefix) :]}"
                        args: list[Arg] = [self.prefix, number(now), batch_size - removed]
                        removed += int(await self._prune(keys=[by_creation, by_deadline], args=args))
                        if removed >= batch_size:
                            return removed
        return removed
