"""Redis memory per session: bytes and keys per logged-in session, and what takes them.

One command::

    .venv/bin/python benchmarks/bench_redis_memory.py [--sessions 100000] [--concurrency 64]
        [--user-agent UA] [--sample 1000] [--quick]

Starts a private ``redis-server`` with its default configuration (persistence off; it
changes no memory figure), logs ``--sessions`` distinct users in through the library's
own request path (:class:`~sessionward.io.exchange.Exchange` on a
:class:`~sessionward.io.manager.SessionManager` over a
:class:`~sessionward.stores.redis.RedisStore`: the login script, then the save of a small
counter ``n``, as the ASGI middleware does; ``--concurrency`` logins in flight, so the hot
path's auto-pipeline batches them), and reports:

* ``INFO memory`` ``used_memory`` after the logins minus before them, per session, against
  the target of 700 bytes; keys per session (``DBSIZE``);
* a breakdown by key type (session hash, handle, the user's two index keys) from
  ``MEMORY USAGE … SAMPLES 0`` on a sample of sessions, with each key's encoding and the
  lengths of the session hash's fields; what the breakdown does not cover is the keyspace's
  own overhead (the main and expires dictionaries' bucket arrays);
* the same after 10 % of the sessions log out (their keys become one tombstone each) and
  after another 10 % are renewed once (periodic ID renewal, inside its grace period: the
  old ID's tombstone, its handle and the sealed successor live beside the new session).

Every request carries one client address and ``--user-agent`` (a desktop browser's by
default; metadata keeps it, so its length counts). The clock is a ManualClock: renewal is
made due by moving it past the renewal interval, which this run sets to 600 s (the
default is 3600 s, beyond the default idle timeout of 1800 s) with the longest grace the
policy allows (60 s, so every seal is still there when memory is read). Nothing else
departs from the library's defaults: per-user index, handles, tombstones and renewal
grace are all kept.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from bench_store import private_redis

from sessionward import ManualClock, SessionPolicy
from sessionward.core.config import TimeoutPolicy
from sessionward.core.engine import ClientInfo
from sessionward.core.ids import storage_key
from sessionward.io.exchange import Exchange
from sessionward.io.manager import SessionManager
from sessionward.stores._redis_layout import handle_key, seal_key, session_key, user_keys, user_tag
from sessionward.stores.redis import RedisStore

TARGET_BYTES = 700
BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
CLIENT_IP = "203.0.113.7"
RENEWAL_INTERVAL_S = 600.0
GRACE_S = 60.0


@dataclass
class Snapshot:
    """What Redis holds at one moment."""

    used_memory: int
    keys: int


@dataclass
class KeyFigure:
    """``MEMORY USAGE`` of one kind of key over a sample."""

    label: str
    mean_bytes: float
    encoding: str
    present: int


class Bench:
    """The library and a raw client on one private Redis."""

    def __init__(self, port: int, user_agent: str) -> None:
        self.clock = ManualClock(time.time())
        timeouts = TimeoutPolicy(renewal_interval_s=RENEWAL_INTERVAL_S, rotation_grace_s=GRACE_S)
        self.policy = SessionPolicy(timeouts=timeouts)
        self.store = RedisStore.from_url(f"redis://127.0.0.1:{port}/0")
        self.manager = SessionManager(self.store, self.policy, clock=self.clock)
        self.raw: aioredis.Redis = aioredis.Redis(port=port)
        self.client = ClientInfo(ip=CLIENT_IP, user_agent=user_agent)
        self.prefix = self.store.prefix

    async def snapshot(self) -> Snapshot:
        memory = await self.raw.info("memory")
        return Snapshot(int(memory["used_memory"]), int(await self.raw.dbsize()))

    async def request(
        self, path: str, method: str, cookie: bytes | None, work: Callable[[Exchange], Awaitable[None]]
    ) -> bytes | None:
        """Run one request's session side; return the new cookie (``name=value``) if it set one."""
        exchange = Exchange(self.manager, path=path, client=self.client, method=method)
        interruption = await exchange.open([cookie] if cookie else [])
        if interruption is not None:
            raise RuntimeError(f"{method} {path}: session refused ({interruption})")
        await work(exchange)
        headers = await exchange.commit(200)
        for name, value in headers:
            if name == b"set-cookie":
                return value.split(b";", 1)[0]
        return None

    async def login(self, user: str) -> bytes:
        async def work(exchange: Exchange) -> None:
            await exchange.session.login(user)
            exchange.session["n"] = 0

        cookie = await self.request("/login", "POST", None, work)
        assert cookie is not None
        return cookie

    async def logout(self, cookie: bytes) -> None:
        async def work(exchange: Exchange) -> None:
            await exchange.session.logout()

        await self.request("/logout", "POST", cookie, work)

    async def read(self, cookie: bytes) -> bytes | None:
        async def work(exchange: Exchange) -> None:
            exchange.session.get("n")

        return await self.request("/read", "GET", cookie, work)

    def keys_of(self, user: str, cookie: bytes) -> dict[str, str]:
        """Return the Redis key of each kind for the session behind ``cookie``."""
        key = storage_key(cookie.split(b"=", 1)[1].decode())
        by_creation, by_deadline = user_keys(self.prefix, user_tag(user))
        return {
            "session hash": session_key(self.prefix, key),
            "handle": handle_key(self.prefix, key),
            "user index (by creation)": by_creation,
            "user index (by deadline)": by_deadline,
            "sealed successor": seal_key(self.prefix, key),
        }

    async def figures(self, label: str, names: Iterable[str]) -> KeyFigure:
        sizes: list[int] = []
        encodings: set[str] = set()
        for name in names:
            usage = await self.raw.memory_usage(name, samples=0)
            if usage is None:
                continue
            sizes.append(int(usage))
            encodings.add(text(await self.raw.object("encoding", name) or "?"))
        mean = statistics.fmean(sizes) if sizes else 0.0
        return KeyFigure(label, mean, "/".join(sorted(encodings)) or "-", len(sizes))

    async def field_lengths(self, names: Iterable[str]) -> dict[str, float]:
        """Return the mean length of each field's value in the hashes ``names``."""
        lengths: dict[str, list[int]] = {}
        for name in names:
            for field, value in (await self.raw.hgetall(name)).items():
                lengths.setdefault(text(field), []).append(len(value))
        return {field: statistics.fmean(values) for field, values in sorted(lengths.items())}

    async def listpack_limits(self) -> tuple[int, int]:
        """Return Redis's ``hash-max-listpack-entries`` and ``-value``: a hash past either is a hashtable."""
        settings = await self.raw.config_get("hash-max-*")
        found = {text(name or ""): text(value or "") for name, value in settings.items()}
        entries = found.get("hash-max-listpack-entries", found.get("hash-max-ziplist-entries", "0"))
        value = found.get("hash-max-listpack-value", found.get("hash-max-ziplist-value", "0"))
        return int(entries), int(value)

    async def close(self) -> None:
        await self.store.close()
        await self.raw.aclose()


async def in_parallel(items: list[Any], concurrency: int, work: Callable[[Any], Awaitable[Any]]) -> list[Any]:
    """Run ``work(item)`` for every item, ``concurrency`` at a time, keeping the order of results."""
    results: list[Any] = [None] * len(items)
    position = 0

    async def worker() -> None:
        nonlocal position
        while position < len(items):
            index = position
            position += 1
            results[index] = await work(items[index])

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def user_name(index: int) -> str:
    return f"user{index:07d}"


async def measure(sessions: int, concurrency: int, user_agent: str, sample_size: int, port: int) -> None:
    bench = Bench(port, user_agent)
    await bench.store.setup()
    # Open the connections the run will use before the baseline, so their buffers are not
    # counted as sessions' memory.
    await asyncio.gather(*(bench.store.client.ping() for _ in range(concurrency)))
    await bench.raw.ping()
    empty = await bench.snapshot()

    began = time.perf_counter()
    indexes = list(range(sessions))
    cookies: list[bytes] = await in_parallel(indexes, concurrency, lambda i: bench.login(user_name(i)))
    login_s = time.perf_counter() - began
    logged_in = await bench.snapshot()

    rng = random.Random(19)
    sample = rng.sample(indexes, min(sample_size, sessions))
    keys = {i: bench.keys_of(user_name(i), cookies[i]) for i in sample}
    breakdown = [
        await bench.figures(label, (keys[i][label] for i in sample))
        for label in ("session hash", "handle", "user index (by creation)", "user index (by deadline)")
    ]
    fields = await bench.field_lengths(keys[i]["session hash"] for i in sample[:100])
    first_hash: dict[Any, Any] = await bench.raw.hgetall(keys[sample[0]]["session hash"])
    meta_parts = [value for name, value in first_hash.items() if name[:1] == b"m"]

    # 10 % log out: each session's keys become one tombstone.
    leaving = indexes[0::10]
    await in_parallel(leaving, concurrency, lambda i: bench.logout(cookies[i]))
    logged_out = await bench.snapshot()
    gone_sample = [i for i in sample if i % 10 == 0] or leaving[:sample_size]
    tombstones = await bench.figures(
        "tombstone", (bench.keys_of(user_name(i), cookies[i])["session hash"] for i in gone_sample)
    )
    tomb_fields = await bench.field_lengths(
        bench.keys_of(user_name(i), cookies[i])["session hash"] for i in gone_sample[:100]
    )

    # Another 10 % are renewed once (the renewal interval has passed), within its grace.
    bench.clock.advance(RENEWAL_INTERVAL_S + 1)
    renewing = indexes[1::10]
    renewed_started = time.monotonic()
    new_cookies: list[bytes | None] = await in_parallel(renewing, concurrency, lambda i: bench.read(cookies[i]))
    if any(cookie is None for cookie in new_cookies):
        raise RuntimeError("a renewal did not happen: no new cookie")
    renewed = await bench.snapshot()
    within_grace = time.monotonic() - renewed_started < GRACE_S
    renew_sample = [i for i in sample if i % 10 == 1] or renewing[:sample_size]
    old = {i: bench.keys_of(user_name(i), cookies[i]) for i in renew_sample}
    renewal_keys = [
        await bench.figures("old ID: tombstone", (old[i]["session hash"] for i in renew_sample)),
        await bench.figures("old ID: handle", (old[i]["handle"] for i in renew_sample)),
        await bench.figures("old ID: sealed successor", (old[i]["sealed successor"] for i in renew_sample)),
    ]
    seals = sum([1 async for _ in bench.raw.scan_iter(match=f"{bench.prefix}g:*", count=1000)])
    listpack = await bench.listpack_limits()
    await bench.close()

    per_session = (logged_in.used_memory - empty.used_memory) / sessions
    keys_per_session = (logged_in.keys - empty.keys) / sessions
    print(f"\nRedis memory per session: {sessions:,} sessions, each a distinct user with a counter")
    print(f"  (logged in at {sessions / login_s:,.0f}/s, {concurrency} in flight; user agent {len(user_agent)} bytes)")
    print(f"\n  {'state':<44} {'bytes/session':>14} {'keys/session':>13} {'vs target':>10}")
    print(
        f"  {'logged in (target <= 700 bytes)':<44} {per_session:>14,.0f} {keys_per_session:>13.2f} "
        f"{per_session / TARGET_BYTES:>9.2f}x"
    )

    print(f"\n  breakdown by key (MEMORY USAGE ... SAMPLES 0 over {len(sample):,} sessions):")
    print(f"  {'key':<30} {'encoding':<10} {'bytes':>8} {'share':>7}")
    covered = 0.0
    for figure in breakdown:
        covered += figure.mean_bytes
        print(
            f"  {figure.label:<30} {figure.encoding:<10} {figure.mean_bytes:>8,.0f} "
            f"{figure.mean_bytes / per_session:>6.1%}"
        )
    keyspace = per_session - covered
    print(f"  {'keyspace (dict buckets, expires)':<30} {'':<10} {keyspace:>8,.0f} {keyspace / per_session:>6.1%}")
    print(
        "\n  session hash fields (value bytes, mean): "
        + ", ".join(f"{name} {length:,.0f}" for name, length in fields.items())
    )
    longest = max(fields.values(), default=0)
    print(
        f"  Redis keeps a hash compact (listpack) up to {listpack[0]} fields of at most {listpack[1]} bytes each; "
        f"the longest value here is {longest:,.0f} bytes"
    )
    if meta_parts:
        kind = "JSON" if meta_parts[0][:1] == b"{" else "compact"
        print(f"  metadata: {sum(map(len, meta_parts))} bytes, {kind}, in {len(meta_parts)} field(s) m, m1...")

    leavers = len(leaving)
    after_logout = (logged_out.used_memory - logged_in.used_memory) / leavers
    print(f"\n  {leavers:,} sessions logged out (10 %):")
    print(
        f"    memory per logout {after_logout:+,.0f} bytes (a session's {per_session:,.0f} -> "
        f"{per_session + after_logout:,.0f}), keys per logout {(logged_out.keys - logged_in.keys) / leavers:+.2f}"
    )
    print(
        f"    tombstone hash ({tombstones.encoding}): {tombstones.mean_bytes:,.0f} bytes; fields: "
        + ", ".join(f"{name} {length:,.0f}" for name, length in tomb_fields.items())
    )

    renewals = len(renewing)
    per_renewal = (renewed.used_memory - logged_out.used_memory) / renewals
    print(
        f"\n  {renewals:,} sessions renewed once (10 %), read within the {GRACE_S:.0f} s grace "
        f"({'yes' if within_grace else 'NO: some seals may be gone'}; {seals:,} seals present):"
    )
    print(
        f"    memory per renewal {per_renewal:+,.0f} bytes, keys per renewal "
        f"{(renewed.keys - logged_out.keys) / renewals:+.2f}"
    )
    for figure in renewal_keys:
        print(f"    {figure.label:<28} {figure.encoding:<10} {figure.mean_bytes:>8,.0f} bytes")
    sealed = renewal_keys[2].mean_bytes
    print(f"    once the grace is over (the seal expires): {per_renewal - sealed:+,.0f} bytes per renewal")

    total = renewed.used_memory - empty.used_memory
    print(
        f"\n  in the end: {total / 1e6:,.1f} MB for {sessions - leavers:,} live sessions and {leavers:,} "
        f"tombstones, {total / (sessions - leavers):,.0f} bytes per live session"
    )


def run(arguments: Any) -> int:
    if shutil.which("redis-server") is None:
        print("redis-server is missing (apt-get install -y redis-server)", file=sys.stderr)
        return 2
    sessions = arguments.sessions // 100 if arguments.quick else arguments.sessions
    with private_redis() as port:
        asyncio.run(measure(max(sessions, 10), arguments.concurrency, arguments.user_agent, arguments.sample, port))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=100_000, help="sessions logged in (distinct users)")
    parser.add_argument("--concurrency", type=int, default=64, help="logins in flight")
    parser.add_argument("--user-agent", default=BROWSER_UA, help="User-Agent of every request")
    parser.add_argument("--sample", type=int, default=1000, help="sessions whose keys MEMORY USAGE measures")
    parser.add_argument("--quick", action="store_true", help="100 times fewer sessions")
    sys.exit(run(parser.parse_args()))
