"""The demo's JSON API: the contract that scripts and black-box tests use.

Every answer is JSON with a stable ``error`` code on failure. Order of checks in each
handler: authenticated (401), then re-authentication where session management asks for it (403
``reauth_required``), then the request's own validity. Password checks run in a worker
thread: Argon2 is deliberately slow and must not stall the event loop.
"""

from __future__ import annotations

import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionward.core.errors import LoginRefusedError, LoginThrottledError
from sessionward.core.records import EndReason
from sessionward.demo.context import (
    DemoContext,
    bad_request,
    json_body,
    json_error,
    not_authenticated,
    string_fields,
)
from sessionward.demo.users import password_problem
from sessionward.starlette import get_session

_HANDLE = re.compile(r"[0-9a-f]{16}")


def throttled(error: LoginThrottledError) -> JSONResponse:
    """The answer to a sign-in held back by login throttling: 429 with ``Retry-After``."""
    response = json_error(429, "throttled", retry_after_s=error.retry_after_s)
    response.headers["Retry-After"] = str(error.retry_after_s)
    return response


class JsonApi:
    """The handlers of ``/api/*``, bound to the demo's shared context."""

    def __init__(self, context: DemoContext) -> None:
        self.context = context

    def routes(self) -> list[Route]:
        """The API's routes (the debug endpoint only when the demo runs with ``--debug``)."""
        routes = [
            Route("/api/session/status", self.status, methods=["GET"]),
            Route("/api/session/touch", self.touch, methods=["POST"]),
            Route("/api/login", self.login, methods=["POST"]),
            Route("/api/logout", self.logout, methods=["POST"]),
            Route("/api/sessions", self.list_sessions, methods=["GET"]),
            Route("/api/sessions/revoke-others", self.revoke_others, methods=["POST"]),
            Route("/api/sessions/{handle}", self.revoke, methods=["DELETE"]),
            Route("/api/password", self.change_password, methods=["POST"]),
            Route("/api/elevate", self.elevate, methods=["POST"]),
            Route("/api/admin", self.admin, methods=["GET"]),
        ]
        if self.context.settings.debug:
            routes.append(Route("/api/session/debug", self.debug, methods=["GET"]))
        return routes

    async def status(self, request: Request) -> Response:
        """``GET /api/session/status``: the session's figures (a passive path: no activity)."""
        return JSONResponse(get_session(request).status().as_dict())

    async def touch(self, request: Request) -> Response:
        """``POST /api/session/touch``: "stay signed in" — a request that counts as activity."""
        session = get_session(request)
        if not session.is_authenticated:
            return not_authenticated()
        return JSONResponse({"ok": True})

    async def login(self, request: Request) -> Response:
        """``POST /api/login``: check the password, then log in under a new session ID."""
        body = await json_body(request)
        fields = string_fields(body, "username", "password") if body is not None else None
        if fields is None:
            return bad_request('expected a JSON object {"username": str, "password": str}')
        username, password = fields
        session = get_session(request)
        # Counted before the password is checked, unknown names too: a throttled
        # attempt is answered without a password check, alike for every name.
        try:
            await session.throttle.check(username)
        except LoginThrottledError as error:
            return throttled(error)
        if not await run_in_threadpool(self.context.users.verify, username, password):
            await session.throttle.failed(username)
            return json_error(401, "invalid_credentials")
        await session.throttle.succeeded(username)
        try:
            await session.login(username)
        except LoginRefusedError as error:
            return json_error(409, "max_sessions", limit=error.limit)
        return JSONResponse({"ok": True, "user": username})

    async def logout(self, request: Request) -> Response:
        """``POST /api/logout``: end the session server-side and clear the cookie."""
        await get_session(request).logout()
        return JSONResponse({"ok": True})

    async def list_sessions(self, request: Request) -> Response:
        """``GET /api/sessions``: the user's live sessions."""
        session = get_session(request)
        if not session.is_authenticated:
            return not_authenticated()
        sessions = await session.list_sessions()
        return JSONResponse({"sessions": [info.as_dict() for info in sessions]})

    async def revoke(self, request: Request) -> Response:
        """``DELETE /api/sessions/{handle}``: end one of the user's own sessions."""
        session = get_session(request)
        if not session.is_authenticated:
            return not_authenticated()
        if not session.recently_authenticated:
            return json_error(403, "reauth_required")
        handle = request.path_params["handle"]
        # Anything that is not a handle's shape cannot name a session: no store access.
        if not _HANDLE.fullmatch(handle) or not await session.revoke(handle):
            return json_error(404, "not_found")
        return Response(status_code=204)

    async def revoke_others(self, request: Request) -> Response:
        """``POST /api/sessions/revoke-others``: sign out everywhere else."""
        session = get_session(request)
        if not session.is_authenticated:
            return not_authenticated()
        if not session.recently_authenticated:
            return json_error(403, "reauth_required")
        return JSONResponse({"revoked": await session.revoke_others()})

    async def change_password(self, request: Request) -> Response:
        """``POST /api/password``: new password; other sessions end, this one gets a new ID."""
        session = get_session(request)
        user = session.user
        if user is None:
            return not_authenticated()
        body = await json_body(request)
        fields = string_fields(body, "current_password", "new_password") if body is not None else None
        if fields is None:
            return bad_request('expected a JSON object {"current_password": str, "new_password": str}')
        current, new = fields
        users = self.context.users
        if not await run_in_threadpool(users.verify, user, current):
            return json_error(403, "invalid_credentials")
        problem = password_problem(user, new, current)
        if problem is not None:
            return json_error(400, "weak_password", message=problem)
        await run_in_threadpool(users.set_password, user, new)
        revoked = await session.revoke_others(EndReason.PASSWORD_CHANGED)
        session.reauthenticated()  # the user just proved who they are
        await session.rotate_id()
        return JSONResponse({"ok": True, "revoked": revoked})

    async def elevate(self, request: Request) -> Response:
        """``POST /api/elevate``: re-enter the password to enter sudo mode; the ID changes."""
        session = get_session(request)
        user = session.user
        if user is None:
            return not_authenticated()
        body = await json_body(request)
        fields = string_fields(body, "password") if body is not None else None
        if fields is None:
            return bad_request('expected a JSON object {"password": str}')
        if not await run_in_threadpool(self.context.users.verify, user, fields[0]):
            return json_error(403, "invalid_credentials")
        if not self.context.users.is_admin(user):
            return json_error(403, "not_admin")
        await session.elevate()
        timeout = self.context.settings.policy.login.elevation_timeout_s
        return JSONResponse({"ok": True, "elevated": True, "elevation_timeout_s": timeout})

    async def admin(self, request: Request) -> Response:
        """``GET /api/admin``: only for an elevated session."""
        session = get_session(request)
        if not session.is_authenticated:
            return not_authenticated()
        if not session.is_elevated:
            return json_error(403, "elevation_required")
        stats = await self.context.manager.call_store(lambda: self.context.manager.store.stats(self.context.now()))
        return JSONResponse(
            {
                "ok": True,
                "user": session.user,
                "store": {
                    "live_sessions": stats.live_sessions,
                    "authenticated_sessions": stats.authenticated_sessions,
                    "users": stats.users,
                    "tombstones": stats.tombstones,
                },
            }
        )

    async def debug(self, request: Request) -> Response:
        """``GET /api/session/debug`` (``--debug`` only): the session's facts, never its ID."""
        session = get_session(request)
        meta = session.meta
        cookie = self.context.settings.policy.cookie
        handle = session.handle
        return JSONResponse(
            {
                "has_session": meta is not None,
                "authenticated": session.is_authenticated,
                # Like the seed's endpoint, only a prefix, and of the public handle at that.
                "handle_prefix": f"{handle[:8]}…" if handle else None,
                "user": session.user,
                "elevated": session.is_elevated,
                "created_at": meta.created_at if meta else None,
                "last_access_at": meta.last_access_at if meta else None,
                "auth_at": meta.auth_at if meta else None,
                "cookie": {
                    "name": cookie.cookie_name,
                    "http_only": cookie.http_only,
                    "secure": cookie.secure,
                    "same_site": cookie.same_site,
                    "max_age_s": cookie.max_age_s,
                },
            }
        )
