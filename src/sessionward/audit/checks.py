"""The audit's checks on what a site answered: pure functions, no I/O.

Each check takes what :class:`~sessionward.audit.site.SiteAuditor` observed (parsed
``Set-Cookie`` headers, response headers and bodies, a sample of fresh IDs) and returns
:class:`CheckResult` lines for the report. Only a ``fail`` makes the audit fail: ``warn``
marks a weaker choice than the checklist recommends, ``skip`` a check that could not run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import ip_address
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx

FRAMEWORK_COOKIE_NAMES = frozenset(
    name.lower()
    for name in (
        "PHPSESSID",
        "JSESSIONID",
        "ASP.NET_SessionId",
        "ASPSESSIONID",
        "connect.sid",
        "session",
        "sessionid",
        "session_id",
        "_session_id",
        "laravel_session",
        "ci_session",
        "CFID",
        "CFTOKEN",
        "rack.session",
        "express:sess",
        "koa.sess",
        "koa:sess",
        "beaker.session.id",
        "sails.sid",
        "web2py_session",
        "symfony",
        "cakephp",
        "_flask_session",
    )
)
MAX_COOKIE_LIFETIME_S = 24 * 3600
MIN_HSTS_MAX_AGE_S = 180 * 24 * 3600
_URL_ATTRIBUTE = re.compile(r"""(?:href|src|action|formaction)\s*=\s*["']?([^"'\s>]+)""", re.IGNORECASE)
_SESSION_PARAMETER = re.compile(r"[;?&](?:jsessionid|phpsessid|sessionid|session_id|sid|session)=", re.IGNORECASE)


class Status(StrEnum):
    """The outcome of one check; only ``fail`` makes the audit fail."""

    PASS = "pass"  # noqa: S105 - a check status, not a password
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One line of the report."""

    item: str
    status: Status
    detail: str


@dataclass(frozen=True, slots=True)
class SetCookie:
    """One parsed ``Set-Cookie`` header; attribute names are lower-cased."""

    name: str
    value: str
    attributes: dict[str, str]

    @classmethod
    def parse(cls, header: str) -> SetCookie | None:
        """Parse a ``Set-Cookie`` value; ``None`` if it has no ``name=value`` pair."""
        first, *rest = header.split(";")
        name, sep, value = first.partition("=")
        if not sep or not name.strip():
            return None
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        attributes: dict[str, str] = {}
        for part in rest:
            key, _, attribute = part.partition("=")
            if key.strip():
                attributes[key.strip().lower()] = attribute.strip()
        return cls(name.strip(), value, attributes)

    @property
    def max_age(self) -> int | None:
        """The ``Max-Age`` in seconds, if one parses."""
        try:
            return int(self.attributes["max-age"])
        except (KeyError, ValueError):
            return None

    @property
    def clears(self) -> bool:
        """Whether this header deletes the cookie (empty value or ``Max-Age`` <= 0)."""
        age = self.max_age
        return self.value == "" or (age is not None and age <= 0) or "1970" in self.attributes.get("expires", "")


@dataclass(slots=True)
class Observed:
    """What the auditor kept of one response."""

    method: str
    path: str
    target: str
    status: int
    headers: httpx.Headers
    cookies: list[SetCookie]
    body: str
    url: str = ""
    """The absolute URL that was fetched (links and form actions are resolved against it)."""

    def cookie(self, name: str | None) -> SetCookie | None:
        """The last ``Set-Cookie`` for ``name`` in this response."""
        found = [c for c in self.cookies if c.name == name]
        return found[-1] if found else None

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300


def check_cookie_name(name: str) -> CheckResult:
    """A session cookie's name must not reveal the framework (PHPSESSID → sid)."""
    item = "cookie name is generic"
    lowered = name.lower()
    if lowered in FRAMEWORK_COOKIE_NAMES or lowered.startswith("aspsessionid"):
        return CheckResult(item, Status.FAIL, f"{name!r} is a framework default; use a neutral name such as 'sid'")
    if lowered.endswith("_session") or lowered.endswith(".sid"):
        return CheckResult(item, Status.WARN, f"{name!r} looks like a framework's naming pattern")
    return CheckResult(item, Status.PASS, f"{name!r}")


def check_cookie_attributes(cookie: SetCookie, site_host: str) -> list[CheckResult]:
    """Check the attributes of the ``Set-Cookie`` that carried a session ID."""
    attributes = cookie.attributes
    results = [
        CheckResult("cookie HttpOnly", Status.PASS, "scripts cannot read the ID")
        if "httponly" in attributes
        else CheckResult("cookie HttpOnly", Status.FAIL, "missing: an XSS can read the session ID"),
        CheckResult("cookie Secure", Status.PASS, "sent over HTTPS only")
        if "secure" in attributes
        else CheckResult("cookie Secure", Status.FAIL, "missing: the ID can leak over plain HTTP"),
    ]
    same_site = attributes.get("samesite", "").lower()
    if same_site in ("lax", "strict"):
        results.append(CheckResult("cookie SameSite", Status.PASS, f"SameSite={same_site.capitalize()}"))
    else:
        shown = f"SameSite={attributes['samesite']}" if "samesite" in attributes else "missing"
        results.append(CheckResult("cookie SameSite", Status.FAIL, f"{shown}: use Lax or Strict against CSRF"))
    path = attributes.get("path")
    if path:
        results.append(CheckResult("cookie Path", Status.PASS, f"Path={path}"))
    else:
        results.append(
            CheckResult("cookie Path", Status.FAIL, "missing: the browser scopes it to the login URL's folder")
        )
    domain = attributes.get("domain", "").lstrip(".").lower()
    if not domain:
        results.append(CheckResult("cookie Domain", Status.PASS, "no Domain: the cookie stays on this host"))
    elif domain == site_host.lower():
        results.append(CheckResult("cookie Domain", Status.WARN, f"Domain={domain} also sends it to every subdomain"))
    else:
        results.append(CheckResult("cookie Domain", Status.FAIL, f"Domain={domain} is broader than {site_host}"))
    age = cookie.max_age
    if age is None and "expires" not in attributes:
        results.append(CheckResult("cookie lifetime", Status.PASS, "a browser-session cookie"))
    elif age is not None and age <= MAX_COOKIE_LIFETIME_S:
        results.append(CheckResult("cookie lifetime", Status.PASS, f"Max-Age={age}"))
    else:
        shown = f"Max-Age={age}" if age is not None else f"Expires={attributes.get('expires')}"
        results.append(CheckResult("cookie lifetime", Status.WARN, f"{shown}: a long-lived persistent cookie"))
    return results


def check_ids_in_urls(responses: Iterable[Observed], ids: Iterable[str], cookie_name: str | None) -> CheckResult:
    """No session ID may appear in a redirect or a link (URL rewriting leaks it via Referer, logs).

    An answer that only hands back what its own request carried in the URL is not
    leaking: a login redirect puts the page asked for in ``next=``
    (``/login?next=/profile%3Fsid%3D<id>`` in answer to ``/profile?sid=<id>``, the
    auditor's own probe), and a slash-appending redirect keeps the query. So in each
    answer, the IDs its request URL carried, and the query or path parameters holding
    them, are left out; any other known ID, a request URL's ID the answer moves
    elsewhere (into a path), and any session-named parameter still count.
    """
    item = "no session ID in redirects or links"
    known = [i for i in set(ids) if len(i) >= 8]
    names = re.compile(rf"[;?&]{re.escape(cookie_name)}=") if cookie_name else None
    for response in responses:
        sent = response.url or response.target
        placed = [i for i in known if _holds(sent, i)]
        others = [i for i in known if i not in placed]
        urls = [response.headers.get("location", ""), *_URL_ATTRIBUTE.findall(response.body)]
        for url in filter(None, urls):
            bare = _without_echoes(url, placed) if placed else url
            if any(_holds(url, i) for i in others) or any(_holds(bare, i) for i in placed):
                return CheckResult(
                    item, Status.FAIL, f"{response.method} {response.path} put a session ID in {url[:80]!r}"
                )
            if _SESSION_PARAMETER.search(bare) or (names is not None and names.search(bare)):
                return CheckResult(item, Status.FAIL, f"{response.method} {response.path} links to {url[:80]!r}")
    return CheckResult(item, Status.PASS, "none in Location headers or page links")


def _holds(text: str, session_id: str) -> bool:
    return session_id in text or quote(session_id, safe="") in text


def _without_echoes(url: str, echoed: Sequence[str]) -> str:
    """``url`` without the query pairs, ``;`` path parameters and fragment that hold one of ``echoed``."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL a browser would follow (a broken IPv6 host): judged as it is
        return url

    def clean(pieces: list[str]) -> list[str]:
        return [p for p in pieces if not any(_holds(p, i) for i in echoed)]

    path, *parameters = parts.path.split(";")
    path = ";".join([path, *clean(parameters)])
    query = "&".join(clean(parts.query.split("&")))
    fragment = "" if any(_holds(parts.fragment, i) for i in echoed) else parts.fragment
    return urlunsplit((parts.scheme, parts.netloc, path, query, fragment))


def check_security_headers(home: Observed, https: bool) -> list[CheckResult]:
    """Check the response headers of the site's home page."""
    headers = home.headers
    results = []
    hsts = headers.get("strict-transport-security")
    if not https:
        results.append(CheckResult("HSTS", Status.SKIP, "the site was audited over http; HSTS applies to https"))
    elif hsts is None:
        results.append(CheckResult("HSTS", Status.FAIL, "no Strict-Transport-Security header"))
    else:
        match = re.search(r"max-age\s*=\s*\"?(\d+)", hsts, re.IGNORECASE)
        age = int(match.group(1)) if match else 0
        status = Status.PASS if age >= MIN_HSTS_MAX_AGE_S else Status.WARN
        results.append(CheckResult("HSTS", status, hsts))
    csp = headers.get("content-security-policy")
    if csp:
        results.append(CheckResult("Content-Security-Policy", Status.PASS, csp[:80]))
    elif headers.get("content-security-policy-report-only"):
        results.append(CheckResult("Content-Security-Policy", Status.WARN, "report-only: not enforced"))
    else:
        results.append(
            CheckResult(
                "Content-Security-Policy", Status.FAIL, "missing: XSS, which can ride the session, is not contained"
            )
        )
    nosniff = headers.get("x-content-type-options", "").strip().lower() == "nosniff"
    results.append(
        CheckResult("X-Content-Type-Options", Status.PASS, "nosniff")
        if nosniff
        else CheckResult("X-Content-Type-Options", Status.FAIL, "nosniff missing")
    )
    frame_options = headers.get("x-frame-options", "").strip().upper()
    if frame_options in ("DENY", "SAMEORIGIN"):
        results.append(CheckResult("frame protection", Status.PASS, f"X-Frame-Options: {frame_options}"))
    elif csp and "frame-ancestors" in csp.lower():
        results.append(CheckResult("frame protection", Status.PASS, "CSP frame-ancestors"))
    else:
        results.append(
            CheckResult(
                "frame protection", Status.FAIL, "neither X-Frame-Options nor CSP frame-ancestors: clickjacking"
            )
        )
    return results


def check_transport(url: str) -> CheckResult:
    """A site must be served over HTTPS, except on this machine's loopback for development."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return CheckResult("HTTPS", Status.PASS, "served over https")
    host = parts.hostname or ""
    try:
        local = host == "localhost" or ip_address(host).is_loopback
    except ValueError:
        local = False
    if local:
        return CheckResult("HTTPS", Status.SKIP, f"http on the loopback host {host}: development")
    return CheckResult("HTTPS", Status.FAIL, "served over plain http: session IDs can be sniffed")


def pick_session_cookie(cookies: Sequence[SetCookie]) -> SetCookie | None:
    """Guess which of the cookies a response set is the session cookie.

    A cookie named for CSRF (``csrftoken``, ``XSRF-TOKEN``, ``__Host-sid-csrf``) is never
    taken: it holds a token that is meant to be readable or planted-proof by other
    means, and judging it as a session ID gives false alarms (strict mode, for one).
    """
    candidates = [c for c in cookies if c.value and not c.clears and not re.search(r"csrf|xsrf", c.name, re.IGNORECASE)]
    if not candidates:
        return None
    hinted = [c for c in candidates if re.search(r"sess|sid|auth", c.name, re.IGNORECASE)]
    return max(hinted or candidates, key=lambda c: len(c.value))


def check_cookie_prefix(cookie: SetCookie) -> CheckResult:
    """A ``__Host-`` name pins the cookie to this host, path ``/`` and https: no subdomain can plant one."""
    item = "cookie name prefix"
    lowered = cookie.name.lower()
    attributes = cookie.attributes
    if lowered.startswith("__host-"):
        broken = [
            what
            for what, bad in (
                ("no Secure", "secure" not in attributes),
                ("a Domain", "domain" in attributes),
                ("a Path other than /", attributes.get("path") != "/"),
            )
            if bad
        ]
        if broken:
            return CheckResult(item, Status.FAIL, f"__Host- with {', '.join(broken)}: browsers drop such a cookie")
        return CheckResult(item, Status.PASS, "__Host-: https only, this host only, Path=/")
    if lowered.startswith("__secure-"):
        if "secure" not in attributes:
            return CheckResult(item, Status.FAIL, "__Secure- without Secure: browsers drop such a cookie")
        return CheckResult(
            item, Status.PASS, "__Secure-: only https pages can set it (__Host- would also keep subdomains out)"
        )
    return CheckResult(
        item,
        Status.WARN,
        "no __Host- prefix: a sibling subdomain or a plain-http page can plant this cookie (fixation)",
    )


def _cache_directives(headers: httpx.Headers) -> dict[str, str]:
    directives: dict[str, str] = {}
    for part in headers.get_list("cache-control", split_commas=True):
        key, _, value = part.strip().partition("=")
        if key:
            directives[key.strip().lower()] = value.strip().strip('"')
    return directives


def check_session_caching(responses: Sequence[Observed]) -> CheckResult:
    """Answers that set or depend on a session must not be stored by a shared cache.

    ``Cache-Control: no-store`` or ``private`` keeps them out of shared caches; ``Vary:
    Cookie`` at least keys a cache's copy by the cookie. ``public``, ``s-maxage`` or a
    ``max-age`` without ``private`` invite a CDN to serve one user's page to the next.
    """
    item = "session responses kept out of shared caches"
    if not responses:
        return CheckResult(item, Status.SKIP, "no response that carries a session was seen")
    weakest: CheckResult | None = None
    for response in responses:
        shown = f"{response.method} {response.path}"
        directives = _cache_directives(response.headers)
        vary = {v.strip().lower() for v in response.headers.get_list("vary", split_commas=True)}
        if "no-store" in directives or "private" in directives:
            continue
        cacheable = "public" in directives or "s-maxage" in directives or _positive(directives.get("max-age"))
        if cacheable and not vary & {"cookie", "*"}:
            cache = response.headers.get("cache-control", "")
            return CheckResult(item, Status.FAIL, f"{shown} answers {cache!r}: a shared cache may serve it to others")
        if not vary & {"cookie", "*"} and weakest is None:
            weakest = CheckResult(
                item,
                Status.WARN,
                f"{shown}: not marked no-store or private, and no Vary: Cookie",
            )
    return weakest or CheckResult(item, Status.PASS, "no-store, private or Vary: Cookie on every session response")


def _positive(value: str | None) -> bool:
    try:
        return value is not None and int(value) > 0
    except ValueError:
        return False


def check_logout_clearing(responses: Sequence[Observed], cookie_name: str, signed_in_value: str) -> CheckResult:
    """Logging out should also take the ID out of the browser, not only end the session.

    Deleting the cookie, ``Clear-Site-Data``, or setting the cookie to a new (anonymous)
    value in place of ``signed_in_value`` all do: the signed-in value (an ID, or the
    session data itself) is no longer there.
    """
    item = "logout clears the cookie"
    for response in responses:
        cleared = response.cookie(cookie_name)
        if cleared is not None and cleared.clears:
            return CheckResult(item, Status.PASS, f"{response.method} {response.path} deletes it")
        if cleared is not None and unquote(cleared.value) != unquote(signed_in_value):
            return CheckResult(
                item, Status.PASS, f"{response.method} {response.path} replaces the signed-in value with a new one"
            )
        clear_site = response.headers.get("clear-site-data", "").lower()
        if '"cookies"' in clear_site or '"*"' in clear_site:
            return CheckResult(item, Status.PASS, f"{response.method} {response.path} sends Clear-Site-Data")
    return CheckResult(
        item, Status.WARN, "the logout left the cookie in the browser (no deleting Set-Cookie, no Clear-Site-Data)"
    )


def check_strict_mode(
    planted: str, answer: Observed, cookie_name: str, *, issues_sessions: bool, signed: bool
) -> CheckResult:
    """Judge how a site answered a well-formed session ID it never issued (OWASP's "strict mode").

    Args:
        planted: The made-up value sent as the session cookie.
        answer: The site's answer to it.
        cookie_name: The session cookie's name.
        issues_sessions: Whether the same page gives a visitor without a cookie a new
            session: if so, answering a planted ID without a new one means it was taken.
        signed: Whether the cookie is signed (a made-up value cannot carry a valid signature).
    """
    item = "unknown session ID refused (strict mode)"
    where = f"{answer.method} {answer.path}"
    note = "; the cookie is signed, so a made-up ID fails its signature" if signed else ""
    set_again = answer.cookie(cookie_name)
    if set_again is not None and not set_again.clears:
        if unquote(set_again.value) == unquote(planted):
            return CheckResult(item, Status.FAIL, f"{where} adopted a made-up ID: it set the cookie to it again")
        return CheckResult(item, Status.PASS, f"{where} replaced a made-up ID with a new one{note}")
    if set_again is not None:
        return CheckResult(item, Status.PASS, f"{where} refused a made-up ID and deleted the cookie{note}")
    if not issues_sessions:
        return CheckResult(
            item,
            Status.SKIP,
            f"{where} neither took nor replaced a made-up ID, and gives no anonymous sessions to compare with",
        )
    if not answer.ok:
        return CheckResult(item, Status.SKIP, f"{where} answered {answer.status} to a made-up ID: cannot tell")
    return CheckResult(
        item,
        Status.FAIL,
        f"{where} gives new visitors a session cookie, but kept a made-up ID without replacing it: the ID was adopted",
    )
