"""Login throttling: count sign-in attempts in the shared store, hold back the excess.

Use it around your password check, from any integration::

    throttle = session.throttle  # the request's client; ASGI: await, Flask: plain calls
    await throttle.check(username)  # raises LoginThrottledError(retry_after_s): 429, see below
    if not verify(username, password):
        await throttle.failed(username)
        ...  # 401
    await throttle.succeeded(username)  # resets the account's count; reports earlier failures
    await session.login(username)

``check`` counts the attempt before the password is checked (so racing attempts from any
number of servers cannot exceed the threshold) and refuses it, without the password
being checked, while the account or the client's network must wait. Call ``check`` for
unknown user names too, and check a dummy password for them: then neither the answers
nor their timing tell which accounts exist. A success after failed or held-back attempts
is reported by ``succeeded`` as ``login_after_failures`` (``authn_login_successafterfail``
in the audit log, with their number as ``retries``), from the count ``check`` already
read: no further store call. An application that does not catch
:class:`~sessionward.core.errors.LoginThrottledError` gets the answer of the ASGI middleware
and the Flask extension: ``429 {"error": "throttled", "retry_after_s": n}`` with
``Retry-After``. The decisions live in
:mod:`sessionward.core.throttling`; this module only makes the store calls and emits events.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sessionward.core import throttling
from sessionward.core.engine import ClientInfo
from sessionward.core.errors import LoginThrottledError
from sessionward.core.events import EventName, SessionEvent

if TYPE_CHECKING:
    from sessionward.io.manager import SessionManager

logger = logging.getLogger("sessionward")


class LoginThrottle:
    """Login throttling for one application: its store, clock, policy and events.

    Every method takes the client (its IP as the adapter resolved it through the
    trusted-proxy rules); a request's session offers the same three verbs bound to its
    client as :class:`ClientThrottle` (``session.throttle``).
    """

    __slots__ = ("_manager",)

    def __init__(self, manager: SessionManager) -> None:
        self._manager = manager

    @property
    def enabled(self) -> bool:
        """Tell whether sign-in attempts are counted at all (``login_throttle`` settings)."""
        return self._manager.policy.login_throttle.enabled

    async def check(
        self, username: str, client: ClientInfo, *, path: str | None = None, method: str | None = None
    ) -> int | None:
        """Count a sign-in attempt as ``username`` from ``client``; refuse it if it must wait.

        Call it before checking the password, for every attempt (unknown names too).

        Returns:
            How many attempts on the account came before this one since its last
            successful sign-in (failed or held back); ``None`` when accounts are not
            counted (``max_failures`` 0). Pass it to :meth:`succeeded` as ``failures``.

        Raises:
            LoginThrottledError: the account or the client's network must wait
                ``retry_after_s``; the attempt is counted, its password must not be checked.
            StoreUnavailableError: the store did not answer (fail closed: answer 503).
        """
        manager = self._manager
        policy = manager.policy.login_throttle
        now = manager.clock()
        counted = []
        # One subject at a time, the network first: an attempt its network must wait for
        # is refused before the account is counted, so a client trying a new user name each
        # time leaves at most its network's allowance of account counters in the store.
        for subject in throttling.subjects(policy, username, client):
            async with manager.store_call:
                hits = await manager.store.count_hit(subject.counter, policy.window_s, now)
            counted.append((subject, hits))
            if subject.is_free(hits):
                continue
            if subject.kind == "network" and hits.count == subject.threshold:
                # Once per network and window: a whole site behind an untrusted proxy
                # shares one network, and its operator must learn why sign-ins slow down.
                logger.warning(
                    "client %s made %d sign-in attempts within %g s; its further attempts are delayed (if every "
                    "client shows the same address, configure SESSIONWARD_TRUSTED_PROXIES)",
                    client.ip,
                    subject.threshold,
                    policy.window_s,
                )
            delay = throttling.delay_s(policy, subject.threshold, hits.count)
            async with manager.store_call:
                gate = await manager.store.count_hit(subject.gate, delay, now)
            wait = throttling.wait_s(gate, now)
            if wait:
                await manager.emit(
                    EventName.LOGIN_THROTTLED,
                    reason=subject.kind,
                    user=username,
                    client=client,
                    path=path,
                    method=method,
                )
                raise LoginThrottledError(wait, subject.kind)
        return throttling.earlier_attempts(counted)

    async def failed(
        self, username: str, client: ClientInfo, *, path: str | None = None, method: str | None = None
    ) -> None:
        """Record that the attempt :meth:`check` let through failed (emits ``login_failed``).

        The attempt was already counted by :meth:`check`: this only reports it.
        """
        await self._manager.emit(EventName.LOGIN_FAILED, user=username, client=client, path=path, method=method)

    async def succeeded(
        self,
        username: str,
        client: ClientInfo | None = None,
        *,
        failures: int | None = None,
        path: str | None = None,
        method: str | None = None,
    ) -> None:
        """Reset the account's count after a successful sign-in (the network's count stays).

        The ``login`` event of the session's login reports the success. When ``failures``
        (what :meth:`check` returned for this attempt) is above 0, the success also emits
        ``login_after_failures`` with that number as ``retries``: the audit log's
        ``authn_login_successafterfail``, beside ``authn_login_success``.
        """
        manager = self._manager
        policy = manager.policy.login_throttle
        for subject in throttling.subjects(policy, username, ClientInfo()):
            async with manager.store_call:
                await manager.store.reset_counter(subject.counter)
            async with manager.store_call:
                await manager.store.reset_counter(subject.gate)
        if failures and manager.events.has_subscribers:
            # Built here, not by ``manager.emit``: only this event carries ``retries``.
            await manager.events.emit(
                SessionEvent(
                    name=EventName.LOGIN_AFTER_FAILURES,
                    at=manager.clock(),
                    user=username,
                    ip=client.ip if client else None,
                    user_agent=client.user_agent if client else None,
                    path=path,
                    method=method,
                    retries=failures,
                )
            )

    def for_client(self, client: ClientInfo, path: str | None = None, method: str | None = None) -> ClientThrottle:
        """Return the three verbs bound to ``client`` (what ``session.throttle`` gives a request)."""
        return ClientThrottle(self, client, path, method)


class ClientThrottle:
    """Login throttling for one request's client: ``check``, ``failed``, ``succeeded`` by user name.

    It remembers what :meth:`check` counted for the account, so that :meth:`succeeded`
    can report a success after failures without asking the store again; a request's
    ``session.throttle`` is therefore one object for the whole request.
    """

    __slots__ = ("_checked", "_client", "_method", "_path", "_throttle")

    def __init__(
        self, throttle: LoginThrottle, client: ClientInfo, path: str | None = None, method: str | None = None
    ) -> None:
        self._throttle = throttle
        self._client = client
        self._path = path
        self._method = method
        self._checked: tuple[str, int | None] | None = None
        """The account (its key) the last :meth:`check` let through, and its earlier attempts."""

    async def check(self, username: str) -> None:
        """Count an attempt to sign in as ``username``; raise if it must wait (see :meth:`LoginThrottle.check`).

        Raises:
            LoginThrottledError: answer 429 with ``Retry-After: retry_after_s``; do not
                check the password.
        """
        self._checked = None
        earlier = await self._throttle.check(username, self._client, path=self._path, method=self._method)
        self._checked = (throttling.account_key(username), earlier)

    async def failed(self, username: str) -> None:
        """Report that the password (or the user name) was wrong."""
        self._checked = None
        await self._throttle.failed(username, self._client, path=self._path, method=self._method)

    async def succeeded(self, username: str) -> None:
        """Reset the account's count: the password was right.

        After failed or held-back attempts on the account (as counted by this request's
        :meth:`check`), the success is also reported as ``login_after_failures``.
        """
        checked, self._checked = self._checked, None
        failures = checked[1] if checked is not None and checked[0] == throttling.account_key(username) else None
        await self._throttle.succeeded(username, self._client, failures=failures, path=self._path, method=self._method)
