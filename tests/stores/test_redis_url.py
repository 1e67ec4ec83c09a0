"""Redis store URLs: every form accepted, nothing unclear guessed, no password shown."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis, RedisCluster

from sessionward._sync.stores import open_store as open_sync_store
from sessionward._sync.stores.redis import RedisStore as SyncRedisStore
from sessionward._sync.stores.redis_cluster import RedisClusterStore as SyncRedisClusterStore
from sessionward.core.errors import ConfigError
from sessionward.core.records import SessionRecord
from sessionward.stores import open_store
from sessionward.stores._redis_url import parse_url, redact
from sessionward.stores.redis import RedisStore
from sessionward.stores.redis_cluster import RedisClusterStore
from stores.test_redis_store import NOW, new_record


def test_standalone_url() -> None:
    target = parse_url("redis://:s3cret@cache.internal:6380/2?key_prefix=app:")
    assert (target.kind, target.hosts, target.db, target.password, target.key_prefix) == (
        "standalone",
        [("cache.internal", 6380)],
        2,
        "s3cret",
        "app:",
    )
    assert not target.tls
    assert parse_url("rediss://cache.internal").tls


def test_record_format_is_compact_unless_the_url_asks_for_json() -> None:
    assert parse_url("redis://cache.internal").record_format == "compact"
    target = parse_url("redis+cluster://a:1,b:2?record_format=json")
    assert (target.record_format, target.options) == ("json", {})


def test_cluster_url_with_several_seed_nodes() -> None:
    target = parse_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7001,[::1]:7002")
    assert target.kind == "cluster"
    assert target.hosts == [("10.0.0.1", 7000), ("10.0.0.2", 7001), ("::1", 7002)]


def test_sentinel_url() -> None:
    target = parse_url("redis+sentinel://s1:26379,s2/mymaster/3")
    assert (target.kind, target.hosts, target.service, target.db) == (
        "sentinel",
        [("s1", 26379), ("s2", 26379)],
        "mymaster",
        3,
    )


@pytest.mark.parametrize(
    "url",
    [
        "redis://",  # no host: never a silent localhost
        "redis:///0",
        "redis+cluster://",
        "redis+sentinel://s1:26379",  # no service name
        "redis+sentinel:///mymaster",
        "redis://host:notaport/0",
        "redis://host:70000/0",
        "redis://host/zero",
        "redis+cluster://host/1",  # a cluster has only database 0
        "redis://a:1,b:2/0",
        "redis://host/0?key_prefix=x{y}",
        "redis://host/0?record_format=pickle",
        "redis+unknown://host",
    ],
)
def test_unclear_urls_are_refused_naming_the_setting(url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        open_store(url, setting="SESSIONWARD_STORE")
    assert raised.value.setting == "SESSIONWARD_STORE"


def test_a_refused_url_never_shows_its_password() -> None:
    with pytest.raises(ConfigError) as raised:
        open_store("redis://admin:hunter2@host:bad/0")
    assert "hunter2" not in str(raised.value)
    assert redact("redis://admin:hunter2@host/0") == "redis://admin:***@host/0"


def test_open_store_builds_the_right_client_and_store() -> None:
    standalone = open_store("redis://127.0.0.1:1/0")
    cluster = open_store("redis+cluster://127.0.0.1:1")
    assert type(standalone) is RedisStore
    assert isinstance(standalone.client, Redis)
    assert not standalone.cluster
    assert type(cluster) is RedisClusterStore
    assert isinstance(cluster.client, RedisCluster)
    assert cluster.cluster
    assert type(RedisStore.from_url("rediss+cluster://127.0.0.1:1")) is RedisClusterStore


@pytest.mark.redis
def test_the_sync_open_store_builds_the_sync_twins(redis_cluster_url: str) -> None:
    assert type(open_sync_store("redis://127.0.0.1:1/0")) is SyncRedisStore
    cluster = open_sync_store(redis_cluster_url)  # the blocking cluster client connects at once
    assert type(cluster) is SyncRedisClusterStore
    cluster.close()


def test_cross_slot_scripts_never_reach_a_cluster_client() -> None:
    """A cluster client given to the one-server store would run its multi-slot scripts: refused."""
    with pytest.raises(TypeError, match="RedisClusterStore"):
        RedisStore(RedisCluster(host="127.0.0.1", port=1))
    with pytest.raises(TypeError, match="RedisStore"):
        RedisClusterStore(Redis.from_url("redis://127.0.0.1:1/0"))  # type: ignore[arg-type]


@pytest.mark.redis
async def test_sentinel_url_reaches_the_primary(redis_sentinel_url: str, redis_url: str) -> None:
    through_sentinel = open_store(redis_sentinel_url)
    direct = open_store(redis_url)
    record = new_record("alice")
    await through_sentinel.establish(record)
    assert isinstance(await direct.load(record.key, NOW), SessionRecord)
    assert [r.key for r in await through_sentinel.list_user("alice", NOW)] == [record.key]
    await through_sentinel.close()
    await direct.close()
