"""The session lifecycle as one state machine: its states, transitions and preconditions.

Everything that decides how a session's state changes is stated here, and the engine
(:mod:`sessionward.core.engine`) plans each transition from these rules. The I/O layer only
loads, asks, and hands the store a complete decision; stores only apply it, atomically.

Rules
=====

1. **A session is a chain of IDs.** Each ID is stored under its key (SHA-256 of the ID).
   Renewal and rotation move the session to a new key; the old key keeps a tombstone
   that names the successor's key.
2. **Every move carries its precondition.** A transition that moves or rewrites a session
   (login, renewal, rotation, elevation) is decided on the record a request loaded, and
   carries :class:`~sessionward.core.records.Expected` (key, version). The store applies it
   only if that key still holds a live record at that version, in the same atomic step
   as the write; otherwise it writes nothing and returns what it found.
3. **Ending always wins, and follows the chain.** Logout and revocation need no
   precondition: they end whatever is live under the key, and the successor a racing
   move made (:meth:`~sessionward.stores.base.SessionStore.end_following`). A move
   checks its precondition, so it can never write after an ending: *ended means ended*.
4. **Losing a race is decided again, never forced.** What the store found decides, by
   :func:`after_lost_race`: a newer version of the same record (a data write got there
   first) is moved again on top of it; a renewal within its grace is followed to the
   live ID (one renewal, one successor: the racing requests share it); a move without
   grace (a privilege rotation) is not followed — its new ID is not for holders of the
   old one — and an ending stays an ending.
5. **Limits count live keys under the user's lock.** A login admits its key and
   displaces others under the same lock (or in the same script) that every move of that
   user's sessions and every "end all of a user's sessions" takes, so a user never has
   more live keys than ``max_sessions``.
6. **No spurious logouts.** Every ID of a renewal chain leads to the live session while
   its own grace lasts, however many renewals fall inside it (up to
   :data:`~sessionward.core.records.CHAIN_LIMIT` links, then fail closed).

States of a key
===============

============  ==========================================================================
``LIVE``      a record whose idle and absolute deadlines are ahead
``EXPIRED``   a record past a deadline, kept until its retention so the reason can be told
``RENEWED``   a tombstone naming a successor, which the old ID still reaches until
              ``grace_until`` (periodic renewal)
``MOVED``     a tombstone naming a successor that the old ID never reaches (a rotation on
              a privilege change, or a renewal whose grace is over)
``ENDED``     a tombstone with the reason the session ended (logout, revocation,
              password change, displacement, binding mismatch, login to a new ID)
``GONE``      nothing: never issued, or purged after its retention
============  ==========================================================================

Transitions
===========

=====================  ===============  ===========================  ====================
transition             from             to                           precondition
=====================  ===============  ===========================  ====================
create (first write)   GONE             new key LIVE                 none (a fresh key)
login, new ID          LIVE k / none    k ENDED (superseded),        k LIVE at version v;
                                        new key LIVE                 limit, user lock
login, fixation none   LIVE k           k LIVE with the user         k LIVE at version v
renew                  LIVE k           k RENEWED -> new LIVE        k LIVE at version v
rotate, elevate        LIVE k           k MOVED -> new LIVE          k LIVE at version v
write data             LIVE k           k LIVE, version v+1          k a record (per-key
                                                                     merge)
touch idle clock       LIVE k           k LIVE                       k a record
logout, revoke one     LIVE k (chain)   k and successors ENDED       none (ending wins)
revoke others / user   user's LIVE keys ENDED                        user lock
displace               oldest LIVE keys ENDED (displaced)            in the login's step
expire                 LIVE past a      EXPIRED, then ENDED with     none (the deadline)
                       deadline         the reason when next seen
purge                  EXPIRED / ENDED  GONE                         retention passed
=====================  ===============  ===========================  ====================
"""

from __future__ import annotations

from enum import StrEnum

from sessionward.core.records import Entry, SessionRecord


class KeyState(StrEnum):
    """The state of one storage key at a given time (see the module docstring)."""

    LIVE = "live"
    EXPIRED = "expired"
    RENEWED = "renewed"
    MOVED = "moved"
    ENDED = "ended"
    GONE = "gone"


def key_state(entry: Entry | None, now: float) -> KeyState:
    """Return the state of a key holding ``entry`` at ``now``."""
    if entry is None:
        return KeyState.GONE
    if isinstance(entry, SessionRecord):
        meta = entry.meta
        return KeyState.LIVE if now < meta.absolute_deadline and entry.expires_at > now else KeyState.EXPIRED
    if entry.successor_key is None:
        return KeyState.ENDED
    if entry.sealed_successor and entry.grace_until is not None and now <= entry.grace_until:
        return KeyState.RENEWED
    return KeyState.MOVED


class AfterLostRace(StrEnum):
    """What a request does when its move found the session changed (rule 4)."""

    RETRY = "retry"
    """The same key holds a newer version: decide the move again on top of it."""
    FOLLOW = "follow"
    """A racing renewal within its grace: follow it to the live ID and share it."""
    LET_GO = "let_go"
    """Moved where this request may not follow: write nothing more, leave the cookie
    (the racing request sets the new one); data changes follow the move server-side."""
    END = "end"
    """The session ended: write nothing, clear the cookie."""


def after_lost_race(found: Entry | None, now: float) -> AfterLostRace:
    """Decide what a request whose move lost a race does, from what the store ``found``."""
    state = key_state(found, now)
    if state is KeyState.LIVE:
        return AfterLostRace.RETRY
    if state is KeyState.RENEWED:
        return AfterLostRace.FOLLOW
    if state is KeyState.MOVED:
        return AfterLostRace.LET_GO
    return AfterLostRace.END
