"""Lifecycle events, their dispatch, and the audit log.

An event names a session only by its handle: the raw ID is never a field, so no
subscriber, log line or metric can leak it. Subscribers may be plain or async callables;
one that raises is logged and skipped, never breaking the request that emitted the event.

The audit log speaks the OWASP Logging Vocabulary: :func:`vocabulary_name` gives an
event's name there (``session_created``, ``session_expired:idle_timeout``,
``authn_login_success``…), :func:`audit_level` its level. Subscribers keep receiving
:class:`EventName` members, whose values do not change, so code that subscribes by name
is unaffected by the vocabulary; only the audit line carries the vocabulary name.

Every event also goes to the standard :mod:`logging` module, on the ``sessionward.audit``
logger (when it is enabled for the event's level), as a record whose message is the
audit line and whose ``session_event`` attribute is the :class:`SessionEvent`: any
handler works, and :class:`JsonAuditLogger` is one such handler that writes the lines to
a file or stream.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Any, TextIO

import orjson

from sessionward.core.env import DEFAULT_APP_ID, app_id_from_env
from sessionward.core.records import EndReason

logger = logging.getLogger("sessionward")

audit_logger = logging.getLogger("sessionward.audit")
"""Where every event goes as a log record (its ``session_event`` attribute holds the event)."""
# A library adds no handler but this one: without it an application that never set up
# logging would see WARN events on stderr through logging's last-resort handler.
audit_logger.addHandler(logging.NullHandler())

# The characters str.splitlines() breaks on are \n \r \v \f \x1c \x1d \x1e \x85 \u2028
# \u2029. JSON escapes the first seven (C0 controls), but NEL and U+2028/U+2029 are legal
# raw in a JSON string and orjson writes them raw: a User-Agent holding one would split an
# audit line for any reader that uses splitlines(). Their UTF-8 forms start with a lead byte
# (C2, E2), never a continuation byte, so these byte patterns match nothing else; and
# orjson writes non-ASCII only inside strings, where a \uXXXX escape decodes to the same
# character.
_LINE_BREAKS = re.compile(rb"\xc2\x85|\xe2\x80[\xa8\xa9]")
_ESCAPED = {b"\xc2\x85": b"\\u0085", b"\xe2\x80\xa8": b"\\u2028", b"\xe2\x80\xa9": b"\\u2029"}


def _escape_line_breaks(match: re.Match[bytes]) -> bytes:
    return _ESCAPED[match.group()]


class EventName(StrEnum):
    """What can happen to a session; :func:`vocabulary_name` says each in the audit log's words."""

    CREATED = "created"
    LOGIN = "login"
    ROTATED = "rotated"
    ELEVATED = "elevated"
    EXPIRED = "expired"
    LOGOUT = "logout"
    REVOKED = "revoked"
    DISPLACED = "displaced"
    LOGIN_REFUSED = "login_refused"
    BINDING_MISMATCH = "binding_mismatch"
    INVALID_SESSION = "invalid_session"
    CSRF_REFUSED = "csrf_refused"
    FIREWALL_REFUSED = "firewall_refused"
    STORE_UNAVAILABLE = "store_unavailable"
    SESSION_BUDGET_EXCEEDED = "session_budget_exceeded"
    """A client spent its budget of new anonymous sessions; the reason says ``skip`` or ``refuse``."""
    LOGIN_FAILED = "login_failed"
    """A sign-in attempt failed (wrong password or unknown user); ``user`` is the name tried."""
    LOGIN_THROTTLED = "login_throttled"
    """A sign-in attempt was held back by login throttling; the reason says ``account`` or ``network``."""
    LOGIN_AFTER_FAILURES = "login_after_failures"
    """A password was right after earlier attempts on its account failed or were held back.

    Emitted by login throttling's ``succeeded``, beside the ``login`` event of the
    session's login; ``retries`` says how many attempts came before it.
    """
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - an event name, not a secret
    """The user's password changed: the application ended their other sessions with that reason."""


INFO, WARN, ERROR = "INFO", "WARN", "ERROR"
_LOGGING_LEVELS = {INFO: logging.INFO, WARN: logging.WARNING, ERROR: logging.ERROR}

_ENDED_REASONS = frozenset(reason.value for reason in EndReason)
"""Reasons an ended session is refused with: presenting its ID again is a use after expiry."""


@dataclass(frozen=True, slots=True)
class _Word:
    """How one of our events is said in the audit log."""

    name: str
    """The vocabulary name; ``{reason}`` stands for the event's reason."""
    level: str
    description: str


# Keyed by member *name*: members that other parts of the package add keep their place.
_VOCABULARY: dict[str, _Word] = {
    "CREATED": _Word("session_created", INFO, "A session was created"),
    "LOGIN": _Word("authn_login_success", INFO, "A user logged in"),
    "ROTATED": _Word("session_renewed", INFO, "The session moved to a new ID"),
    "ELEVATED": _Word("session_elevated", INFO, "The session was elevated after re-authentication"),
    "EXPIRED": _Word("session_expired:{reason}", INFO, "The session timed out"),
    "LOGOUT": _Word("session_expired:logout", INFO, "The user logged out"),
    "REVOKED": _Word("session_expired:revoked", INFO, "The session was revoked"),
    "DISPLACED": _Word("session_expired:displaced", WARN, "The session was ended by a newer login of its user"),
    "LOGIN_REFUSED": _Word("authn_login_fail", WARN, "A login was refused by the concurrent-session limit"),
    "BINDING_MISMATCH": _Word("session_binding_mismatch", WARN, "The client does not fit the session's binding"),
    "INVALID_SESSION": _Word("session_invalid:{reason}", WARN, "An unusable session cookie was presented"),
    "CSRF_REFUSED": _Word("authz_fail", WARN, "A request was refused as cross-site request forgery"),
    "FIREWALL_REFUSED": _Word("authz_fail", WARN, "A request was refused by the firewall"),
    "STORE_UNAVAILABLE": _Word("session_store_unavailable", ERROR, "The session store did not answer"),
    "SESSION_BUDGET_EXCEEDED": _Word(
        "excess_rate_limit_exceeded", WARN, "A client exceeded its rate of new anonymous sessions"
    ),
    "LOGIN_FAILED": _Word("authn_login_fail", WARN, "A login failed"),
    "LOGIN_THROTTLED": _Word("authn_login_lock", WARN, "Logins are delayed after repeated failures"),
    "LOGIN_AFTER_FAILURES": _Word(
        "authn_login_successafterfail", INFO, "A user signed in after failed or held-back attempts"
    ),
    "PASSWORD_CHANGED": _Word("authn_password_change", INFO, "The user changed their password"),
}
_USE_AFTER_EXPIRE = _Word("session_use_after_expire", WARN, "The ID of an ended session was presented")
_REASON_CHARS = re.compile(r"[^a-z0-9_.-]")


def _word(event: SessionEvent) -> _Word:
    if event.name is EventName.INVALID_SESSION and event.reason in _ENDED_REASONS:
        return _USE_AFTER_EXPIRE
    word = _VOCABULARY.get(event.name.name)
    if word is None:  # a member added without a word: say it in our own
        return _Word(event.name.value, INFO, event.name.value.replace("_", " ").capitalize())
    return word


def vocabulary_name(event: SessionEvent) -> str:
    """Return the OWASP Logging Vocabulary name of ``event`` (``session_expired:idle_timeout``…).

    Where the vocabulary has no word the name is ours, in its style (``session_elevated``,
    ``session_invalid:<reason>``, ``session_store_unavailable``). A reason in a name is
    cut to lowercase letters, digits, ``_``, ``.`` and ``-`` (64 at most), so that a name
    stays one token whatever an application passes as a reason.
    """
    name = _word(event).name
    if "{reason}" not in name:
        return name
    reason = _REASON_CHARS.sub("_", (event.reason or "unknown").lower())[:64]
    return name.replace("{reason}", reason)


def audit_level(event: SessionEvent) -> str:
    """Return the audit level of ``event``: ``INFO``, ``WARN`` (worth a look) or ``ERROR``."""
    return _word(event).level


def iso_time(at: float) -> str:
    """Format seconds since the epoch as ISO-8601 UTC with milliseconds (``2026-12-04T14:03:05.123Z``)."""
    whole, millis = divmod(round(at * 1000), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


@functools.cache
def _host() -> str:
    # Imported here: the core imports no network module (a test checks it).
    import socket

    return socket.gethostname()


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEvent:
    """Something that happened to a session.

    Attributes:
        name: What happened.
        at: When, in seconds since the epoch.
        reason: A short reason code (``idle_timeout``, ``password_changed``…), if any.
        handle: The session's public handle; never the ID.
        user: The user concerned, if known.
        ip: The client IP, if known.
        user_agent: The client User-Agent, if known.
        path: The request path, when a request caused it.
        method: The request method, when a request caused it.
        retries: For ``login_after_failures``, the sign-in attempts on the account since
            its last successful one (failed or held back); ``None`` for other events.
    """

    name: EventName
    at: float
    reason: str | None = None
    handle: str | None = None
    user: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    path: str | None = None
    method: str | None = None
    retries: int | None = None

    def to_json(self, *, app_id: str = DEFAULT_APP_ID, host: str | None = None) -> bytes:
        """Encode as one JSON object on one line, the audit log's line format.

        The fields follow the OWASP Logging Vocabulary's example: ``datetime`` (ISO-8601
        UTC), ``appid``, ``event`` (:func:`vocabulary_name`), ``level``, ``description``,
        then ``reason``, ``user``, ``session`` (the handle), ``source_ip``, ``user_agent``,
        ``request_method``, ``request_uri`` and ``host`` (this machine's name unless
        given); ``time`` and ``ip`` repeat ``datetime`` and ``source_ip`` under the names
        of the audit line's first format, so readers written for it keep working; an
        event that has ``retries`` (``authn_login_successafterfail``) ends with it. No
        character that :meth:`str.splitlines` breaks on is left raw, whatever
        the fields hold (see ``_LINE_BREAKS``).
        """
        word = _word(self)
        fields: dict[str, str | int | None] = {
            "datetime": iso_time(self.at),
            "appid": app_id,
            "event": vocabulary_name(self),
            "level": word.level,
            "description": word.description,
            "reason": self.reason,
            "user": self.user,
            "session": self.handle,
            "source_ip": self.ip,
            "user_agent": self.user_agent,
            "request_method": self.method,
            "request_uri": self.path,
            "host": _host() if host is None else host,
            "time": iso_time(self.at),
            "ip": self.ip,
        }
        if self.retries is not None:
            # Only where it means something: every other line keeps its fields as they were.
            fields["retries"] = self.retries
        encoded = orjson.dumps(fields)
        if _LINE_BREAKS.search(encoded) is None:
            return encoded
        return _LINE_BREAKS.sub(_escape_line_breaks, encoded)


class _AuditLine:
    """A log record's message: the audit line, encoded only if a handler formats it."""

    __slots__ = ("app_id", "event")

    def __init__(self, event: SessionEvent, app_id: str) -> None:
        self.event = event
        self.app_id = app_id

    def __str__(self) -> str:
        return self.event.to_json(app_id=self.app_id).decode()


def log_event(event: SessionEvent, *, app_id: str = DEFAULT_APP_ID) -> None:
    """Send ``event`` to the ``sessionward.audit`` logger, if it is enabled for the event's level.

    The record's message is the audit line; its ``session_event`` attribute is the event
    and ``audit_event`` its vocabulary name, for handlers and filters of their own.
    """
    level = _LOGGING_LEVELS[audit_level(event)]
    if audit_logger.isEnabledFor(level):
        audit_logger.log(
            level,
            _AuditLine(event, app_id),
            extra={"session_event": event, "audit_event": vocabulary_name(event)},
        )


Subscriber = Callable[[SessionEvent], None] | Callable[[SessionEvent], Awaitable[None]]


class EventBus:
    """Delivers events to subscribers, sync or async, and to the ``sessionward.audit`` logger.

    Args:
        app_id: The audit log's ``appid``; ``SESSIONWARD_APP_ID`` or ``sessionward`` when
            ``None``.
        environ: Where to read ``SESSIONWARD_APP_ID`` (the process environment by default).
        log: Whether to send events to the ``sessionward.audit`` logger; off for a bus
            that forwards to another one, which logs them.

    Raises:
        ConfigError: ``SESSIONWARD_APP_ID`` is not a valid app id.
    """

    def __init__(
        self, *, app_id: str | None = None, environ: Mapping[str, str] | None = None, log: bool = True
    ) -> None:
        self.log = log
        self.app_id = app_id if app_id is not None else app_id_from_env(os.environ if environ is None else environ)
        self._sync: list[Callable[[SessionEvent], Any]] = []
        self._async: list[Callable[[SessionEvent], Awaitable[None]]] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        """Add a subscriber; a coroutine function is awaited, anything else is called."""
        if inspect.iscoroutinefunction(subscriber) or inspect.iscoroutinefunction(
            getattr(subscriber, "__call__", None)  # noqa: B004 - async __call__ objects count too
        ):
            self._async.append(subscriber)  # type: ignore[arg-type]
        else:
            self._sync.append(subscriber)

    @property
    def has_subscribers(self) -> bool:
        """Tell whether emitting would reach anyone: a subscriber, or an enabled audit logger."""
        # ERROR is the highest audit level: a logger enabled for anything is enabled for it.
        return bool(self._sync or self._async) or (self.log and audit_logger.isEnabledFor(logging.ERROR))

    def emit_sync(self, event: SessionEvent) -> None:
        """Deliver to the logger and the plain subscribers only (for WSGI and other sync callers)."""
        if self.log:
            try:
                log_event(event, app_id=self.app_id)
            except Exception:  # a broken log handler must never break a request
                logger.exception("sessionward audit logging failed")
        for subscriber in self._sync:
            try:
                subscriber(event)
            except Exception:  # a broken subscriber must never break a request
                logger.exception("sessionward event subscriber %r failed", subscriber)

    async def emit(self, event: SessionEvent) -> None:
        """Deliver to the logger and every subscriber."""
        self.emit_sync(event)
        for subscriber in self._async:
            try:
                await subscriber(event)
            except Exception:  # a broken subscriber must never break a request
                logger.exception("sessionward event subscriber %r failed", subscriber)


class JsonAuditLogger(logging.Handler):
    """Writes each event as one JSON line (:meth:`SessionEvent.to_json`) to a text stream or a file.

    Use it either way:

    * as an event subscriber: ``manager.events.subscribe(JsonAuditLogger("audit.jsonl"))``;
    * as a :mod:`logging` handler: ``logging.getLogger("sessionward.audit").addHandler(...)``
      (set that logger's level to ``INFO`` to get every event). Records that carry no
      event are written as a line of the same shape with ``event`` ``log``.

    Thread-safe; a file is opened in append mode and flushed after every line so that a
    crash loses at most the line being written.

    Args:
        target: A path (opened for appending) or an open text stream.
        app_id: The ``appid`` field; ``SESSIONWARD_APP_ID`` or ``sessionward`` when ``None``.
        level: The lowest level written when used as a logging handler.
    """

    def __init__(
        self, target: str | TextIO | IO[str], *, app_id: str | None = None, level: int = logging.NOTSET
    ) -> None:
        # Everything that can fail comes before ``Handler.__init__``: that call registers the
        # handler with ``logging``, whose shutdown closes every registered handler, so a
        # half-built one would turn a bad path or setting into a crash at exit.
        self.app_id = app_id if app_id is not None else app_id_from_env(os.environ)
        if isinstance(target, str):
            self._stream: IO[str] = open(target, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the logger
            self._owned = True
        else:
            self._stream = target
            self._owned = False
        self._write_lock = threading.Lock()
        super().__init__(level)

    def __call__(self, event: SessionEvent) -> None:
        self._write(event.to_json(app_id=self.app_id))

    def emit(self, record: logging.LogRecord) -> None:
        """Write a log record as an audit line (a :class:`logging.Handler` method)."""
        try:
            event = getattr(record, "session_event", None)
            if isinstance(event, SessionEvent):
                self._write(event.to_json(app_id=self.app_id))
            else:
                self._write(self._other_record(record))
        except Exception:
            self.handleError(record)

    def _other_record(self, record: logging.LogRecord) -> bytes:
        encoded = orjson.dumps(
            {
                "datetime": iso_time(record.created),
                "appid": self.app_id,
                "event": "log",
                "level": "WARN" if record.levelname == "WARNING" else record.levelname,
                "description": record.getMessage(),
                "host": _host(),
            }
        )
        return _LINE_BREAKS.sub(_escape_line_breaks, encoded)

    def _write(self, line: bytes) -> None:
        with self._write_lock:
            self._stream.write(line.decode() + "\n")
            self._stream.flush()

    def close(self) -> None:
        """Close the file if this logger opened it."""
        if self._owned and not self._stream.closed:
            self._stream.close()
        super().close()
