"""One fault run: load before, during and after an outage of the demo's store; the counts.

The phases are driven by answers, never by fixed sleeps:

1. **before** — until every browser has had ``answers_before`` answers (most are signed in);
2. **during** — the fault begins; it lasts until every browser has had ``answers_during``
   answers during it (against a hanging store each takes the store's timeout, so the
   outage lasts at least that long);
3. **recovering** — the fault ends; the run waits, up to :attr:`Plan.recovery_bound_s`,
   until every browser has had an answer other than 503 to a request sent after the end:
   the **recovery time**. The app is never restarted;
4. **after** — until every browser has had ``answers_after`` more answers;
5. **settling** — every browser asks who it is (a signed-in browser must still be, a
   signed-out one must not be), and replays the IDs its logouts ended (all must stay dead).

The bounds come from the store settings in force (:func:`call_bound_s`): one store call
is cut at the manager's deadline, so no answer may take much longer than that, and
service must be back within a few of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import inspect
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from faults.demo_process import DemoProcess, LoggedTraceback
from faults.faults import Fault
from faults.load import Account, Answer, Belief, Browser, BrowserState, Phase, Tally
from sessionward.io.manager import SessionManager

STATUS_COLUMNS = (200, 401, 403, 409, 429, 503)
CLIENT_TIMEOUT_S = 30.0
"""A request left without answer this long is counted as a hang with no answer at all."""
PHASE_DEADLINE_S = 60.0
"""The most the before and after phases may take (on a very busy machine)."""
ANSWER_MARGIN_S = 1.5
"""What a request may add to its store calls' bound: its own work, on a busy shared machine."""
POOL_CLEANUP_NOTES = ("Exception closing connection", "Exception terminating connection")
"""How SQLAlchemy's pool introduces the traceback of a close it could not complete."""
REDIS_ATTEMPTS = 2
"""The Redis client tries a command twice (one quick retry, ``redis_url.connect``)."""


def call_bound_s(store_url: str) -> float:
    """The longest one store call may take under the demo's settings for ``store_url``.

    The manager cuts every store call at its deadline; the store's own timeouts (the SQL
    store's, or Redis' socket timeout times its attempts) may only end a call sooner.
    """
    deadline: float = inspect.signature(SessionManager).parameters["store_timeout_s"].default
    if store_url.startswith("redis"):
        from sessionward.stores.redis import RedisStore

        per_attempt: float = inspect.signature(RedisStore.from_url).parameters["timeout_s"].default
        store_s = per_attempt * REDIS_ATTEMPTS
    else:
        from sessionward.stores.sql import SqlStore

        store_s = inspect.signature(SqlStore.from_url).parameters["timeout_s"].default
    return float(min(deadline, store_s))


@dataclass(frozen=True)
class Plan:
    """How long each phase runs and what counts as too slow.

    Attributes:
        answers_before: Answers per browser before the fault.
        answers_during: Answers per browser during the fault.
        answers_after: Answers per browser after service resumed.
        call_bound_s: The longest one store call may take (:func:`call_bound_s`).
        seed: Seeds the browsers' choices.
    """

    answers_before: int = 3
    answers_during: int = 3
    answers_after: int = 3
    call_bound_s: float = 2.0
    seed: int = 0

    @property
    def slow_after_s(self) -> float:
        """An answer slower than this overran the store's bound: one call cut at it, plus the rest.

        The rest is the request's own work (an Argon2 check on a sign-in) on a busy machine,
        :data:`ANSWER_MARGIN_S`; a call that outlives its bound by as much again is caught.
        """
        return self.call_bound_s + ANSWER_MARGIN_S

    @property
    def recovery_bound_s(self) -> float:
        """Service must be back this soon after the store is: a stale connection or two, then success."""
        return 3 * self.call_bound_s + 2.0


@dataclass
class Target:
    """A demo process on one store and the browsers that use it (kept across fault runs)."""

    store: str
    app: DemoProcess
    browsers: list[BrowserState]


def make_browsers(count: int) -> list[BrowserState]:
    """Browsers with their own accounts; names are fresh, so a shared database holds no old sessions of theirs."""
    run = secrets.token_hex(3)
    return [BrowserState(Account(f"fc{run}-{i:02d}", [f"pw.{secrets.token_hex(8)}"])) for i in range(count)]


def demo_settings(browsers: list[BrowserState]) -> dict[str, str]:
    """The demo's environment for the campaign."""
    users = ",".join(f"{state.account.name}:{state.account.passwords[0]}" for state in browsers)
    return {
        "SESSIONWARD_DEMO_USERS": users,
        # Every touch writes the idle clock: a write on the path of a third of the requests.
        "SESSIONWARD_TOUCH_INTERVAL": "0",
        # Every login goes through multiple-login control (the per-user lock, the count).
        "SESSIONWARD_MAX_SESSIONS": "2",
        "SESSIONWARD_PREVENT_LOGIN": "false",
    }


@dataclass
class FaultResult:
    """The counts of one fault run on one store."""

    store: str
    fault: str
    tally: Tally
    fault_s: float = 0.0
    recovery_s: float | None = None
    stray_503: list[str] = field(default_factory=list)
    """503s answered before the fault began or to requests sent after service resumed."""
    unsure: list[str] = field(default_factory=list)
    """Browsers whose state an answer after the fault should have settled, and did not."""
    tracebacks: list[LoggedTraceback] = field(default_factory=list)
    """Tracebacks in the app's log during the run (see :attr:`failures_logged`)."""
    app_alive: bool = True
    aborted: str | None = None

    @property
    def failures_logged(self) -> list[LoggedTraceback]:
        """The tracebacks that tell of a failure: all but the connection pool's cleanup notes.

        SQLAlchemy's pool closes a surplus connection when it comes back to a full pool,
        and logs the traceback when that close fails: at the start of a network hang, the
        close waits for a server that no longer answers. The error was handled (the
        connection is gone, no request saw it); such notes are counted apart
        (:attr:`pool_cleanup_notes`), everything else fails the run.
        """
        return [logged for logged in self.tracebacks if not logged.message.startswith(POOL_CLEANUP_NOTES)]

    @property
    def pool_cleanup_notes(self) -> int:
        """Tracebacks SQLAlchemy's pool logged after failing to close a connection it was done with."""
        return len(self.tracebacks) - len(self.failures_logged)

    def problems(self) -> list[str]:
        """Everything that breaks the rules of F19, one line each (empty when the run passed)."""
        tally = self.tally
        found = [f"unexpected answer: {line}" for line in tally.unexpected]
        found += [f"no answer: {line}" for line in tally.broken]
        found += [f"too slow (> hang bound): {line}" for line in tally.slow]
        found += [f"lost session: {line}" for line in tally.lost]
        found += [f"created session: {line}" for line in tally.created]
        found += [f"legitimate sign-in throttled: {line}" for line in tally.throttled]
        found += [f"503 with no fault on: {line}" for line in self.stray_503]
        found += [f"still unsure after settling: {line}" for line in self.unsure]
        found += [f"traceback in the app's log: {logged}" for logged in self.failures_logged]
        if self.recovery_s is None:
            found.append("service did not resume within the recovery bound")
        if not self.app_alive:
            found.append("the app process died")
        if self.aborted:
            found.append(f"run aborted: {self.aborted}")
        return found


async def _until(answered: asyncio.Event, ready: Callable[[], bool], timeout_s: float) -> bool:
    """Wait until ``ready()`` holds, re-checking at every answer; ``False`` past ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        answered.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(remaining):
                await answered.wait()
    return True


def _no_cookie_jar() -> http.cookiejar.CookieJar:
    # Each browser sends its cookie itself (and checks every Set-Cookie): the client's jar keeps nothing.
    return http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


async def run_fault(target: Target, fault: Fault, plan: Plan) -> FaultResult:
    """Run ``fault`` on ``target`` through the phases of the module docstring; return the counts."""
    result = FaultResult(target.store, fault.name, Tally())
    log_mark = len(target.app.log_text())
    rng = random.Random(plan.seed)
    async with contextlib.AsyncExitStack() as stack:
        browsers = []
        for number, state in enumerate(target.browsers):
            client = httpx.AsyncClient(
                base_url=target.app.base_url,
                timeout=CLIENT_TIMEOUT_S,
                cookies=_no_cookie_jar(),
                # Every browser is another person on another address: per-client login
                # throttling (F21) counts each on its own, as it would count real users.
                transport=httpx.AsyncHTTPTransport(local_address=f"127.0.0.{10 + number}"),
            )
            await stack.enter_async_context(client)
            browsers.append(Browser(state, client, result.tally, random.Random(rng.random()), plan.slow_after_s))
        await _Run(browsers, fault, plan, result).run()
    result.tracebacks = target.app.tracebacks(since=log_mark)
    result.app_alive = target.app.alive
    return result


class _Run:
    """The phases of one fault run, with the browsers driven in tasks of their own."""

    def __init__(self, browsers: list[Browser], fault: Fault, plan: Plan, result: FaultResult) -> None:
        self.browsers = browsers
        self.fault = fault
        self.plan = plan
        self.result = result
        self.answered = asyncio.Event()
        self.stop = asyncio.Event()
        self.fault_on = False
        self.began = self.ended = self.recovered = float("inf")

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._drive(browser)) for browser in self.browsers]
        try:
            await self._phases()
        except _Abort as abort:
            self.result.aborted = str(abort)
        finally:
            if self.fault_on:
                await self._end_fault()
            self.stop.set()
            await asyncio.gather(*tasks)
        await self._settle()

    async def _drive(self, browser: Browser) -> None:
        while not self.stop.is_set():
            await browser.step()
            self.answered.set()

    async def _phases(self) -> None:
        plan = self.plan
        await self._until(self._each_answered(plan.answers_before, since=time.monotonic()), "before the fault")
        self._set_phase(Phase.DURING)
        self.began = time.monotonic()
        self.fault_on = True
        await asyncio.to_thread(self.fault.begin)
        # Counted by when they were answered: a request in flight as the fault began meets it too.
        await self._until(
            self._each_answered(plan.answers_during, since=self.began, by_answer=True), "during the fault"
        )
        await self._end_fault()
        self.result.fault_s = self.ended - self.began
        self._set_phase(Phase.RECOVERING)
        if await _until(
            self.answered, lambda: all(self._back(b) is not None for b in self.browsers), plan.recovery_bound_s
        ):
            self.recovered = max(self._back(b) or self.ended for b in self.browsers)
            self.result.recovery_s = self.recovered - self.ended
        self._set_phase(Phase.AFTER)
        await self._until(self._each_answered(plan.answers_after, since=time.monotonic()), "after the fault")

    async def _end_fault(self) -> None:
        await asyncio.to_thread(self.fault.end)
        self.fault_on = False
        self.ended = time.monotonic()
        for browser in self.browsers:
            browser.fault_over_at = self.ended

    def _back(self, browser: Browser) -> float | None:
        """When the browser first had an answer other than 503 to a request sent after the fault."""
        done = [a.answered_at for a in browser.answers if a.sent_at >= self.ended and a.status not in (None, 503)]
        return min(done) if done else None

    def _each_answered(self, count: int, *, since: float, by_answer: bool = False) -> Callable[[], bool]:
        """Whether every browser has had ``count`` answers to requests sent (or answered) after ``since``."""

        def moment(answer: Answer) -> float:
            return answer.answered_at if by_answer else answer.sent_at

        return lambda: all(sum(moment(a) >= since for a in b.answers) >= count for b in self.browsers)

    async def _until(self, ready: Callable[[], bool], when: str) -> None:
        if not await _until(self.answered, ready, PHASE_DEADLINE_S):
            raise _Abort(f"the browsers did not get their answers {when} within {PHASE_DEADLINE_S} s")

    def _set_phase(self, phase: Phase) -> None:
        for browser in self.browsers:
            browser.phase = phase

    async def _settle(self) -> None:
        """Ask every browser's state of the app, replay ended IDs, and find the stray 503s."""
        self._set_phase(Phase.SETTLING)
        result = self.result
        for browser in self.browsers:
            await browser.status()
            await browser.count_orphans()
            await browser.replay_ended()
            if browser.state.belief is Belief.UNSURE:
                result.unsure.append(f"{browser.name}: still unsure")
            for answer in browser.answers:
                if answer.status != 503:
                    continue
                if answer.answered_at < self.began:
                    result.stray_503.append(f"{browser.name}: {answer.request} answered 503 before the fault")
                elif answer.sent_at >= self.recovered:
                    result.stray_503.append(f"{browser.name}: {answer.request} answered 503 after service resumed")


class _Abort(Exception):
    """A phase did not complete within its deadline."""


def format_table(results: list[FaultResult]) -> str:
    """The counts as a text table, one row per store and fault."""
    header = ["store", "fault", "fault s", "requests", *map(str, STATUS_COLUMNS), "other", "no answer"]
    header += ["slow", "max s", "replayed", "orphans", "pool notes", "lost", "created", "stray 503", "recovery s"]
    rows = [header]
    for result in results:
        tally = result.tally
        other = sum(count for status, count in tally.statuses.items() if status not in STATUS_COLUMNS)
        recovery = "-" if result.recovery_s is None else f"{result.recovery_s:.2f}"
        rows.append(
            [
                result.store,
                result.fault,
                f"{result.fault_s:.1f}",
                str(tally.requests),
                *(str(tally.statuses.get(status, 0)) for status in STATUS_COLUMNS),
                str(other),
                str(len(tally.broken)),
                str(len(tally.slow)),
                f"{tally.max_latency_s:.2f}",
                str(tally.replayed),
                str(tally.orphans),
                str(result.pool_cleanup_notes),
                str(len(tally.lost)),
                str(len(tally.created)),
                str(len(result.stray_503)),
                recovery,
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.rjust(width) if i > 1 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    return "\n".join(lines)
