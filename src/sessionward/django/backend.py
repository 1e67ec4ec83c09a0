"""The ``SESSION_ENGINE``: Django's ``request.session`` kept by sessionward.

``SESSION_ENGINE = "sessionward.django.backend"`` with
:class:`~sessionward.django.middleware.SessionwardMiddleware` in ``MIDDLEWARE``. The
middleware opens the request's session and hands it to :class:`SessionStore`, which keeps
Django's documented session API on top of it; everything reaches the store through the
request's exchange, so the session has sessionward's IDs (hashed at rest), timeouts,
renewal, binding and multiple-login control.

How Django's verbs map (see each method):

* ``cycle_key()`` gives the session a new ID at once (the old one dies); ``flush()`` ends
  it server-side and clears the cookie. ``django.contrib.auth``'s ``login()`` writes the
  user into the session: that write is a sessionward login (a new ID, the user's session
  registry, ``max_sessions``); a refused login raises
  :class:`~sessionward.core.errors.LoginRefusedError` out of ``login()`` before the user
  is set on the request. ``logout()`` flushes: the session ends.
* ``update_session_auth_hash()`` after a password change ends the user's other sessions
  (:attr:`~sessionward.core.records.EndReason.PASSWORD_CHANGED`) and keeps this one, with
  a new ID. A hash renewed because ``SECRET_KEY`` rotated (``SECRET_KEY_FALLBACKS``) ends
  nothing.
* Values must be JSON (``dict``, ``list``, ``str``, ``int``, finite ``float``, ``bool``,
  ``None``): anything else fails where it is assigned. Changes are tracked per key, a
  ``dict`` or ``list`` changed in place included (no ``modified = True`` needed), and
  written when the response starts; not on a 5xx response, as Django does.
* ``save()`` writes the changes now rather than when the response starts. sessionward
  never stores an empty session: ``session_key`` stays ``None`` until the session holds
  a value or a user logs in.
* Expiry: see :meth:`SessionStore.set_expiry`.

``session_key`` is the session ID, the cookie's value, as in Django: a secret. To name a
session in logs or pages, use :attr:`SessionStore.handle`.

Outside a request (a ``SessionStore`` made by hand, or by Django's test client for
``client.session``, ``client.login()``, ``client.force_login()`` and ``client.logout()``)
there is no exchange to work on: reading or writing raises
:class:`~sessionward.core.errors.SessionNotAvailableError` saying so. Only
:meth:`SessionStore.exists`, :meth:`SessionStore.delete` with a key and
:meth:`SessionStore.clear_expired` work there. Tests sign in through a view, or with
:func:`sessionward.django.testing.force_login` (and out with ``logout_client``).
"""

from __future__ import annotations

from collections.abc import ItemsView, KeysView, Mapping, ValuesView
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Self

from sessionward.core.extras import needs_extra

with needs_extra("django", "sessionward.django"):
    from asgiref.sync import sync_to_async
    from django.conf import settings  # type: ignore[import-untyped]
    from django.contrib.auth import (  # type: ignore[import-untyped]
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
    )
    from django.contrib.sessions.backends.base import SessionBase  # type: ignore[import-untyped]
    from django.core.signing import JSONSerializer  # type: ignore[import-untyped]
    from django.utils.crypto import constant_time_compare  # type: ignore[import-untyped]

from sessionward._sync.exchange import Exchange, RequestSession
from sessionward._sync.manager import SessionManager
from sessionward.core import ids
from sessionward.core.engine import SessionStatus, Verdict
from sessionward.core.errors import SessionNotAvailableError, StoreError, StoreUnavailableError
from sessionward.core.events import EventName
from sessionward.core.records import EndReason, JSONValue, SessionRecord, dumps, loads
from sessionward.django._expiry import EXPIRY_KEY, as_datetime, own_deadline
from sessionward.django.apps import get_manager

if TYPE_CHECKING:
    from sessionward._sync.login_throttle import ClientThrottle
    from sessionward.core.outcomes import SessionInfo

__all__ = ["SessionStore"]

UNBOUND_MESSAGE = (
    "this session is not a request's: sessionward.django's request.session works only in a request "
    "that went through sessionward.django.middleware.SessionwardMiddleware (put it first in MIDDLEWARE, "
    "in place of Django's SessionMiddleware). Django's test client makes sessions outside any request for "
    "client.session, client.login(), client.force_login() and client.logout(): sign in and out through views "
    "instead, or use sessionward.django.testing.force_login(client, user) and logout_client(client)"
)

_MISSING: Any = object()


class SessionStore(SessionBase):  # type: ignore[misc]  # Django ships no type information
    """``request.session``: Django's session API on the request's sessionward session.

    Beside Django's API it has sessionward's: :attr:`handle`, :meth:`list_sessions`,
    :meth:`revoke`, :meth:`revoke_others`, :meth:`status`, :meth:`elevate`,
    :meth:`reauthenticated`, :attr:`throttle`, :meth:`check_size` (the same names as in
    :class:`sessionward.flask.FlaskSession`).

    Args:
        session_key: Ignored: a session is opened by the middleware, from the cookie. The
            argument is there because Django passes it.
    """

    serializer = JSONSerializer
    """Django's ``encode``/``decode`` are never used to store data here; kept for code that calls them."""

    def __init__(self, session_key: str | None = None) -> None:
        del session_key  # a session ID is believed only from the cookie, by the middleware
        self._exchange: Exchange | None = None
        self._accessed = False
        self._modified = False
        self._browser_close_asked = False

    @classmethod
    def for_exchange(cls, exchange: Exchange) -> Self:
        """Return the session of the request whose exchange this is (the middleware calls it)."""
        session = cls()
        session._exchange = exchange
        return session

    # -- where it lives ---------------------------------------------------------------------

    @property
    def exchange(self) -> Exchange:
        """The request's exchange (the session's I/O side).

        Raises:
            SessionNotAvailableError: outside a request (see the module's docstring).
        """
        exchange = self._exchange
        if exchange is None:
            raise SessionNotAvailableError(UNBOUND_MESSAGE)
        return exchange

    def _data(self) -> RequestSession:
        return self.exchange.session

    @classmethod
    def _manager(cls) -> SessionManager:
        return get_manager()

    # -- Django's flags and key ---------------------------------------------------------------

    @property
    def accessed(self) -> bool:
        """Whether the session was read or written in this request (Django's flag)."""
        exchange = self._exchange
        return self._accessed or (exchange is not None and exchange.session.accessed)

    @accessed.setter
    def accessed(self, value: bool) -> None:
        self._accessed = value
        if value and self._exchange is not None:
            self._exchange.session.accessed = True  # the response varies on the cookie

    @property
    def modified(self) -> bool:
        """Whether the session was written in this request (Django's flag).

        Setting it is never needed to save a value changed in place: changes are found
        by comparing what was read with what is there when the response starts.
        """
        return self._modified

    @modified.setter
    def modified(self, value: bool) -> None:
        self._modified = value

    @property
    def session_key(self) -> str | None:
        """The session ID (the cookie's value), or ``None`` while there is no session.

        A secret, as in Django: never log it or show it; :attr:`handle` names a session.
        """
        exchange = self._exchange
        return exchange.raw_id if exchange is not None else None

    @property
    def _session_key(self) -> str | None:
        return self.session_key

    @property
    def handle(self) -> str | None:
        """The session's public handle (safe to log and show), or ``None`` without a session."""
        return self._data().handle

    def _get_session(self, no_load: bool = False) -> RequestSession:
        del no_load
        return self._data()

    @property
    def _session(self) -> RequestSession:
        return self._data()

    def is_empty(self) -> bool:
        """Tell whether there is neither a session ID nor any data (Django's meaning)."""
        exchange = self._exchange
        if exchange is None:
            return True
        data = exchange.session
        accessed = data.accessed
        empty = exchange.raw_id is None and len(data) == 0
        data.accessed = accessed  # asking is not reading: no Vary for it
        return empty

    # -- the mapping ----------------------------------------------------------------------------

    def __contains__(self, key: object) -> bool:
        return key in self._data()

    def __getitem__(self, key: str) -> JSONValue:
        return self._data()[key]

    def __setitem__(self, key: str, value: JSONValue) -> None:
        exchange = self.exchange
        if key == SESSION_KEY and isinstance(value, str) and value:
            self._log_in(exchange, value)
        elif key == HASH_SESSION_KEY:
            self._auth_hash_written(exchange, value)
        else:
            exchange.session[key] = value
        self._modified = True

    def __delitem__(self, key: str) -> None:
        del self._data()[key]
        self._modified = True

    def get(self, key: str, default: JSONValue = None) -> JSONValue:
        """Return the value of ``key``, or ``default``."""
        return self._data().get(key, default)

    def pop(self, key: str, default: JSONValue = _MISSING) -> JSONValue:
        """Remove ``key`` and return its value; ``default`` (or :class:`KeyError`) if absent."""
        data = self._data()
        if key in data:
            value = data[key]
            del data[key]
            self._modified = True
            return value
        if default is _MISSING:
            raise KeyError(key)
        return default

    def setdefault(self, key: str, value: JSONValue) -> JSONValue:
        """Return the value of ``key``, first setting it to ``value`` if absent."""
        data = self._data()
        if key in data:
            return data[key]
        self[key] = value
        return value

    def update(self, dict_: Mapping[str, JSONValue]) -> None:
        """Set every key of ``dict_``."""
        for key, value in dict_.items():
            self[key] = value
        self._modified = True

    def has_key(self, key: str) -> bool:
        """Tell whether ``key`` is set."""
        return key in self._data()

    def keys(self) -> KeysView[str]:
        """The keys."""
        return self._data().keys()

    def values(self) -> ValuesView[JSONValue]:
        """The values (each read as by ``session[key]``: changes in place are found)."""
        return self._data().values()

    def items(self) -> ItemsView[str, JSONValue]:
        """The pairs (each value read as by ``session[key]``)."""
        return self._data().items()

    def clear(self) -> None:
        """Remove every key; the session, its ID and its user stay (``flush()`` ends it)."""
        self._data().clear()
        self._accessed = self._modified = True

    def check_size(self) -> None:
        """Check that a ``dict`` or ``list`` changed in place kept the data within ``max_data_bytes``.

        Raises:
            SessionTooLargeError: naming the keys that grew in place.
        """
        self._data().check_size()

    # -- Django's verbs -----------------------------------------------------------------------

    def flush(self) -> None:
        """End the session server-side, drop its data and clear its cookie (``logout()`` calls it).

        Values written afterwards start a new session under a new ID.
        """
        self.exchange.logout()
        self._accessed = self._modified = True

    def cycle_key(self) -> None:
        """Give the session a new ID now, keeping its data; the old ID dies at once.

        A session not stored yet (no ID so far) gets a fresh one when it is stored.

        Raises:
            SessionEndedError: a concurrent request ended the session (answered 401).
        """
        exchange = self.exchange
        if exchange.record is not None:
            exchange.rotate_id(reason="cycle_key")
        self._modified = True

    def exists(self, session_key: str | None) -> bool:
        """Tell whether ``session_key`` is the ID of a live session (works outside requests too)."""
        if not isinstance(session_key, str) or not ids.is_well_formed(session_key):
            return False  # a malformed ID never reaches the store
        manager = self._manager()
        now = manager.clock()
        try:
            entry = manager.call_store(lambda: manager.store.load(ids.storage_key(session_key), now))
        except StoreUnavailableError:
            raise
        except StoreError:
            return False
        verdict = manager.engine.assess(session_key, entry, now, passive=True).verdict
        return verdict in (Verdict.VALID, Verdict.GRACE)

    def create(self) -> None:
        """Give a stored session a new ID (as :meth:`cycle_key`); store a new one if it holds data."""
        if self.exchange.record is not None:
            self.cycle_key()
        else:
            self.save()

    def save(self, must_create: bool = False) -> None:
        """Write this request's changes now, rather than when the response starts.

        A session that holds no value is not stored (``session_key`` stays ``None``).

        Args:
            must_create: Store it under a new ID (as :meth:`create`).
        """
        if must_create:
            self.create()
            return
        exchange = self.exchange
        if exchange.may_write(200):
            exchange.commit(200)
            # What was due is done: the commit when the response starts need not do it again.
            exchange.touch_due = exchange.rotate_due = False

    def delete(self, session_key: str | None = None) -> None:
        """End a session: this one (``None``, as :meth:`flush`), or another by its ID.

        Another session is ended as revoked, and works outside requests too.
        """
        exchange = self._exchange
        if session_key is None or (exchange is not None and session_key == exchange.raw_id):
            self.flush()
            return
        if not ids.is_well_formed(session_key):
            return
        manager = self._manager()
        now = manager.clock()
        key = ids.storage_key(session_key)
        entry = manager.call_store(lambda: manager.store.load(key, now))
        if not isinstance(entry, SessionRecord):
            return
        tomb = manager.engine.plan_end(key, entry.meta.user, EndReason.REVOKED, now)
        ended = manager.call_store(lambda: manager.store.end_following(tomb, now))
        if ended is not None:
            manager.emit(EventName.REVOKED, reason=EndReason.REVOKED.value, handle=ended.handle, user=ended.meta.user)

    def load(self) -> dict[str, JSONValue]:
        """Return a copy of the session's data."""
        data = self._data()
        data.accessed = True
        copy = loads(dumps(data.data_snapshot()))
        assert isinstance(copy, dict)
        return copy

    @classmethod
    def clear_expired(cls) -> None:
        """Remove expired sessions from the store (``manage.py clearsessions``)."""
        manager = cls._manager()
        batch = 500
        while manager.call_store(lambda: manager.store.purge_expired(manager.clock(), batch)) >= batch:
            pass

    # -- expiry -----------------------------------------------------------------------------------

    def get_session_cookie_age(self) -> int:
        """The cookie's Max-Age if the policy sets one, else the absolute timeout (the longest a session lives)."""
        policy = self._manager().policy if self._exchange is None else self._exchange.policy
        age = policy.cookie.max_age_s
        return int(age if age is not None else policy.timeouts.absolute_timeout_s)

    def set_expiry(self, value: int | float | datetime | timedelta | None) -> None:
        """Shorten this session's life, as Django's ``set_expiry`` does; never lengthen it.

        The session ends at the earliest of the policy's idle timeout, its absolute
        timeout, and what is asked here:

        * ``n`` (seconds, > 0): after ``n`` seconds without a request.
        * a ``datetime``, or a ``timedelta`` from now: at that moment.
        * ``0``: the cookie expires when the browser closes (it does already, unless the
          policy's cookie sets a Max-Age: then this session's cookie goes without it).
        * ``None``: the policy alone decides again.

        The value is kept in the data under ``_session_expiry``, where Django keeps it.
        """
        if value is None:
            self.pop(EXPIRY_KEY, None)
            return
        stored: JSONValue
        if isinstance(value, timedelta):
            stored = as_datetime(self._now() + value.total_seconds(), aware=True).isoformat()
        elif isinstance(value, datetime):
            stored = value.isoformat()
        elif isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ValueError("set_expiry takes seconds (0 or more), a datetime, a timedelta or None")
        else:
            stored = value
            self._browser_close_asked = value == 0
        self[EXPIRY_KEY] = stored

    def get_expiry_age(self, **kwargs: Any) -> int:
        """Return the seconds left before the session ends if no other request comes.

        Args:
            **kwargs: Django's ``modification`` (count from this ``datetime`` instead of
                now) and ``expiry`` (use this instead of the session's own expiry).
        """
        reference = self._reference(kwargs)
        return max(0, int(self._deadline(reference, kwargs) - reference))

    def get_expiry_date(self, **kwargs: Any) -> datetime:
        """Return when the session ends if no other request comes (takes the keywords of :meth:`get_expiry_age`)."""
        reference = self._reference(kwargs)
        return as_datetime(self._deadline(reference, kwargs), aware=bool(settings.USE_TZ))

    def get_expire_at_browser_close(self) -> bool:
        """Tell whether the cookie goes when the browser closes: no Max-Age, or ``set_expiry(0)``."""
        if self._data().get(EXPIRY_KEY) == 0:
            return True
        return self.exchange.policy.cookie.max_age_s is None

    @property
    def wants_browser_close(self) -> bool:
        """Whether the cookie must go without Max-Age: ``set_expiry(0)`` under a policy that sets one."""
        exchange = self._exchange
        if exchange is None or exchange.policy.cookie.max_age_s is None:
            return False
        return bool(peek(exchange.session, EXPIRY_KEY) == 0)

    @property
    def browser_close_asked(self) -> bool:
        """Whether this request called ``set_expiry(0)`` (the cookie is sent again, without Max-Age)."""
        return self._browser_close_asked

    def _now(self) -> float:
        exchange = self._exchange
        return exchange.now if exchange is not None else self._manager().clock()

    def _reference(self, kwargs: Mapping[str, Any]) -> float:
        modification = kwargs.get("modification")
        return modification.timestamp() if isinstance(modification, datetime) else self._now()

    def _deadline(self, reference: float, kwargs: Mapping[str, Any]) -> float:
        exchange = self.exchange
        policy, record = exchange.policy, exchange.record
        meta = (exchange.meta_dirty or record.meta) if record is not None else None
        if meta is None:
            idle, absolute = (
                policy.timeouts.effective_anonymous_idle_timeout_s,
                reference + policy.timeouts.absolute_timeout_s,
            )
            last = reference
        else:
            idle, absolute = exchange.engine.idle_timeout(meta), meta.absolute_deadline
            # This request counts as activity, unless its path is passive.
            last = meta.last_access_at if policy.is_passive(exchange.path) else reference
        deadline = min(last + idle, absolute)
        own = kwargs["expiry"] if "expiry" in kwargs else self._data().get(EXPIRY_KEY)
        if isinstance(own, datetime):
            own = own.isoformat()
        own_end = own_deadline(own, last)
        return deadline if own_end is None else min(deadline, own_end)

    # -- django.contrib.auth ------------------------------------------------------------------

    def _log_in(self, exchange: Exchange, user: str) -> None:
        """``login()`` writes the user's ID: log them in through sessionward (new ID, registry, limits)."""
        data = exchange.session
        previous = data.get(SESSION_KEY, _MISSING)
        # Written first, so that the login stores it with the new ID in the same write.
        data[SESSION_KEY] = user
        try:
            exchange.login(user)
        except BaseException:
            if previous is _MISSING:
                del data[SESSION_KEY]
            else:
                data[SESSION_KEY] = previous
            raise

    def _auth_hash_written(self, exchange: Exchange, value: JSONValue) -> None:
        """A new auth hash for the signed-in user means a new password: end their other sessions."""
        data = exchange.session
        old = data.get(HASH_SESSION_KEY)
        data[HASH_SESSION_KEY] = value
        user = data.user
        if user is None or not isinstance(old, str) or not old or old == value or data.get(SESSION_KEY) != user:
            return  # a login (the session was flushed or anonymous before), or nothing changed
        if _hash_of_a_former_secret(data, old):
            return  # SECRET_KEY rotated (SECRET_KEY_FALLBACKS): same password, nothing to end
        exchange.revoke_others(EndReason.PASSWORD_CHANGED)

    # -- sessionward's registry and verbs -------------------------------------------------------

    def list_sessions(self) -> list[SessionInfo]:
        """The signed-in user's live sessions (their devices), this one marked ``current``."""
        return self._data().list_sessions()

    def revoke(self, handle: str) -> bool:
        """End one of the user's sessions by handle; ``False`` if unknown or not theirs."""
        return self._data().revoke(handle)

    def revoke_others(self, reason: EndReason = EndReason.REVOKED) -> int:
        """End all the user's other sessions; return how many."""
        return self._data().revoke_others(reason)

    def status(self) -> SessionStatus:
        """The session's figures: user, age, idle and absolute time left, next renewal."""
        return self._data().status()

    def elevate(self) -> None:
        """Elevate (sudo mode) for the configured time; the ID changes."""
        self._data().elevate()

    def reauthenticated(self) -> None:
        """Record that the user just re-entered their password (a recent authentication)."""
        self._data().reauthenticated()

    @property
    def is_elevated(self) -> bool:
        """Whether an elevation (sudo mode) is in force."""
        return self._data().is_elevated

    @property
    def recently_authenticated(self) -> bool:
        """Whether the user proved who they are within the re-authentication window."""
        return self._data().recently_authenticated

    @property
    def throttle(self) -> ClientThrottle:
        """Login throttling for this request's client: ``check``, ``failed``, ``succeeded``."""
        return self._data().throttle

    # -- Django's async twins: the same, run where Django runs sync code ---------------------

    async def aset(self, key: str, value: JSONValue) -> None:
        await sync_to_async(self.__setitem__)(key, value)

    async def aget(self, key: str, default: JSONValue = None) -> JSONValue:
        return await sync_to_async(self.get)(key, default)

    async def apop(self, key: str, default: JSONValue = _MISSING) -> JSONValue:
        return await sync_to_async(self.pop)(key, default)

    async def asetdefault(self, key: str, value: JSONValue) -> JSONValue:
        return await sync_to_async(self.setdefault)(key, value)

    async def aset_test_cookie(self) -> None:
        await sync_to_async(self.set_test_cookie)()

    async def atest_cookie_worked(self) -> bool:
        worked: bool = await sync_to_async(self.test_cookie_worked)()
        return worked

    async def adelete_test_cookie(self) -> None:
        await sync_to_async(self.delete_test_cookie)()

    async def aupdate(self, dict_: Mapping[str, JSONValue]) -> None:
        await sync_to_async(self.update)(dict_)

    async def ahas_key(self, key: str) -> bool:
        return await sync_to_async(self.has_key)(key)

    async def akeys(self) -> KeysView[str]:
        return await sync_to_async(self.keys)()

    async def avalues(self) -> ValuesView[JSONValue]:
        return await sync_to_async(self.values)()

    async def aitems(self) -> ItemsView[str, JSONValue]:
        return await sync_to_async(self.items)()

    async def _aget_session(self, no_load: bool = False) -> RequestSession:
        return await sync_to_async(self._get_session)(no_load)

    async def aget_expiry_age(self, **kwargs: Any) -> int:
        return await sync_to_async(self.get_expiry_age)(**kwargs)

    async def aget_expiry_date(self, **kwargs: Any) -> datetime:
        return await sync_to_async(self.get_expiry_date)(**kwargs)

    async def aset_expiry(self, value: int | float | datetime | timedelta | None) -> None:
        await sync_to_async(self.set_expiry)(value)

    async def aget_expire_at_browser_close(self) -> bool:
        return await sync_to_async(self.get_expire_at_browser_close)()

    async def aflush(self) -> None:
        await sync_to_async(self.flush)()

    async def acycle_key(self) -> None:
        await sync_to_async(self.cycle_key)()

    async def aexists(self, session_key: str | None) -> bool:
        return await sync_to_async(self.exists)(session_key)

    async def acreate(self) -> None:
        await sync_to_async(self.create)()

    async def asave(self, must_create: bool = False) -> None:
        await sync_to_async(self.save)(must_create)

    async def adelete(self, session_key: str | None = None) -> None:
        await sync_to_async(self.delete)(session_key)

    async def aload(self) -> dict[str, JSONValue]:
        return await sync_to_async(self.load)()

    @classmethod
    async def aclear_expired(cls) -> None:
        await sync_to_async(cls.clear_expired)()


def peek(session: RequestSession, key: str) -> JSONValue:
    """Return the value of ``key`` without counting it as a read (no ``Vary: Cookie`` for it)."""
    accessed = session.accessed
    try:
        return session.get(key)
    finally:
        session.accessed = accessed


def _hash_of_a_former_secret(data: RequestSession, old_hash: str) -> bool:
    """Tell whether ``old_hash`` is the user's auth hash under one of ``SECRET_KEY_FALLBACKS``.

    Django renews the hash of a session signed with a former secret (same password); a
    password change gives a hash that no secret, current or former, gives the new password.
    """
    if not getattr(settings, "SECRET_KEY_FALLBACKS", None):
        return False
    from django.contrib.auth import load_backend

    backend_path = data.get(BACKEND_SESSION_KEY)
    if not isinstance(backend_path, str) or backend_path not in settings.AUTHENTICATION_BACKENDS:
        return False
    user = load_backend(backend_path).get_user(data.get(SESSION_KEY))
    fallback_hashes = getattr(user, "get_session_auth_fallback_hash", None)
    if fallback_hashes is None:
        return False
    return any(constant_time_compare(old_hash, candidate) for candidate in fallback_hashes())
