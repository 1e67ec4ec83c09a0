"""An index that names the wrong user or handle: never another user's session listed or ended.

The stores find a user's sessions through an index (SQL's ``user_id`` column, Redis's
per-user sorted sets) and a handle's session through another (SQL's ``handle`` column).
A buggy migration, a hand edit or an attacker with write access to the store can leave
an entry filed under the wrong name. "Log out everywhere", a password change and the
multiple-login limit act on whatever a user's index holds: trusting it would end bob's
session when alice asks, and show it in alice's device list. Each store must check the
entry against the record it points at.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest
import sqlalchemy as sa

from sessionward.core.errors import StoreError
from sessionward.core.records import EndReason, SessionRecord
from sessionward.stores._redis_layout import user_keys, user_tag
from sessionward.stores.base import SessionStore
from sessionward.stores.sql import SqlStore

from .backends import BACKENDS, Backend, live
from .builders import NOW, TOMB_TTL_S, make_limit, make_record, new_key
from .test_contract_corrupt_fields import REDIS, SQL

LATER = NOW + 1


def _on(names: tuple[str, ...]) -> list[Any]:
    """The backends named (async and the generated sync store of each)."""
    return [p for p in BACKENDS if str(p.values[0]).removeprefix("sync:") in names]


async def _maybe(value: Any) -> Any:
    return await value if isinstance(value, Awaitable) else value


async def _sql_update(store: SessionStore, key: str, **values: str) -> None:
    """Write column values straight into the row under ``key``, as a hand edit would."""
    sql: Any = getattr(store, "sync", store)  # the generated sync store speaks the same tables
    update = sa.update(sql.sessions).where(sql.sessions.c.key == key).values(**values)
    if isinstance(sql, SqlStore):
        async with sql.engine.begin() as connection:
            assert (await connection.execute(update)).rowcount == 1
    else:
        with sql.engine.begin() as connection:
            assert connection.execute(update).rowcount == 1


async def _redis_index(store: SessionStore, user: str) -> tuple[Any, str, str]:
    """Return the raw client and the user's two index keys (by creation, by deadline)."""
    inner: Any = getattr(store, "sync", store)
    by_creation, by_deadline = user_keys(inner.prefix, user_tag(user))
    return inner.client, by_creation, by_deadline


async def _index_under(store: SessionStore, user: str, record: SessionRecord) -> None:
    """Add ``record`` to ``user``'s index in Redis, as a hand edit would."""
    client, by_creation, by_deadline = await _redis_index(store, user)
    await _maybe(client.zadd(by_creation, {record.key: record.meta.created_at}))
    await _maybe(client.zadd(by_deadline, {record.key: record.meta.absolute_deadline}))


async def _indexed(store: SessionStore, user: str) -> list[str]:
    client, by_creation, _ = await _redis_index(store, user)
    return [m.decode() for m in await _maybe(client.zrange(by_creation, 0, -1))]


async def _end_user(store: SessionStore, user: str) -> list[str]:
    ended = await store.end_user(user, EndReason.PASSWORD_CHANGED, LATER, LATER + TOMB_TTL_S)
    return [record.key for record in ended]


async def _listed(store: SessionStore, user: str) -> list[str]:
    return [record.key for record in await store.list_user(user, LATER)]


# -- SQL: a row whose user_id or handle column is not its record's -----------------------------------


async def _bobs_row_filed_under_alice(store: SessionStore) -> tuple[SessionRecord, SessionRecord]:
    """Store alice's session and bob's (older), then file bob's row under alice."""
    bobs = make_record(user="bob", created_at=NOW - 60)
    alices = make_record(user="alice")
    await store.establish(bobs)
    await store.establish(alices)
    await _sql_update(store, bobs.key, user_id="alice")
    return alices, bobs


@pytest.mark.parametrize("backend", _on(SQL), indirect=True)
async def test_a_sql_row_filed_under_another_user_is_not_listed_or_ended_for_him(
    backend: Backend, store: SessionStore
) -> None:
    alices, bobs = await _bobs_row_filed_under_alice(store)

    assert await _listed(store, "alice") == [alices.key]
    assert await _end_user(store, "alice") == [alices.key]

    # Not buried as alice's: it is still the corrupt row, which its own next load removes.
    with pytest.raises(StoreError):
        await store.load(bobs.key, LATER)


@pytest.mark.parametrize("backend", _on(SQL), indirect=True)
async def test_a_sql_row_filed_under_another_user_is_not_displaced_by_her_login_limit(
    backend: Backend, store: SessionStore
) -> None:
    _, bobs = await _bobs_row_filed_under_alice(store)

    # Room for two: alice's one session and this login. Bob's row, counted, would be displaced.
    result = await store.establish(make_record(user="alice"), limit=make_limit(2, prevent_login=False, now=LATER))

    assert result.displaced == []
    with pytest.raises(StoreError):
        await store.load(bobs.key, LATER)


@pytest.mark.parametrize("backend", _on(SQL), indirect=True)
async def test_a_sql_row_under_a_handle_not_its_own_is_not_found_or_ended_by_it(
    backend: Backend, store: SessionStore
) -> None:
    bobs = make_record(user="bob")
    await store.establish(bobs)
    stray = new_key()[:16]
    await _sql_update(store, bobs.key, handle=stray)

    assert await store.find_handle(stray, LATER) is None
    assert await store.end_handle(stray, EndReason.REVOKED, LATER, LATER + TOMB_TTL_S) is None
    with pytest.raises(StoreError):
        await store.load(bobs.key, LATER)  # corrupt, not ended as revoked: its own load removes it


# -- Redis: a user's index naming a session that is not the user's ------------------------------------


async def _misfiled_in_alices_index(store: SessionStore, owner: str | None) -> tuple[SessionRecord, SessionRecord]:
    """Store alice's session and another (older) of ``owner``, then add that one to alice's index."""
    other = make_record(user=owner, created_at=NOW - 60)
    alices = make_record(user="alice")
    await store.establish(other)
    await store.establish(alices)
    await _index_under(store, "alice", other)
    return alices, other


OWNERS = pytest.mark.parametrize("owner", ["bob", None], ids=["bobs", "anonymous"])


@OWNERS
@pytest.mark.parametrize("backend", _on(REDIS), indirect=True)
async def test_a_redis_index_member_of_another_user_is_not_listed_and_is_pruned(
    backend: Backend, store: SessionStore, owner: str | None
) -> None:
    alices, other = await _misfiled_in_alices_index(store, owner)

    assert await _listed(store, "alice") == [alices.key]

    assert await _indexed(store, "alice") == [alices.key]
    assert (await live(store, other.key, LATER)).meta.user == owner


@OWNERS
@pytest.mark.parametrize("backend", _on(REDIS), indirect=True)
async def test_a_redis_index_member_of_another_user_is_not_listed_or_ended(
    backend: Backend, store: SessionStore, owner: str | None
) -> None:
    alices, other = await _misfiled_in_alices_index(store, owner)

    assert await _end_user(store, "alice") == [alices.key]

    assert (await live(store, other.key, LATER)).meta.user == owner
    if owner is not None:
        assert await _listed(store, owner) == [other.key]


@OWNERS
@pytest.mark.parametrize("backend", _on(REDIS), indirect=True)
async def test_a_redis_index_member_of_another_user_is_not_displaced_by_the_login_limit(
    backend: Backend, store: SessionStore, owner: str | None
) -> None:
    _, other = await _misfiled_in_alices_index(store, owner)

    # Room for two: alice's one session and this login. The other, counted, would be displaced.
    result = await store.establish(make_record(user="alice"), limit=make_limit(2, prevent_login=False, now=LATER))

    assert result.displaced == []
    assert (await live(store, other.key, LATER)).meta.user == owner


# -- every store: names the database may compare loosely ------------------------------------------------


@pytest.mark.parametrize("other", ["Alice", "alice "], ids=["case", "trailing_space"])
async def test_a_user_whose_name_differs_only_in_case_or_spacing_is_not_listed_or_ended_with_another(
    store: SessionStore, other: str
) -> None:
    # MySQL and MariaDB compare strings without case and trailing spaces by default.
    theirs = make_record(user=other, created_at=NOW - 60)
    alices = make_record(user="alice")
    await store.establish(theirs)
    await store.establish(alices)

    assert await _listed(store, "alice") == [alices.key]
    second = make_record(user="alice")
    result = await store.establish(second, limit=make_limit(2, prevent_login=True, now=LATER))
    assert result.displaced == []
    assert sorted(await _end_user(store, "alice")) == sorted([alices.key, second.key])

    assert (await live(store, theirs.key, LATER)).meta.user == other
    assert await _listed(store, other) == [theirs.key]
