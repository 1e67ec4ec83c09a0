"""Read a Redis store URL into what it names, refusing anything unclear (pure: no client).

Accepted (``SESSIONWARD_STORE``)::

    redis://[:password@]host[:port][/db]            rediss:// for TLS
    redis+cluster://[:password@]host[:port][,host[:port]...]   rediss+cluster:// for TLS
    redis+sentinel://[:password@]host[:port][,host[:port]...]/service_name[/db]

A ``key_prefix`` query parameter sets the prefix of every key (default ``sw:``) and
``record_format`` how sessions are written (``compact``, the default, or ``json``: see
:class:`~sessionward.stores.redis.RedisStore`); other query parameters go to redis-py.
There is no default host: a URL without one is refused rather than silently connecting
to localhost. Passwords never appear in error messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from sessionward.core.errors import ConfigError
from sessionward.stores._redis_layout import RECORD_FORMATS

DEFAULT_PREFIX = "sw:"
DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379
ACCEPTED = (
    "redis://host:port/db, rediss://host:port/db, redis+cluster://host:port[,host:port], "
    "redis+sentinel://host:port[,host:port]/service_name[/db]"
)


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """What a Redis store URL names.

    Attributes:
        kind: ``standalone``, ``cluster`` or ``sentinel``.
        tls: Whether to connect with TLS.
        hosts: ``(host, port)`` pairs: the server, the cluster's seed nodes, or the sentinels.
        db: The database number (always 0 for a cluster).
        service: The Sentinel service (master group) name.
        username: ACL user name, if any.
        password: Password, if any.
        key_prefix: The prefix of every key the store writes.
        record_format: How the store writes sessions (one of ``RECORD_FORMATS``).
        options: Further query parameters, passed to redis-py.
    """

    kind: str
    tls: bool
    hosts: list[tuple[str, int]]
    db: int = 0
    service: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    key_prefix: str = DEFAULT_PREFIX
    record_format: str = RECORD_FORMATS[0]
    options: dict[str, Any] = field(default_factory=dict)


def redact(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{hosts}").geturl()


def _hosts(text: str, default_port: int, setting: str, shown: str) -> list[tuple[str, int]]:
    hosts = []
    for item in text.split(","):
        entry = item.strip()
        if entry.startswith("["):  # an IPv6 literal
            host, _, rest = entry[1:].partition("]")
            port_text = rest[1:] if rest.startswith(":") else ""
        else:
            host, _, port_text = entry.partition(":")
        if not host:
            raise ConfigError(setting, f"{shown!r} names no host (there is no default); use {ACCEPTED}")
        try:
            port = int(port_text) if port_text else default_port
        except ValueError:
            raise ConfigError(setting, f"{shown!r}: port {port_text!r} is not a number") from None
        if not 0 < port < 65536:
            raise ConfigError(setting, f"{shown!r}: port {port} is out of range")
        hosts.append((host, port))
    return hosts


def _db(text: str, setting: str, shown: str) -> int:
    if not text:
        return 0
    if not text.isdigit():
        raise ConfigError(setting, f"{shown!r}: database {text!r} is not a number")
    return int(text)


def parse_url(url: str, *, setting: str = "SESSIONWARD_STORE") -> RedisTarget:
    """Parse a Redis store URL; raise :class:`ConfigError` naming ``setting`` if it is bad."""
    shown = redact(url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    base, _, variant = scheme.partition("+")
    if base not in ("redis", "rediss") or variant not in ("", "cluster", "sentinel"):
        raise ConfigError(setting, f"{shown!r} is not a Redis URL; use {ACCEPTED}")
    userinfo, _, hosts_text = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    prefix = query.pop("key_prefix", DEFAULT_PREFIX)
    if "{" in prefix or "}" in prefix:
        raise ConfigError(setting, f"{shown!r}: key_prefix must not contain '{{' or '}}'")
    record_format = query.pop("record_format", RECORD_FORMATS[0])
    if record_format not in RECORD_FORMATS:
        raise ConfigError(setting, f"{shown!r}: record_format must be one of {', '.join(RECORD_FORMATS)}")
    common: dict[str, Any] = {
        "tls": base == "rediss",
        "username": unquote(username) or None,
        "password": unquote(password) or None,
        "key_prefix": prefix,
        "record_format": record_format,
        "options": query,
    }
    path = parts.path.strip("/")
    if variant == "sentinel":
        service, _, db_text = path.partition("/")
        if not service:
            raise ConfigError(setting, f"{shown!r} names no Sentinel service; use {ACCEPTED}")
        hosts = _hosts(hosts_text, DEFAULT_SENTINEL_PORT, setting, shown)
        return RedisTarget("sentinel", hosts=hosts, db=_db(db_text, setting, shown), service=service, **common)
    hosts = _hosts(hosts_text, DEFAULT_PORT, setting, shown)
    if variant == "cluster":
        if path not in ("", "0"):
            raise ConfigError(setting, f"{shown!r}: a Redis Cluster has only database 0")
        return RedisTarget("cluster", hosts=hosts, **common)
    if len(hosts) > 1:
        raise ConfigError(setting, f"{shown!r}: a standalone Redis has one host; use redis+cluster:// or +sentinel")
    return RedisTarget("standalone", hosts=hosts, db=_db(path, setting, shown), **common)
