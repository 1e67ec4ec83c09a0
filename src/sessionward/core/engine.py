"""The sans-I/O decisions: what a cookie and a stored entry mean at a given time.

Theory of operation. An adapter (ASGI, WSGI) does the I/O around these steps:

1. :meth:`SessionEngine.read_cookie` turns the ``Cookie`` headers into a well-formed ID
   and its storage key, or says why there is none. Nothing malformed reaches a store.
2. The adapter loads the entry for the key; :meth:`SessionEngine.assess` says whether
   it is valid (and whether its ID is due for renewal and its idle clock for a touch),
   in its post-renewal grace period, ended (with the reason and the tombstone to write
   when it ends just now), or unknown.
3. Handlers change data and call verbs; the ``plan_*`` methods return the records,
   tombstones and updates the adapter must write.
4. :meth:`SessionEngine.plan_update` folds the request's changes into one write, or
   none when nothing changed and no touch is due.
5. Before a session nobody signed in to is created, the adapter counts it on the
   client's counter (:meth:`SessionEngine.creation_counter`, a store's ``count_hit``)
   and :meth:`SessionEngine.judge_creation` says whether to create it, go on without
   it, or refuse the request: the creation budget against session flooding. A login
   never asks.

The engine never reads a clock or a socket: ``now`` and the client's attributes come in
as arguments, so every timeout is testable without sleeping.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from msgspec.structs import replace

from sessionward.core import ids
from sessionward.core.binding import BindingCheck, BindingResult, check_binding, compute_binding, network_of
from sessionward.core.config import BudgetAction, Creation, Fixation, SessionPolicy
from sessionward.core.cookies import session_cookie_values
from sessionward.core.errors import LoginRefusedError
from sessionward.core.records import (
    EndReason,
    Entry,
    Expected,
    JSONValue,
    SessionMeta,
    SessionRecord,
    Tombstone,
    Update,
)

MAX_USER_AGENT_CHARS = 256
_CSRF_TOKEN = re.compile(rb"[A-Za-z0-9_-]{43}")
"""A form token as :func:`secrets.token_urlsafe` (32 bytes) makes it."""
Candidate = TypeVar("Candidate")
"""A session as a store holds it while choosing whom a login displaces (a record, a row…)."""


class CookieProblem(StrEnum):
    """Why a session cookie that was sent cannot be used."""

    MALFORMED = "malformed"
    CONFLICT = "conflicting_cookies"


@dataclass(frozen=True, slots=True)
class CookieRead:
    """What the request's cookies say about its session.

    Attributes:
        raw_id: The well-formed session ID sent, if any.
        key: Its storage key.
        problem: Why a session cookie was sent but cannot be used.
    """

    raw_id: str | None = None
    key: str | None = None
    problem: CookieProblem | None = None

    @property
    def sent(self) -> bool:
        """Tell whether the request carried a session cookie at all."""
        return self.raw_id is not None or self.problem is not None


class Verdict(StrEnum):
    """What a loaded entry means."""

    VALID = "valid"
    GRACE = "grace"
    ENDED = "ended"
    UNKNOWN = "unknown"


# Assessment and ClientInfo are plain (not frozen) slotted dataclasses: one of each is
# made on every request, and a frozen dataclass's __init__ costs about three times as much
# (an object.__setattr__ per field). Nothing changes them after construction.


@dataclass(slots=True)
class Assessment:
    """The verdict on a presented session.

    Attributes:
        verdict: Valid, in renewal grace, ended, or unknown.
        record: The live record (VALID).
        reason: Why it cannot be used (ENDED, UNKNOWN).
        end: A tombstone to write because the session ends now (idle/absolute expiry).
        rotate: The ID is due for periodic renewal (VALID).
        touch: The idle clock is due to be written (VALID).
        successor_key: Where the session moved (GRACE).
        successor_id: The new ID to hand back to this client (GRACE).
        user: Whose session it was (ENDED), for the audit trail.
    """

    verdict: Verdict
    record: SessionRecord | None = None
    reason: str | None = None
    end: Tombstone | None = None
    rotate: bool = False
    touch: bool = False
    successor_key: str | None = None
    successor_id: str | None = None
    user: str | None = None


@dataclass(slots=True)
class ClientInfo:
    """What the adapter knows of the client of a request."""

    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """A move of a session to a new ID (login, rotation) or a new record.

    Attributes:
        raw_id: The new ID for the cookie.
        record: The new record to write.
        retired: The tombstone to write over the old key, if there was one.
        expect: The precondition: the state of the old session this move was decided on.
            The store applies the move only while it still holds (see :class:`Expected`).
    """

    raw_id: str
    record: SessionRecord
    retired: Tombstone | None
    expect: Expected | None = None


@dataclass(frozen=True, slots=True)
class SessionLimit:
    """Multiple-login control as a store enforces it, atomically.

    A store gathers, under its per-user lock, the user's other live sessions (not the one
    being written, not the one being retired) oldest first by :func:`login_order`, and asks
    :meth:`displace` which to end; the rule lives here once, the locking in each store.
    """

    max_sessions: int
    prevent_login: bool
    now: float
    tombstone_expires_at: float

    def displace(self, user: str, others: Sequence[Candidate]) -> Sequence[Candidate]:
        """Return the sessions to end so the new one fits, oldest first.

        Raises:
            LoginRefusedError: when ``prevent_login`` ("first wins") and there is no room;
                the store must then write nothing.
        """
        surplus = len(others) + 1 - self.max_sessions
        if surplus <= 0:
            return ()
        if self.prevent_login:
            raise LoginRefusedError(user, self.max_sessions)
        return others[:surplus]

    def tombstone(self, key: str, user: str) -> Tombstone:
        """Return the tombstone of a session displaced by this login."""
        return Tombstone(
            key=key, reason=EndReason.DISPLACED, user=user, ended_at=self.now, expires_at=self.tombstone_expires_at
        )


@dataclass(frozen=True, slots=True)
class Hits:
    """A fixed-window counter just after a hit, as a store's ``count_hit`` reports it.

    Attributes:
        count: The hits in the current window, the one just counted included.
        resets_at: When the window ends; the next hit after it starts a new one at 1.
    """

    count: int
    resets_at: float


class CreationVerdict(StrEnum):
    """What becomes of a session nobody signed in to that a request would create."""

    CREATE = "create"
    """Within the client's budget: create it."""
    SKIP = "skip"
    """Over budget: the request goes on without a session; its writes are not kept."""
    REFUSE = "refuse"
    """Over budget: the request is answered 429 with ``Retry-After``."""


def counter_name(purpose: str, subject: str) -> str:
    """Return the name a store files a counter under: a SHA-256 hex digest, never the subject.

    Args:
        purpose: What is counted (``anonymous-session-budget``…); counters of different
            purposes never share a name, whatever their subjects.
        subject: Whom it is counted for (a client network, an account).

    Stores see only the digest, so no IP address or account name sits in them in clear.
    (A digest of an IPv4 address can be reversed by trying every address; the counter
    lives a minute, and the point is to keep addresses out of dumps and key listings.)
    """
    # NUL separates the parts: neither a purpose nor header-derived text holds one.
    material = b"\x00".join((_COUNTER_DOMAIN, purpose.encode(), subject.encode("utf-8", "surrogateescape")))
    return hashlib.sha256(material).hexdigest()


_COUNTER_DOMAIN = b"sessionward-counter-v1"
_SPENT_MEMO_SIZE = 10_000
"""The most clients :meth:`SessionEngine.known_spent` remembers at once."""
BUDGET_COUNTER = "anonymous-session-budget"
"""The purpose of the counters of :meth:`SessionEngine.creation_counter`."""


def login_order(record: SessionRecord) -> tuple[float, str]:
    """Sort key of a user's sessions for multiple-login control: oldest login first."""
    return (record.meta.created_at, record.key)


@dataclass(frozen=True, slots=True)
class SessionStatus:
    """How long a session has lived and has left: what a status endpoint reports."""

    authenticated: bool
    user: str | None
    elevated: bool
    session_age_s: float | None
    idle_s: float | None
    remaining_idle_s: float | None
    remaining_absolute_s: float | None
    next_rotation_s: float | None

    def as_dict(self) -> dict[str, JSONValue]:
        """Return the status as the JSON object of the demo's `GET /api/session/status`."""
        return {
            "authenticated": self.authenticated,
            "user": self.user,
            "elevated": self.elevated,
            "session_age_s": self.session_age_s,
            "idle_s": self.idle_s,
            "remaining_idle_s": self.remaining_idle_s,
            "remaining_absolute_s": self.remaining_absolute_s,
            "next_rotation_s": self.next_rotation_s,
        }


class SessionEngine:
    """Decides about sessions under one :class:`SessionPolicy`; does no I/O."""

    __slots__ = (
        "_anonymous_idle_s",
        "_anonymous_touch_s",
        "_binding_on",
        "_cookie_name_bytes",
        "_csrf_cookie_name_bytes",
        "_idle_timeout_s",
        "_renewal_interval_s",
        "_spent",
        "_touch_interval_s",
        "cookie_name",
        "csrf_cookie",
        "policy",
        "stateless",
    )

    def __init__(self, policy: SessionPolicy) -> None:
        self.policy = policy
        self.cookie_name = policy.cookie.cookie_name
        # Read on every request: looked up once here rather than through the policy.
        timeouts = policy.timeouts
        self._idle_timeout_s = timeouts.idle_timeout_s
        self._anonymous_idle_s = timeouts.effective_anonymous_idle_timeout_s
        self._anonymous_touch_s = timeouts.effective_anonymous_touch_interval_s
        self._renewal_interval_s = timeouts.renewal_interval_s
        self._touch_interval_s = timeouts.effective_touch_interval_s
        self.stateless = policy.creation is Creation.STATELESS
        """Creation policy ``stateless``: no cookie is read and no session is made."""
        self._binding_on = policy.binding.enabled
        self._cookie_name_bytes = self.cookie_name.encode("ascii")
        self.csrf_cookie = policy.cookie.for_csrf()
        """The pre-session cookie that holds a visitor's form token (no store record)."""
        self._csrf_cookie_name_bytes = self.csrf_cookie.cookie_name.encode("ascii")
        self._spent: dict[str, Hits] = {}
        """Counters this process saw past the creation budget, until their window ends."""

    # -- reading the request --------------------------------------------------------------

    def read_cookie(self, cookie_headers: Iterable[bytes]) -> CookieRead:
        """Find the session ID among the request's ``Cookie`` header values."""
        if self.stateless:
            return NO_COOKIE
        values = session_cookie_values(cookie_headers, self._cookie_name_bytes)
        if not values:
            return NO_COOKIE
        first = values[0]
        if len(values) > 1 and any(value != first for value in values):
            # Two different session cookies: an attacker may have planted one from a
            # sibling domain; choosing either would be a guess, so fail closed.
            return CookieRead(problem=CookieProblem.CONFLICT)
        try:
            raw = first.decode("ascii")
        except UnicodeDecodeError:
            return CookieRead(problem=CookieProblem.MALFORMED)
        if not ids.is_well_formed(raw):
            return CookieRead(problem=CookieProblem.MALFORMED)
        return CookieRead(raw, ids.storage_key(raw))

    def read_csrf_cookie(self, cookie_headers: Iterable[bytes]) -> str | None:
        """Return the visitor's form token from the pre-session CSRF cookie, if well-formed.

        Two different values fail closed (``None``), as for the session cookie.
        """
        values = session_cookie_values(cookie_headers, self._csrf_cookie_name_bytes)
        if not values or any(value != values[0] for value in values):
            return None
        return values[0].decode("ascii") if _CSRF_TOKEN.fullmatch(values[0]) else None

    def assess(self, raw_id: str, entry: Entry | None, now: float, *, passive: bool = False) -> Assessment:
        """Judge the entry loaded for ``raw_id`` at time ``now``.

        Args:
            raw_id: The ID the client sent (needed to open a renewal's sealed successor).
            entry: What the store holds under the ID's key.
            now: The current time.
            passive: The request must not count as activity (a polled status endpoint).
        """
        if entry is None:
            # OWASP "strict" mode: an unknown ID is never adopted.
            return Assessment(Verdict.UNKNOWN, reason="unknown")
        if isinstance(entry, Tombstone):
            if entry.successor_key and entry.sealed_successor and entry.grace_until and now <= entry.grace_until:
                successor = ids.open_successor(raw_id, entry.sealed_successor)
                if successor is not None and ids.storage_key(successor) == entry.successor_key:
                    return Assessment(Verdict.GRACE, successor_key=entry.successor_key, successor_id=successor)
            return Assessment(Verdict.ENDED, reason=entry.reason.value, user=entry.user)
        meta = entry.meta
        if now >= meta.absolute_deadline:
            return self._ended(entry, EndReason.ABSOLUTE_TIMEOUT, now)
        idle = now - meta.last_access_at
        if idle >= (self._idle_timeout_s if meta.user is not None else self._anonymous_idle_s):
            return self._ended(entry, EndReason.IDLE_TIMEOUT, now)
        if passive:
            return Assessment(Verdict.VALID, entry)
        renewal = self._renewal_interval_s
        rotate = renewal > 0 and now - meta.rotated_at >= renewal
        touch_s = self._touch_interval_s if meta.user is not None else self._anonymous_touch_s
        return Assessment(Verdict.VALID, entry, rotate=rotate, touch=idle >= touch_s)

    def _ended(self, record: SessionRecord, reason: EndReason, now: float) -> Assessment:
        tomb = self.plan_end(record.key, record.meta.user, reason, now)
        return Assessment(Verdict.ENDED, record=record, reason=reason.value, end=tomb, user=record.meta.user)

    # -- making and moving sessions ---------------------------------------------------------

    def deadline(self, meta: SessionMeta) -> float:
        """Return when a session with ``meta`` expires: idle or absolute, whichever is first."""
        return min(meta.last_access_at + self.idle_timeout(meta), meta.absolute_deadline)

    def idle_timeout(self, meta: SessionMeta) -> float:
        """Return the idle timeout of a session with ``meta``: shorter while nobody signed in."""
        return self._idle_timeout_s if meta.user is not None else self._anonymous_idle_s

    def new_record(
        self, now: float, data: dict[str, JSONValue] | None = None, client: ClientInfo | None = None
    ) -> tuple[str, SessionRecord]:
        """Return a new ID and an anonymous record for it."""
        raw_id = ids.generate_id(self.policy.id_bits)
        meta = SessionMeta(
            created_at=now,
            last_access_at=now,
            rotated_at=now,
            absolute_deadline=now + self.policy.timeouts.absolute_timeout_s,
            ip=client.ip if client else None,
            user_agent=_clip(client.user_agent) if client else None,
            # Bound to the client that creates it (and, through plan_login, logs in).
            binding=compute_binding(self.policy.binding, ip=client.ip, user_agent=client.user_agent)
            if client
            else None,
        )
        record = SessionRecord(key=ids.storage_key(raw_id), meta=meta, data=dict(data or {}))
        self._set_deadlines(record)
        return raw_id, record

    def check_binding(self, meta: SessionMeta, client: ClientInfo) -> BindingResult:
        """Compare a request's client with the session's binding."""
        if not self._binding_on:
            return BINDING_OFF
        return check_binding(self.policy.binding, meta.binding, ip=client.ip, user_agent=client.user_agent)

    def _set_deadlines(self, record: SessionRecord) -> None:
        record.expires_at = self.deadline(record.meta)
        record.retain_until = self.retention(record.expires_at, record.meta.user)

    def retention(self, expires_at: float, user: str | None) -> float:
        """Return until when an expired record is kept, so its reason can be told.

        A session nobody signed in to is not kept past its expiry: there is no one to
        tell why it ended, and anonymous traffic must not make the store hold a day of it.
        """
        return expires_at + self.tombstone_ttl(user) if user is not None else expires_at

    def tombstone_ttl(self, user: str | None) -> float:
        """Return how long the reason a session of ``user`` ended is remembered.

        For a session nobody signed in to, :data:`ANONYMOUS_TOMBSTONE_S` at most: long
        enough to tell requests in flight when it ended (a login, say) from forged IDs,
        not long enough for anonymous traffic to fill the store with tombstones.
        """
        ttl = self.policy.invalid_session.tombstone_ttl_s
        return ttl if user is not None else min(ttl, ANONYMOUS_TOMBSTONE_S)

    def plan_login(
        self,
        current: SessionRecord | None,
        data: dict[str, JSONValue],
        user: str,
        now: float,
        client: ClientInfo | None = None,
    ) -> Transition:
        """Plan a login of ``user`` under the policy's fixation strategy.

        Args:
            current: The session's record before login, or ``None`` if it had none.
            data: The session's data as the handler sees it (pending changes included).
            user: Who logs in.
            now: The current time.
            client: The client's attributes, kept for the user's device list.

        The absolute deadline restarts at login: a login is a fresh authentication.
        """
        fixation = self.policy.login.fixation
        keep_data = fixation in (Fixation.CHANGE_ID, Fixation.MIGRATE, Fixation.NONE) or current is None
        raw_id, record = self.new_record(now, data if keep_data else None, client)
        meta = record.meta
        meta.user = user
        meta.auth_at = now
        meta.csrf_token = secrets.token_urlsafe(32)
        if current is not None and fixation is Fixation.CHANGE_ID:
            meta.created_at = current.meta.created_at
        self._set_deadlines(record)  # a signed-in session's timeouts, not a visitor's
        if current is None:
            return Transition(raw_id=raw_id, record=record, retired=None)
        expect = Expected(current.key, current.version)
        if fixation is Fixation.NONE:
            # The ID survives login: open to fixation, as configured (and warned about).
            record.key = current.key
            meta.created_at = current.meta.created_at
            record.version = current.version
            return Transition(raw_id=KEEP_ID, record=record, retired=None, expect=expect)
        # No successor pointer: a login is a new authentication, and nothing that held
        # the pre-login ID may follow it there (fixation).
        retired = self.plan_end(current.key, current.meta.user, EndReason.SUPERSEDED, now)
        return Transition(raw_id=raw_id, record=record, retired=retired, expect=expect)

    def plan_rotation(
        self,
        current: SessionRecord,
        data: dict[str, JSONValue],
        now: float,
        *,
        old_raw_id: str | None = None,
    ) -> Transition:
        """Plan a move of a session to a new ID, keeping its data and metadata.

        Args:
            current: The record to move.
            data: Its data as the handler sees it.
            now: The current time.
            old_raw_id: For periodic renewal, the ID being retired: the old ID then keeps
                leading to the new session for the grace period. Privilege changes
                pass ``None``: the old, less privileged ID dies at once.
        """
        raw_id = ids.generate_id(self.policy.id_bits)
        meta = replace(current.meta, rotated_at=now)
        record = SessionRecord(key=ids.storage_key(raw_id), meta=meta, data=dict(data))
        self._set_deadlines(record)
        if old_raw_id is None:
            # The successor's key, not its ID: the store can end the session where it
            # moved (a logout racing this rotation), but the old ID never leads there.
            retired = replace(
                self.plan_end(current.key, meta.user, EndReason.SUPERSEDED, now), successor_key=record.key
            )
        else:
            grace_until = now + self.policy.timeouts.rotation_grace_s
            retired = Tombstone(
                key=current.key,
                reason=EndReason.RENEWED,
                user=meta.user,
                ended_at=now,
                expires_at=max(now + self.tombstone_ttl(meta.user), grace_until),
                successor_key=record.key,
                sealed_successor=ids.seal_successor(old_raw_id, raw_id),
                grace_until=grace_until,
            )
        return Transition(raw_id=raw_id, record=record, retired=retired, expect=Expected(current.key, current.version))

    def plan_end(self, key: str, user: str | None, reason: EndReason, now: float) -> Tombstone:
        """Return the tombstone that remembers why the session under ``key`` ended."""
        return Tombstone(
            key=key,
            reason=reason,
            user=user,
            ended_at=now,
            expires_at=now + self.tombstone_ttl(user),
        )

    def plan_elevation(self, meta: SessionMeta, now: float) -> SessionMeta:
        """Return ``meta`` elevated until the elevation timeout, as a recent authentication."""
        return replace(meta, elevated_until=now + self.policy.login.elevation_timeout_s, auth_at=now)

    def plan_update(
        self,
        record: SessionRecord,
        written: dict[str, JSONValue],
        deleted: frozenset[str],
        now: float,
        *,
        touch: bool,
        meta: SessionMeta | None = None,
    ) -> Update | None:
        """Fold a request's changes into one write, or ``None`` when there is nothing to write.

        Args:
            record: The record as loaded.
            written: Data keys the request set.
            deleted: Data keys the request removed.
            now: The current time.
            touch: Whether the idle clock is due to be written.
            meta: New metadata, when the request changed it.
        """
        if not written and not deleted and not touch and meta is None:
            return None
        new_meta = meta if meta is not None else record.meta
        if touch:
            new_meta = replace(new_meta, last_access_at=now)
        meta_changed = touch or meta is not None
        expires_at = self.deadline(new_meta) if meta_changed else record.expires_at
        return Update(
            set=written,
            delete=deleted,
            meta=new_meta,
            expires_at=expires_at,
            retain_until=self.retention(expires_at, new_meta.user) if meta_changed else record.retain_until,
            base_version=record.version,
            base_data=record.data,
            meta_changed=meta_changed,
        )

    def creation_counter(self, client: ClientInfo) -> str | None:
        """Return the counter that budgets new anonymous sessions of ``client``, or ``None``.

        ``None`` when the budget is off or the client's IP is unknown (nothing to tell
        clients apart by: budgeting them together would cap the whole site). IPv4 clients
        count by their address, IPv6 clients by their /64 (``creation_budget``'s
        prefixes), so an attacker rotating addresses within a subscriber's network spends
        one budget; an IPv4-mapped IPv6 address counts as its IPv4 address.
        """
        budget = self.policy.creation_budget
        if not budget.enabled or not client.ip:
            return None
        return counter_name(BUDGET_COUNTER, network_of(client.ip, budget.ipv4_prefix, budget.ipv6_prefix))

    def known_spent(self, name: str, now: float) -> Hits | None:
        """Return the counter ``name`` if this process already saw it past the budget in its window.

        A budget spent in a fixed window stays spent until the window ends, so a flood
        past it need not reach the store at all: one hit per client and window over the
        budget is counted there, the rest are judged here (with a local count). ``None``
        when the store must be asked.
        """
        hits = self._spent.get(name)
        if hits is None or hits.resets_at <= now:
            return None
        counted = Hits(count=hits.count + 1, resets_at=hits.resets_at)
        self._spent[name] = counted
        return counted

    def judge_creation(self, name: str, hits: Hits, *, requested: bool) -> CreationVerdict:
        """Decide whether a new anonymous session may be created, given the client's counter.

        Args:
            name: The counter (:meth:`creation_counter`).
            hits: The client's counter, this creation counted.
            requested: The application wrote to the session. A session the ``always``
                creation policy would make unasked is only ever skipped, never refused:
                the application did not need it.
        """
        budget = self.policy.creation_budget
        if hits.count <= budget.per_minute:
            return CreationVerdict.CREATE
        if name not in self._spent:
            if len(self._spent) >= _SPENT_MEMO_SIZE:
                self._spent.clear()  # bounded: forgetting only costs a store call per client
            self._spent[name] = hits
        if budget.action is BudgetAction.REFUSE and requested:
            return CreationVerdict.REFUSE
        return CreationVerdict.SKIP

    def first_over_budget(self, hits: Hits) -> bool:
        """Tell whether ``hits`` is the first creation over the budget in its window (worth one log line)."""
        return hits.count == self.policy.creation_budget.per_minute + 1

    @staticmethod
    def retry_after(hits: Hits, now: float) -> int:
        """Return the whole seconds until the counter's window ends (at least 1), for ``Retry-After``."""
        return max(1, math.ceil(hits.resets_at - now))

    def limit(self, now: float) -> SessionLimit | None:
        """Return the multiple-login limit stores must enforce at login, if any."""
        login = self.policy.login
        if login.max_sessions <= 0:
            return None
        return SessionLimit(
            max_sessions=login.max_sessions,
            prevent_login=login.prevent_login,
            now=now,
            tombstone_expires_at=now + self.policy.invalid_session.tombstone_ttl_s,
        )

    # -- reading a session ---------------------------------------------------------------

    def is_elevated(self, meta: SessionMeta | None, now: float) -> bool:
        """Tell whether an elevation is in force (it lapses by itself)."""
        return meta is not None and meta.elevated_until is not None and now < meta.elevated_until

    def recently_authenticated(self, meta: SessionMeta | None, now: float) -> bool:
        """Tell whether the user proved who they are within the re-auth window."""
        return meta is not None and meta.auth_at is not None and now - meta.auth_at <= self.policy.login.reauth_window_s

    def status(self, record: SessionRecord | None, now: float) -> SessionStatus:
        """Return the status figures for ``record`` (``None``: no session)."""
        if record is None:
            return SessionStatus(False, None, False, None, None, None, None, None)
        meta = record.meta
        timeouts = self.policy.timeouts
        idle = max(0.0, now - meta.last_access_at)
        next_rotation = None
        if timeouts.renewal_interval_s > 0:
            next_rotation = round(max(0.0, meta.rotated_at + timeouts.renewal_interval_s - now), 3)
        return SessionStatus(
            authenticated=meta.user is not None,
            user=meta.user,
            elevated=self.is_elevated(meta, now),
            session_age_s=round(max(0.0, now - meta.created_at), 3),
            idle_s=round(idle, 3),
            remaining_idle_s=round(max(0.0, self.idle_timeout(meta) - idle), 3),
            remaining_absolute_s=round(max(0.0, meta.absolute_deadline - now), 3),
            next_rotation_s=next_rotation,
        )


NO_COOKIE = CookieRead()
"""What :meth:`SessionEngine.read_cookie` returns when no session cookie was sent (shared)."""
BINDING_OFF = BindingResult(BindingCheck.OFF)

ANONYMOUS_TOMBSTONE_S = 60.0
"""The longest a session nobody signed in to is remembered after it ended."""

KEEP_ID = ""
"""The ``raw_id`` of a login transition that keeps the old ID (fixation ``none``)."""


def _clip(user_agent: str | None) -> str | None:
    if user_agent is None:
        return None
    return user_agent[:MAX_USER_AGENT_CHARS]
