"""Simulated browsers on the demo's JSON API, each checking every answer against what it knows.

A browser is one person with one account and one cookie. It signs in, reads its status,
touches its session (with ``SESSIONWARD_TOUCH_INTERVAL=0`` every touch writes the idle
clock: the write path), lists its devices, signs out and in again and now and then
changes its password. It sends one request at a time, as a person does, and keeps what
it *knows* about its session:

* ``IN``: it was told it is signed in, and nothing since could have ended that;
* ``OUT``: it holds no session cookie, so nobody can be signed in through it;
* ``UNSURE``: a logout or password change was answered 503, so the store may or may not
  have done it — even later: a command sent into a paused Redis runs when Redis resumes.
  Only an answer to a request *sent after the fault ended* settles it.

Against that knowledge each answer is checked (SPEC F19: nobody silently signed in or
out, no data lost, 503 during the outage):

* **lost**: a browser that knows it is ``IN`` is answered as anonymous or with
  ``401 session_invalid``;
* **created**: a browser that knows it is ``OUT`` is answered as signed in; an answer
  names another user; a 503 hands out a session cookie; a session ended by a logout
  that was answered 200 is accepted again;
* **unexpected**: a status the endpoint does not define (any 500) or a 503 that is not
  the store-unavailable answer;
* **broken**: no HTTP answer at all (a reset connection, a request left without answer
  past the client's timeout).
"""

from __future__ import annotations

import asyncio
import enum
import random
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

COOKIE = "__Host-sid"
ENDED_SIDS_KEPT = 20
"""Per browser, how many IDs ended by a logout are replayed at the end."""
RETRY_AFTER_CAP_S = 5.0
"""The longest a throttled browser waits before it tries to sign in again."""

EXPECTED = {
    "status": {200, 401, 503},
    "touch": {200, 401, 503},
    "devices": {200, 401, 503},
    "login": {200, 401, 409, 429, 503},
    "logout": {200, 401, 503},
    "password": {200, 401, 403, 503},
}
"""What each endpoint may answer under a store fault (SPEC §4 and F19); anything else is a failure."""


class Belief(enum.Enum):
    """What a browser knows of its own session (module docstring)."""

    IN = "in"
    OUT = "out"
    UNSURE = "unsure"


class Phase(enum.IntEnum):
    """Where a fault run is; a request belongs to the phase it was sent in."""

    BEFORE = 0
    DURING = 1
    RECOVERING = 2
    AFTER = 3
    SETTLING = 4


@dataclass
class Account:
    """A demo account and the passwords it may have now (more than one after a password change met a 503)."""

    name: str
    passwords: list[str]
    refused: int = 0
    """Sign-ins refused for a wrong password (after a password change answered 503)."""

    @staticmethod
    def new_password() -> str:
        """A fresh acceptable password: long enough, not common, not containing a name."""
        return f"pw.{secrets.token_hex(8)}"


@dataclass
class BrowserState:
    """What outlives one fault run: the account, the cookie, the knowledge, the ended IDs."""

    account: Account
    sid: str | None = None
    belief: Belief = Belief.OUT
    ended: list[str] = field(default_factory=list)


@dataclass
class Tally:
    """The counts of one fault run."""

    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    slow: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    max_latency_s: float = 0.0
    replayed: int = 0
    """IDs ended by a logout sent again at the end (not in ``requests``): each must be refused."""
    throttled: list[str] = field(default_factory=list)
    """429s to a browser that never gave a wrong password: a legitimate user slowed down."""
    orphans: int = 0
    """Sessions of signed-in accounts that no browser holds, found at the end (see :meth:`Browser.count_orphans`)."""


@dataclass
class Answer:
    """One request's outcome as the controller needs it."""

    request: str
    phase: Phase
    status: int | None
    sent_at: float
    answered_at: float


class Browser:
    """One simulated person (module docstring).

    Args:
        state: Its account, cookie and knowledge (kept across fault runs).
        client: Its own connection pool (a browser's own connections).
        tally: Where failures and counts go.
        rng: Its choice of actions.
        slow_after_s: An answer slower than this is a hang: the store's timeouts bound it.
    """

    def __init__(
        self, state: BrowserState, client: httpx.AsyncClient, tally: Tally, rng: random.Random, slow_after_s: float
    ) -> None:
        self.state = state
        self.client = client
        self.tally = tally
        self.rng = rng
        self.slow_after_s = slow_after_s
        self.phase = Phase.BEFORE
        self.fault_over_at: float | None = None
        """Monotonic time the fault ended; answers to requests sent later settle UNSURE."""
        self.answers: list[Answer] = []

    @property
    def name(self) -> str:
        """The account's name (browsers and accounts are one to one)."""
        return self.state.account.name

    # -- choosing what to do ------------------------------------------------------------------

    async def step(self) -> None:
        """Send one request chosen from what the browser knows, and check the answer."""
        belief = self.state.belief
        if belief is Belief.OUT:
            await (self.status() if self.rng.random() < 0.2 else self.login())
        elif belief is Belief.UNSURE:
            await self.status()
        else:
            roll = self.rng.random()
            if roll < 0.45:
                await self.status()
            elif roll < 0.75:
                await self.touch()
            elif roll < 0.85:
                await self.devices()
            elif roll < 0.96:
                await self.logout()
            else:
                await self.change_password()

    # -- the requests -------------------------------------------------------------------------

    async def status(self) -> None:
        """``GET /api/session/status``: who the app thinks this browser is."""
        answer = await self._send("status", "GET", "/api/session/status")
        if answer is None or answer.status_code != 200:
            return
        body = answer.json()
        self._observe_identity(bool(body.get("authenticated")), body.get("user"), "status")

    async def touch(self) -> None:
        """``POST /api/session/touch``: activity; writes the idle clock."""
        answer = await self._send("touch", "POST", "/api/session/touch")
        if answer is not None and answer.status_code == 200:
            self._observe_identity(True, self.name, "touch")

    async def devices(self) -> None:
        """``GET /api/sessions``: the account's devices; this one must be among them, current."""
        answer = await self._send("devices", "GET", "/api/sessions")
        if answer is None or answer.status_code != 200:
            return
        if not any(entry.get("current") for entry in answer.json().get("sessions", [])):
            self._fail(self.tally.lost, "devices: the current session is not in the account's list")
        self._observe_identity(True, self.name, "devices")

    async def login(self) -> None:
        """``POST /api/login`` with the password the browser believes in."""
        account = self.state.account
        password = account.passwords[0]
        answer = await self._send("login", "POST", "/api/login", {"username": account.name, "password": password})
        if answer is None:
            return
        if answer.status_code == 200:
            if self.state.sid is None:
                self._fail(self.tally.unexpected, "login: 200 without a session cookie")
                return
            account.passwords = [password]
            self.state.belief = Belief.IN
        elif answer.status_code == 401 and len(account.passwords) > 1:
            account.refused += 1
            account.passwords.pop(0)  # the change that met a 503 did happen (or did not): try the other
        elif answer.status_code == 401:
            self._fail(self.tally.unexpected, f"login: the account's only password was refused: {answer.text[:200]}")
        elif answer.status_code == 429:
            if not account.refused:
                self._fail(self.tally.throttled, "login: throttled, though it never gave a wrong password")
            # As a browser would: wait as told (capped, so that a phase still ends).
            await asyncio.sleep(min(float(answer.headers.get("retry-after", "1")), RETRY_AFTER_CAP_S))

    async def logout(self) -> None:
        """``POST /api/logout``: the session must be over, the cookie cleared."""
        ending = self.state.sid
        answer = await self._send("logout", "POST", "/api/logout")
        if answer is None:
            return
        if answer.status_code == 200:
            if self.state.sid is not None:
                self._fail(self.tally.unexpected, "logout: 200 without clearing the cookie")
            self.state.belief = Belief.OUT
            if ending is not None:
                self.state.ended = [*self.state.ended[-(ENDED_SIDS_KEPT - 1) :], ending]
        elif answer.status_code == 503:
            self.state.belief = Belief.UNSURE

    async def change_password(self) -> None:
        """``POST /api/password``: other sessions end, this one gets a new ID."""
        account = self.state.account
        current, new = account.passwords[0], account.new_password()
        before = self.state.sid
        body = {"current_password": current, "new_password": new}
        answer = await self._send("password", "POST", "/api/password", body)
        if answer is None:
            return
        if answer.status_code == 200:
            account.passwords = [new]
            if self.state.sid in (None, before):
                self._fail(self.tally.unexpected, "password: 200 without a new session ID")
        elif answer.status_code == 403 and len(account.passwords) > 1:
            account.passwords.pop(0)
        elif answer.status_code == 403:
            self._fail(self.tally.unexpected, f"password: the current password was refused: {answer.text}")
        elif answer.status_code == 503:
            # The demo sets the new password before it ends the other sessions and
            # rotates the ID: after a 503 the new one may be the password now.
            account.passwords.append(new)
            self.state.belief = Belief.UNSURE

    async def count_orphans(self) -> None:
        """Count the account's sessions other than this browser's (each browser has its own account).

        A sign-in answered 503 may still have been done by the store (the reply was lost,
        or a paused Redis ran the command when it resumed): nobody holds that session's
        ID, so nobody is signed in by it, but it shows in the account's devices and counts
        towards ``max_sessions`` until it expires. Counted, not a failure.
        """
        if self.state.belief is not Belief.IN:
            return
        answer = await self._send("devices", "GET", "/api/sessions")
        if answer is not None and answer.status_code == 200:
            self.tally.orphans += sum(not entry.get("current") for entry in answer.json().get("sessions", []))

    async def replay_ended(self) -> None:
        """Send every ID ended by a logout answered 200: none may be accepted again."""
        for ended in self.state.ended:
            try:
                answer = await self.client.get("/api/session/status", headers={"cookie": f"{COOKIE}={ended}"})
            except httpx.TransportError as error:
                self._fail(self.tally.broken, f"replay: no answer: {type(error).__name__}: {error}")
                continue
            self.tally.replayed += 1
            if answer.status_code == 200 and answer.json().get("authenticated"):
                self._fail(self.tally.created, "an ID ended by a logout answered 200 is accepted again")
            elif answer.status_code not in (200, 401, 503):
                self._fail(self.tally.unexpected, f"replay: {answer.status_code} {answer.text[:200]}")

    # -- sending and checking -----------------------------------------------------------------

    async def _send(self, endpoint: str, method: str, path: str, json: Any = None) -> httpx.Response | None:
        """Send with this browser's cookie; count; check the status; apply Set-Cookie."""
        phase = self.phase
        endpoint_path = f"{method} {path}"
        headers = {"cookie": f"{COOKIE}={self.state.sid}"} if self.state.sid else {}
        sent_at = time.monotonic()
        try:
            answer = await self.client.request(method, path, headers=headers, json=json)
        except httpx.TransportError as error:
            self.tally.requests += 1
            self._fail(self.tally.broken, f"{endpoint}: no answer: {type(error).__name__}: {error}")
            self.answers.append(Answer(endpoint_path, phase, None, sent_at, time.monotonic()))
            return None
        answered_at = time.monotonic()
        self.answers.append(Answer(endpoint_path, phase, answer.status_code, sent_at, answered_at))
        latency = answered_at - sent_at
        tally = self.tally
        tally.requests += 1
        tally.statuses[answer.status_code] += 1
        tally.max_latency_s = max(tally.max_latency_s, latency)
        if latency > self.slow_after_s:
            self._fail(tally.slow, f"{endpoint}: answered {answer.status_code} after {latency:.2f} s")
        if answer.status_code not in EXPECTED[endpoint]:
            self._fail(tally.unexpected, f"{endpoint}: {answer.status_code} {answer.text[:200]}")
            return None
        if not answer.headers.get("content-type", "").startswith("application/json"):
            self._fail(tally.unexpected, f"{endpoint}: {answer.status_code} is not JSON: {answer.text[:200]}")
            return None
        if answer.status_code == 503:
            self._check_unavailable(endpoint, answer)
            return answer
        self._apply_cookie(answer)
        if answer.status_code == 401:
            self._observe_401(endpoint, answer, sent_at)
        return answer

    def _check_unavailable(self, endpoint: str, answer: httpx.Response) -> None:
        if answer.json().get("error") != "session_store_unavailable":
            self._fail(self.tally.unexpected, f"{endpoint}: a 503 that is not the store's: {answer.text[:200]}")
        if self._cookie_value(answer):
            self._fail(self.tally.created, f"{endpoint}: a 503 handed out a session cookie")

    def _observe_401(self, endpoint: str, answer: httpx.Response, sent_at: float) -> None:
        error = answer.json().get("error")
        if endpoint == "login":
            return  # invalid credentials: handled by login()
        if error == "not_authenticated" and self.state.belief is Belief.OUT:
            return
        if error == "invalid_credentials":
            return
        # The app says this browser's session is over (or it is anonymous).
        self._observe_identity(False, None, f"{endpoint} ({answer.status_code} {answer.text[:80]})", sent_at)

    def _observe_identity(self, authenticated: bool, user: object, what: str, sent_at: float | None = None) -> None:
        """Compare what the app answered about this browser with what the browser knows."""
        state = self.state
        if authenticated and user != self.name:
            self._fail(self.tally.created, f"{what}: answered as {user!r}, not {self.name!r}")
            return
        if state.belief is Belief.IN and not authenticated:
            self._fail(self.tally.lost, f"{what}: signed out without a logout")
            state.belief = Belief.OUT
            state.sid = None
        elif state.belief is Belief.OUT and authenticated:
            self._fail(self.tally.created, f"{what}: signed in without a login")
            state.belief = Belief.IN
        elif state.belief is Belief.UNSURE and self._settles(sent_at):
            state.belief = Belief.IN if authenticated else Belief.OUT
            if not authenticated:
                state.sid = None

    def _settles(self, sent_at: float | None) -> bool:
        if self.fault_over_at is None:
            return False
        return (sent_at if sent_at is not None else self.answers[-1].sent_at) >= self.fault_over_at

    def _apply_cookie(self, answer: httpx.Response) -> None:
        value = self._cookie_value(answer)
        if value is None:
            return
        self.state.sid = value or None

    @staticmethod
    def _cookie_value(answer: httpx.Response) -> str | None:
        """The session cookie a response sets ('' when it clears it), or ``None``."""
        for header in answer.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            if name.strip() == COOKIE:
                return rest.split(";", 1)[0]
        return None

    def _fail(self, bucket: list[str], what: str) -> None:
        bucket.append(f"{self.name} [{self.phase.name.lower()}] {what}")
