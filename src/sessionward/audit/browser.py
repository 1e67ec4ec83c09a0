"""Signing in through the real login page, in headless Chromium (``sessionward audit --browser``).

Some sites cannot be signed in to by posting their login form: the page's script reads
a token, posts JSON with ``fetch`` and then moves on by setting ``location``. For them
:class:`BrowserSignIn` takes the place of :class:`~sessionward.audit.login.SignIn`:
Chromium (Debian's, driven through Playwright; never a downloaded build) opens the login
page, fills the user name and password fields and submits the form as a person does,
and the audit goes on with the cookies the browser got. Only signing in and out run in
the browser: every probe (strict mode, fixation replay, logout replay, IDs in URLs, the
ID sample) stays a plain HTTP request, since those are meant to come from another client.

The report also says what the browser kept (:class:`~sessionward.audit.report.BrowserStorage`):
the site's cookies with the attributes the browser stored (``Secure``, ``HttpOnly``,
``SameSite``, ``Path``, ``Domain``, lifetime), the cookies it refused, and the
``localStorage`` / ``sessionStorage`` keys whose values look like tokens (never the values).

What the browser loads is not capped as the auditor's own requests are: images, media
and fonts are blocked, the rest (the pages and their scripts) is loaded as a browser
does. Every step has the page deadline (``--timeout``) and the audit's deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError
from playwright.async_api import async_playwright

from sessionward.audit.checks import CheckResult, Observed, SetCookie, Status
from sessionward.audit.forms import (
    Form,
    FormError,
    find_logout_form,
    find_logout_link,
    has_password_form,
    login_fields,
    parse_forms,
    select_form,
)
from sessionward.audit.http import MAX_BODY_BYTES, AuditDeadlineError, AuditError, Fetcher, Jar
from sessionward.audit.login import DEFAULT_LOGOUT_PATH, Credentials, Judge, LoginResult, LoginVia, LogoutError, SignIn

if TYPE_CHECKING:
    from playwright._impl._api_structures import Cookie as PlaywrightCookie
    from playwright._impl._api_structures import SetCookieParam
    from playwright.async_api import Browser, BrowserContext, ElementHandle, Page, Playwright, Request, Response, Route

DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
"""Flags Chromium is started with (Playwright adds ``--headless`` and a fresh, temporary profile)."""
QUIET_S = 0.5
"""How long the page must have no request in flight for a submission to count as settled."""
LAUNCH_TIMEOUT_S = 30.0
"""Longest wait for Chromium to start (at least the page deadline)."""
MAX_STORAGE_KEYS = 100
"""Most ``localStorage`` / ``sessionStorage`` keys reported per storage area."""
_BLOCKED = frozenset(("image", "media", "font"))
_READ_BODIES = frozenset(("document", "xhr", "fetch"))
_TEXT_TYPES = ("text/", "json", "xml", "javascript")
_TOKEN_KEY = re.compile(
    r"token|jwt|bearer|auth|sess|\bsid\b|access|refresh|credential|api[_-]?key|secret", re.IGNORECASE
)
_OPAQUE = re.compile(r"[A-Za-z0-9+/=_.~-]{16,}")
_JWT = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")

_FIELD_JS = """(form, name) =>
    [...form.elements].find(e => e.name === name) || [...form.elements].find(e => e.id === name) || null"""
_SUBMITTER_JS = """form => [...form.elements].find(e =>
    (e.tagName === 'BUTTON' && e.type === 'submit') ||
    (e.tagName === 'INPUT' && (e.type === 'submit' || e.type === 'image'))) || null"""
_POST_JS = """async url => (await fetch(url, {method: 'POST', credentials: 'same-origin'})).status"""
_STORAGE_JS = """limit => {
    const found = [];
    for (const area of ['localStorage', 'sessionStorage']) {
        try {
            const store = window[area];
            for (let i = 0; i < store.length && i < limit; i++) {
                const key = store.key(i);
                const value = store.getItem(key) || '';
                found.push([area, key, value.length, value.slice(0, 8192)]);
            }
        } catch (e) { /* storage disabled for this origin */ }
    }
    return found;
}"""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredCookie:
    """A cookie as the browser kept it (``sessionward audit --browser``); never its value."""

    name: str
    domain: str
    path: str
    secure: bool
    http_only: bool
    same_site: str
    lifetime_s: int | None
    """Seconds left when it was read; ``None`` for a cookie that ends with the browser session."""

    def attributes(self) -> str:
        """The attributes as a report line: ``Secure, HttpOnly, SameSite=Lax, Path=/, host-only, …``."""
        flags = [f for f, on in (("Secure", self.secure), ("HttpOnly", self.http_only)) if on]
        scope = f"Domain={self.domain}" if self.domain.startswith(".") else "host-only"
        life = "until the browser closes" if self.lifetime_s is None else f"expires in {self.lifetime_s} s"
        return ", ".join([*flags, f"SameSite={self.same_site}", f"Path={self.path}", scope, life])

    def as_dict(self) -> dict[str, object]:
        """JSON-ready data."""
        return {
            "name": self.name,
            "domain": self.domain,
            "path": self.path,
            "secure": self.secure,
            "http_only": self.http_only,
            "same_site": self.same_site,
            "lifetime_s": self.lifetime_s,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredKey:
    """A ``localStorage`` or ``sessionStorage`` entry of the site's origin; never its value."""

    area: str
    key: str
    length: int
    token: bool
    """Whether its value looks like a credential (a session ID, a JWT, an opaque token)."""


@dataclass(slots=True, kw_only=True)
class BrowserStorage:
    """What the browser held for the site after signing in (``sessionward audit --browser``)."""

    cookies: list[StoredCookie]
    keys: list[StoredKey]
    refused: list[str]
    """Cookies the site set that the browser did not keep, with the request that set each."""
    after_logout: list[str] | None = None
    """The cookies the browser still held, with their signed-in values, after logging out (``None``: no logout)."""

    def as_dict(self) -> dict[str, object]:
        """JSON-ready data."""
        return {
            "cookies": [c.as_dict() for c in self.cookies],
            "storage": [{"area": k.area, "key": k.key, "length": k.length, "token": k.token} for k in self.keys],
            "refused": self.refused,
            "after_logout": self.after_logout,
        }


def default_chromium() -> str | None:
    """Debian's Chromium (``/usr/bin/chromium``), else a ``chromium`` on ``PATH``; ``None`` if neither."""
    if Path(DEFAULT_CHROMIUM).exists():
        return DEFAULT_CHROMIUM
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass(slots=True, kw_only=True)
class BrowserLogin(LoginResult):
    """A sign-in made in the browser; its page stays open until :meth:`BrowserSignIn.logout`."""

    page: Page | None = None
    watch: _Watch | None = None
    reported: bool = False


class BrowserSignIn(SignIn):
    """Signs in and out through the site's login page, in headless Chromium.

    It plays the part of :class:`~sessionward.audit.login.SignIn` for
    :class:`~sessionward.audit.site.SiteAuditor`: each login opens a fresh browser
    context (no cookies but those of the ``jar`` it is given, which is how a pre-login
    or made-up ID is planted), loads ``credentials.login_page``, fills the login form
    (the one ``--login-form`` names, else the one with a password field; its fields are
    found as for a plain form login, or named by ``--user-field`` / ``--password-field``,
    a ``name`` or an ``id``), clicks its submit button (or submits it by script when it
    has none) and waits until the page has had no request in flight for
    :data:`QUIET_S`. The cookies the browser then holds for the site are the login's.

    Whether it worked is told by ``--check-url`` when given; otherwise the login form
    must be gone from the page, and a cookie must have changed or the page moved on.

    Args:
        fetcher: The audit's HTTP client (its deadlines and its record of answers).
        credentials: The account, the login page and its form.
        chromium: The Chromium executable.
        judge: Tells whether a jar is signed in (``--check-url``).
        verify_tls: Check the site's TLS certificate.
    """

    def __init__(
        self,
        fetcher: Fetcher,
        credentials: Credentials,
        *,
        chromium: str,
        judge: Judge | None = None,
        verify_tls: bool = True,
    ) -> None:
        super().__init__(fetcher, credentials, judge=judge)
        self.via = LoginVia.FORM  # a form login, made by the page's own script
        self.chromium = chromium
        self.verify_tls = verify_tls
        parts = urlsplit(fetcher.url(""))
        self.origin = (parts.scheme, parts.netloc)
        self.host = parts.hostname or ""
        self.https = parts.scheme == "https"
        self.stored: BrowserStorage | None = None
        """What the browser held after the first successful login (``None`` before it)."""
        self._setters: dict[str, Observed] = {}
        self._kept: dict[str, PlaywrightCookie] = {}
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None

    # -- the browser -----------------------------------------------------------------------

    async def _launch(self) -> Browser:
        if self._browser is not None:
            return self._browser
        loop = asyncio.get_running_loop()
        audit_deadline = self.fetcher.audit_deadline
        deadline = min(loop.time() + max(LAUNCH_TIMEOUT_S, self.fetcher.page_timeout_s), audit_deadline)
        try:
            async with self._within(deadline, f"cannot start Chromium at {self.chromium}"):
                self._playwright = await async_playwright().start()
                self._browser = await self._playwright.chromium.launch(
                    executable_path=self.chromium, headless=True, args=list(CHROMIUM_ARGS), timeout=_ms(deadline)
                )
        except BaseException:
            await self.aclose()
            raise
        return self._browser

    async def aclose(self) -> None:
        """Close Chromium and the Playwright driver."""
        browser, self._browser = self._browser, None
        driver, self._playwright = self._playwright, None
        if browser is not None:
            with contextlib.suppress(PlaywrightError, TimeoutError):
                async with asyncio.timeout(10):
                    await browser.close()
        if driver is not None:
            with contextlib.suppress(PlaywrightError, TimeoutError):
                async with asyncio.timeout(10):
                    await driver.stop()

    def _deadline(self) -> float:
        """The end of the next page's time (the page deadline, cut by the audit's)."""
        loop = asyncio.get_running_loop()
        audit_deadline = self.fetcher.audit_deadline
        if loop.time() >= audit_deadline:
            raise AuditDeadlineError(f"the audit ran out of its {self.fetcher.audit_timeout_s:g} s")
        return min(loop.time() + self.fetcher.page_timeout_s, audit_deadline)

    @contextlib.asynccontextmanager
    async def _within(self, deadline: float, what: str) -> AsyncIterator[None]:
        """Run a browser step by ``deadline``; its failures become :class:`AuditError` naming ``what``."""
        try:
            async with asyncio.timeout_at(deadline):
                yield
        except TimeoutError:
            if deadline >= self.fetcher.audit_deadline:
                raise AuditDeadlineError(f"the audit ran out of its {self.fetcher.audit_timeout_s:g} s") from None
            raise AuditError(f"{what}: timed out (nothing within {self.fetcher.page_timeout_s:g} s)") from None
        except PlaywrightTimeoutError:
            if deadline >= self.fetcher.audit_deadline:
                raise AuditDeadlineError(f"the audit ran out of its {self.fetcher.audit_timeout_s:g} s") from None
            raise AuditError(f"{what}: timed out (nothing within {self.fetcher.page_timeout_s:g} s)") from None
        except PlaywrightError as error:
            raise AuditError(f"{what}: {_first_line(error.message)}") from None

    async def _context(self, jar: Jar) -> BrowserContext:
        """A fresh browser context holding exactly the cookies of ``jar``, images and fonts blocked."""
        browser = await self._launch()
        deadline = self._deadline()
        async with self._within(deadline, "Chromium could not open a window"):
            context = await browser.new_context(ignore_https_errors=not self.verify_tls, service_workers="block")
        try:
            async with self._within(deadline, "Chromium would not hold the cookies to sign in with"):
                await context.route("**/*", _load_or_block)
                if jar.cookies:
                    await context.add_cookies([self._planted(name, value) for name, value in jar.cookies.items()])
        except BaseException:
            await _close(context)
            raise
        return context

    def _planted(self, name: str, value: str) -> SetCookieParam:
        """``name=value`` as the site sets it: the attributes the browser kept before, else host-only at ``/``."""
        kept = self._kept.get(name)
        secure = self.https or name.startswith(("__Host-", "__Secure-"))
        cookie: SetCookieParam = {"name": name, "value": value, "domain": self.host, "path": "/", "secure": secure}
        if kept is not None:
            cookie["domain"] = kept.get("domain", self.host)
            cookie["path"] = kept.get("path", "/")
            cookie["secure"] = kept.get("secure", secure)
            cookie["httpOnly"] = kept.get("httpOnly", False)
            if "sameSite" in kept:
                cookie["sameSite"] = kept["sameSite"]
        return cookie

    async def _held(self, context: BrowserContext) -> list[PlaywrightCookie]:
        """The cookies the browser holds for the audited host."""
        return [c for c in await context.cookies() if _domain_matches(self.host, c.get("domain", ""))]

    # -- signing in -------------------------------------------------------------------------

    async def login(self, jar: Jar | None = None) -> LoginResult:
        """Sign in in a fresh browser context holding the cookies of ``jar``."""
        context = await self._context(jar or Jar())
        try:
            result = await self._login(context)
        except BaseException:
            await _close(context)
            raise
        if not result.ok:
            await _close(context)
        return result

    async def _login(self, context: BrowserContext) -> BrowserLogin:
        credentials = self.credentials
        page_url = self.fetcher.url(credentials.login_page)
        deadline = self._deadline()
        async with self._within(deadline, f"Chromium could not open {page_url}"):
            page = await context.new_page()
            watch = _Watch(page, self.origin)
            await page.goto(page_url, wait_until="load", timeout=_ms(deadline))
            html = await page.content()
        forms = parse_forms(html, page.url)
        form = select_form(forms, credentials.login_form)
        if form is None:  # a page that builds its form by script, once loaded
            await watch.settle(deadline)
            async with self._within(self._deadline(), f"Chromium could not read {page_url}"):
                html = await page.content()
            forms = parse_forms(html, page.url)
            form = select_form(forms, credentials.login_form)
        shown = page.url
        page_answers = await watch.take(self.fetcher)
        where = urlsplit(shown).path or "/"
        if form is None:
            wanted = f"matching {credentials.login_form!r}" if credentials.login_form else "with a password field"
            status = f" (answered {page_answers[-1].status})" if page_answers else ""
            problem = f"no login form {wanted} on {where}{status} in Chromium; set --login-page"
            return BrowserLogin(False, page_answers, 0, Jar(), "Chromium", problem)
        how = f"{_label(form)} on {where}, in Chromium"
        try:
            user, secret = self._field_names(form)
        except FormError as error:
            return BrowserLogin(False, page_answers, 0, Jar(), how, str(error))
        deadline = self._deadline()
        async with self._within(deadline, f"Chromium could not sign in on {where}"):
            before = _values(await self._held(context))
            handle = await _form_handle(page, forms, form, deadline)
            for name, value in ((user, credentials.username), (secret, credentials.password)):
                field = (await handle.evaluate_handle(_FIELD_JS, name)).as_element()
                if field is None:
                    return BrowserLogin(False, page_answers, 0, Jar(), how, f"{how} has no field {name!r} in the page")
                await field.fill(value, timeout=_ms(deadline))
            await _submit(handle, deadline)
        submission: list[Observed] = []
        for _ in range(2):
            # A failure is looked at once more after another quiet spell: on a busy machine the
            # script may not have moved on yet when the network first went quiet.
            await watch.settle(deadline)
            async with self._within(self._deadline(), f"Chromium could not read the page after signing in on {where}"):
                landing_html = await page.content()
                landed = page.url
                held = await self._held(context)
            submission += await watch.take(self.fetcher)
            answers = [*page_answers, *submission]
            jar = Jar(_values(held))
            documents = [a for a in answers if a.headers.get("content-type", "").startswith("text/html")]
            landing = _landing(documents[-1] if documents else None, landed, landing_html)
            refused = _refused(answers, held)
            ok, problem = await self._judge_page(
                jar, landing, submission, before=before, where=where, moved=landed != shown
            )
            if ok or asyncio.get_running_loop().time() + QUIET_S >= deadline:
                break
        if not ok and refused:
            problem += "; Chromium refused " + ", ".join(_refusal(c, where_set, self.host) for c, where_set in refused)
        result = BrowserLogin(ok, answers, len(submission), jar, how, problem, landing, page=page, watch=watch)
        if ok:
            await self._remember(result, page, held, refused)
        return result

    def _field_names(self, form: Form) -> tuple[str, str]:
        """The user name and password fields to fill: as named by the options, else as a form login finds them."""
        credentials = self.credentials
        if credentials.user_field is not None and credentials.password_field is not None:
            return credentials.user_field, credentials.password_field  # a name or an id, looked up in the page
        _, user, secret = login_fields(
            form,
            credentials.username,
            credentials.password,
            user_field=credentials.user_field,
            password_field=credentials.password_field,
        )
        return user, secret

    async def _judge_page(
        self,
        jar: Jar,
        landing: Observed,
        submission: Sequence[Observed],
        *,
        before: Mapping[str, str],
        where: str,
        moved: bool,
    ) -> tuple[bool, str]:
        """Whether the login worked, and if not, why (mentioning what the page's requests answered)."""
        form_where = f"the login form on {where}"
        refused = [f"{a.method} {a.path} answered {a.status}" for a in submission if a.status >= 400]
        said = f" ({'; '.join(refused[:3])})" if refused else ""
        if landing.status >= 400:
            return False, f"{form_where} led to {landing.path}, which answered {landing.status}{said}"
        if self.judge is not None:
            if await self.judge(jar):
                return True, ""
            return False, f"after {form_where} was sent in Chromium, --check-url answers as to a visitor{said}"
        if has_password_form(landing.body):
            return False, f"{form_where} is still shown after signing in in Chromium{said}: check --username/--password"
        changed = any(before.get(name) != value for name, value in jar.cookies.items())
        if changed or moved:
            return True, ""
        return False, f"{form_where} changed no cookie and led nowhere in Chromium: give --check-url"

    async def _remember(
        self,
        result: BrowserLogin,
        page: Page,
        held: list[PlaywrightCookie],
        refused: list[tuple[SetCookie, Observed]],
    ) -> None:
        """Keep the attributes the browser gave each cookie (to plant IDs alike) and, once, what it stored."""
        for cookie in held:
            self._kept[cookie["name"]] = cookie
        if self.stored is not None:
            return
        keys: list[StoredKey] = []
        if (urlsplit(page.url).scheme, urlsplit(page.url).netloc) == self.origin:
            async with self._within(self._deadline(), "Chromium could not read the page's storage"):
                found = await page.evaluate(_STORAGE_JS, MAX_STORAGE_KEYS)
            values = list(result.jar.cookies.values())
            keys = [
                StoredKey(
                    area=str(area),
                    key=str(key),
                    length=int(length),
                    token=looks_like_token(str(key), str(value), values),
                )
                for area, key, length, value in found
            ]
        now = time.time()
        self.stored = BrowserStorage(
            cookies=[_stored(c, now) for c in held],
            keys=keys,
            refused=[f"{c.name} (set by {o.method} {o.path})" for c, o in refused],
        )
        self._setters = {c.name: o for c, o in refused}
        result.reported = True

    # -- signing out ------------------------------------------------------------------------

    async def logout(self, login: LoginResult) -> list[Observed]:
        """Log out in the browser the login was made in, as its user would; return the answers.

        With ``--logout-path``: a form of the page that is submitted there, else a POST
        there from the page's script (then a visit, where POST is not allowed); without
        it, the page's logout form or link, else a POST to ``/api/logout``.

        Raises:
            LogoutError: No way to log out was found, or the site refused the logout.
        """
        if not isinstance(login, BrowserLogin) or login.page is None or login.watch is None:
            raise LogoutError("this login has no browser page to log out from")
        page, watch = login.page, login.watch
        try:
            await watch.take(self.fetcher)  # what the page did in the meantime is not the logout
            deadline = self._deadline()
            async with self._within(deadline, "Chromium could not log out"):
                refused = await self._log_out(page, deadline)
            await watch.settle(deadline)
            answers = [
                a
                for a in await watch.take(self.fetcher)
                if not (a.method == "POST" and a.url == refused and a.status in (404, 405))
            ]
            if login.reported and self.stored is not None:
                async with self._within(self._deadline(), "Chromium could not read its cookies"):
                    held = _values(await self._held(page.context))
                kept = [name for name, value in login.jar.cookies.items() if held.get(name) == value]
                self.stored.after_logout = sorted(kept)
        finally:
            login.page = login.watch = None
            await _close(page.context)
        if not answers:
            raise LogoutError("logging out in Chromium sent no request to the site")
        first = answers[0]
        if first.status >= 400:
            raise LogoutError(
                f"the logout was refused: {first.method} {first.path} answered {first.status}, so the session was "
                "not ended and logging out could not be tested; check --logout-path"
            )
        return answers

    async def _log_out(self, page: Page, deadline: float) -> str | None:
        """Log out in ``page``; return the URL whose POST was not allowed when the logout was visited instead."""
        html = await page.content()
        forms = parse_forms(html, page.url)
        path = self.credentials.logout_path
        if path is not None:
            target = self.fetcher.url(path)
            wanted = urlsplit(target).path
            form = next((f for f in forms if urlsplit(f.action).path == wanted and not f.has_password), None)
            if form is not None:
                await _submit(await _form_handle(page, forms, form, deadline), deadline)
                return None
            if await page.evaluate(_POST_JS, target) not in (404, 405):
                return None
            await page.goto(target, wait_until="load", timeout=_ms(deadline))
            return target
        form = find_logout_form(forms)
        if form is not None:
            await _submit(await _form_handle(page, forms, form, deadline), deadline)
            return None
        link = find_logout_link(html, page.url)
        if link is not None:
            await page.goto(link, wait_until="load", timeout=_ms(deadline))
            return None
        if await page.evaluate(_POST_JS, self.fetcher.url(DEFAULT_LOGOUT_PATH)) in (404, 405):
            raise LogoutError(
                "no logout form or link on the page the login led to, and nothing at "
                f"{DEFAULT_LOGOUT_PATH}: set --logout-path"
            )
        return None

    # -- the report -------------------------------------------------------------------------

    def checks(self, session: SetCookie | None) -> list[CheckResult]:
        """The report lines on what the browser kept: the session cookie, and tokens in ``localStorage``."""
        stored = self.stored
        if stored is None:
            return []
        results: list[CheckResult] = []
        if session is not None:
            setter = self._setters.get(session.name)
            results.append(check_browser_kept(session, stored.cookies, setter, self.host))
        results.append(check_local_storage(stored.keys))
        return results


# -- what the page loads ----------------------------------------------------------------------


class _Watch:
    """Every answer one page got from the audited site, and whether a request is in flight."""

    def __init__(self, page: Page, origin: tuple[str, str]) -> None:
        self.origin = origin
        self.responses: list[Response] = []
        self.taken = 0
        self.inflight: set[Request] = set()
        self.changed = asyncio.Event()
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._ended)
        page.on("response", self._answered)

    def _answered(self, response: Response) -> None:
        self.responses.append(response)

    def _started(self, request: Request) -> None:
        self.inflight.add(request)
        self.changed.set()

    def _ended(self, request: Request) -> None:
        self.inflight.discard(request)
        self.changed.set()

    async def settle(self, deadline: float) -> bool:
        """Wait until no request has been in flight for :data:`QUIET_S`; ``False`` if ``deadline`` came first.

        A page that never goes quiet (a long poll, a stream) is read as it is at the deadline.
        """
        loop = asyncio.get_running_loop()
        while (left := deadline - loop.time()) > 0:
            self.changed.clear()
            wait = min(left, QUIET_S) if not self.inflight else left
            try:
                async with asyncio.timeout(wait):
                    await self.changed.wait()
            except TimeoutError:
                if not self.inflight and wait >= QUIET_S:
                    return True
        return False

    async def take(self, fetcher: Fetcher) -> list[Observed]:
        """The site's answers that came since the last call, as the auditor observes them (kept in ``fetcher.seen``)."""
        found = []
        fresh, self.taken = self.responses[self.taken :], len(self.responses)
        for response in fresh:
            parts = urlsplit(response.url)
            if (parts.scheme, parts.netloc) != self.origin:
                continue  # another site's (a CDN's) answers say nothing of this site's session
            observed = await _observe(response)
            fetcher.seen.append(observed)
            found.append(observed)
        return found


async def _observe(response: Response) -> Observed:
    """One browser answer as :class:`Observed`: every header line as sent (each ``Set-Cookie``), a textual body."""
    try:
        lines = await response.headers_array()
    except PlaywrightError:
        lines = [{"name": k, "value": v} for k, v in response.headers.items()]
    pairs = [(h["name"], value) for h in lines for value in h["value"].split("\n")]
    headers = httpx.Headers(pairs)
    cookies = [c for c in (SetCookie.parse(v) for n, v in pairs if n.lower() == "set-cookie") if c]
    body = ""
    kind = headers.get("content-type", "")
    if response.request.resource_type in _READ_BODIES and any(t in kind for t in _TEXT_TYPES):
        with contextlib.suppress(PlaywrightError):  # a redirect, or a page already gone, keeps no body
            body = (await response.body())[:MAX_BODY_BYTES].decode("utf-8", errors="replace")
    url = response.url
    return Observed(
        response.request.method, urlsplit(url).path or "/", url, response.status, headers, cookies, body, url
    )


async def _load_or_block(route: Route) -> None:
    """Let pages, scripts and the site's requests through; block images, media and fonts."""
    if route.request.resource_type in _BLOCKED:
        await route.abort()
    else:
        await route.fallback()


async def _form_handle(page: Page, forms: Sequence[Form], form: Form, deadline: float) -> ElementHandle:
    """The page's element for ``form`` (the forms of the page's HTML are its ``<form>`` elements, in order)."""
    index = next(i for i, f in enumerate(forms) if f is form)
    handle = await page.locator("form").nth(index).element_handle(timeout=_ms(deadline))
    return handle


async def _submit(form: ElementHandle, deadline: float) -> None:
    """Submit ``form`` as a person does: click its submit button, or submit it by script when it has none shown."""
    submitter = (await form.evaluate_handle(_SUBMITTER_JS)).as_element()
    if submitter is not None and await submitter.is_visible():
        await submitter.click(timeout=_ms(deadline))
        return
    try:
        await form.evaluate("form => form.requestSubmit()")
    except PlaywrightError as error:
        if "destroyed" not in error.message and "navigat" not in error.message:
            raise  # the submission navigated away while the call returned: that is what was wanted


async def _close(context: BrowserContext) -> None:
    with contextlib.suppress(PlaywrightError, TimeoutError):
        async with asyncio.timeout(10):
            await context.close()


def _ms(deadline: float) -> float:
    """Playwright's timeout (milliseconds) for a step that must end by the event-loop time ``deadline``."""
    return max(1.0, (deadline - asyncio.get_running_loop().time()) * 1000)


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0] if lines else "failed"


def _label(form: Form) -> str:
    identifier = form.attributes.get("id")
    return f"form#{identifier}" if identifier else "the login form"


def _domain_matches(host: str, domain: str) -> bool:
    bare = domain.lstrip(".").lower()
    return host.lower() == bare or host.lower().endswith("." + bare)


def _values(held: Iterable[PlaywrightCookie]) -> dict[str, str]:
    """The jar of what the browser holds: one value per name, the one with the shortest path first."""
    values: dict[str, str] = {}
    for cookie in sorted(held, key=lambda c: len(c.get("path", "/"))):
        values.setdefault(cookie["name"], cookie["value"])
    return values


def _landing(document: Observed | None, url: str, html: str) -> Observed:
    """Where the login led: the last page loaded, with the page as the browser shows it now (after its scripts)."""
    if document is None:
        return Observed("GET", urlsplit(url).path or "/", url, 200, httpx.Headers(), [], html[:MAX_BODY_BYTES], url)
    return Observed(
        "GET", urlsplit(url).path or "/", url, document.status, document.headers, [], html[:MAX_BODY_BYTES], url
    )


def _refused(answers: Sequence[Observed], held: Iterable[PlaywrightCookie]) -> list[tuple[SetCookie, Observed]]:
    """The cookies the site set (last ``Set-Cookie`` of each name, not a deletion) that the browser does not hold."""
    latest: dict[str, tuple[SetCookie, Observed]] = {}
    for answer in answers:
        for cookie in answer.cookies:
            latest[cookie.name] = (cookie, answer)
    names = {c["name"] for c in held}
    return [(c, o) for c, o in latest.values() if not c.clears and c.name not in names]


def _stored(cookie: PlaywrightCookie, now: float) -> StoredCookie:
    expires = cookie.get("expires", -1)
    return StoredCookie(
        name=cookie["name"],
        domain=cookie.get("domain", ""),
        path=cookie.get("path", "/"),
        secure=cookie.get("secure", False),
        http_only=cookie.get("httpOnly", False),
        same_site=cookie.get("sameSite", "Lax"),
        lifetime_s=None if expires is None or expires < 0 else max(0, round(expires - now)),
    )


def _refusal(cookie: SetCookie, where: Observed, host: str) -> str:
    why = refusal_reason(cookie, host)
    return f"the cookie {cookie.name} that {where.method} {where.path} set" + (f" ({why})" if why else "")


def refusal_reason(cookie: SetCookie, host: str) -> str:
    """Why a browser would refuse ``cookie`` from ``host`` (``""`` when none of the usual rules explains it)."""
    attributes = cookie.attributes
    secure = "secure" in attributes
    domain = attributes.get("domain", "").lstrip(".")
    if cookie.name.startswith("__Host-") and (not secure or domain or attributes.get("path", "") != "/"):
        return "a __Host- cookie needs Secure, Path=/ and no Domain"
    if cookie.name.startswith("__Secure-") and not secure:
        return "a __Secure- cookie needs Secure"
    if attributes.get("samesite", "").lower() == "none" and not secure:
        return "SameSite=None needs Secure"
    if domain and not _domain_matches(host, domain):
        return f"its Domain={domain} does not cover {host}"
    return ""


def looks_like_token(key: str, value: str, session_values: Iterable[str] = ()) -> bool:
    """Whether a Web Storage entry looks like a credential: a session ID, a JWT, an opaque value under a token name.

    ``session_values`` are the site's cookie values: a value holding one of them (16
    characters or more) is a copy of the session ID. A JSON value is searched one level
    deep (``{"access_token": "…"}``, as OAuth libraries store it).
    """
    text = value.strip().strip('"')
    if any(len(v) >= 16 and v in text for v in session_values):
        return True
    if _JWT.fullmatch(text):
        return True
    # Generated tokens mix letters and digits; a long word under a key like "author" does not.
    mixed = any(c.isdigit() for c in text) and any(c.isalpha() for c in text)
    if _TOKEN_KEY.search(key) and _OPAQUE.fullmatch(text) and mixed:
        return True
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return False
        if isinstance(data, dict):
            return any(isinstance(v, str) and looks_like_token(str(k), v, session_values) for k, v in data.items())
    return False


def check_browser_kept(
    session: SetCookie, stored: Sequence[StoredCookie], setter: Observed | None, host: str
) -> CheckResult:
    """The browser must have kept the session cookie the site set; say with which attributes."""
    item = "browser kept the session cookie"
    kept = next((c for c in stored if c.name == session.name), None)
    if kept is None:
        where = f" from {setter.method} {setter.path}" if setter is not None else ""
        why = refusal_reason(session, host)
        return CheckResult(
            item,
            Status.FAIL,
            f"Chromium refused the Set-Cookie of {session.name}{where}"
            + (f": {why}" if why else "")
            + "; a browser cannot keep this session",
        )
    notes = []
    if "samesite" not in session.attributes:
        notes.append(f"SameSite={kept.same_site} is the browser's default: the site set none")
    if "path" not in session.attributes and kept.path != "/":
        notes.append(f"Path={kept.path} comes from the request's path: the site set none")
    detail = kept.attributes() + (f" ({'; '.join(notes)})" if notes else "")
    return CheckResult(item, Status.PASS, detail)


def check_local_storage(keys: Sequence[StoredKey]) -> CheckResult:
    """A session token belongs in an HttpOnly cookie: in ``localStorage`` any script of the origin can read it."""
    item = "no session token in localStorage"
    tokens = [k.key for k in keys if k.area == "localStorage" and k.token]
    if tokens:
        shown = ", ".join(repr(k) for k in tokens[:5])
        return CheckResult(
            item,
            Status.WARN,
            f"localStorage holds {shown}: any script of the site (an XSS) can read it, and it outlives the browser "
            "session",
        )
    held = sum(1 for k in keys if k.area == "localStorage")
    return CheckResult(item, Status.PASS, f"none of its {held} keys looks like a token" if held else "it is empty")
