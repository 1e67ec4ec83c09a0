"""``store init`` and ``sessions list|revoke|revoke-user|purge|stats`` on real stores."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from cli_support import STORE_KINDS, login_record, on_store, seed, store_url_for
from click.testing import CliRunner, Result

from sessionward.cli import main
from sessionward.core.ids import storage_key
from sessionward.core.records import EndReason, Entry, SessionRecord, Tombstone
from sessionward.stores.base import SessionStore, StoreStats


@pytest.fixture(params=STORE_KINDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url_for(request.param, request, tmp_path)


def run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output
    return result


def load(url: str, key: str) -> Entry | None:
    async def work(store: SessionStore) -> Entry | None:
        return await store.load(key, time.time())

    return on_store(url, work)


def stats_of(url: str) -> StoreStats:
    async def work(store: SessionStore) -> StoreStats:
        return await store.stats(time.time())

    return on_store(url, work)


def test_store_init_creates_the_schema_and_is_idempotent(store_url: str) -> None:
    for _ in range(2):
        result = run("store", "init", "--store", store_url)
        assert result.exit_code == 0, result.output
        assert result.output.startswith("store ready: ")
    stats = run("sessions", "stats", "--store", store_url, "--json")
    assert stats.exit_code == 0, stats.output
    assert orjson.loads(stats.output) == {"live_sessions": 0, "authenticated_sessions": 0, "users": 0, "tombstones": 0}


def test_list_shows_only_that_users_sessions_by_handle(store_url: str) -> None:
    alice = [login_record("alice", ip=f"198.51.100.{i}", user_agent=f"Browser/{i}")[1] for i in range(3)]
    _, bob = login_record("bob")
    seed(store_url, [*alice, bob])

    result = run("sessions", "list", "--user", "alice", "--store", store_url, "--json")

    assert result.exit_code == 0, result.output
    listed = orjson.loads(result.output)
    assert listed["user"] == "alice"
    assert sorted(s["handle"] for s in listed["sessions"]) == sorted(r.handle for r in alice)
    assert sorted(s["ip"] for s in listed["sessions"]) == ["198.51.100.0", "198.51.100.1", "198.51.100.2"]
    assert {s["user_agent"] for s in listed["sessions"]} == {"Browser/0", "Browser/1", "Browser/2"}
    table = run("sessions", "list", "--user", "alice", "--store", store_url)
    assert table.exit_code == 0
    assert all(r.handle in table.output for r in alice)
    assert bob.handle not in table.output


def test_the_list_table_never_cuts_a_handle(store_url: str) -> None:
    agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
    _, record = login_record("zed", ip="2001:db8:85a3::8a2e:370:7334", user_agent=agent)
    seed(store_url, [record])
    result = run("sessions", "list", "--user", "zed", "--store", store_url)
    assert result.exit_code == 0
    assert record.handle in result.output  # 80 columns, as in a pipe


def test_list_of_a_user_without_sessions_says_so(store_url: str) -> None:
    seed(store_url, [])
    result = run("sessions", "list", "--user", "nobody", "--store", store_url)
    assert result.exit_code == 0
    assert "no live sessions for user 'nobody'" in result.output


def test_revoke_ends_one_session_and_leaves_a_revoked_tombstone(store_url: str, tmp_path: Path) -> None:
    (raw_a, target), (_, other) = login_record("alice"), login_record("alice")
    seed(store_url, [target, other])
    audit_log = tmp_path / "audit.jsonl"

    result = run("sessions", "revoke", target.handle, "--store", store_url, "--audit-log", str(audit_log))

    assert result.exit_code == 0, result.output
    assert f"revoked session {target.handle} of user alice" in result.output
    entry = load(store_url, storage_key(raw_a))
    assert isinstance(entry, Tombstone)
    assert entry.reason is EndReason.REVOKED
    assert isinstance(load(store_url, other.key), SessionRecord)
    (line,) = audit_log.read_text().splitlines()
    event = orjson.loads(line)
    assert (event["event"], event["reason"], event["user"], event["session"]) == (
        "session_expired:revoked",
        "revoked",
        "alice",
        target.handle,
    )
    assert raw_a not in line
    assert target.key not in line


def test_an_unwritable_audit_log_stops_the_revocation_before_it_happens(store_url: str, tmp_path: Path) -> None:
    _, record = login_record("alice")
    seed(store_url, [record])
    missing_folder = tmp_path / "no" / "such" / "folder" / "audit.jsonl"

    result = run("sessions", "revoke", record.handle, "--store", store_url, "--audit-log", str(missing_folder))

    assert result.exit_code == 1
    assert result.stderr.startswith("error: Could not open file")
    assert isinstance(load(store_url, record.key), SessionRecord)  # nothing revoked unrecorded


def test_revoking_an_unknown_handle_fails_with_exit_1(store_url: str) -> None:
    seed(store_url, [])
    result = run("sessions", "revoke", "0123456789abcdef", "--store", store_url)
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: no live session has handle 0123456789abcdef"


def test_revoke_user_ends_all_of_that_users_sessions_only(store_url: str) -> None:
    alice = [login_record("alice")[1] for _ in range(3)]
    _, bob = login_record("bob")
    seed(store_url, [*alice, bob])

    result = run("sessions", "revoke-user", "alice", "--store", store_url)

    assert result.exit_code == 0, result.output
    assert "revoked 3 session(s) of user 'alice'" in result.output
    for record in alice:
        entry = load(store_url, record.key)
        assert isinstance(entry, Tombstone)
        assert entry.reason is EndReason.REVOKED
    assert isinstance(load(store_url, bob.key), SessionRecord)
    again = run("sessions", "revoke-user", "alice", "--store", store_url)
    assert "revoked 0 session(s)" in again.output


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_purge_removes_expired_entries_in_batches(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = store_url_for(kind, request, tmp_path)
    # Sessions last seen three days ago: expired (30-minute idle timeout), and past the
    # day for which an expired record is kept to tell its user why it ended.
    expired = [login_record(f"user{i}", age_s=3 * 86400)[1] for i in range(7)]
    recent = login_record("carol", age_s=7200)[1]  # expired, but still kept to tell why
    live = [login_record("alice")[1] for _ in range(2)]
    seed(url, [*expired, recent, *live])

    result = run("sessions", "purge", "--store", url, "--batch-size", "3")

    assert result.exit_code == 0, result.output
    assert "removed 7 expired entries" in result.output
    assert stats_of(url).live_sessions == 2
    assert isinstance(load(url, recent.key), SessionRecord)  # still kept: not purged
    assert "removed 0 expired entries" in run("sessions", "purge", "--store", url).output


def test_stats_counts_sessions_users_and_tombstones(store_url: str) -> None:
    records = [login_record("alice")[1], login_record("alice")[1], login_record("bob")[1]]
    seed(store_url, records)
    assert run("sessions", "revoke", records[2].handle, "--store", store_url).exit_code == 0

    result = run("sessions", "stats", "--store", store_url, "--json")

    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output) == {"live_sessions": 2, "authenticated_sessions": 2, "users": 1, "tombstones": 1}
    table = run("sessions", "stats", "--store", store_url)
    assert "live sessions" in table.output
    assert "tombstones" in table.output
