"""What ``sessionward audit`` is asked to do (:class:`AuditOptions`) and what it found (:class:`AuditReport`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sessionward.audit.checks import CheckResult, Status
from sessionward.audit.login import DEFAULT_LOGIN_PATH, Credentials, LoginVia

if TYPE_CHECKING:
    from sessionward.audit.browser import BrowserStorage


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditOptions:
    """What to audit and how.

    Attributes:
        url: The site's base URL (``http://`` or ``https://``).
        username: A test account's name; without it the login-based checks are skipped.
        password: Its password.
        login_path: Where ``{"username", "password"}`` is POSTed as JSON.
        login_page: The page with the login form; also fetched before login, where a site
            may start an anonymous session (whose ID the fixation check carries over).
        logout_path: Where to log out (``None``: ``/api/logout`` after a JSON login, the
            logout form or link of the page a form login led to).
        auth_path: A page that tells a signed-in request from an anonymous one: 2xx when
            signed in (or a JSON ``"authenticated"`` field), anything else (or the login
            form) when not. ``None``: ``/api/session/status``, else the page the login led to.
        cookie_name: The session cookie's name, when guessing it is not wanted.
        max_samples: Most fresh IDs to collect for the randomness tests.
        timeout_s: Deadline of each page, from the request to the body's end.
        audit_timeout_s: Deadline of the whole audit.
        verify_tls: Check the site's TLS certificate.
        login_via: ``json``, ``form``, or ``auto`` (JSON first, then the login page's form).
        login_form: A CSS-like selector for the login form (``#login``, ``[action$=login]``).
        user_field: The login form's user name field, when guessing it is not wanted.
        password_field: Its password field.
        browser: Sign in and out through the login page in headless Chromium
            (:mod:`sessionward.audit.browser`, the ``browser`` extra) instead of over HTTP.
        browser_path: The Chromium executable (``None``: ``/usr/bin/chromium``).
    """

    url: str
    username: str | None = None
    password: str | None = None
    login_path: str = DEFAULT_LOGIN_PATH
    login_page: str = "/login"
    logout_path: str | None = None
    auth_path: str | None = None
    cookie_name: str | None = None
    max_samples: int = 200
    timeout_s: float = 10.0
    audit_timeout_s: float = 300.0
    verify_tls: bool = True
    login_via: LoginVia = LoginVia.AUTO
    login_form: str | None = None
    user_field: str | None = None
    password_field: str | None = None
    browser: bool = False
    browser_path: str | None = None

    @property
    def has_credentials(self) -> bool:
        """Whether the login-based checks can run."""
        return self.username is not None and self.password is not None

    def credentials(self) -> Credentials | None:
        """The test account and how to sign in with it, if one was given."""
        if self.username is None or self.password is None:
            return None
        return Credentials(
            username=self.username,
            password=self.password,
            via=self.login_via,
            login_path=self.login_path,
            login_page=self.login_page,
            login_form=self.login_form,
            user_field=self.user_field,
            password_field=self.password_field,
            logout_path=self.logout_path,
        )


@dataclass(slots=True)
class AuditReport:
    """The audit's findings, in checklist order."""

    url: str
    cookie_name: str | None = None
    sample_size: int = 0
    sample_source: str | None = None
    sample_stop: str | None = None
    """Why sampling ended before the tests had their bits (the site stopped issuing cookies), if it did."""
    encoding: str | None = None
    cookie_format: str | None = None
    login: str | None = None
    checks: list[CheckResult] = field(default_factory=list)
    browser: BrowserStorage | None = None
    """What the browser stored, when it signed in (``--browser``)."""

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
            "sample_stop": self.sample_stop,
            "encoding": self.encoding,
            "cookie_format": self.cookie_format,
            "login": self.login,
            "failed": self.failed,
            "checks": [{"item": c.item, "status": c.status.value, "detail": c.detail} for c in self.checks],
            "browser": self.browser.as_dict() if self.browser is not None else None,
        }
