"""Audit a running site's session management from outside, over HTTP (``sessionward audit``).

The site can be built with any framework: the auditor only sends requests and reads
answers, as an attacker would. It follows the session-security checklist:

* the session cookie: ``HttpOnly``, ``Secure``, ``SameSite`` Lax/Strict, a ``Path``, no
  broad ``Domain``, a bounded lifetime, a ``__Host-`` prefix, a name that does not reveal
  the framework; and what its value holds (:mod:`sessionward.audit.values`: an ID, a
  signed ID, or the session data itself);
* the IDs over a sample of fresh ones (:mod:`sessionward.audit.ids`): length (entropy),
  uniqueness, no user data, randomness — every statistical verdict at a stated
  false-alarm rate of at most one in a million runs;
* strict mode: a well-formed ID the site never issued must not be adopted, neither by a
  page that starts sessions nor by a login;
* fixation: logging in while holding a pre-login ID must yield a new ID, and the
  pre-login ID must not become signed in;
* logout: the old cookie, replayed from another client, must stop working (destroyed
  server-side), and the browser's copy should be deleted;
* IDs in URLs: none in redirects or links, and none accepted from the query string;
* caching: answers that set or carry a session kept out of shared caches;
* security headers: HSTS (on https), a CSP, ``nosniff``, frame protection.

It signs in by a JSON POST or through the site's HTML login form
(:mod:`sessionward.audit.login`); the HTTP is :mod:`sessionward.audit.http` (every page
within a deadline, every body capped); the verdicts are pure functions of
:mod:`sessionward.audit.checks` and :mod:`sessionward.audit.ids`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

import httpx
import orjson

from sessionward.audit.checks import (
    CheckResult,
    Observed,
    SetCookie,
    Status,
    check_cookie_attributes,
    check_cookie_name,
    check_cookie_prefix,
    check_ids_in_urls,
    check_logout_clearing,
    check_security_headers,
    check_session_caching,
    check_strict_mode,
    check_transport,
    pick_session_cookie,
)
from sessionward.audit.forms import has_password_form
from sessionward.audit.http import MAX_BODY_BYTES, AuditDeadlineError, AuditError, Fetcher, Jar
from sessionward.audit.ids import ID_ITEMS, check_ids
from sessionward.audit.login import LoginResult, LoginVia, LogoutError, SignIn
from sessionward.audit.randomness import FIPS_BITS, id_bits
from sessionward.audit.report import AuditOptions, AuditReport
from sessionward.audit.values import OPAQUE, ValueKind, forge_value, read_cookie_value, read_sample

if TYPE_CHECKING:
    from sessionward.audit.browser import BrowserSignIn

__all__ = ["MAX_BODY_BYTES", "AuditError", "AuditOptions", "AuditReport", "SiteAuditor", "run_audit"]

DEFAULT_AUTH_PATH = "/api/session/status"
DEADLINE_ITEM = "audit finished within its deadline"
_LOGIN_ITEMS = (
    "session ID not accepted from the URL",
    "unknown session ID refused at login",
    "fixation on login",
    "logout invalidates the session",
    "logout clears the cookie",
)


def run_audit(auditor: SiteAuditor) -> AuditReport:
    """Run ``auditor`` to the end on a fresh event loop, then close it (the CLI's entry)."""

    async def go() -> AuditReport:
        try:
            return await auditor.run()
        finally:
            await auditor.aclose()

    return asyncio.run(go())


class SiteAuditor:
    """Runs the checklist against one site.

    Args:
        options: What to audit.
        client: An ``httpx.AsyncClient`` to use (tests inject one); made from ``options`` if absent.

    Raises:
        ValueError: ``options.url`` is not an http(s) URL.
    """

    def __init__(self, options: AuditOptions, client: httpx.AsyncClient | None = None) -> None:
        self.options = options
        parts = urlsplit(options.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{options.url!r} is not an http:// or https:// URL")
        try:
            httpx.URL(options.url)
        except httpx.InvalidURL as error:
            raise ValueError(f"{options.url!r} is not a valid URL ({error})") from None
        self.host = parts.hostname
        self.https = parts.scheme == "https"
        self.client = client or httpx.AsyncClient(timeout=options.timeout_s, verify=options.verify_tls)
        self.fetcher = Fetcher(
            options.url, self.client, page_timeout_s=options.timeout_s, audit_timeout_s=options.audit_timeout_s
        )
        credentials = options.credentials()
        judge = self._signed_in_by_check_url if options.auth_path else None
        self.signin = SignIn(self.fetcher, credentials, judge=judge) if credentials else None
        self.browser: BrowserSignIn | None = None
        if credentials is not None and options.browser:
            from sessionward.audit.browser import BrowserSignIn, default_chromium  # Playwright only when asked for

            chromium = options.browser_path or default_chromium() or "/usr/bin/chromium"
            self.signin = self.browser = BrowserSignIn(
                self.fetcher, credentials, judge=judge, chromium=chromium, verify_tls=options.verify_tls
            )
        self.cookie_name = options.cookie_name
        self.login_values: list[str] = []
        self.session_answers: list[Observed] = []
        self.probe: str | None = None
        self.sample_cut = False

    @property
    def seen(self) -> list[Observed]:
        """Every answer so far."""
        return self.fetcher.seen

    async def aclose(self) -> None:
        """Close the HTTP client (and the browser, with ``--browser``)."""
        try:
            if self.browser is not None:
                await self.browser.aclose()
        finally:
            await self.client.aclose()

    # -- probes ------------------------------------------------------------------------------

    async def authenticated(self, cookies: Mapping[str, str] | None, path: str) -> bool:
        """Tell whether a request with exactly ``cookies`` counts as signed in at ``path``."""
        return (await self._probe(cookies, path))[0]

    async def _probe(self, cookies: Mapping[str, str] | None, path: str) -> tuple[bool, Observed]:
        answer = await self.fetcher.fetch("GET", path, cookies=cookies)
        if not answer.ok:
            return False, answer
        try:
            body = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict) and "authenticated" in body:
            return bool(body["authenticated"]), answer
        return not has_password_form(answer.body), answer

    async def _signed_in_by_check_url(self, jar: Jar) -> bool:
        assert self.options.auth_path is not None
        return await self.authenticated(jar.cookies, self.options.auth_path)

    # -- the audit ---------------------------------------------------------------------------

    async def run(self) -> AuditReport:
        """Run every check; raise :class:`AuditError` when the site cannot be audited at all.

        When the audit's deadline passes, the report holds the checks that ran and a
        failed :data:`DEADLINE_ITEM` (an audit cut short must not read as a pass).
        """
        report = AuditReport(url=self.options.url)
        try:
            await self._audit(report)
        except AuditDeadlineError:
            report.add(
                DEADLINE_ITEM,
                Status.FAIL,
                f"stopped after {self.options.audit_timeout_s:g} s (--deadline): only the checks above ran",
            )
            return report
        if self.sample_cut:
            report.add(
                DEADLINE_ITEM,
                Status.WARN,
                f"the deadline ({self.options.audit_timeout_s:g} s) cut the sample at {report.sample_size} IDs",
            )
        return report

    async def _audit(self, report: AuditReport) -> None:
        report.checks.append(check_transport(self.options.url))
        home = await self.fetcher.fetch("GET", "")
        pre_login = [home]
        site_path = urlsplit(self.options.url).path.strip("/")
        for page in dict.fromkeys((self.options.login_page, self.options.login_path)):
            if page.strip("/") != site_path:
                pre_login.append(await self.fetcher.fetch("GET", page))
        first: LoginResult | None = None
        if self.signin is not None:
            first = await self.signin.login()
            if not first.ok:
                raise AuditError(first.problem)
            report.login = first.how
            session = self._session_cookie(first.answers)
        else:
            session = self._session_cookie(pre_login)
        if self.browser is not None:
            report.browser = self.browser.stored
            report.checks.extend(self.browser.checks(session))
            if session is not None and first is not None and session.name not in first.jar.cookies:
                report.checks.extend(check_security_headers(home, self.https))
                return  # the browser refused the session cookie: a browser has no session to test
        if session is None:
            where = "at login" if first is not None else "by the home page (pass --username/--password to log in)"
            report.add(
                "session cookie",
                Status.FAIL if first is not None else Status.SKIP,
                f"no session cookie was set {where}",
            )
            report.checks.extend(check_security_headers(home, self.https))
            return
        name = report.cookie_name = self.cookie_name = session.name
        report.checks.append(check_cookie_name(name))
        report.checks.extend(check_cookie_attributes(session, self.host))
        report.checks.append(check_cookie_prefix(session))
        answers = first.answers if first is not None else pre_login
        setter = next(r for r in reversed(answers) if r.cookie(name) is not None)
        self.session_answers.append(setter)
        cache = setter.headers.get("cache-control", "").lower()
        report.add(
            "Cache-Control on the cookie-setting response",
            Status.PASS if "no-store" in cache else Status.WARN,
            cache or "missing: a shared cache could store the Set-Cookie",
        )
        if first is not None:
            self._note_login(first, name)
            await self._login_checks(report, name, first, pre_login)
        else:
            for item in _LOGIN_ITEMS:
                report.add(item, Status.SKIP, "needs --username and --password")
        await self._strict_mode(report, name, session.value, pre_login)
        source = next((r for r in pre_login if (c := r.cookie(name)) is not None and c.value and not c.clears), None)
        values = await self._sample(report, name, source)
        # IDs sampled by logging in carry whatever a login puts in them; anonymous ones cannot.
        login_values = values if source is None else self.login_values
        findings = check_ids(values, self.options.username, login_values=login_values or None)
        report.encoding = findings.bits.encoding if findings.bits else None
        report.cookie_format = findings.sample.format.described if findings.sample else None
        id_sample = findings.sample is None or findings.sample.kind is ValueKind.ID
        stop = report.sample_stop if id_sample else None
        report.checks.extend(_noting(r, stop) for r in findings.results)
        known = [*values, *(c.value for r in self.seen for c in r.cookies if c.name == name and c.value)]
        known += [i for i in (read_cookie_value(v).session_id for v in known) if i]
        report.checks.append(check_ids_in_urls(self.seen, known, name))
        report.checks.append(check_session_caching(self.session_answers))
        report.checks.extend(check_security_headers(home, self.https))

    def _session_cookie(self, answers: list[Observed]) -> SetCookie | None:
        """The session cookie among what ``answers`` set (its latest ``Set-Cookie``)."""
        latest: dict[str, SetCookie] = {}
        for answer in answers:
            for cookie in answer.cookies:
                latest[cookie.name] = cookie
        if self.cookie_name is not None:
            found = latest.get(self.cookie_name)
            return found if found is not None and found.value and not found.clears else None
        return pick_session_cookie(list(latest.values()))

    def _note_login(self, result: LoginResult, name: str) -> None:
        """Keep a successful login's session ID (for the user-data check) and its answers (for caching)."""
        if not result.ok:
            return
        value = result.jar.cookies.get(name)
        if value:
            self.login_values.append(value)
        self.session_answers.extend(r for r in result.submission if r.cookie(name) is not None)

    async def _logout_quietly(self, result: LoginResult) -> None:
        if self.signin is not None and result.ok:
            with contextlib.suppress(LogoutError):  # nothing to log out with: the logout check says so
                await self.signin.logout(result)

    async def _login_checks(
        self, report: AuditReport, name: str, login: LoginResult, pre_login: list[Observed]
    ) -> None:
        login_value = login.jar.cookies[name]
        self.probe = probe = await self._find_probe(name, login_value, login)
        unusable = (
            f"{self.options.auth_path or DEFAULT_AUTH_PATH} does not tell a signed-in request from an anonymous one"
            "; set --check-url"
        )
        url_item = _LOGIN_ITEMS[0]
        if probe is not None:
            in_query = await self.authenticated(None, _with_query(probe, name, login_value))
            in_path = await self.authenticated(None, _with_path_parameter(probe, login_value))
            if in_query or in_path:
                report.add(url_item, Status.FAIL, "a live ID in the URL signed the request in")
            else:
                report.add(url_item, Status.PASS, "query and ;jsessionid= IDs are ignored")
        else:
            report.add(url_item, Status.SKIP, unusable)
        await self._strict_at_login(report, name, login_value, probe)
        await self._fixation(report, name, login_value, pre_login, probe)
        assert self.signin is not None
        try:
            answers = await self.signin.logout(login)
        except LogoutError as error:
            report.add(_LOGIN_ITEMS[3], Status.SKIP, str(error))
            report.add(_LOGIN_ITEMS[4], Status.SKIP, str(error))
            return
        if probe is None:
            report.add(_LOGIN_ITEMS[3], Status.SKIP, unusable)
        elif await self.authenticated({name: login_value}, probe):
            report.add(
                _LOGIN_ITEMS[3],
                Status.FAIL,
                "the old cookie, replayed from another client after logout, still signs in: "
                "the session is not destroyed server-side",
            )
        else:
            report.add(
                _LOGIN_ITEMS[3], Status.PASS, "the old cookie, replayed from another client after logout, is dead"
            )
        report.checks.append(check_logout_clearing(answers, name, login_value))

    async def _find_probe(self, name: str, value: str, login: LoginResult) -> str | None:
        """A page that answers the live session as signed in and a visitor without it as not."""
        candidates = [self.options.auth_path or DEFAULT_AUTH_PATH]
        landing = login.landing
        if self.options.auth_path is None and landing is not None and landing.ok:
            landed = urlsplit(landing.url).path
            if landed.strip("/") not in ("", self.options.login_page.strip("/")):
                candidates.append(landing.url)
        for candidate in candidates:
            signed_in, answer = await self._probe({name: value}, candidate)
            if signed_in and not await self.authenticated(None, candidate):
                self.session_answers.append(answer)
                return candidate
        return None

    async def _strict_at_login(self, report: AuditReport, name: str, login_value: str, probe: str | None) -> None:
        item = _LOGIN_ITEMS[1]
        assert self.signin is not None
        planted = forge_value(read_cookie_value(login_value))
        result = await self.signin.login(Jar({name: planted}))
        self._note_login(result, name)
        after = result.jar.cookies.get(name)
        if not result.ok:
            report.add(item, Status.PASS, "a login carrying a made-up ID was refused; it never signed in")
        elif after is not None and unquote(after) == unquote(planted):
            report.add(item, Status.FAIL, "logging in while holding a made-up ID kept that ID: the site adopts IDs")
        elif probe is not None and await self.authenticated({name: planted}, probe):
            report.add(item, Status.FAIL, "a made-up ID is signed in after a login that carried it")
        else:
            report.add(
                item, Status.PASS, "a login carrying a made-up ID got a new one; the made-up one is not signed in"
            )
        await self._logout_quietly(result)

    async def _fixation(
        self, report: AuditReport, name: str, login_value: str, pre_login: list[Observed], probe: str | None
    ) -> None:
        item = _LOGIN_ITEMS[2]
        assert self.signin is not None
        issued = next(
            (c.value for r in pre_login if (c := r.cookie(name)) is not None and c.value and not c.clears), None
        )
        pre_id = issued or forge_value(read_cookie_value(login_value))
        origin = "a server-issued pre-login ID" if issued else "a planted ID of the same shape"
        result = await self.signin.login(Jar({name: pre_id}))
        self._note_login(result, name)
        post_id = result.jar.cookies.get(name)
        pre_signed_in = probe is not None and await self.authenticated({name: pre_id}, probe)
        if result.ok and (post_id is None or post_id == pre_id):
            report.add(item, Status.FAIL, f"logging in with {origin} kept that ID: session fixation")
        elif pre_signed_in:
            report.add(item, Status.FAIL, f"{origin} is signed in after the victim's login")
        elif result.ok:
            report.add(item, Status.PASS, f"logging in with {origin} issued a new ID; the old one is not signed in")
        else:
            report.add(item, Status.PASS, f"login with {origin} was refused; it never signed in")
        await self._logout_quietly(result)

    async def _strict_mode(self, report: AuditReport, name: str, value: str, pre_login: list[Observed]) -> None:
        """Send a made-up, well-formed ID to a page that starts sessions (or the probe) and see if it is taken."""
        read = read_cookie_value(value)
        if read.kind is not ValueKind.ID:
            report.add(
                "unknown session ID refused (strict mode)",
                Status.SKIP,
                "the cookie holds signed or sealed session data, not an ID to adopt",
            )
            return
        source = next((r for r in pre_login if (c := r.cookie(name)) is not None and c.value and not c.clears), None)
        target = source.target if source is not None else (self.probe or "")
        planted = forge_value(read)
        answer = await self.fetcher.fetch("GET", target, cookies={name: planted})
        signed = read.format != OPAQUE
        report.checks.append(
            check_strict_mode(planted, answer, name, issues_sessions=source is not None, signed=signed)
        )

    async def _sample(self, report: AuditReport, name: str, source: Observed | None) -> list[str]:
        """Collect fresh session cookie values from ``source`` (else by logging in) until the tests have their bits."""
        if source is not None:
            report.sample_source = f"GET {source.path}"
        elif self.signin is not None and self.signin.via is LoginVia.FORM:
            report.sample_source = f"login and logout through the form on {self.options.login_page}"
        else:
            report.sample_source = f"login and logout at {self.options.login_path}"
        values: list[str] = []
        try:
            while len(values) < self.options.max_samples:
                value, missing = await self._fresh_value(name, source, len(values) + 1)
                if not value:
                    report.sample_stop = f"{missing}; sampled {len(values)} IDs"
                    break
                values.append(value)
                if len(values) >= 2 and _enough(values):
                    break
        except AuditDeadlineError:
            self.sample_cut = True
        report.sample_size = len(values)
        return values

    async def _fresh_value(self, name: str, source: Observed | None, number: int) -> tuple[str | None, str]:
        """The ``number``-th fresh session cookie value, or ``None`` and why the site gave none."""
        if source is not None:
            answer = await self.fetcher.fetch("GET", source.target)
            cookie = answer.cookie(name)
            if cookie is not None and not cookie.clears and cookie.value:
                return cookie.value, ""
            return None, (
                f"the site issued no new cookie at request {number} (GET {answer.path} answered {answer.status})"
            )
        if self.signin is None:
            return None, "no page issues sessions and there is no account to log in with"
        result = await self.signin.login()
        if not result.ok:  # e.g. a login rate limit: judge what was collected
            status = f" (it answered {result.landing.status})" if result.landing is not None else ""
            return None, f"login {number} failed{status}"
        await self._logout_quietly(result)
        value = result.jar.cookies.get(name)
        return value, "" if value else f"login {number} issued no session cookie"


def _noting(result: CheckResult, stop: str | None) -> CheckResult:
    """``result``, with why the sample ended early added when it is an ID check skipped for want of IDs."""
    if stop is None or result.status is not Status.SKIP or result.item not in ID_ITEMS:
        return result
    return replace(result, detail=f"{result.detail} ({stop})")


def _enough(values: list[str]) -> bool:
    """Whether the sample is enough: 20,000 bits of IDs (checked every ten), or two values of data."""
    sample = read_sample(values)
    if sample.kind is not ValueKind.ID:
        return True
    return len(values) % 10 == 0 and len(values) >= 20 and id_bits(sample.ids).total >= FIPS_BITS


def _with_query(target: str, name: str, value: str) -> str:
    separator = "&" if "?" in target else "?"
    return f"{target}{separator}{quote(name, safe='')}={quote(unquote(value), safe='')}"


def _with_path_parameter(target: str, value: str) -> str:
    path, question, query = target.partition("?")
    return f"{path};jsessionid={quote(unquote(value), safe='')}{question}{query}"
