"""One request's session, from cookie to ``Set-Cookie``: the async I/O around the engine.

This module knows stores and the engine but no web framework; the ASGI middleware feeds
it a request's method, path, cookies and client, and turns its answers into responses.

Order of work per request:

1. :meth:`Exchange.open` reads the cookie and loads the session: one store round trip
   when a well-formed cookie is present, none otherwise. An invalid session becomes an
   :class:`Interruption` (401 JSON or redirect) unless the path is excluded.
2. The handler uses :class:`RequestSession`; its verbs (``login``, ``logout``,
   ``rotate_id``, ``elevate``, revocation) write to the store at once, so a refused
   login reaches the handler as an exception.
3. :meth:`Exchange.commit` runs before the response starts: it writes the request's data
   changes and the idle clock in at most one store call (none when nothing changed and
   no touch is due), renews the ID when due, and returns the headers to add.

Store failures surface as :class:`~sessionward.core.errors.StoreUnavailableError` from
``open`` and ``commit``, for the adapter to answer 503: nobody is logged in or
out by an outage.
"""

from __future__ import annotations

import logging
import weakref

from msgspec.structs import replace

from sessionward.core.binding import BindingCheck
from sessionward.core.config import CREATION_BUDGET_WINDOW_S, BindingMismatch, Creation
from sessionward.core.cookies import build_set_cookie
from sessionward.core.engine import (
    KEEP_ID,
    NO_COOKIE,
    Assessment,
    ClientInfo,
    CookieRead,
    CreationVerdict,
    SessionLimit,
    SessionStatus,
    Transition,
    Verdict,
)
from sessionward.core.errors import (
    LoginRefusedError,
    SessionBudgetExceededError,
    SessionEndedError,
    SessionNotAvailableError,
    StoreError,
    StoreUnavailableError,
)
from sessionward.core.events import EventName
from sessionward.core.ids import handle_of
from sessionward.core.lifecycle import AfterLostRace, after_lost_race
from sessionward.core.outcomes import CookieAction, Interruption, SessionInfo
from sessionward.core.records import (
    CHAIN_LIMIT,
    EndReason,
    Entry,
    JSONValue,
    SessionMeta,
    SessionRecord,
    Tombstone,
    with_changes,
)
from sessionward.core.session import Session
from sessionward.io.login_throttle import ClientThrottle
from sessionward.io.manager import SessionManager
from sessionward.stores.base import Established

logger = logging.getLogger("sessionward")

_VARY_COOKIE = (b"vary", b"Cookie")

MOVE_ATTEMPTS = 5
"""How often a move (login, rotation, renewal) is decided again after losing a race.

Each retry follows a racing request that changed the session first; only a stream of
data writes to one session faster than its round trips can exhaust them."""


class _CorruptEntry(Exception):
    """A key held a record that did not decode; it has been removed."""


def _contended() -> StoreUnavailableError:
    return StoreUnavailableError("the session changed in racing requests faster than it could be moved; retry")


class Exchange:
    """The session side of one request."""

    __slots__ = (
        "__weakref__",
        "_cookie_headers",
        "client",
        "cookie",
        "cookie_action",
        "csrf_pending",
        "engine",
        "excluded",
        "manager",
        "meta_dirty",
        "method",
        "now",
        "path",
        "policy",
        "raw_id",
        "rotate_due",
        "session",
        "touch_due",
    )

    def __init__(self, manager: SessionManager, *, path: str, client: ClientInfo, method: str | None = None) -> None:
        self.manager = manager
        self.engine = manager.engine
        self.policy = manager.policy
        self.path = path
        self.method = method
        self.client = client
        self.now = manager.clock()
        self.raw_id: str | None = None
        self.cookie: CookieRead = NO_COOKIE
        self.session = RequestSession(None, max_bytes=self.policy.max_data_bytes, exchange=self)
        self.cookie_action = CookieAction.KEEP
        self.touch_due = False
        self.rotate_due = False
        self.meta_dirty: SessionMeta | None = None
        self.excluded = False
        self.csrf_pending: str | None = None
        """A form token handed out to a visitor without a session: sent in the pre-session
        CSRF cookie (:meth:`SessionEngine.read_csrf_cookie`), never stored."""
        self._cookie_headers: list[bytes] = []

    # -- loading ---------------------------------------------------------------------------

    async def open(
        self, cookie_headers: list[bytes], *, csrf_cookie_headers: list[bytes] | None = None
    ) -> Interruption | None:
        """Read the cookie and load the session; return an interruption for invalid ones.

        Args:
            cookie_headers: The request's ``Cookie`` header values.
            csrf_cookie_headers: Where to read the pre-session CSRF cookie instead, when
                that differs: WSGI passes its one header unsplit, so that a CSRF token is
                never taken from after a comma, where a sibling domain could plant one.
        """
        self._cookie_headers = cookie_headers if csrf_cookie_headers is None else csrf_cookie_headers
        cookie = self.cookie = self.engine.read_cookie(cookie_headers)
        raw_id, key = cookie.raw_id, cookie.key
        if raw_id is None or key is None:
            if cookie.problem is None:
                return None
            self.excluded = self.policy.invalid_session.is_excluded(self.path)
            return await self._invalid(cookie.problem.value)
        policy, engine, manager, now = self.policy, self.engine, self.manager, self.now
        self.excluded = policy.invalid_session.is_excluded(self.path)
        passive = policy.is_passive(self.path)
        try:
            entry = await self._load(key)
        except _CorruptEntry:
            return await self._invalid("corrupt")
        assessment = engine.assess(raw_id, entry, now, passive=passive)
        if assessment.verdict is Verdict.GRACE:
            raw_id, assessment = await self._follow(raw_id, assessment, passive=passive)
            if assessment.verdict is Verdict.VALID:
                # A request that was in flight during renewal: hand it the new ID too.
                self.cookie_action = CookieAction.SET
        record = assessment.record
        if assessment.verdict is Verdict.VALID:
            assert record is not None
            binding = engine.check_binding(record.meta, self.client)
            if binding.check is BindingCheck.UNBOUND:
                # Bound before binding was on, or under other settings: bind it now.
                self.meta_dirty = replace(record.meta, binding=binding.binding)
            elif binding.check is BindingCheck.MISMATCH and not await self._binding_mismatch_tolerated(
                record, binding.reason
            ):
                return await self._invalid(EndReason.BINDING_MISMATCH.value, record.meta.user)
            self.raw_id = raw_id
            self.session.reset(record)
            self.touch_due = assessment.touch
            self.rotate_due = assessment.rotate
            return None
        if assessment.end is not None:
            tomb = assessment.end
            async with manager.store_call:
                await manager.store.end(tomb)
            await manager.emit(
                EventName.EXPIRED,
                reason=tomb.reason.value,
                handle=tomb.handle,
                user=tomb.user,
                client=self.client,
                path=self.path,
                method=self.method,
            )
        return await self._invalid(assessment.reason or "unknown", assessment.user)

    async def _follow(self, raw_id: str, assessment: Assessment, *, passive: bool = False) -> tuple[str, Assessment]:
        """Follow renewals within their grace to the session's live ID and its assessment.

        Several renewals can fall inside one grace period (a short renewal interval): every
        ID of the chain still leads to the live session while its own grace lasts. A chain
        longer than ``CHAIN_LIMIT`` is treated as ended (fail closed).
        """
        for _ in range(CHAIN_LIMIT):
            if assessment.verdict is not Verdict.GRACE:
                return raw_id, assessment
            successor_id, successor_key = assessment.successor_id, assessment.successor_key
            assert successor_id is not None
            assert successor_key is not None
            entry = await self._load_or_none(successor_key)
            raw_id = successor_id
            assessment = self.engine.assess(raw_id, entry, self.now, passive=passive)
        return raw_id, Assessment(Verdict.ENDED, reason=EndReason.RENEWED.value)

    async def _establish(self, transition: Transition, limit: SessionLimit | None = None) -> Established:
        """Apply a move in the store; it applies only if the state it was decided on still holds."""
        async with self.manager.store_call:
            return await self.manager.store.establish(
                transition.record, retire=transition.retired, limit=limit, expect=transition.expect
            )

    async def _relocate(self, found: Entry | None) -> tuple[str, SessionRecord] | AfterLostRace:
        """Decide again after a move found its session changed by a racing request.

        Args:
            found: What the store holds now under the key the move was decided on.

        Returns:
            The session's ID and live record now, to move again: the same key at a newer
            version (a racing data write), or where renewals within their grace moved it.
            Otherwise what the request does instead (:func:`after_lost_race`): let go of
            a session moved out of its reach, or end an ended one.
        """
        decision = after_lost_race(found, self.now)
        raw_id = self.raw_id
        if decision is AfterLostRace.RETRY and raw_id is not None:
            assert isinstance(found, SessionRecord)
            return raw_id, found
        if decision is not AfterLostRace.FOLLOW or raw_id is None:
            return AfterLostRace.LET_GO if decision is AfterLostRace.LET_GO else AfterLostRace.END
        raw_id, assessment = await self._follow(raw_id, self.engine.assess(raw_id, found, self.now))
        if assessment.verdict is not Verdict.VALID:
            return AfterLostRace.END
        assert assessment.record is not None
        return raw_id, assessment.record

    async def _lose_session(self, decision: AfterLostRace, found: Entry | None) -> None:
        """Drop a session that a racing request ended, or moved out of this request's reach.

        Nothing more is written to it. The cookie is cleared when the session ended; when a
        rotation moved it, the racing request sets the new cookie, and clearing it here
        could log the browser out. Data this request changed follows the move, server-side.
        """
        if decision is AfterLostRace.LET_GO:
            written, deleted = self.session.changes()
            await self._save_to_successor(found, written, deleted)
        self.session.reset(None)
        self.raw_id = None
        self.touch_due = self.rotate_due = False
        self.meta_dirty = None
        self.cookie_action = CookieAction.KEEP if decision is AfterLostRace.LET_GO else CookieAction.CLEAR

    def lost(self) -> Interruption:
        """Return the answer to a request whose session a racing request ended (:class:`SessionEndedError`)."""
        settings = self.policy.invalid_session
        if not settings.is_api(self.path) and settings.redirect_url is not None:
            return self._redirect(settings.redirect_url, "session_ended")
        return Interruption(401, "session_ended")

    async def _binding_mismatch_tolerated(self, record: SessionRecord, reason: str) -> bool:
        """Report a client that differs from the session's binding; end it unless reporting only."""
        await self.manager.emit(
            EventName.BINDING_MISMATCH,
            reason=reason,
            handle=record.handle,
            user=record.meta.user,
            client=self.client,
            path=self.path,
            method=self.method,
        )
        if self.policy.binding.on_mismatch is BindingMismatch.REPORT:
            return True
        # A cookie replayed from another client: the session is ended for everyone, as
        # the thief and the victim cannot be told apart.
        tomb = self.engine.plan_end(record.key, record.meta.user, EndReason.BINDING_MISMATCH, self.now)
        async with self.manager.store_call:
            await self.manager.store.end_following(tomb, self.now)
        return False

    async def _load(self, key: str) -> Entry | None:
        """Load ``key``; a record that does not decode is removed and raises :class:`_CorruptEntry`.

        A corrupt record is invalid, logged and removed, never a 500 (and never kept: it
        would fail every request that carries its cookie).
        """
        manager = self.manager
        try:
            async with manager.store_call:
                return await manager.store.load(key, self.now)
        except StoreUnavailableError:
            raise
        except StoreError as error:
            logger.error("corrupt session record removed (handle %s): %s", handle_of(key), error)
            async with manager.store_call:
                await manager.store.discard(self.engine.plan_end(key, None, EndReason.REVOKED, self.now))
            raise _CorruptEntry from None

    async def _load_or_none(self, key: str) -> Entry | None:
        """Load ``key`` met along the way (a successor); a corrupt record there is removed and reads as none."""
        try:
            return await self._load(key)
        except _CorruptEntry:
            return None

    async def _invalid(self, reason: str, user: str | None = None) -> Interruption | None:
        if self.excluded:
            return None
        self.cookie_action = CookieAction.CLEAR
        handle = self.cookie.key[:16] if self.cookie.key else None
        await self.manager.emit(
            EventName.INVALID_SESSION,
            reason=reason,
            handle=handle,
            user=user,
            client=self.client,
            path=self.path,
            method=self.method,
        )
        settings = self.policy.invalid_session
        if settings.is_api(self.path):
            return Interruption(401, reason)
        if settings.redirect_url is None:
            return None
        return self._redirect(settings.redirect_url, reason)

    @staticmethod
    def _redirect(url: str, reason: str) -> Interruption:
        separator = "&" if "?" in url else "?"
        return Interruption(303, reason, location=f"{url}{separator}reason={reason}")

    # -- the verbs handlers call -------------------------------------------------------------

    @property
    def record(self) -> SessionRecord | None:
        """The live record this request works on, if any."""
        return self.session.record

    @property
    def meta(self) -> SessionMeta | None:
        """The session's metadata as this request leaves it (its unwritten change included), if any."""
        record = self.session.record
        return None if record is None else self.meta_on(record)

    def meta_on(self, record: SessionRecord) -> SessionMeta:
        """Return the metadata ``record`` carries after this request: this request's change, else its own."""
        return self.meta_dirty or record.meta

    @property
    def csrf_cookie(self) -> str | None:
        """The visitor's form token sent in the pre-session CSRF cookie, if any (read on demand)."""
        return self.engine.read_csrf_cookie(self._cookie_headers)

    def _require_sessions(self) -> None:
        if self.policy.creation is Creation.STATELESS:
            raise SessionNotAvailableError("sessions are disabled (creation policy 'stateless')")

    async def login(self, user: str) -> None:
        """Log ``user`` in, changing the ID per the fixation strategy and enforcing the per-user session limit."""
        self._require_sessions()
        if not user:
            raise ValueError("user must be a non-empty string")
        now = self.now
        current = self.record
        written, deleted = self.session.changes()
        data = self.session.data_snapshot()
        limit = self.engine.limit(now)
        for _ in range(MOVE_ATTEMPTS):
            transition = self.engine.plan_login(current, data, user, now, self.client)
            try:
                established = await self._establish(transition, limit)
            except LoginRefusedError:
                await self.manager.emit(
                    EventName.LOGIN_REFUSED,
                    reason="max_sessions",
                    user=user,
                    client=self.client,
                    path=self.path,
                    method=self.method,
                )
                raise
            if established.applied:
                break
            # The pre-login session changed under this request. Log in on top of what it
            # is now; if it ended, log in afresh with only this request's own changes.
            located = await self._relocate(established.found)
            current = located[1] if isinstance(located, tuple) else None
            found = established.found
            if located is AfterLostRace.LET_GO and isinstance(found, Tombstone) and found.successor_key:
                # A rotation moved the pre-login session out of this request's reach. The
                # login supersedes it all the same: end it where it went (its data stays
                # there, ended), so no session of this browser outlives its login.
                tomb = self.engine.plan_end(found.successor_key, found.user, EndReason.SUPERSEDED, now)
                async with self.manager.store_call:
                    await self.manager.store.end_following(tomb, now)
            data = with_changes(current.data if current is not None else {}, written, deleted)
        else:
            raise _contended()
        for victim in established.displaced:
            await self.manager.emit(
                EventName.DISPLACED,
                reason=EndReason.DISPLACED.value,
                handle=victim.handle,
                user=user,
                client=self.client,
                path=self.path,
                method=self.method,
            )
        if transition.raw_id != KEEP_ID:
            self.raw_id = transition.raw_id
            self.cookie_action = CookieAction.SET
        self._adopt(transition.record)
        if current is None:
            # The login made the session: audit and count it as created too.
            await self.manager.emit(
                EventName.CREATED,
                reason="login",
                handle=transition.record.handle,
                client=self.client,
                path=self.path,
                method=self.method,
            )
        await self.manager.emit(
            EventName.LOGIN,
            reason=self.policy.login.fixation.value,
            handle=transition.record.handle,
            user=user,
            client=self.client,
            path=self.path,
            method=self.method,
        )

    async def logout(self) -> None:
        """End the session server-side and clear the cookie."""
        record = self.record
        if record is not None:
            tomb = self.engine.plan_end(record.key, record.meta.user, EndReason.LOGGED_OUT, self.now)
            async with self.manager.store_call:
                # Following renewals a racing request may have made: ended means ended.
                await self.manager.store.end_following(tomb, self.now)
            await self.manager.emit(
                EventName.LOGOUT,
                reason=EndReason.LOGGED_OUT.value,
                handle=record.handle,
                user=record.meta.user,
                client=self.client,
                path=self.path,
                method=self.method,
            )
        self.session.reset(None)
        self.raw_id = None
        self.touch_due = self.rotate_due = False
        self.meta_dirty = None
        if self.cookie.sent or self.cookie_action is CookieAction.SET:
            self.cookie_action = CookieAction.CLEAR

    async def rotate_id(self, meta: SessionMeta | None = None, *, reason: str = "privilege_change") -> None:
        """Move the session to a new ID at once; the old ID dies without grace."""
        record = self._live_record("rotate_id")
        written, deleted = self.session.changes()
        data = self.session.data_snapshot()
        for _ in range(MOVE_ATTEMPTS):
            current = replace(record, meta=replace(meta or self.meta_on(record), last_access_at=self.now))
            transition = self.engine.plan_rotation(current, data, self.now)
            established = await self._establish(transition)
            if established.applied:
                break
            located = await self._relocate(established.found)
            if not isinstance(located, tuple):
                await self._lose_session(located, established.found)
                raise SessionEndedError("the session ended or changed its ID in a concurrent request")
            self.raw_id, record = located
            data = with_changes(record.data, written, deleted)
        else:
            raise _contended()
        self.raw_id = transition.raw_id
        self.cookie_action = CookieAction.SET
        self._adopt(transition.record)
        await self.manager.emit(
            EventName.ROTATED,
            reason=reason,
            handle=transition.record.handle,
            user=transition.record.meta.user,
            client=self.client,
            path=self.path,
            method=self.method,
        )

    async def elevate(self) -> None:
        """Elevate the session (sudo mode) until the elevation timeout, rotating the ID."""
        record = self._live_record("elevate")
        if record.meta.user is None:
            raise SessionNotAvailableError("only an authenticated session can be elevated")
        await self.rotate_id(self.engine.plan_elevation(record.meta, self.now), reason="elevation")
        assert self.record is not None
        await self.manager.emit(
            EventName.ELEVATED,
            handle=self.record.handle,
            user=self.record.meta.user,
            client=self.client,
            path=self.path,
            method=self.method,
        )

    async def list_sessions(self) -> list[SessionInfo]:
        """List the current user's live sessions."""
        record = self.record
        if record is None or record.meta.user is None:
            return []
        user = record.meta.user
        async with self.manager.store_call:
            records = await self.manager.store.list_user(user, self.now)
        return [
            SessionInfo(
                handle=r.handle,
                created_at=r.meta.created_at,
                last_seen_at=r.meta.last_access_at,
                ip=r.meta.ip,
                user_agent=r.meta.user_agent,
                current=r.key == record.key,
            )
            for r in records
        ]

    async def revoke(self, handle: str, reason: EndReason = EndReason.REVOKED) -> bool:
        """End one of the current user's sessions by handle; ``False`` if not theirs or unknown."""
        record = self.record
        if record is None or record.meta.user is None:
            return False
        user = record.meta.user
        if handle == record.handle:
            await self.logout()
            return True
        expires = self.now + self.policy.invalid_session.tombstone_ttl_s
        async with self.manager.store_call:
            ended = await self.manager.store.end_handle(handle, reason, self.now, expires, user=user)
        if ended is None:
            return False
        await self.manager.emit(
            EventName.REVOKED,
            reason=reason.value,
            handle=ended.handle,
            user=user,
            client=self.client,
            path=self.path,
            method=self.method,
        )
        return True

    async def revoke_others(self, reason: EndReason = EndReason.REVOKED) -> int:
        """End every other session of the current user (e.g. on password change)."""
        record = self._live_record("revoke_others")
        user = record.meta.user
        if user is None:
            return 0
        expires = self.now + self.policy.invalid_session.tombstone_ttl_s
        async with self.manager.store_call:
            ended = await self.manager.store.end_user(user, reason, self.now, expires, keep_key=record.key)
        for victim in ended:
            await self.manager.emit(
                EventName.REVOKED,
                reason=reason.value,
                handle=victim.handle,
                user=user,
                client=self.client,
                path=self.path,
                method=self.method,
            )
        if reason is EndReason.PASSWORD_CHANGED:
            # The library sees a password change only here: the audit trail still gets its word.
            await self.manager.emit(
                EventName.PASSWORD_CHANGED,
                handle=record.handle,
                user=user,
                client=self.client,
                path=self.path,
                method=self.method,
            )
        return len(ended)

    def update_meta(self, meta: SessionMeta) -> None:
        """Replace the metadata, written at commit (e.g. a refreshed authentication time)."""
        self._live_record("update_meta")
        self.meta_dirty = meta

    def status(self) -> SessionStatus:
        """Return the status figures for this request's session."""
        record = self.record
        if record is not None and self.meta_dirty is not None:
            record = replace(record, meta=self.meta_dirty)
        return self.engine.status(record, self.now)

    def _live_record(self, verb: str) -> SessionRecord:
        record = self.record
        if record is None:
            raise SessionNotAvailableError(f"{verb} needs a session; this request has none")
        return record

    def _adopt(self, record: SessionRecord) -> None:
        self.session.reset(record)
        self.touch_due = self.rotate_due = False
        self.meta_dirty = None

    # -- committing ---------------------------------------------------------------------------

    async def commit(self, status: int) -> list[tuple[bytes, bytes]]:
        """Write what the request changed and return the headers to add to the response.

        Data changes are not saved when the response is a server error (5xx), as Django
        does; cookie changes from verbs already written to the store are still sent.

        Raises:
            SessionTooLargeError: a ``dict`` or ``list`` changed in place took the data past
                ``max_data_bytes`` (:meth:`Session.check_size`); it is found before anything
                is written, so nothing is. The adapters answer 500 ``session_too_large``.
        """
        if not self.may_write(status):
            return self.response_headers()
        record = self.record
        if record is None:
            await self._create_if_required()
            return self.response_headers()
        written, deleted = self.session.changes()
        if self.rotate_due and self.raw_id is not None and await self._renew(record, written, deleted):
            return self.response_headers()
        record = self.record
        if record is None:
            return self.response_headers()
        update = self.engine.plan_update(record, written, deleted, self.now, touch=self.touch_due, meta=self.meta_dirty)
        if update is not None:
            key = record.key
            async with self.manager.store_call:
                saved = await self.manager.store.save(key, update)
            if not saved:
                entry = await self._load_or_none(key)
                await self._save_to_successor(entry, update.set, update.delete)
        return self.response_headers()

    def response_headers(self) -> list[tuple[bytes, bytes]]:
        """Return the headers the session adds to the response (``Vary``, ``Set-Cookie``).

        :meth:`commit` returns them; call this alone only when :meth:`may_write` said
        there is nothing to write.
        """
        if self.engine.stateless:
            return []
        headers: list[tuple[bytes, bytes]] = []
        if self.session.accessed or self.cookie.sent:
            headers.append(_VARY_COOKIE)
        if self.cookie_action is CookieAction.SET and self.raw_id:
            headers.append((b"set-cookie", build_set_cookie(self.policy.cookie, self.raw_id).encode("latin-1")))
        elif self.cookie_action is CookieAction.CLEAR:
            headers.append((b"set-cookie", build_set_cookie(self.policy.cookie, "", expire=True).encode("latin-1")))
        if self.csrf_pending is not None and self.record is None:
            cookie = build_set_cookie(self.engine.csrf_cookie, self.csrf_pending)
            headers.append((b"set-cookie", cookie.encode("latin-1")))
        return headers

    @property
    def sets_cookie(self) -> bool:
        """Tell whether the response sets or clears the session cookie (see :meth:`commit`)."""
        action = self.cookie_action
        if self.csrf_pending is not None and self.record is None:
            return True
        return action is CookieAction.CLEAR or (action is CookieAction.SET and bool(self.raw_id))

    def may_write(self, status: int) -> bool:
        """Tell cheaply whether :meth:`commit` with ``status`` may write to the store (most reads: no).

        When it is ``False``, committing never waits on the store.
        """
        if status >= 500 or self.engine.stateless:
            return False
        session = self.session
        if session.may_have_changed:
            return True
        if session.record is None:
            return self.policy.creation is Creation.ALWAYS
        return self.touch_due or self.rotate_due or self.meta_dirty is not None

    async def _save_to_successor(
        self, entry: Entry | None, written: dict[str, object], deleted: frozenset[str]
    ) -> None:
        """Write this request's data changes where the session moved; never resurrect.

        The session moved (renewed or rotated by a concurrent request) or ended while this
        request ran. Its changes follow the successor keys, server-side, so they are not
        lost; a session that ended stays ended.
        """
        if not written and not deleted:
            return
        manager = self.manager
        for _ in range(CHAIN_LIMIT):
            if not isinstance(entry, Tombstone) or not entry.successor_key:
                return
            entry = await self._load_or_none(entry.successor_key)
            if isinstance(entry, SessionRecord):
                update = self.engine.plan_update(entry, dict(written), deleted, self.now, touch=False)
                if update is None:
                    return
                async with manager.store_call:
                    if await manager.store.save(entry.key, update):
                        return
                entry = await self._load_or_none(entry.key)

    async def _renew(self, record: SessionRecord, written: dict[str, JSONValue], deleted: frozenset[str]) -> bool:
        """Renew the ID (periodic renewal), with the request's changes; ``False`` to save them instead.

        The move applies only to the version this request loaded. When a racing request
        wrote data first, the renewal is decided again on the newer record; when another
        request renewed first, this one takes that successor (as a request in flight
        within the grace period would) and writes its changes there: one renewal, one
        new ID. When the session ended meanwhile, nothing is written and the cookie goes.
        """
        for _ in range(MOVE_ATTEMPTS):
            assert self.raw_id is not None
            meta = replace(self.meta_on(record), last_access_at=self.now)
            data = with_changes(record.data, written, deleted)
            transition = self.engine.plan_rotation(replace(record, meta=meta), data, self.now, old_raw_id=self.raw_id)
            established = await self._establish(transition)
            if established.applied:
                self.raw_id = transition.raw_id
                self.cookie_action = CookieAction.SET
                self.session.mark_saved(transition.record)
                await self.manager.emit(
                    EventName.ROTATED,
                    reason="renewal",
                    handle=transition.record.handle,
                    user=meta.user,
                    client=self.client,
                    path=self.path,
                    method=self.method,
                )
                return True
            located = await self._relocate(established.found)
            if not isinstance(located, tuple):
                await self._lose_session(located, established.found)
                return True
            raw_id, current = located
            if current.key == record.key:
                record = current  # a racing data write: renew on top of it
                continue
            self.raw_id = raw_id
            self.cookie_action = CookieAction.SET
            update = self.engine.plan_update(current, written, deleted, self.now, touch=False)
            if update is not None:
                async with self.manager.store_call:
                    saved = await self.manager.store.save(current.key, update)
                if not saved:
                    await self._lose_session(AfterLostRace.END, None)
                    return True
            self.session.mark_saved(current)
            return True
        # Outpaced by racing writers: keep the old ID this time (renewal stays due); save.
        return False

    async def _create_if_required(self) -> None:
        creation = self.policy.creation
        written, _ = self.session.changes()
        if not written and creation is not Creation.ALWAYS:
            return
        if written and creation is Creation.NEVER:
            raise SessionNotAvailableError("creation policy 'never' forbids creating a session to store data")
        if not await self._within_budget(requested=bool(written)):
            return
        raw_id, record = self.engine.new_record(self.now, self.session.data_snapshot(), self.client)
        # A form rendered for the visitor before the session existed carries this token
        # (sessionward.core.csrf); it moves from the pre-session cookie into the session.
        record.meta.csrf_token = self.csrf_pending or self.csrf_cookie
        async with self.manager.store_call:
            await self.manager.store.establish(record)
        self.raw_id = raw_id
        self.cookie_action = CookieAction.SET
        self.session.mark_saved(record)
        await self.manager.emit(
            EventName.CREATED, handle=record.handle, client=self.client, path=self.path, method=self.method
        )

    async def _within_budget(self, *, requested: bool) -> bool:
        """Count this new anonymous session against its client's budget; tell whether to create it.

        Only creations are counted, in the shared store (so the budget holds across
        servers); a login never comes here. Over budget, the request goes on without a
        session (its writes are not kept), or is refused; once this process has seen a
        client over budget, the rest of that window is judged without asking the store,
        so a flood costs the store one write per client and window past the budget.

        Args:
            requested: The application wrote to the session (it is not only the
                ``always`` creation policy's doing).

        Raises:
            SessionBudgetExceededError: over budget, with ``creation_budget.action``
                ``refuse`` and a session the application asked for (the adapters answer 429).
        """
        engine = self.engine
        name = engine.creation_counter(self.client)
        if name is None:
            return True
        hits = engine.known_spent(name, self.now)
        if hits is None:
            async with self.manager.store_call:
                hits = await self.manager.store.count_hit(name, CREATION_BUDGET_WINDOW_S, self.now)
        verdict = engine.judge_creation(name, hits, requested=requested)
        if verdict is CreationVerdict.CREATE:
            return True
        if engine.first_over_budget(hits):
            # Once per client and window: a flood must not flood the log as well.
            logger.warning(
                "client %s spent its budget of %d new sessions a minute; further ones are %s until the minute "
                "is over (if every client shows the same address, configure SESSIONWARD_TRUSTED_PROXIES)",
                self.client.ip,
                self.policy.creation_budget.per_minute,
                "refused (429)" if verdict is CreationVerdict.REFUSE else "skipped",
            )
        await self.manager.emit(
            EventName.SESSION_BUDGET_EXCEEDED,
            reason=verdict.value,
            client=self.client,
            path=self.path,
            method=self.method,
        )
        if verdict is CreationVerdict.REFUSE:
            raise SessionBudgetExceededError(engine.retry_after(hits, self.now))
        return False


class RequestSession(Session):
    """The session a handler gets: the mapping, plus async verbs that reach the store."""

    __slots__ = ("_exchange", "_throttle")

    def __init__(self, record: SessionRecord | None, *, max_bytes: int, exchange: Exchange) -> None:
        super().__init__(record, max_bytes=max_bytes)
        # Weak: the exchange holds this session, and a strong reference back would make a
        # cycle per request that only the cyclic GC can free; under load its full
        # collections are what the slowest requests wait for (p99).
        self._exchange = weakref.ref(exchange)
        self._throttle: ClientThrottle | None = None

    @property
    def exchange(self) -> Exchange:
        """The request's exchange (for integrations such as :func:`sessionward.core.csrf.csrf_token`)."""
        exchange = self._exchange()
        if exchange is None:
            raise SessionNotAvailableError("this session's request has ended")
        return exchange

    @property
    def throttle(self) -> ClientThrottle:
        """Login throttling for this request's client: ``check``, ``failed``, ``succeeded``.

        ``await session.throttle.check(username)`` before checking a password raises
        :class:`~sessionward.core.errors.LoginThrottledError` (answer 429 with ``Retry-After``)
        while the account or the client's network must wait.
        """
        # One per request: ``succeeded`` reports a success after failures from what
        # ``check`` counted, however often the handler reads this property.
        throttle = self._throttle
        if throttle is None:
            exchange = self.exchange
            throttle = self._throttle = exchange.manager.login_throttle.for_client(
                exchange.client, exchange.path, exchange.method
            )
        return throttle

    async def login(self, user: str) -> None:
        """Log ``user`` in; the ID changes per the fixation strategy.

        Raises:
            LoginRefusedError: multiple-login control refused it ("first wins").
        """
        await self.exchange.login(user)

    async def logout(self) -> None:
        """End this session server-side and clear its cookie."""
        await self.exchange.logout()

    async def rotate_id(self) -> None:
        """Give the session a new ID now (call on any privilege change)."""
        await self.exchange.rotate_id()

    async def elevate(self) -> None:
        """Elevate (sudo mode) for the configured time; the ID changes."""
        await self.exchange.elevate()

    def reauthenticated(self) -> None:
        """Record that the user just re-entered their password (a recent authentication)."""
        exchange = self.exchange
        meta = exchange.meta
        if meta is not None:
            exchange.update_meta(replace(meta, auth_at=exchange.now))

    async def list_sessions(self) -> list[SessionInfo]:
        """The current user's live sessions."""
        return await self.exchange.list_sessions()

    async def revoke(self, handle: str) -> bool:
        """End one of the user's sessions by handle."""
        return await self.exchange.revoke(handle)

    async def revoke_others(self, reason: EndReason = EndReason.REVOKED) -> int:
        """End all the user's other sessions; return how many."""
        return await self.exchange.revoke_others(reason)

    @property
    def is_elevated(self) -> bool:
        """Whether an elevation is in force."""
        exchange = self.exchange
        return exchange.engine.is_elevated(exchange.meta, exchange.now)

    @property
    def recently_authenticated(self) -> bool:
        """Whether the user proved who they are within the re-auth window."""
        exchange = self.exchange
        return exchange.engine.recently_authenticated(exchange.meta, exchange.now)

    def status(self) -> SessionStatus:
        """How long the session has lived and has left (what a status endpoint reports)."""
        return self.exchange.status()
