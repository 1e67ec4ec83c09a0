"""The audit line of a sign-in after failures: ``authn_login_successafterfail`` with ``retries``.

The OWASP Logging Vocabulary's ``authn_login_successafterfail[:userid,retries]``: the
user goes in ``user`` as on every line, the number of earlier attempts in ``retries``,
a field no other line carries. The line goes through ``logging`` like every event, and
the docs' table of events (generated from the code) lists it.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import orjson
import pytest

from sessionward.core.events import EventBus, EventName, SessionEvent, audit_level, vocabulary_name

DOCGEN = Path(__file__).resolve().parents[2] / "docs" / "docgen" / "telemetry.py"

AFTER_FAILURES = SessionEvent(
    name=EventName.LOGIN_AFTER_FAILURES,
    at=1_700_000_000.25,
    user="alice",
    ip="198.51.100.23",
    user_agent="Firefox",
    path="/api/login",
    method="POST",
    retries=4,
)


def test_authn_login_successafterfail_line_names_the_user_and_the_retries() -> None:
    assert (vocabulary_name(AFTER_FAILURES), audit_level(AFTER_FAILURES)) == ("authn_login_successafterfail", "INFO")
    line = orjson.loads(AFTER_FAILURES.to_json(app_id="shop", host="web-1"))
    assert line == {
        "datetime": "2023-11-14T22:13:20.250Z",
        "appid": "shop",
        "event": "authn_login_successafterfail",
        "level": "INFO",
        "description": "A user signed in after failed or held-back attempts",
        "reason": None,
        "user": "alice",
        "session": None,
        "source_ip": "198.51.100.23",
        "user_agent": "Firefox",
        "request_method": "POST",
        "request_uri": "/api/login",
        "host": "web-1",
        "time": "2023-11-14T22:13:20.250Z",
        "ip": "198.51.100.23",
        "retries": 4,
    }
    # Every other line keeps its fields: no ``retries`` where it means nothing.
    for name in EventName:
        if name is not EventName.LOGIN_AFTER_FAILURES:
            assert "retries" not in orjson.loads(SessionEvent(name=name, at=0.0).to_json())


def test_authn_login_successafterfail_reaches_the_logging_module(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="sessionward.audit"):
        EventBus().emit_sync(AFTER_FAILURES)
    (record,) = [r for r in caplog.records if getattr(r, "audit_event", None) == "authn_login_successafterfail"]
    assert record.levelno == logging.INFO
    assert orjson.loads(record.getMessage())["retries"] == 4


def test_authn_login_successafterfail_is_in_the_docs_table_of_events() -> None:
    spec = importlib.util.spec_from_file_location("docgen_telemetry", DOCGEN)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = [row for row in module.render_events().splitlines() if "authn_login_successafterfail" in row]
    assert rows == [
        "| `LOGIN_AFTER_FAILURES` | `login_after_failures` | `authn_login_successafterfail` | INFO "
        "| A user signed in after failed or held-back attempts |"
    ]
