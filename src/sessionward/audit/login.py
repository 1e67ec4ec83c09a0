"""Signing in to and out of the audited site, as its own users do.

Two ways in:

* **JSON**: ``{"username", "password"}`` POSTed to ``--login-path`` (a single-page app's
  API, sessionward's demo);
* **form**: the login page fetched like a browser (its cookies kept), its login form found
  and submitted with every hidden field it carries (CSRF tokens), the redirects followed.

``auto`` tries the JSON POST first (one request) and falls back to the form when that
answers anything but 2xx and the login page has a password form. Whether a form login
worked is told by ``--check-url`` when given (a page that needs a session), or else by
what the site did: a new or changed cookie, or a redirect away from the login page,
without the login form coming back.

Out again: a logout form or link on the page the login landed on (with its CSRF token),
or ``--logout-path``: the landing page's form that posts there, else a POST there with
the page's CSRF token fields, else the logout page's own (confirmation) form or a GET.
Every logout carries the page's ``Referer`` and ``Origin``. A logout the site refuses (a
4xx or 5xx answer) is no logout: :class:`LogoutError` says so, and the logout checks
are skipped rather than judged on a session that was never ended.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlencode, urlsplit

from sessionward.audit.checks import Observed
from sessionward.audit.forms import (
    Form,
    FormError,
    csrf_fields,
    find_logout_form,
    find_logout_link,
    form_to,
    has_csrf_field,
    has_password_form,
    login_fields,
    parse_forms,
    select_form,
)
from sessionward.audit.http import AuditError, Fetcher, Jar

DEFAULT_LOGIN_PATH = "/api/login"
DEFAULT_LOGOUT_PATH = "/api/logout"


class LogoutError(AuditError):
    """No way to log out was found, or the site refused the logout."""


class LoginVia(StrEnum):
    """How the auditor signs in."""

    AUTO = "auto"
    JSON = "json"
    FORM = "form"


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """A test account, and where and how to use it.

    Attributes:
        username: The account's name.
        password: Its password.
        via: JSON POST, HTML form, or JSON first then the form.
        login_path: Where the JSON POST goes.
        login_page: The page holding the login form.
        login_form: A selector for the form, when the page has several.
        user_field: The user name field's ``name``, when guessing it is not wanted.
        password_field: The password field's ``name``.
        logout_path: Where to log out, when no logout form or link is found (``None``:
            ``/api/logout`` after a JSON login, a logout form or link after a form login).
    """

    username: str
    password: str
    via: LoginVia = LoginVia.AUTO
    login_path: str = DEFAULT_LOGIN_PATH
    login_page: str = "/login"
    login_form: str | None = None
    user_field: str | None = None
    password_field: str | None = None
    logout_path: str | None = None


@dataclass(slots=True)
class LoginResult:
    """One attempt to sign in.

    Attributes:
        ok: Whether it worked (as far as the answers tell; the auditor may ask ``--check-url``).
        answers: Every answer on the way (the login page and its redirects, the submission
            and its redirects), in order.
        submitted: How many of ``answers`` came after the submission.
        jar: The cookies a browser holds afterwards.
        how: How the login was made, for the report.
        problem: Why it did not work.
    """

    ok: bool
    answers: list[Observed]
    submitted: int
    jar: Jar
    how: str
    problem: str = ""
    landing: Observed | None = field(default=None)

    @property
    def submission(self) -> list[Observed]:
        """The answers to the submission and its redirects."""
        return self.answers[len(self.answers) - self.submitted :]


Judge = Callable[[Jar], Awaitable[bool]]


class SignIn:
    """Signs in and out with one account, by JSON or by form (see the module docstring)."""

    def __init__(self, fetcher: Fetcher, credentials: Credentials, *, judge: Judge | None = None) -> None:
        self.fetcher = fetcher
        self.credentials = credentials
        self.via = credentials.via
        self.judge = judge

    async def login(self, jar: Jar | None = None) -> LoginResult:
        """Sign in holding the cookies of ``jar`` (a copy is used); the first call settles ``auto``."""
        jar = jar.copy() if jar is not None else Jar()
        if self.via is LoginVia.FORM:
            return await self._form(jar)
        result = await self._json(jar.copy())
        if self.via is LoginVia.JSON or result.ok:
            self.via = LoginVia.JSON
            return result
        form = await self._form(jar)
        if form.ok:
            self.via = LoginVia.FORM
            return form
        if form.problem.startswith("no login form"):
            return result  # the site has no form: the JSON answer says what went wrong
        form.problem = f"{result.problem}; {form.problem}"
        return form

    async def _json(self, jar: Jar) -> LoginResult:
        credentials = self.credentials
        body = {"username": credentials.username, "password": credentials.password}
        answer = await self.fetcher.fetch("POST", credentials.login_path, cookies=jar.cookies, json=body)
        jar.take(answer)
        how = f"JSON POST {credentials.login_path}"
        problem = (
            ""
            if answer.ok
            else f"login at {credentials.login_path} answered {answer.status}; check --username/--password "
            "and --login-path (a JSON POST of username and password) or --login-page (a login form)"
        )
        return LoginResult(answer.ok, [answer], 1, jar, how, problem, answer)

    async def _form(self, jar: Jar) -> LoginResult:
        credentials = self.credentials
        page_answers = await self.fetcher.browse("GET", credentials.login_page, jar)
        page = page_answers[-1]
        form = select_form(parse_forms(page.body, page.url), credentials.login_form)
        if form is None:
            wanted = f"matching {credentials.login_form!r}" if credentials.login_form else "with a password field"
            problem = f"no login form {wanted} on {page.path} (answered {page.status}); set --login-page"
            return LoginResult(False, page_answers, 0, jar, "form", problem, page)
        try:
            fields, _, _ = login_fields(
                form,
                credentials.username,
                credentials.password,
                user_field=credentials.user_field,
                password_field=credentials.password_field,
            )
        except FormError as error:
            return LoginResult(False, page_answers, 0, jar, form.describe(), str(error), page)
        before = dict(jar.cookies)
        if form.method == "GET":
            target = f"{form.action.split('?', 1)[0]}?{urlencode(fields)}"
            submission = await self.fetcher.browse("GET", target, jar, referer=page.url)
        else:
            submission = await self.fetcher.browse("POST", form.action, jar, form=fields, referer=page.url)
        landing = submission[-1]
        answers = [*page_answers, *submission]
        how = f"{form.describe()} on {page.path}"
        ok, problem = await self._judge_form(before, jar, submission, page)
        return LoginResult(ok, answers, len(submission), jar, how, problem, landing)

    async def _judge_form(
        self, before: dict[str, str], jar: Jar, submission: list[Observed], page: Observed
    ) -> tuple[bool, str]:
        landing = submission[-1]
        where = f"the login form on {page.path}"
        if landing.status >= 400:
            return False, f"{where} answered {landing.status}; check --username/--password"
        if has_password_form(landing.body):
            return False, f"{where} came back after signing in: check --username/--password (or --user-field)"
        if self.judge is not None:
            if await self.judge(jar):
                return True, ""
            return False, f"after {where} was sent, --check-url still answers as to an anonymous visitor"
        changed = any(before.get(name) != value for name, value in jar.cookies.items())
        moved = len(submission) > 1 and urlsplit(landing.url).path != urlsplit(page.url).path
        if changed or moved:
            return True, ""
        return False, f"{where} changed no cookie and led nowhere: give --check-url to tell whether it worked"

    async def logout(self, login: LoginResult) -> list[Observed]:
        """Log out the session ``login`` made, as its user would; return the answers.

        Every logout request carries the page's ``Referer`` and ``Origin``, and a form is
        submitted with its hidden fields (its CSRF token), as a browser sends them.

        Raises:
            LogoutError: No way to log out was found, or the site refused the logout (a
                4xx or 5xx answer): the session was left as it was, and there is no
                logout to judge.
        """
        jar = login.jar.copy()
        path = self.credentials.logout_path
        landing = login.landing
        page = landing.url if landing is not None and landing.url else self.fetcher.url("")
        forms = parse_forms(landing.body, page) if landing is not None else []
        if self.via is LoginVia.JSON:
            return _accepted(await self.fetcher.browse("POST", path or DEFAULT_LOGOUT_PATH, jar, referer=page))
        if path is not None:
            return await self._logout_at(path, jar, forms, page)
        form = find_logout_form(forms)
        if form is not None:
            return _accepted(await self._submit(form, jar, page))
        link = find_logout_link(landing.body, page) if landing is not None else None
        if link is not None:
            return _accepted(await self.fetcher.browse("GET", link, jar, referer=page))
        answers = await self.fetcher.browse("POST", DEFAULT_LOGOUT_PATH, jar, referer=page)
        if answers[0].status in (404, 405):
            raise LogoutError(
                "no logout form or link on the page the login led to, and nothing at "
                f"{DEFAULT_LOGOUT_PATH}: set --logout-path"
            )
        return _accepted(answers)

    async def _logout_at(self, path: str, jar: Jar, forms: list[Form], page: str) -> list[Observed]:
        """Log out at ``--logout-path``, the way the site's own pages do.

        A form of the page the login led to that posts there is submitted; else a POST
        goes there with the page's CSRF token fields; if that is refused, the logout page
        is fetched and the form it shows (a confirmation) submitted, and where POST is not
        allowed at all (404, 405), fetching the page is the logout.
        """
        form = form_to(forms, self.fetcher.url(path))
        if form is not None:
            return _accepted(await self._submit(form, jar, page))
        posted = await self.fetcher.browse("POST", path, jar, form=csrf_fields(forms) or None, referer=page)
        if posted[0].status < 400:
            return posted
        fetched = await self.fetcher.browse("GET", path, jar, referer=page)
        shown = fetched[0]
        if shown.ok:
            offered = parse_forms(shown.body, shown.url)
            confirm = (
                form_to(offered, shown.url)
                or find_logout_form(offered)
                or next((f for f in offered if f.method == "POST" and has_csrf_field(f) and not f.has_password), None)
            )
            if confirm is not None:
                return [*fetched, *_accepted(await self._submit(confirm, jar, shown.url))]
        # A GET is the logout only where POST is not allowed at all; a refused POST stays refused.
        return _accepted(fetched if posted[0].status in (404, 405) else posted)

    async def _submit(self, form: Form, jar: Jar, page: str) -> list[Observed]:
        """Submit ``form`` (found on ``page``) with its own fields, as a browser does."""
        if form.method == "GET":
            target = f"{form.action.split('?', 1)[0]}?{urlencode(form.fields())}"
            return await self.fetcher.browse("GET", target, jar, referer=page)
        return await self.fetcher.browse("POST", form.action, jar, form=form.fields(), referer=page)


def _accepted(answers: list[Observed]) -> list[Observed]:
    """``answers`` to a logout request, unless the site refused it (then :class:`LogoutError`)."""
    answer = answers[0]
    if answer.status < 400:
        return answers
    where = f"{answer.method} {answer.path}"
    if answer.status in (404, 405):
        raise LogoutError(f"no logout at {where} (it answered {answer.status}): set --logout-path")
    outcome = "refused" if answer.status < 500 else "failed"
    raise LogoutError(
        f"the logout was {outcome} ({answer.status}): {where} answered {answer.status}, so whether logging out "
        "ends the session could not be tested; check --logout-path"
    )
