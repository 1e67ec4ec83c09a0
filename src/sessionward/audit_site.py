"""Audit a running site's session management from outside, over HTTP (``sessionward audit``).

The site can be built with any framework: the auditor only sends requests and reads
answers, as an attacker would. It follows seed 000's checklist:

* the session cookie: ``HttpOnly``, ``Secure``, ``SameSite`` Lax/Strict, a ``Path``, no
  broad ``Domain``, a bounded lifetime, a name that does not reveal the framework;
* the IDs over a sample of fresh ones: length (entropy), uniqueness, no user data, and
  randomness (:mod:`sessionward.audit_randomness`: FIPS 140-2 tests and counter checks);
* fixation: logging in while holding a pre-login ID must yield a new ID, and the
  pre-login ID must not become signed in;
* logout: the old cookie must stop working (destroyed server-side, not only cleared);
* IDs in URLs: none in redirects or links, and none accepted from the query string;
* security headers: HSTS (on https), a CSP, ``nosniff``, frame protection, and
  ``Cache-Control: no-store`` on the response that sets the session cookie.

This module does the HTTP; the verdicts are the pure functions of
:mod:`sessionward.audit_checks`. The audited site may be hostile: every response is
streamed, and its body read only up to :data:`MAX_BODY_BYTES` once its Content-Encoding is
undone (a gzip bomb inflates no further), or until ``timeout_s`` has passed (a body that
never ends). What the audit needs of a page is its head and forms, never a whole download.

Cookies are sent by hand (a ``Cookie`` header per request) rather than through a cookie
jar, so that a ``Secure`` cookie works against a local http:// site as browsers allow,
and so that each probe carries exactly the ID it means to test.
"""

from __future__ import annotations

import codecs
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx
import orjson

from sessionward.audit_checks import (
    CheckResult,
    Observed,
    SetCookie,
    Status,
    check_cookie_attributes,
    check_cookie_name,
    check_ids,
    check_ids_in_urls,
    check_security_headers,
    check_transport,
    forge_like,
    pick_session_cookie,
)
from sessionward.audit_randomness import FIPS_BITS, id_bits
from sessionward.errors import SessionwardError

MAX_BODY_BYTES = 1 << 20
"""Most bytes of a response body the auditor reads (1 MiB), counted after decompression.

The rest of the body is never read (nor inflated): the connection is dropped and the body
is treated as truncated there. It bounds what a gzip bomb costs, whatever its ratio. At
most twice as many bytes are read from the wire, so that compressed data inflating to
nothing (empty deflate blocks) cannot keep the auditor reading either.
"""
ACCEPT_ENCODING = "gzip, deflate"
"""The content codings the auditor asks for and can undo within :data:`MAX_BODY_BYTES`."""
MAX_CODINGS = 3
"""Most content codings stacked on one body (``Content-Encoding: gzip, gzip``) that are undone."""
_INFLATE_STEP = 64 * 1024
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_TEXT_TYPES = ("text/", "json", "xml", "javascript")


class AuditError(SessionwardError):
    """The audit could not be carried out (site unreachable, login impossible)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditOptions:
    """What to audit and how.

    Attributes:
        url: The site's base URL (``http://`` or ``https://``).
        username: A test account's name; without it the login-based checks are skipped.
        password: Its password.
        login_path: Where ``{"username", "password"}`` is POSTed as JSON.
        login_page: A page fetched before login, where an HTML-form site may start an
            anonymous session (whose ID the fixation check then tries to carry over).
        logout_path: Where a POST logs out.
        auth_path: A page that tells a signed-in request from an anonymous one: 2xx when
            signed in (or a JSON ``"authenticated"`` field), anything else when not.
        cookie_name: The session cookie's name, when guessing it is not wanted.
        max_samples: Most fresh IDs to collect for the randomness tests.
        timeout_s: Timeout of each request.
        verify_tls: Check the site's TLS certificate.
    """

    url: str
    username: str | None = None
    password: str | None = None
    login_path: str = "/api/login"
    login_page: str = "/login"
    logout_path: str = "/api/logout"
    auth_path: str = "/api/session/status"
    cookie_name: str | None = None
    max_samples: int = 200
    timeout_s: float = 10.0
    verify_tls: bool = True

    @property
    def has_credentials(self) -> bool:
        """Whether the login-based checks can run."""
        return self.username is not None and self.password is not None


@dataclass(slots=True)
class AuditReport:
    """The audit's findings, in checklist order."""

    url: str
    cookie_name: str | None = None
    sample_size: int = 0
    sample_source: str | None = None
    encoding: str | None = None
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Whether any check failed."""
        return any(c.status is Status.FAIL for c in self.checks)

    def add(self, item: str, status: Status, detail: str) -> None:
        """Record a check."""
        self.checks.append(CheckResult(item, status, detail))

    def as_dict(self) -> dict[str, object]:
        """The report as JSON-ready data (``sessionward audit --json``)."""
        return {
            "url": self.url,
            "cookie_name": self.cookie_name,
            "sample_size": self.sample_size,
            "sample_source": self.sample_source,
            "encoding": self.encoding,
            "failed": self.failed,
            "checks": [{"item": c.item, "status": c.status.value, "detail": c.detail} for c in self.checks],
        }


class SiteAuditor:
    """Runs the checklist against one site.

    Args:
        options: What to audit.
        client: An ``httpx.Client`` to use (tests inject one); made from ``options`` if absent.
    """

    def __init__(self, options: AuditOptions, client: httpx.Client | None = None) -> None:
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
        self.client = client or httpx.Client(timeout=options.timeout_s, verify=options.verify_tls)
        self.seen: list[Observed] = []

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()

    # -- requests ---------------------------------------------------------------------------

    def request(
        self, method: str, path: str, *, cookie: tuple[str, str] | None = None, json: object = None
    ) -> Observed:
        """Send one request carrying exactly ``cookie``; never follow redirects.

        ``path`` is taken from the site's root (``/api/login``); ``""`` is the audited URL.
        """
        url = urljoin(self.options.url, path) if path else self.options.url
        headers = {"accept": "application/json, text/html;q=0.9", "accept-encoding": ACCEPT_ENCODING}
        if cookie is not None:
            headers["cookie"] = f"{cookie[0]}={cookie[1]}"
        content = orjson.dumps(json) if json is not None else None
        if content is not None:
            headers["content-type"] = "application/json"
        # --timeout bounds each network operation (httpx) and the reading of the body.
        deadline = time.monotonic() + self.options.timeout_s
        try:
            with self.client.stream(method, url, headers=headers, content=content, follow_redirects=False) as response:
                body = _text(response, deadline)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise AuditError(f"cannot reach {url}: {error or type(error).__name__}") from None
        finally:
            # Each probe chooses its cookie; nothing may ride along from a previous answer.
            self.client.cookies.clear()
        cookies = [c for c in (SetCookie.parse(h) for h in response.headers.get_list("set-cookie")) if c is not None]
        shown = urlsplit(url).path or "/"
        observed = Observed(method, shown, path, response.status_code, response.headers, cookies, body)
        self.seen.append(observed)
        return observed

    def login(self, cookie: tuple[str, str] | None = None) -> Observed:
        """POST the credentials as JSON to the login path."""
        body = {"username": self.options.username, "password": self.options.password}
        return self.request("POST", self.options.login_path, cookie=cookie, json=body)

    def logout(self, name: str, value: str) -> Observed:
        """POST to the logout path with the session cookie."""
        return self.request("POST", self.options.logout_path, cookie=(name, value))

    def authenticated(self, name: str | None, value: str | None, *, path: str | None = None) -> bool:
        """Tell whether a request with this cookie counts as signed in at the auth path."""
        cookie = (name, value) if name is not None and value is not None else None
        answer = self.request("GET", path or self.options.auth_path, cookie=cookie)
        if not answer.ok:
            return False
        try:
            body = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            return True
        if isinstance(body, dict) and "authenticated" in body:
            return bool(body["authenticated"])
        return True

    # -- the audit ------------------------------------------------------------------------

    def run(self) -> AuditReport:
        """Run every check; raise :class:`AuditError` when the site cannot be audited at all."""
        report = AuditReport(url=self.options.url)
        report.checks.append(check_transport(self.options.url))
        home = self.request("GET", "")
        pre_login = [home]
        site_path = urlsplit(self.options.url).path.strip("/")
        for page in dict.fromkeys((self.options.login_page, self.options.login_path)):
            if page.strip("/") != site_path:
                pre_login.append(self.request("GET", page))
        session: SetCookie | None = None
        first: Observed | None = None
        if self.options.has_credentials:
            first = self.login()
            if not first.ok:
                raise AuditError(
                    f"login at {self.options.login_path} answered {first.status}; check --username/--password "
                    "and --login-path (a JSON POST of username and password)"
                )
            session = (
                first.cookie(self.options.cookie_name)
                if self.options.cookie_name
                else pick_session_cookie(first.cookies)
            )
        else:
            for response in pre_login:
                found = (
                    response.cookie(self.options.cookie_name)
                    if self.options.cookie_name
                    else pick_session_cookie(response.cookies)
                )
                session = session or found
        if session is None:
            where = "at login" if first is not None else "by the home page (pass --username/--password to log in)"
            report.add(
                "session cookie",
                Status.FAIL if first is not None else Status.SKIP,
                f"no session cookie was set {where}",
            )
            report.checks.extend(check_security_headers(home, self.https))
            return report
        name = report.cookie_name = session.name
        report.checks.append(check_cookie_name(name))
        report.checks.extend(check_cookie_attributes(session, self.host))
        setter = first or next(r for r in pre_login if r.cookie(name) is not None)
        cache = setter.headers.get("cache-control", "").lower()
        report.add(
            "Cache-Control on the cookie-setting response",
            Status.PASS if "no-store" in cache else Status.WARN,
            cache or "missing: a shared cache could store the Set-Cookie",
        )
        if first is not None:
            self._login_checks(report, name, session.value, pre_login)
        else:
            for item in ("fixation on login", "logout invalidates the session", "session ID not accepted from the URL"):
                report.add(item, Status.SKIP, "needs --username and --password")
        ids = self._sample(report, name, pre_login)
        bits, results = check_ids(ids, self.options.username)
        report.encoding = bits.encoding if bits else None
        report.checks.extend(results)
        known_ids = ids + [c.value for r in self.seen for c in r.cookies if c.name == name and c.value]
        report.checks.append(check_ids_in_urls(self.seen, known_ids, name))
        report.checks.extend(check_security_headers(home, self.https))
        return report

    def _login_checks(self, report: AuditReport, name: str, login_id: str, pre_login: list[Observed]) -> None:
        probe = self.authenticated(name, login_id) and not self.authenticated(None, None)
        unusable = f"{self.options.auth_path} does not tell a signed-in request from an anonymous one; set --auth-path"
        if probe:
            in_query = self.authenticated(None, None, path=f"{self.options.auth_path}?{name}={login_id}")
            in_path = self.authenticated(None, None, path=f"{self.options.auth_path};jsessionid={login_id}")
            if in_query or in_path:
                report.add(
                    "session ID not accepted from the URL", Status.FAIL, "a live ID in the URL signed the request in"
                )
            else:
                report.add(
                    "session ID not accepted from the URL", Status.PASS, "query and ;jsessionid= IDs are ignored"
                )
        else:
            report.add("session ID not accepted from the URL", Status.SKIP, unusable)
        self._fixation(report, name, login_id, pre_login, probe)
        if not probe:
            report.add("logout invalidates the session", Status.SKIP, unusable)
            return
        answer = self.logout(name, login_id)
        if self.authenticated(name, login_id):
            report.add(
                "logout invalidates the session",
                Status.FAIL,
                "the old cookie still signs in after logout: the session is not destroyed server-side",
            )
            return
        cleared = answer.cookie(name)
        note = (
            "and the cookie was cleared" if cleared is not None and cleared.clears else "(the cookie was not cleared)"
        )
        report.add("logout invalidates the session", Status.PASS, f"the old ID is dead after logout {note}")

    def _fixation(self, report: AuditReport, name: str, login_id: str, pre_login: list[Observed], probe: bool) -> None:
        issued = next((c.value for r in pre_login if (c := r.cookie(name)) is not None and c.value), None)
        pre_id = issued or forge_like(login_id)
        origin = "a server-issued pre-login ID" if issued else "a planted ID of the same shape"
        answer = self.login(cookie=(name, pre_id))
        set_again = answer.cookie(name)
        post_id = set_again.value if set_again is not None and not set_again.clears else None
        pre_signed_in = probe and self.authenticated(name, pre_id)
        if answer.ok and (post_id is None or post_id == pre_id):
            report.add("fixation on login", Status.FAIL, f"logging in with {origin} kept that ID: session fixation")
        elif pre_signed_in:
            report.add("fixation on login", Status.FAIL, f"{origin} is signed in after the victim's login")
        elif answer.ok:
            report.add(
                "fixation on login",
                Status.PASS,
                f"logging in with {origin} issued a new ID; the old one is not signed in",
            )
        else:
            report.add(
                "fixation on login",
                Status.PASS,
                f"login with {origin} was refused ({answer.status}); it never signed in",
            )
        if answer.ok and post_id:
            self.logout(name, post_id)

    def _sample(self, report: AuditReport, name: str, pre_login: list[Observed]) -> list[str]:
        """Collect fresh IDs until the FIPS tests have their 20,000 bits or the cap is reached."""
        source = next((r for r in pre_login if r.cookie(name) is not None), None)
        ids: list[str] = []
        while len(ids) < self.options.max_samples:
            if source is not None:
                cookie = self.request("GET", source.target).cookie(name)
            else:
                answer = self.login()
                if not answer.ok:
                    break  # e.g. a login rate limit: judge what was collected
                cookie = answer.cookie(name)
                if cookie is not None and cookie.value:
                    self.logout(name, cookie.value)
            if cookie is None or not cookie.value:
                break
            ids.append(cookie.value)
            if len(ids) % 10 == 0 and len(ids) >= 20 and id_bits(ids).total >= FIPS_BITS:
                break
        report.sample_size = len(ids)
        report.sample_source = (
            f"GET {source.path}" if source is not None else f"login and logout at {self.options.login_path}"
        )
        return ids


def _text(response: httpx.Response, deadline: float) -> str:
    """The start of a textual body (HTML, JSON, XML, scripts), decoded; ``""`` for any other body."""
    kind = response.headers.get("content-type", "")
    if not any(t in kind for t in _TEXT_TYPES):
        return ""  # not read at all
    return read_body(response, deadline=deadline).decode(_charset(response), errors="replace")


def _charset(response: httpx.Response) -> str:
    charset = response.charset_encoding
    if charset:
        try:
            return codecs.lookup(charset).name
        except LookupError:
            pass
    return "utf-8"


def read_body(response: httpx.Response, *, limit: int = MAX_BODY_BYTES, deadline: float | None = None) -> bytes:
    """Read at most ``limit`` bytes of a streamed response's body, its Content-Encoding undone.

    Reading ends at the end of the body, or of its compressed stream. It stops early, the
    body taken as truncated there, at ``limit`` decoded bytes, at ``2 * limit`` bytes from
    the wire, at the ``deadline`` (a ``time.monotonic()`` value), or at corrupt compressed
    data. No decoding step inflates more than 64 KiB at once, so memory stays near
    ``limit`` even for stacked codings (``Content-Encoding: gzip, gzip``). A body in a
    coding the auditor did not ask for (br, zstd, …), or in more than :data:`MAX_CODINGS`,
    reads as empty. Network errors are raised as httpx raises them.
    """
    listed = response.headers.get_list("content-encoding", split_commas=True)
    codings = [c.lower() for c in listed if c.lower() not in ("", "identity")]
    if len(codings) > MAX_CODINGS or any(c not in ("gzip", "x-gzip", "deflate") for c in codings):
        return b""
    chunks: Iterable[bytes] = _wire(response, 2 * limit)
    for coding in reversed(codings):  # the last coding listed was applied last
        chunks = _inflate(chunks, raw_fallback=coding == "deflate", wbits=_WBITS[coding])
    body = bytearray()
    for chunk in chunks:
        body += chunk[: limit - len(body)]
        if len(body) >= limit or (deadline is not None and time.monotonic() > deadline):
            break
    return bytes(body)


def _wire(response: httpx.Response, limit: int) -> Iterator[bytes]:
    read = 0
    for chunk in response.iter_raw():
        yield chunk
        read += len(chunk)
        if read >= limit:
            return


def _inflate(chunks: Iterable[bytes], *, wbits: int, raw_fallback: bool) -> Iterator[bytes]:
    """Undo one gzip or deflate coding, yielding at most ``_INFLATE_STEP`` bytes at a time.

    ``raw_fallback``: "deflate" bodies are meant to be zlib streams but are sometimes raw
    deflate; like httpx, read a stream whose first bytes are not zlib as raw deflate.
    """
    inflater = zlib.decompressobj(wbits)
    first = True
    for chunk in chunks:
        data = chunk
        while True:
            try:
                out = inflater.decompress(data, _INFLATE_STEP)
            except zlib.error:
                if first and raw_fallback:
                    inflater, first = zlib.decompressobj(-zlib.MAX_WBITS), False
                    continue
                return  # corrupt: keep what was inflated so far
            first = False
            if out:
                yield out
            if inflater.eof:
                return  # anything after the stream's end is ignored
            data = inflater.unconsumed_tail
            if not data and len(out) < _INFLATE_STEP:
                break  # this chunk is used up and nothing more is pending
            if not out:
                return  # input left but no progress: never loop on it
