"""The demo's HTML pages: forms that post back, server-rendered, no inline script or style.

Anonymous visits to protected pages go to ``/login``; a dead session cookie never reaches
these handlers (the session middleware redirects it to ``/login?reason=…``). Form posts
carry the synchronizer token and redirect after success (post/redirect/get), with a
fixed notice code in the query string: nothing the user typed is ever echoed back.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from sessionward.core.errors import LoginRefusedError, LoginThrottledError
from sessionward.core.events import EventName
from sessionward.core.records import EndReason
from sessionward.demo.context import DemoContext, ago, utc
from sessionward.demo.defences import form_token
from sessionward.demo.users import DEFAULT_USERS, password_problem
from sessionward.io.exchange import RequestSession
from sessionward.starlette import get_session

SIGN_OUT_REASONS = {
    "idle_timeout": "You were signed out after a period of inactivity (idle timeout).",
    "absolute_timeout": "Your session reached its maximum lifetime (absolute timeout). Please sign in again.",
    "displaced": "You were signed out because your account signed in elsewhere (multiple-login control).",
    "revoked": "This session was signed out from another device.",
    "password_changed": "Your password was changed, so every other session of your account was signed out.",
    "logged_out": "You signed out. The session was destroyed on the server, not just in your browser.",
    "binding_mismatch": "Your session was ended because it was used from a different client.",
    "superseded": "This session ID was replaced by a newer one. Please sign in again.",
    "renewed": "This session ID was replaced by a newer one. Please sign in again.",
    "unknown": "Your session is not known to the server (it expired or never existed). Please sign in again.",
    "malformed": "Your session cookie could not be used. Please sign in again.",
    "conflicting_cookies": "Your browser sent two different session cookies; neither was trusted.",
    "corrupt": "Your session could not be read and was removed. Please sign in again.",
}

NOTICES = {
    "revoked": "The session was signed out.",
    "revoked_others": "Every other session of your account was signed out.",
    "reauthenticated": "Password confirmed: you can manage your sessions for a while.",
    "password_changed": "Password changed. Every other session was signed out and this one got a new ID.",
    "elevated": "Admin mode on. Your session ID changed; the elevation lapses by itself.",
    "user_revoked": "Every session of that user was signed out.",
}

NOT_RECENT = "Confirm your password first: that sign-in is not recent."

_FORM_LIMITS: dict[str, Any] = {"max_files": 0, "max_fields": 16, "max_part_size": 4096}


SignedInHandler = Callable[["Pages", Request, RequestSession, str], Awaitable[Response]]
"""A page for signed-in users: it gets the request's session and the user's name."""


def signed_in(handler: SignedInHandler) -> Callable[[Pages, Request], Awaitable[Response]]:
    """Serve ``handler`` to signed-in users only; anyone else is sent to the login page."""

    @functools.wraps(handler)
    async def guarded(self: Pages, request: Request) -> Response:
        session = get_session(request)
        user = session.user
        if user is None:
            return RedirectResponse("/login", status_code=303)
        return await handler(self, request, session, user)

    return guarded


class Pages:
    """The HTML handlers, bound to the demo's shared context."""

    def __init__(self, context: DemoContext) -> None:
        self.context = context

    def routes(self) -> list[Route]:
        """The page routes."""
        return [
            Route("/", self.home, methods=["GET"]),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/dashboard", self.dashboard, methods=["GET"]),
            Route("/sessions", self.sessions, methods=["GET"]),
            Route("/sessions/revoke", self.revoke, methods=["POST"]),
            Route("/sessions/revoke-others", self.revoke_others, methods=["POST"]),
            Route("/sessions/reauth", self.reauth, methods=["POST"]),
            Route("/account/password", self.password_form, methods=["GET"]),
            Route("/account/password", self.change_password, methods=["POST"]),
            Route("/admin", self.admin, methods=["GET"]),
            Route("/admin/revoke-user", self.admin_revoke_user, methods=["POST"]),
            Route("/admin/elevate", self.elevate_form, methods=["GET"]),
            Route("/admin/elevate", self.elevate, methods=["POST"]),
        ]

    # -- rendering -------------------------------------------------------------------------

    def render(self, request: Request, template: str, status_code: int = 200, **values: Any) -> Response:
        """Render ``template`` with what every page needs (user, token, timeouts)."""
        session = get_session(request)
        policy = self.context.settings.policy
        idle = policy.timeouts.idle_timeout_s
        notice = NOTICES.get(request.query_params.get("done", ""))
        return self.context.templates.TemplateResponse(
            request,
            template,
            {
                "user": session.user,
                "elevated": session.is_elevated,
                "is_admin": session.user is not None and self.context.users.is_admin(session.user),
                # A callable: only pages with forms create a session for the token.
                "csrf_token": lambda: form_token(session),
                "idle_timeout_s": idle,
                # Warn early enough to react, but never in the first half of the idle time.
                "warn_before_s": round(min(120.0, idle * 0.4), 3),
                "poll_interval_s": round(min(5.0, max(1.0, idle / 10)), 3),
                "notice": notice,
                "default_users": self.context.settings.users == DEFAULT_USERS,
                **values,
            },
            status_code=status_code,
        )

    async def form(self, request: Request) -> FormData:
        """Parse a small urlencoded or multipart form (no files)."""
        return await request.form(**_FORM_LIMITS)

    # -- public pages ------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        """``GET /``: what the demo shows, and the demo users."""
        users = self.context.users
        return self.render(request, "home.html", accounts=[(name, users.is_admin(name)) for name in users.names])

    async def login_form(self, request: Request) -> Response:
        """``GET /login``: the form, and why the user was signed out, if they were."""
        reason = request.query_params.get("reason", "")
        return self.render(request, "login.html", reason=SIGN_OUT_REASONS.get(reason), reason_code=reason)

    async def login(self, request: Request) -> Response:
        """``POST /login``: check the password, log in under a new ID, go to the dashboard."""
        form = await self.form(request)
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        session = get_session(request)
        try:
            await session.throttle.check(username)  # before the password: see JsonApi.login
        except LoginThrottledError as error:
            wait = error.retry_after_s
            message = f"Too many failed sign-ins. Wait {wait} second{'s' if wait != 1 else ''} before trying again."
            response = self.render(request, "login.html", 429, error=message, retry_after_s=wait)
            response.headers["Retry-After"] = str(wait)
            return response
        if not await run_in_threadpool(self.context.users.verify, username, password):
            await session.throttle.failed(username)
            return self.render(request, "login.html", 401, error="Wrong user name or password.")
        await session.throttle.succeeded(username)
        try:
            await session.login(username)
        except LoginRefusedError as error:
            message = (
                f"{username} already has {error.limit} active session(s), the most allowed. "
                "Sign out elsewhere first (multiple-login control, first wins)."
            )
            return self.render(request, "login.html", 409, error=message)
        return RedirectResponse("/dashboard", status_code=303)

    async def logout(self, request: Request) -> Response:
        """``POST /logout``: end the session server-side and clear the cookie."""
        await get_session(request).logout()
        return RedirectResponse("/login?reason=logged_out", status_code=303)

    # -- signed-in pages ---------------------------------------------------------------------

    @signed_in
    async def dashboard(self, request: Request, session: RequestSession, user: str) -> Response:
        """``GET /dashboard``: live status with the idle countdown."""
        return self.render(
            request,
            "dashboard.html",
            status=session.status().as_dict(),
            cookie=self.context.settings.policy.cookie,
            handle=session.handle,
        )

    @signed_in
    async def sessions(self, request: Request, session: RequestSession, user: str) -> Response:
        """``GET /sessions``: the user's devices, with revoke buttons."""
        return await self.devices(request, session)

    async def devices(
        self, request: Request, session: RequestSession, status_code: int = 200, error: str | None = None
    ) -> Response:
        """Render the device list of a signed-in user, with ``error`` if an action failed."""
        now = self.context.now()
        devices = [
            {
                "handle": info.handle,
                "created": utc(info.created_at),
                "last_seen": ago(now - info.last_seen_at),
                "ip": info.ip or "unknown",
                "user_agent": _short_agent(info.user_agent),
                "current": info.current,
            }
            for info in await session.list_sessions()
        ]
        return self.render(
            request,
            "sessions.html",
            status_code,
            devices=devices,
            recent=session.recently_authenticated,
            error=error,
        )

    @signed_in
    async def revoke(self, request: Request, session: RequestSession, user: str) -> Response:
        """``POST /sessions/revoke``: end one of the user's sessions."""
        handle = str((await self.form(request)).get("handle", ""))
        if not session.recently_authenticated:
            return await self.devices(request, session, 403, NOT_RECENT)
        current = handle == session.handle
        if not await session.revoke(handle):
            return await self.devices(request, session, 404, "No such session of yours.")
        if current:
            return RedirectResponse("/login?reason=logged_out", status_code=303)
        return RedirectResponse("/sessions?done=revoked", status_code=303)

    @signed_in
    async def revoke_others(self, request: Request, session: RequestSession, user: str) -> Response:
        """``POST /sessions/revoke-others``: sign out everywhere else."""
        if not session.recently_authenticated:
            return await self.devices(request, session, 403, NOT_RECENT)
        await session.revoke_others()
        return RedirectResponse("/sessions?done=revoked_others", status_code=303)

    @signed_in
    async def reauth(self, request: Request, session: RequestSession, user: str) -> Response:
        """``POST /sessions/reauth``: re-enter the password to manage sessions."""
        password = str((await self.form(request)).get("password", ""))
        if not await run_in_threadpool(self.context.users.verify, user, password):
            return await self.devices(request, session, 403, "Wrong password.")
        session.reauthenticated()
        return RedirectResponse("/sessions?done=reauthenticated", status_code=303)

    @signed_in
    async def password_form(self, request: Request, session: RequestSession, user: str) -> Response:
        """``GET /account/password``: the change-password form."""
        return self.render(request, "password.html")

    @signed_in
    async def change_password(self, request: Request, session: RequestSession, user: str) -> Response:
        """``POST /account/password``: change it; other sessions end, this one gets a new ID."""
        form = await self.form(request)
        current, new = str(form.get("current_password", "")), str(form.get("new_password", ""))
        users = self.context.users
        if not await run_in_threadpool(users.verify, user, current):
            return self.render(request, "password.html", 403, error="The current password is wrong.")
        if new != str(form.get("confirm_password", new)):
            return self.render(request, "password.html", 400, error="The two new passwords differ.")
        problem = password_problem(user, new, current)
        if problem is not None:
            return self.render(request, "password.html", 400, error=f"Too weak: {problem}.")
        await run_in_threadpool(users.set_password, user, new)
        await session.revoke_others(EndReason.PASSWORD_CHANGED)
        session.reauthenticated()
        await session.rotate_id()
        return RedirectResponse("/account/password?done=password_changed", status_code=303)

    # -- the admin area ----------------------------------------------------------------------

    @signed_in
    async def admin(self, request: Request, session: RequestSession, user: str) -> Response:
        """``GET /admin``: store figures, users and the audit trail; needs elevation."""
        if not session.is_elevated:
            return RedirectResponse("/admin/elevate", status_code=303)
        manager = self.context.manager
        now = self.context.now()
        stats = await manager.call_store(lambda: manager.store.stats(now))
        meta = session.meta
        lapses = max(0.0, (meta.elevated_until or now) - now) if meta else 0.0
        return self.render(
            request,
            "admin.html",
            stats=stats,
            users=self.context.users.names,
            events=[
                {
                    "at": utc(event.at, seconds=True),
                    "event": event.name.value,
                    "reason": event.reason or "",
                    "user": event.user or "",
                    "handle": event.handle or "",
                    "ip": event.ip or "",
                }
                for event in self.context.recent.events
            ],
            elevation_left=f"{int(lapses // 60)} min {int(lapses % 60)} s",
        )

    @signed_in
    async def admin_revoke_user(self, request: Request, session: RequestSession, user: str) -> Response:
        """``POST /admin/revoke-user``: sign a user out everywhere (account compromised)."""
        if not session.is_elevated:
            return RedirectResponse("/admin/elevate", status_code=303)
        target = str((await self.form(request)).get("user", ""))
        if target not in self.context.users.names:
            return RedirectResponse("/admin", status_code=303)
        manager = self.context.manager
        now = self.context.now()
        expires = now + manager.policy.invalid_session.tombstone_ttl_s
        keep = session.record.key if session.record is not None else None
        ended = await manager.call_store(
            lambda: manager.store.end_user(target, EndReason.REVOKED, now, expires, keep_key=keep)
        )
        for record in ended:
            await manager.emit(EventName.REVOKED, reason="admin", handle=record.handle, user=target, path="/admin")
        return RedirectResponse("/admin?done=user_revoked", status_code=303)

    @signed_in
    async def elevate_form(self, request: Request, session: RequestSession, user: str) -> Response:
        """``GET /admin/elevate``: ask for the password again."""
        if not self.context.users.is_admin(user):
            return self.render(request, "elevate.html", 403, error=f"{user} is not an administrator.")
        return self.render(request, "elevate.html")

    @signed_in
    async def elevate(self, request: Request, session: RequestSession, user: str) -> Response:
        """``POST /admin/elevate``: check the password, rotate the ID, enter admin mode."""
        password = str((await self.form(request)).get("password", ""))
        if not await run_in_threadpool(self.context.users.verify, user, password):
            return self.render(request, "elevate.html", 403, error="Wrong password.")
        if not self.context.users.is_admin(user):
            return self.render(request, "elevate.html", 403, error=f"{user} is not an administrator.")
        await session.elevate()
        return RedirectResponse("/admin?done=elevated", status_code=303)


def _short_agent(agent: str | None) -> str:
    """Name the browser and platform of a User-Agent in a few words."""
    if not agent:
        return "unknown client"
    browser = next(
        (name for token, name in _BROWSERS if token in agent),
        agent[:40],
    )
    platform = next((name for token, name in _PLATFORMS if token in agent), "")
    return f"{browser} on {platform}" if platform else browser


_BROWSERS = (
    ("HeadlessChrome", "Headless Chrome"),
    ("Edg/", "Edge"),
    ("Chrome/", "Chrome"),
    ("Firefox/", "Firefox"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
    ("python-httpx", "httpx"),
)
_PLATFORMS = (
    ("Windows", "Windows"),
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
)
