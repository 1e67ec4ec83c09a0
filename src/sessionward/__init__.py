"""sessionward: secure server-side sessions for Python web applications.

The core (policy, IDs, cookies, the session object, the engine, events) does no I/O;
stores and framework adapters live at the edges and are imported on demand.
"""

from sessionward.clock import Clock, ManualClock, system_clock
from sessionward.config import (
    BindingMismatch,
    BindingPolicy,
    CookiePolicy,
    Creation,
    FirewallPolicy,
    Fixation,
    InvalidSessionPolicy,
    LoginPolicy,
    SessionPolicy,
    TimeoutPolicy,
)
from sessionward.engine import ClientInfo, SessionEngine, SessionStatus
from sessionward.errors import (
    ConfigError,
    LoginRefusedError,
    SessionDataError,
    SessionNotAvailableError,
    SessionTooLargeError,
    SessionwardError,
    StoreError,
    StoreUnavailableError,
)
from sessionward.events import EventBus, EventName, JsonAuditLogger, SessionEvent
from sessionward.records import EndReason, SessionMeta, SessionRecord, Tombstone
from sessionward.session import Session

__all__ = [
    "BindingMismatch",
    "BindingPolicy",
    "ClientInfo",
    "Clock",
    "ConfigError",
    "CookiePolicy",
    "Creation",
    "EndReason",
    "EventBus",
    "EventName",
    "FirewallPolicy",
    "Fixation",
    "InvalidSessionPolicy",
    "JsonAuditLogger",
    "LoginPolicy",
    "LoginRefusedError",
    "ManualClock",
    "Session",
    "SessionDataError",
    "SessionEngine",
    "SessionEvent",
    "SessionMeta",
    "SessionNotAvailableError",
    "SessionPolicy",
    "SessionRecord",
    "SessionStatus",
    "SessionTooLargeError",
    "SessionwardError",
    "StoreError",
    "StoreUnavailableError",
    "TimeoutPolicy",
    "Tombstone",
    "system_clock",
]

__version__ = "0.1.0"
