"""A login, renewal and logout, read back from the standard ``logging`` module as OWASP-named audit lines (F22)."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import orjson
import pytest

from sessionward import JsonAuditLogger, ManualClock, TimeoutPolicy
from sessionward.stores.memory import MemoryStore
from support.helpers import client_for, make_app, plain_http_policy

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def audit_log() -> Iterator[io.StringIO]:
    """The JSON-lines sink installed as a handler of the ``sessionward.audit`` logger."""
    stream = io.StringIO()
    handler = JsonAuditLogger(stream, app_id="shop")
    audit = logging.getLogger("sessionward.audit")
    level = audit.level
    audit.addHandler(handler)
    audit.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        audit.removeHandler(handler)
        audit.setLevel(level)


async def test_login_renew_logout_flow_logs_vocabulary_names_and_never_a_raw_id(
    audit_log: io.StringIO, clock: ManualClock
) -> None:
    timeouts = TimeoutPolicy(idle_timeout_s=600, absolute_timeout_s=7200, renewal_interval_s=100)
    app, _ = make_app(MemoryStore(), clock=clock, policy=plain_http_policy(timeouts=timeouts))
    cookies: list[str] = []
    async with client_for(app) as client:
        await client.post("/set", params={"a": "1"}, headers={"user-agent": "Firefox"})
        cookies.append(client.cookies["sid"])
        await client.post("/login", headers={"user-agent": "Firefox"})
        cookies.append(client.cookies["sid"])
        clock.advance(100)
        await client.get("/whoami", headers={"user-agent": "Firefox"})  # renewal
        cookies.append(client.cookies["sid"])
        await client.post("/logout", headers={"user-agent": "Firefox"})
        client.cookies.set("sid", cookies[-1])
        await client.get("/api/whoami", headers={"user-agent": "Firefox"})  # the ended ID comes back

    text = audit_log.getvalue()
    lines = [orjson.loads(line) for line in text.splitlines()]
    assert [(line["event"], line["request_method"], line["request_uri"]) for line in lines] == [
        ("session_created", "POST", "/set"),
        ("authn_login_success", "POST", "/login"),
        ("session_renewed", "GET", "/whoami"),
        ("session_expired:logout", "POST", "/logout"),
        ("session_use_after_expire", "GET", "/api/whoami"),
    ]
    for line in lines:
        assert ISO_UTC.match(line["datetime"])
        assert (line["appid"], line["source_ip"], line["user_agent"]) == ("shop", "127.0.0.1", "Firefox")
        assert line["host"]
        assert line["description"]
    assert [line["level"] for line in lines] == ["INFO"] * 4 + ["WARN"]
    assert len(set(cookies)) == 3
    for raw_id in cookies:
        assert raw_id not in text
