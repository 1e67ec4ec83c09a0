"""Transitions carry their precondition: races between requests, one order at a time.

A login, rotation or renewal is decided on the session as a request loaded it, and hands
the store that state as an :class:`~sessionward.core.records.Expected`. Each test here writes
one interleaving out in full, at the store level — request A loads, request B does its
thing to completion, then A's ``establish`` arrives with the expectation from its load —
and is named after the race or attack the precondition stops: a logout or a revocation
undone by a renewal, a session forked by two renewals, a data write lost to a renewal,
a login limit overrun by a renewal. A and B use separate store instances (connections,
file descriptors, threads for the ``sync-*`` backends) wherever the backend has them.

Each test runs once per backend (``conftest.BACKENDS``) on a clean namespace. Time is
passed in as ``now``; nothing sleeps.
"""

from __future__ import annotations

import asyncio

from sessionward.core.ids import generate_id, seal_successor, storage_key
from sessionward.core.records import EndReason, Expected, SessionRecord, Tombstone
from sessionward.stores.base import SessionStore

from .backends import Backend, ended, instances, live
from .builders import NOW, TOMB_TTL_S, make_limit, make_record, make_tombstone, make_update, new_key

RACERS = 20
GRACE_S = 10.0


async def requests(backend: Backend, store: SessionStore) -> tuple[SessionStore, SessionStore]:
    """Two store instances for requests A and B (one and the same where the backend has one)."""
    return store, (await backend.open() if backend.instances > 1 else store)


async def keys_of(store: SessionStore, user: str, now: float = NOW) -> list[str]:
    """The keys of ``user``'s live sessions, oldest first."""
    return [r.key for r in await store.list_user(user, now)]


def renewal(loaded: SessionRecord, *, now: float = NOW) -> tuple[SessionRecord, Tombstone, Expected]:
    """What a request that loaded ``loaded`` hands ``establish`` to renew it.

    Returns:
        The successor record (same user, data and creation time, new key), the RENEWED
        tombstone naming it over the old key, and the precondition from the load.
    """
    successor = make_record(user=loaded.meta.user, created_at=loaded.meta.created_at, data=loaded.data)
    retire = Tombstone(
        key=loaded.key,
        reason=EndReason.RENEWED,
        user=loaded.meta.user,
        ended_at=now,
        expires_at=now + TOMB_TTL_S,
        successor_key=successor.key,
        sealed_successor="ab" * 20,
        grace_until=now + GRACE_S,
    )
    return successor, retire, Expected(loaded.key, loaded.version)


# -- a renewal never undoes an ending ----------------------------------------------------------


async def test_renewal_after_a_concurrent_logout_does_not_resurrect_the_session(
    backend: Backend, store: SessionStore
) -> None:
    a, b = await requests(backend, store)
    session = make_record(user="alice", data={"cart": 1})
    await store.establish(session)
    # A loads the session and decides to renew it.
    successor, retire, expect = renewal(await live(a, session.key))
    # B logs out, to completion.
    logout = make_tombstone(session.key, EndReason.LOGGED_OUT, user="alice")
    assert await b.end(logout) is not None

    result = await a.establish(successor, retire=retire, expect=expect)

    assert result.applied is False
    assert result.found == logout
    assert result.displaced == []
    assert await store.load(successor.key, NOW) is None
    assert await keys_of(store, "alice") == []
    assert (await ended(store, session.key)).reason is EndReason.LOGGED_OUT
    assert await store.find_handle(successor.handle, NOW) is None


async def test_renewal_after_a_concurrent_revocation_of_all_sessions_does_not_resurrect_one(
    backend: Backend, store: SessionStore
) -> None:
    a, b = await requests(backend, store)
    session = make_record(user="alice")
    other = make_record(user="alice")
    for record in (session, other):
        await store.establish(record)
    successor, retire, expect = renewal(await live(a, session.key))
    # B changes the password: every session of the user ends.
    revoked = await b.end_user("alice", EndReason.PASSWORD_CHANGED, NOW, NOW + TOMB_TTL_S)
    assert sorted(r.key for r in revoked) == sorted([session.key, other.key])

    result = await a.establish(successor, retire=retire, expect=expect)

    assert result.applied is False
    assert isinstance(result.found, Tombstone)
    assert (result.found.key, result.found.reason, result.found.user) == (
        session.key,
        EndReason.PASSWORD_CHANGED,
        "alice",
    )
    assert await store.load(successor.key, NOW) is None
    assert await keys_of(store, "alice") == []
    assert (await ended(store, session.key)).reason is EndReason.PASSWORD_CHANGED


async def test_renewal_of_a_session_that_is_gone_writes_nothing(store: SessionStore) -> None:
    # A loaded the session; since then the store forgot it (purged, or its TTL ran out),
    # so the key holds nothing at all: no record, no tombstone.
    forgotten = make_record(user="alice")
    successor, retire, expect = renewal(forgotten)

    result = await store.establish(successor, retire=retire, expect=expect)

    assert result.applied is False
    assert result.found is None
    assert await store.load(successor.key, NOW) is None
    assert await store.load(forgotten.key, NOW) is None  # not even the retiring tombstone
    assert await keys_of(store, "alice") == []


# -- one version, one successor ----------------------------------------------------------------


async def test_two_renewals_of_one_version_do_not_fork_the_session(backend: Backend, store: SessionStore) -> None:
    a, b = await requests(backend, store)
    session = make_record(user="alice", data={"cart": 1})
    await store.establish(session)
    # A and B load the same version; both decide to renew.
    first_successor, first_retire, first_expect = renewal(await live(b, session.key))
    second_successor, second_retire, second_expect = renewal(await live(a, session.key))
    assert first_expect == second_expect
    assert (await b.establish(first_successor, retire=first_retire, expect=first_expect)).applied is True

    result = await a.establish(second_successor, retire=second_retire, expect=second_expect)

    assert result.applied is False
    assert result.found == first_retire
    assert isinstance(result.found, Tombstone)
    assert result.found.successor_key == first_successor.key
    assert await keys_of(store, "alice") == [first_successor.key]
    assert await store.load(second_successor.key, NOW) is None
    assert (await live(store, first_successor.key)).data == {"cart": 1}
    assert await ended(store, session.key) == first_retire


async def test_racing_renewals_of_one_version_let_exactly_one_through(backend: Backend, store: SessionStore) -> None:
    stores = await instances(backend, store)
    session = make_record(user="alice")
    await store.establish(session)
    loaded = await live(store, session.key)
    renewals = [renewal(loaded) for _ in range(RACERS)]

    results = await asyncio.gather(
        *(
            stores[i % len(stores)].establish(successor, retire=retire, expect=expect)
            for i, (successor, retire, expect) in enumerate(renewals)
        )
    )

    winners = [(s, r) for (s, r, _), result in zip(renewals, results, strict=True) if result.applied]
    assert len(winners) == 1, [result.applied for result in results]
    winner, winner_retire = winners[0]
    assert await keys_of(store, "alice") == [winner.key]
    assert await ended(store, session.key) == winner_retire
    for (successor, _, _), result in zip(renewals, results, strict=True):
        if successor is winner:
            continue
        assert result.found == winner_retire, result
        assert await store.load(successor.key, NOW) is None


# -- data writes and touches -------------------------------------------------------------------


async def test_renewal_after_a_concurrent_data_write_is_refused_then_applies_to_the_newer_version(
    backend: Backend, store: SessionStore
) -> None:
    a, b = await requests(backend, store)
    session = make_record(user="alice", data={"cart": 1})
    await store.establish(session)
    loaded_by_a = await live(a, session.key)
    successor, retire, expect = renewal(loaded_by_a)
    # B loads the same version and writes data, to completion: the version moves on.
    loaded_by_b = await live(b, session.key)
    assert await b.save(session.key, make_update(loaded_by_b, set={"cart": 2, "note": "B"})) is True

    result = await a.establish(successor, retire=retire, expect=expect)

    # Applied, the renewal would have copied A's stale data and lost B's write.
    assert result.applied is False
    assert isinstance(result.found, SessionRecord)
    assert result.found.key == session.key
    assert result.found.version == loaded_by_a.version + 1
    assert result.found.data == {"cart": 2, "note": "B"}
    assert await store.load(successor.key, NOW) is None
    assert await keys_of(store, "alice") == [session.key]

    # A decides again from what it found, and renews the newer version.
    retry_successor, retry_retire, retry_expect = renewal(result.found)
    assert retry_expect == Expected(session.key, loaded_by_a.version + 1)
    retried = await a.establish(retry_successor, retire=retry_retire, expect=retry_expect)

    assert retried.applied is True
    assert (await live(store, retry_successor.key)).data == {"cart": 2, "note": "B"}
    assert await ended(store, session.key) == retry_retire
    assert await keys_of(store, "alice") == [retry_successor.key]


async def test_touch_does_not_invalidate_a_pending_renewal(backend: Backend, store: SessionStore) -> None:
    a, b = await requests(backend, store)
    session = make_record(user="alice", data={"cart": 1})
    await store.establish(session)
    loaded = await live(a, session.key)
    successor, retire, expect = renewal(loaded)
    # B only moves the idle clock (a meta-only save): no data changes, no new version.
    assert await b.save(session.key, make_update(await live(b, session.key), now=NOW + 60)) is True
    assert (await live(store, session.key)).version == loaded.version

    result = await a.establish(successor, retire=retire, expect=expect)

    assert result.applied is True
    assert await keys_of(store, "alice") == [successor.key]
    assert await ended(store, session.key) == retire


# -- logins that keep their ID -----------------------------------------------------------------


async def test_login_that_keeps_its_id_after_a_concurrent_logout_does_not_resurrect_it(
    backend: Backend, store: SessionStore
) -> None:
    a, b = await requests(backend, store)
    anonymous = make_record(data={"cart": 1})
    await store.establish(anonymous)
    # A loads the anonymous session and logs alice in on the same ID (fixation strategy "none").
    loaded = await live(a, anonymous.key)
    login = make_record(key=anonymous.key, user="alice", data={"cart": 1})
    expect = Expected(loaded.key, loaded.version)
    # B logs the anonymous session out, to completion.
    logout = make_tombstone(anonymous.key, EndReason.LOGGED_OUT)
    assert await b.end(logout) is not None

    result = await a.establish(login, limit=make_limit(1, prevent_login=False), expect=expect)

    assert result.applied is False
    assert result.found == logout
    assert await ended(store, anonymous.key) == logout
    assert await keys_of(store, "alice") == []
    assert await store.find_handle(anonymous.handle, NOW) is None


async def test_login_that_keeps_its_id_applies_to_the_state_it_loaded(backend: Backend, store: SessionStore) -> None:
    a, _ = await requests(backend, store)
    anonymous = make_record(data={"cart": 1})
    await store.establish(anonymous)
    loaded = await live(a, anonymous.key)
    login = make_record(key=anonymous.key, user="alice", data={"cart": 1})

    result = await a.establish(
        login, limit=make_limit(1, prevent_login=False), expect=Expected(loaded.key, loaded.version)
    )

    assert result.applied is True
    assert (await live(store, anonymous.key)).meta.user == "alice"
    assert await keys_of(store, "alice") == [anonymous.key]


# -- the login limit and renewals (F11) --------------------------------------------------------


async def test_login_after_a_renewal_displaces_the_successor_not_the_dead_key(
    backend: Backend, store: SessionStore
) -> None:
    a, b = await requests(backend, store)
    session = make_record(user="alice", created_at=NOW)
    await store.establish(session, limit=make_limit(1, prevent_login=False))
    # A renews the session, to completion.
    successor, retire, expect = renewal(await live(a, session.key))
    assert (await a.establish(successor, retire=retire, expect=expect)).applied is True
    # B logs alice in from another device (its own anonymous session), last login wins.
    anonymous = make_record(created_at=NOW + 5)
    await b.establish(anonymous)
    pre_login = await live(b, anonymous.key, NOW + 10)
    login = make_record(user="alice", created_at=NOW + 10)

    result = await b.establish(
        login,
        retire=make_tombstone(anonymous.key, EndReason.SUPERSEDED, now=NOW + 10),
        limit=make_limit(1, prevent_login=False, now=NOW + 10),
        expect=Expected(pre_login.key, pre_login.version),
    )

    assert result.applied is True
    assert [r.key for r in result.displaced] == [successor.key]
    assert (await ended(store, successor.key, NOW + 10)).reason is EndReason.DISPLACED
    assert (await ended(store, session.key, NOW + 10)).reason is EndReason.RENEWED
    assert await keys_of(store, "alice", NOW + 10) == [login.key]


async def test_renewal_after_a_login_displaced_the_session_does_not_exceed_the_limit(
    backend: Backend, store: SessionStore
) -> None:
    a, b = await requests(backend, store)
    session = make_record(user="alice", created_at=NOW)
    await store.establish(session, limit=make_limit(1, prevent_login=False))
    # A loads the session and decides to renew it.
    successor, retire, expect = renewal(await live(a, session.key))
    # B logs alice in elsewhere, to completion: the limit (1, last wins) displaces the session.
    login = make_record(user="alice", created_at=NOW + 10)
    displacing = await b.establish(login, limit=make_limit(1, prevent_login=False, now=NOW + 10))
    assert [r.key for r in displacing.displaced] == [session.key]

    result = await a.establish(successor, retire=retire, expect=expect)

    assert result.applied is False
    assert isinstance(result.found, Tombstone)
    assert (result.found.key, result.found.reason) == (session.key, EndReason.DISPLACED)
    assert await store.load(successor.key, NOW + 10) is None
    assert await keys_of(store, "alice", NOW + 10) == [login.key]


# -- ending follows the moves ------------------------------------------------------------------


async def test_logout_racing_a_renewal_ends_the_successor(backend: Backend, store: SessionStore) -> None:
    a, b = await requests(backend, store)
    session = make_record(user="alice", data={"cart": 1})
    await store.establish(session)
    # A loads the session (to log out); B renews it, to completion.
    await live(a, session.key)
    successor, retire, expect = renewal(await live(b, session.key))
    assert (await b.establish(successor, retire=retire, expect=expect)).applied is True

    ended_record = await a.end_following(make_tombstone(session.key, EndReason.LOGGED_OUT, user="alice"), NOW)

    assert ended_record is not None
    assert (ended_record.key, ended_record.data) == (successor.key, {"cart": 1})
    assert (await ended(store, successor.key)).reason is EndReason.LOGGED_OUT
    assert await ended(store, session.key) == retire  # the first reason stays
    assert await keys_of(store, "alice") == []
    # Ending it again finds nothing live anywhere along the chain.
    assert await a.end_following(make_tombstone(session.key, EndReason.REVOKED, user="alice"), NOW) is None


async def test_ending_follows_a_chain_of_renewals_to_its_end(backend: Backend, store: SessionStore) -> None:
    a, b = await requests(backend, store)
    session = make_record(user="alice")
    await store.establish(session)
    # B renews twice in a row (S -> S' -> S''), each from what it loaded.
    first, first_retire, first_expect = renewal(await live(b, session.key))
    assert (await b.establish(first, retire=first_retire, expect=first_expect)).applied is True
    second, second_retire, second_expect = renewal(await live(b, first.key), now=NOW + 1)
    assert (await b.establish(second, retire=second_retire, expect=second_expect)).applied is True

    # A still holds the first key and revokes the session from it.
    ended_record = await a.end_following(make_tombstone(session.key, EndReason.REVOKED, user="alice"), NOW + 2)

    assert ended_record is not None
    assert ended_record.key == second.key
    assert (await ended(store, second.key, NOW + 2)).reason is EndReason.REVOKED
    assert (await ended(store, first.key, NOW + 2)).reason is EndReason.RENEWED
    assert (await ended(store, session.key, NOW + 2)).reason is EndReason.RENEWED
    assert await keys_of(store, "alice", NOW + 2) == []


async def test_end_handle_of_a_renewed_session_ends_the_successor(backend: Backend, store: SessionStore) -> None:
    a, b = await requests(backend, store)
    session = make_record(user="alice")
    await store.establish(session)
    successor, retire, expect = renewal(await live(b, session.key))
    assert (await b.establish(successor, retire=retire, expect=expect)).applied is True
    # The device list now shows the successor's handle; the old handle names nothing live.
    assert await a.find_handle(session.handle, NOW) is None

    ended_record = await a.end_handle(successor.handle, EndReason.REVOKED, NOW, NOW + TOMB_TTL_S, user="alice")

    assert ended_record is not None
    assert ended_record.key == successor.key
    assert (await ended(store, successor.key)).reason is EndReason.REVOKED
    assert await keys_of(store, "alice") == []


# -- without a precondition --------------------------------------------------------------------


async def test_establish_without_expect_writes_a_fresh_session(store: SessionStore) -> None:
    # A first save has no earlier state to expect; the key may even hold nothing at all.
    record = make_record(data={"cart": 1})

    result = await store.establish(record)

    assert (result.applied, result.found, result.displaced) == (True, None, [])
    assert (await live(store, record.key)).data == {"cart": 1}
    assert await store.load(new_key(), NOW) is None


# -- the renewal seal lives only as long as its grace ---------------------------------------------

SEAL_GRACE_S = 2.0
"""Redis forgets the seal by its own (real) clock, the other stores at the purge: long enough
for the checks within the grace to run first on a busy machine, short enough to wait out."""


async def test_a_renewal_seal_is_gone_from_the_store_once_its_grace_is_over(
    backend: Backend, store: SessionStore
) -> None:
    """Someone with an old, renewed-away cookie and a copy of the store (a backup, a replica)
    must not be able to open the seal after the grace and walk to the live ID."""
    old_raw, new_raw = generate_id(), generate_id()
    old = make_record(key=storage_key(old_raw), user="alice")
    await store.establish(old)
    new = make_record(key=storage_key(new_raw), user="alice")
    sealed = seal_successor(old_raw, new_raw)
    retire = Tombstone(
        key=old.key,
        reason=EndReason.RENEWED,
        user="alice",
        ended_at=NOW,
        expires_at=NOW + TOMB_TTL_S,
        successor_key=new.key,
        sealed_successor=sealed,
        grace_until=NOW + SEAL_GRACE_S,
    )
    assert (await store.establish(new, retire=retire, expect=Expected(old.key, old.version))).applied
    within = await ended(store, old.key, NOW + SEAL_GRACE_S / 2)
    assert within.sealed_successor == sealed  # in-flight requests still find the new ID
    assert sealed.encode() in await backend.dump()

    after = NOW + SEAL_GRACE_S + 1
    await store.purge_expired(after)
    for _ in range(200):  # Redis expires the seal by its own clock: wait for it, at most 10 s
        if sealed.encode() not in await backend.dump():
            break
        await asyncio.sleep(0.05)
    assert sealed.encode() not in await backend.dump(), "the seal outlived its grace at rest"
    later = await ended(store, old.key, after)
    assert later.reason is EndReason.RENEWED  # the reason is still told
    assert later.sealed_successor is None
    assert later.successor_key == new.key  # a logout or revocation still follows the move
