"""The store conformance suite: every guarantee of ``stores/base.py``, on every backend.

Each test runs once per backend (``conftest.BACKENDS``) on a clean namespace. Time is
passed in as ``now``; nothing sleeps.
"""

from __future__ import annotations

import asyncio

import pytest

from sessionward.core.errors import LoginRefusedError, StoreError, StoreUnavailableError
from sessionward.core.ids import generate_id, seal_successor, storage_key
from sessionward.core.records import EndReason, Tombstone
from sessionward.stores.base import SessionStore

from .backends import Backend, ended, instances, live
from .builders import IDLE_S, NOW, TOMB_TTL_S, make_limit, make_record, make_tombstone, make_update, new_key

RACERS = 50


# -- load, save, per-key merge ---------------------------------------------------------------


async def test_unknown_key_loads_as_none(store: SessionStore) -> None:
    assert await store.load(new_key(), NOW) is None


async def test_established_record_loads_back_whole(store: SessionStore) -> None:
    record = make_record(user="alice", data={"cart": [1, {"name": "thé"}], "n": 1.5, "none": None, "ok": True})

    await store.establish(record)

    loaded = await live(store, record.key)
    assert (loaded.key, loaded.meta, loaded.data, loaded.expires_at) == (
        record.key,
        record.meta,
        record.data,
        record.expires_at,
    )
    assert loaded.handle == record.key[:16]


async def test_save_sets_and_deletes_only_its_own_keys(store: SessionStore) -> None:
    record = make_record(data={"a": 1, "b": 2, "c": 3})
    await store.establish(record)

    saved = await store.save(
        record.key, make_update(record, set={"a": 10, "d": 4}, delete=frozenset({"b"}), now=NOW + 5)
    )

    assert saved is True
    loaded = await live(store, record.key, NOW + 5)
    assert loaded.data == {"a": 10, "c": 3, "d": 4}
    assert loaded.meta.last_access_at == NOW + 5
    assert loaded.expires_at == NOW + 5 + IDLE_S


async def test_touch_moves_the_idle_clock_and_keeps_the_data(store: SessionStore) -> None:
    record = make_record(data={"a": 1})
    await store.establish(record)

    assert await store.save(record.key, make_update(record, now=NOW + 600)) is True

    # Past the first expiry, inside the extended one.
    loaded = await live(store, record.key, NOW + IDLE_S + 300)
    assert loaded.data == {"a": 1}
    assert loaded.meta.last_access_at == NOW + 600


async def test_repeated_identical_touch_still_finds_the_session(store: SessionStore) -> None:
    # MySQL reports "changed" rows unless CLIENT_FOUND_ROWS is set; an unchanged row must
    # not read as a session that is gone.
    record = make_record()
    await store.establish(record)
    update = make_update(record, now=NOW + 1)

    assert await store.save(record.key, update) is True
    assert await store.save(record.key, update) is True


async def test_stale_writer_merges_its_keys_onto_newer_data(store: SessionStore) -> None:
    record = make_record(data={"a": 0})
    await store.establish(record)
    first = make_update(record, set={"a": 1})
    second = make_update(record, set={"b": 2})  # loaded the same version as the first
    third = make_update(record, set={"c": 3}, stale=True)  # brings no loaded data at all

    for update in (first, second, third):
        assert await store.save(record.key, update) is True

    assert (await live(store, record.key)).data == {"a": 1, "b": 2, "c": 3}


async def test_save_to_unknown_key_writes_nothing(store: SessionStore) -> None:
    record = make_record()

    assert await store.save(record.key, make_update(record, set={"x": 1})) is False
    assert await store.save(record.key, make_update(record)) is False
    assert await store.load(record.key, NOW) is None


async def test_save_after_concurrent_logout_does_not_resurrect_the_session(store: SessionStore) -> None:
    record = make_record(user="alice", data={"a": 1})
    await store.establish(record)
    # A request loaded the session; meanwhile another request logged out.
    pending_write = make_update(record, set={"a": 2})
    pending_touch = make_update(record, now=NOW + 60)
    await store.end(make_tombstone(record.key, user="alice"))

    assert await store.save(record.key, pending_write) is False
    assert await store.save(record.key, pending_touch) is False

    assert (await ended(store, record.key)).reason is EndReason.LOGGED_OUT
    assert await store.list_user("alice", NOW) == []


# -- racing writers (F18) --------------------------------------------------------------------


async def test_racing_writers_of_different_keys_lose_nothing(backend: Backend, store: SessionStore) -> None:
    record = make_record(data={"seed": True})
    await store.establish(record)
    stores = await instances(backend, store)

    results = await asyncio.gather(
        *(
            stores[i % len(stores)].save(record.key, make_update(record, set={f"k{i}": i}, now=NOW + 1))
            for i in range(RACERS)
        )
    )

    assert all(results)
    data = (await live(store, record.key)).data
    assert data == {"seed": True} | {f"k{i}": i for i in range(RACERS)}


async def test_racing_writers_of_one_key_last_write_wins(backend: Backend, store: SessionStore) -> None:
    record = make_record(data={"x": -1})
    await store.establish(record)
    stores = await instances(backend, store)

    await asyncio.gather(
        *(stores[i % len(stores)].save(record.key, make_update(record, set={"x": i})) for i in range(RACERS))
    )
    assert (await live(store, record.key)).data["x"] in range(RACERS)

    # In sequence, from the same stale load, the later write is the one kept.
    await stores[0].save(record.key, make_update(record, set={"x": "earlier"}))
    await stores[-1].save(record.key, make_update(record, set={"x": "later"}))
    assert (await live(store, record.key)).data["x"] == "later"


# -- establish: login, rotation, multiple-login control (F6, F7, F11) -----------------------


async def test_login_retires_the_pre_login_key_as_a_tombstone(store: SessionStore) -> None:
    anonymous = make_record(data={"cart": 3})
    await store.establish(anonymous)
    logged_in = make_record(user="alice", data={"cart": 3})

    result = await store.establish(logged_in, retire=make_tombstone(anonymous.key, EndReason.SUPERSEDED))

    assert result.displaced == []
    assert (await ended(store, anonymous.key)).reason is EndReason.SUPERSEDED
    assert (await live(store, logged_in.key)).meta.user == "alice"
    assert [r.key for r in await store.list_user("alice", NOW)] == [logged_in.key]


async def test_rotation_moves_the_user_index_to_the_new_key(store: SessionStore) -> None:
    old = make_record(user="alice")
    await store.establish(old)
    new = make_record(user="alice")
    retire = Tombstone(
        key=old.key,
        reason=EndReason.RENEWED,
        user="alice",
        ended_at=NOW,
        expires_at=NOW + TOMB_TTL_S,
        successor_key=new.key,
        sealed_successor="ab" * 20,
        grace_until=NOW + 10,
    )

    await store.establish(new, retire=retire)

    assert await ended(store, old.key) == retire  # the successor fields survive for the grace period
    assert [r.key for r in await store.list_user("alice", NOW)] == [new.key]
    assert await store.find_handle(old.handle, NOW) is None


async def test_establish_over_an_existing_key_replaces_the_record(store: SessionStore) -> None:
    anonymous = make_record(data={"a": 1})
    await store.establish(anonymous)
    # Fixation strategy "none": the same key becomes the user's session.
    same_key = make_record(key=anonymous.key, user="alice", data={"b": 2})

    await store.establish(same_key)

    loaded = await live(store, anonymous.key)
    assert (loaded.meta.user, loaded.data) == ("alice", {"b": 2})
    assert [r.key for r in await store.list_user("alice", NOW)] == [anonymous.key]


async def test_first_wins_refuses_the_login_and_writes_nothing(store: SessionStore) -> None:
    first = make_record(user="alice")
    await store.establish(first, limit=make_limit(1, prevent_login=True))
    anonymous = make_record(data={"cart": 1})
    await store.establish(anonymous)
    second = make_record(user="alice")

    with pytest.raises(LoginRefusedError):
        await store.establish(
            second, retire=make_tombstone(anonymous.key, EndReason.SUPERSEDED), limit=make_limit(1, prevent_login=True)
        )

    assert await store.load(second.key, NOW) is None
    assert (await live(store, anonymous.key)).data == {"cart": 1}  # not retired either
    assert [r.key for r in await store.list_user("alice", NOW)] == [first.key]


async def test_last_wins_displaces_the_oldest_by_creation_time(store: SessionStore) -> None:
    # Written out of creation order, so a store that goes by insertion order fails.
    middle = make_record(user="alice", created_at=NOW + 1)
    newest = make_record(user="alice", created_at=NOW + 2)
    oldest = make_record(user="alice", created_at=NOW)
    for record in (middle, newest, oldest):
        await store.establish(record)
    login = make_record(user="alice", created_at=NOW + 10)

    result = await store.establish(login, limit=make_limit(2, prevent_login=False, now=NOW + 10))

    assert sorted(r.key for r in result.displaced) == sorted([oldest.key, middle.key])
    assert all(r.meta.user == "alice" for r in result.displaced)
    for key in (oldest.key, middle.key):
        tomb = await ended(store, key, NOW + 10)
        assert (tomb.reason, tomb.user) == (EndReason.DISPLACED, "alice")
    assert [r.key for r in await store.list_user("alice", NOW + 10)] == [newest.key, login.key]


async def test_limit_counts_neither_the_new_nor_the_retired_key(store: SessionStore) -> None:
    current = make_record(user="alice")
    await store.establish(current)
    # Re-login from the current session (rotation to a new key) at max_sessions=1.
    again = make_record(user="alice")

    await store.establish(
        again, retire=make_tombstone(current.key, EndReason.SUPERSEDED), limit=make_limit(1, prevent_login=True)
    )
    # And re-establishing a key that is already the user's.
    await store.establish(make_record(key=again.key, user="alice"), limit=make_limit(1, prevent_login=True))

    assert [r.key for r in await store.list_user("alice", NOW)] == [again.key]


async def test_limit_ignores_expired_ended_and_other_users_sessions(store: SessionStore) -> None:
    await store.establish(make_record(user="alice", expires_at=NOW + 10))
    logged_out = make_record(user="alice")
    await store.establish(logged_out)
    await store.end(make_tombstone(logged_out.key, user="alice"))
    for _ in range(2):
        await store.establish(make_record(user="bob"))
    login = make_record(user="alice", created_at=NOW + 20)

    result = await store.establish(login, limit=make_limit(1, prevent_login=True, now=NOW + 20))

    assert result.displaced == []
    assert [r.key for r in await store.list_user("alice", NOW + 20)] == [login.key]


async def test_concurrent_logins_under_first_wins_let_exactly_one_in(backend: Backend, store: SessionStore) -> None:
    stores = await instances(backend, store)
    logins = [make_record(user="alice") for _ in range(8)]

    outcomes = await asyncio.gather(
        *(
            stores[i % len(stores)].establish(record, limit=make_limit(1, prevent_login=True))
            for i, record in enumerate(logins)
        ),
        return_exceptions=True,
    )

    winners = [
        record for record, outcome in zip(logins, outcomes, strict=True) if not isinstance(outcome, BaseException)
    ]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, LoginRefusedError) for o in outcomes if isinstance(o, BaseException)), outcomes
    assert [r.key for r in await store.list_user("alice", NOW)] == [winners[0].key]


async def test_concurrent_logins_under_last_wins_keep_the_limit(backend: Backend, store: SessionStore) -> None:
    stores = await instances(backend, store)
    logins = [make_record(user="alice", created_at=NOW + i) for i in range(8)]

    results = await asyncio.gather(
        *(
            stores[i % len(stores)].establish(record, limit=make_limit(2, prevent_login=False, now=NOW + 8))
            for i, record in enumerate(logins)
        )
    )

    assert len(await store.list_user("alice", NOW + 8)) == 2
    displaced = [r.key for result in results for r in result.displaced]
    assert len(displaced) == len(set(displaced)) == 6  # each victim ended once, by one login
    for key in displaced:
        assert (await ended(store, key, NOW + 8)).reason is EndReason.DISPLACED


# -- ending sessions (F10, F12) --------------------------------------------------------------


async def test_end_leaves_a_tombstone_and_returns_the_record(store: SessionStore) -> None:
    record = make_record(user="alice", data={"a": 1})
    await store.establish(record)

    ended_record = await store.end(make_tombstone(record.key, EndReason.REVOKED, user="alice"))

    assert ended_record is not None
    assert (ended_record.key, ended_record.data) == (record.key, {"a": 1})
    tomb = await ended(store, record.key)
    assert (tomb.reason, tomb.user, tomb.ended_at) == (EndReason.REVOKED, "alice", NOW)
    assert await store.list_user("alice", NOW) == []
    assert await store.find_handle(record.handle, NOW) is None


async def test_end_of_unknown_key_still_leaves_a_tombstone(store: SessionStore) -> None:
    key = new_key()

    assert await store.end(make_tombstone(key, EndReason.REVOKED)) is None

    assert (await ended(store, key)).reason is EndReason.REVOKED


async def test_end_keeps_the_first_reason(store: SessionStore) -> None:
    record = make_record(user="alice")
    await store.establish(record)
    await store.end(make_tombstone(record.key, EndReason.LOGGED_OUT, user="alice"))

    assert await store.end(make_tombstone(record.key, EndReason.REVOKED, user="alice")) is None

    assert (await ended(store, record.key)).reason is EndReason.LOGGED_OUT


async def test_end_user_ends_every_session_but_the_kept_one(store: SessionStore) -> None:
    first, kept, third = (make_record(user="alice", created_at=NOW + i) for i in range(3))
    bobs = make_record(user="bob")
    for record in (first, kept, third, bobs):
        await store.establish(record)

    result = await store.end_user("alice", EndReason.PASSWORD_CHANGED, NOW + 5, NOW + 5 + TOMB_TTL_S, keep_key=kept.key)

    assert sorted(r.key for r in result) == sorted([first.key, third.key])
    for key in (first.key, third.key):
        assert (await ended(store, key, NOW + 5)).reason is EndReason.PASSWORD_CHANGED
    assert [r.key for r in await store.list_user("alice", NOW + 5)] == [kept.key]
    assert [r.key for r in await store.list_user("bob", NOW + 5)] == [bobs.key]

    everything = await store.end_user("alice", EndReason.REVOKED, NOW + 6, NOW + 6 + TOMB_TTL_S)
    assert [r.key for r in everything] == [kept.key]
    assert await store.list_user("alice", NOW + 6) == []


async def test_end_handle_ends_the_named_session(store: SessionStore) -> None:
    record = make_record(user="alice")
    await store.establish(record)

    ended_record = await store.end_handle(record.handle, EndReason.REVOKED, NOW, NOW + TOMB_TTL_S, user="alice")

    assert ended_record is not None
    assert ended_record.key == record.key
    assert (await ended(store, record.key)).reason is EndReason.REVOKED


async def test_end_handle_refuses_another_users_session(store: SessionStore) -> None:
    bobs = make_record(user="bob")
    await store.establish(bobs)

    assert await store.end_handle(bobs.handle, EndReason.REVOKED, NOW, NOW + TOMB_TTL_S, user="alice") is None

    assert (await live(store, bobs.key)).meta.user == "bob"


@pytest.mark.parametrize("handle", ["0" * 16, "../../../../etc/", "%2e%2e%2f", "", "*", "a" * 64])
async def test_end_handle_of_unknown_or_malformed_handle_ends_nothing(store: SessionStore, handle: str) -> None:
    record = make_record(user="alice")
    await store.establish(record)

    assert await store.end_handle(handle, EndReason.REVOKED, NOW, NOW + TOMB_TTL_S) is None

    assert await store.load(record.key, NOW) is not None


async def test_find_handle_finds_live_sessions_only(store: SessionStore) -> None:
    alive = make_record(user="alice")
    gone = make_record(user="alice")
    short_lived = make_record(user="alice", expires_at=NOW + 5)
    for record in (alive, gone, short_lived):
        await store.establish(record)
    await store.end(make_tombstone(gone.key, user="alice"))

    found = await store.find_handle(alive.handle, NOW + 10)
    assert found is not None
    assert found.key == alive.key
    assert await store.find_handle(gone.handle, NOW + 10) is None
    assert await store.find_handle(short_lived.handle, NOW + 10) is None


async def test_list_user_is_oldest_first_and_live_only(store: SessionStore) -> None:
    third = make_record(user="alice", created_at=NOW + 3)
    first = make_record(user="alice", created_at=NOW + 1)
    second = make_record(user="alice", created_at=NOW + 2)
    expired = make_record(user="alice", created_at=NOW, expires_at=NOW + 4)
    logged_out = make_record(user="alice", created_at=NOW)
    for record in (third, first, second, expired, logged_out):
        await store.establish(record)
    await store.end(make_tombstone(logged_out.key, user="alice"))

    listed = await store.list_user("alice", NOW + 5)

    assert [r.key for r in listed] == [first.key, second.key, third.key]
    assert await store.list_user("nobody", NOW + 5) == []


# -- expiry and purge (F8) -------------------------------------------------------------------


async def test_expiry_is_enforced_at_the_given_time(store: SessionStore) -> None:
    record = make_record(user="alice", expires_at=NOW + 100)
    await store.establish(record)

    assert await store.load(record.key, NOW + 99.5) is not None
    assert await store.load(record.key, NOW + 100) is None
    assert await store.list_user("alice", NOW + 100) == []
    assert await store.find_handle(record.handle, NOW + 100) is None
    assert (await store.stats(NOW + 100)).live_sessions == 0


async def test_expired_record_is_kept_until_kept_until_so_its_reason_can_be_told(store: SessionStore) -> None:
    record = make_record(user="alice", expires_at=NOW + 100, retain_until=NOW + 1000)
    await store.establish(record)

    kept = await live(store, record.key, NOW + 500)  # expired, but still there to say why
    assert (kept.expires_at, kept.kept_until) == (NOW + 100, NOW + 1000)
    assert await store.list_user("alice", NOW + 500) == []
    assert await store.find_handle(record.handle, NOW + 500) is None
    assert (await store.stats(NOW + 500)).live_sessions == 0
    assert await store.load(record.key, NOW + 1000) is None


async def test_retained_expired_sessions_do_not_count_toward_the_login_limit(store: SessionStore) -> None:
    await store.establish(make_record(user="alice", expires_at=NOW + 100, retain_until=NOW + 1000))
    login = make_record(user="alice", created_at=NOW + 500)

    await store.establish(login, limit=make_limit(1, prevent_login=True, now=NOW + 500))

    assert [r.key for r in await store.list_user("alice", NOW + 500)] == [login.key]


async def test_save_moves_the_retention_along_with_the_expiry(store: SessionStore) -> None:
    record = make_record(expires_at=NOW + 100, retain_until=NOW + 200)
    await store.establish(record)

    assert await store.save(record.key, make_update(record, now=NOW + 50, retain_s=500)) is True

    kept = await live(store, record.key, NOW + 50 + IDLE_S + 400)
    assert kept.kept_until == NOW + 50 + IDLE_S + 500


async def test_tombstones_expire(store: SessionStore) -> None:
    key = new_key()
    await store.end(make_tombstone(key))

    assert await store.load(key, NOW + TOMB_TTL_S - 1) is not None
    assert await store.load(key, NOW + TOMB_TTL_S) is None


async def test_purge_removes_expired_entries_in_bounded_batches(backend: Backend, store: SessionStore) -> None:
    keep = [make_record(user="alice", expires_at=NOW + 10_000), make_record(expires_at=NOW + 10_000)]
    expired = [make_record(user="alice" if i % 2 else None, expires_at=NOW + 10 + 60 * i) for i in range(7)]
    for record in keep + expired:
        await store.establish(record)
    tombs = [make_tombstone(new_key(), now=NOW + i) for i in range(3)]  # expire by NOW + 3602
    for tomb in tombs:
        await store.end(tomb)
    now = NOW + 5000

    counts: list[int] = []
    while not counts or counts[-1] == 4:
        assert len(counts) < 10, "purge never finished"
        counts.append(await store.purge_expired(now, batch_size=4))

    assert all(0 <= count <= 4 for count in counts), counts
    if backend.name not in ("redis", "redis_cluster"):  # Redis forgets through TTLs instead
        assert sum(counts) == 10, counts
        dump = await backend.dump()
        assert not [r.key for r in expired if r.key.encode() in dump]
        assert not [t.key for t in tombs if t.key.encode() in dump]
    for record in keep:
        assert await store.load(record.key, now) is not None
    assert [r.key for r in await store.list_user("alice", now)] == [keep[0].key]
    assert await store.purge_expired(now) == 0


async def test_purge_waits_for_the_end_of_retention(backend: Backend, store: SessionStore) -> None:
    record = make_record(expires_at=NOW + 100, retain_until=NOW + 1000)
    await store.establish(record)

    assert await store.purge_expired(NOW + 500) == 0
    assert await store.load(record.key, NOW + 500) is not None

    purged = await store.purge_expired(NOW + 1000)
    if backend.name not in ("redis", "redis_cluster"):  # Redis forgets through TTLs instead
        assert purged == 1
        assert record.key.encode() not in await backend.dump()


async def test_purge_keeps_a_session_extended_since_it_was_written(store: SessionStore) -> None:
    record = make_record(expires_at=NOW + 10)
    await store.establish(record)
    await store.save(record.key, make_update(record, now=NOW + 5))  # now expires at NOW + 5 + IDLE_S

    assert await store.purge_expired(NOW + 100) == 0

    assert await store.load(record.key, NOW + 100) is not None


# -- stats -----------------------------------------------------------------------------------


async def test_stats_count_live_authenticated_users_and_tombstones(store: SessionStore) -> None:
    for record in (
        make_record(),
        make_record(user="alice"),
        make_record(user="alice"),
        make_record(user="bob"),
        make_record(user="carol", expires_at=NOW + 1),
    ):
        await store.establish(record)
    await store.end(make_tombstone(new_key()))
    await store.end(Tombstone(key=new_key(), reason=EndReason.REVOKED, user=None, ended_at=NOW, expires_at=NOW + 1))

    stats = await store.stats(NOW + 2)

    assert (stats.live_sessions, stats.authenticated_sessions, stats.users, stats.tombstones) == (4, 3, 2, 1)


# -- corruption and what is stored (F2, SPEC §7) --------------------------------------------


async def test_corrupt_entry_raises_store_error_on_load(backend: Backend, store: SessionStore) -> None:
    record = make_record(user="alice", data={"a": 1})
    await store.establish(record)
    await backend.corrupt(record.key)

    with pytest.raises(StoreError) as caught:
        await store.load(record.key, NOW)
    assert not isinstance(caught.value, StoreUnavailableError)


async def test_corrupt_entry_can_be_ended(backend: Backend, store: SessionStore) -> None:
    # What the middleware does with a corrupt record: replace it with a tombstone.
    record = make_record(user="alice")
    await store.establish(record)
    await backend.corrupt(record.key)

    await store.end(make_tombstone(record.key, EndReason.REVOKED))

    assert (await ended(store, record.key)).reason is EndReason.REVOKED
    assert await store.list_user("alice", NOW) == []


async def test_store_dump_never_contains_a_raw_session_id(backend: Backend, store: SessionStore) -> None:
    first_id, second_id, third_id = generate_id(), generate_id(), generate_id()
    first = make_record(key=storage_key(first_id), data={"a": 1})
    await store.establish(first)
    await store.save(first.key, make_update(first, set={"b": 2}, now=NOW + 1))
    second = make_record(key=storage_key(second_id), user="alice")
    await store.establish(
        second,
        retire=Tombstone(
            key=first.key,
            reason=EndReason.RENEWED,
            user="alice",
            ended_at=NOW + 1,
            expires_at=NOW + TOMB_TTL_S,
            successor_key=second.key,
            sealed_successor=seal_successor(first_id, second_id),
            grace_until=NOW + 11,
        ),
        limit=make_limit(1, prevent_login=False),
    )
    third = make_record(key=storage_key(third_id), user="alice")
    await store.establish(third, limit=make_limit(1, prevent_login=False))

    dump = await backend.raw_dump()

    assert second.key.encode() in dump  # the dump does show what is stored …
    for raw in (first_id, second_id, third_id):
        assert raw.encode() not in dump  # … and never a usable cookie
