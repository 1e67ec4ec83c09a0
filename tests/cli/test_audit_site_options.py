"""``sessionward audit`` end to end against one configurable form-login site.

The site (:func:`form_site`) does everything right by default: a ``__Host-`` cookie with
every attribute, random 256-bit IDs, a new ID at login, anonymous sessions on the login
page, a CSRF token in every form, a logout that needs that token and the page's
``Origin``, ``Cache-Control: no-store`` and the security headers. Each test changes one
thing (an option the audit must be given, a cookie prefix, a caching header, a logout
that is refused or clears through ``Clear-Site-Data``, a session budget) and checks
what the report says about it.
"""

from __future__ import annotations

import html
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from cli_sites import PASSWORD, SECURITY_HEADERS, USERNAME, ASGIApp, serve
from click.testing import CliRunner, Result
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from sessionward.cli import main

GOOD_COOKIE = "Path=/; Secure; HttpOnly; SameSite=Lax"


@dataclass
class Shape:
    """How :func:`form_site` behaves; the defaults are a site that passes every check.

    Attributes:
        cookie: The session cookie's name.
        attributes: Its ``Set-Cookie`` attributes.
        cache_control: The ``Cache-Control`` of every answer.
        login: ``redirect``: a new ID and a 303 to ``/home``; ``stay``: the session is
            marked signed in, no new cookie, and a 200 page (only ``--check-url`` tells).
        odd_form: The login page first shows a registration form; the sign-in form
            (``#signin``, to ``/session``) names its fields ``company_name`` (not the user
            name), ``handle`` (the user name), ``trap`` (a hidden password-type honeypot,
            which must stay empty) and ``passphrase``.
        logout: ``form``: ``/home`` has the logout form; ``bare``: ``/home`` has no logout
            form nor link (``--logout-path`` is needed); ``confirm``: ``GET /logout``
            shows a confirmation form; ``refused``: ``POST /logout`` always answers 403;
            ``origin``: ``POST /logout`` needs only a same-site ``Origin``; ``none``: no
            logout at all.
        clear_site_data: The logout clears the browser with this ``Clear-Site-Data`` value
            instead of a deleting ``Set-Cookie``.
        budget: The most anonymous sessions the login page starts (then 429).
        echo: Pages that need a session redirect to ``/login?next=<the page asked for>``,
            percent-encoded as Django (``django``: ``/`` kept) or werkzeug (``flask``).
        link_id: ``/home`` links to ``/export?sid=<its own session ID>`` (a leak).
    """

    cookie: str = "__Host-sid"
    attributes: str = GOOD_COOKIE
    cache_control: str = "no-store"
    login: str = "redirect"
    odd_form: bool = False
    logout: str = "form"
    clear_site_data: str | None = None
    budget: int | None = None
    echo: str | None = None
    link_id: bool = False


@dataclass
class _Sessions:
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    issued: int = 0


def form_site(shape: Shape) -> ASGIApp:
    """A server-side session site with a form login, shaped by ``shape`` (see :class:`Shape`)."""
    sessions = _Sessions()
    name = shape.cookie

    def respond(body: str, status: int = 200, sid: str | None = None) -> Response:
        response = HTMLResponse(f"<!doctype html><title>site</title>{body}", status)
        finish(response, sid)
        return response

    def finish(response: Response, sid: str | None = None) -> None:
        response.headers["cache-control"] = shape.cache_control
        for key, value in SECURITY_HEADERS:
            response.headers[key.decode()] = value.decode()
        if sid is not None:
            response.headers.append("set-cookie", f"{name}={sid}; {shape.attributes}")

    def current(request: Request) -> tuple[str | None, dict[str, Any] | None]:
        sid = request.cookies.get(name)
        if sid is not None and sid in sessions.data:
            return sid, sessions.data[sid]
        return None, None

    def start() -> str:
        sid = secrets.token_urlsafe(32)
        sessions.data[sid] = {"csrf": secrets.token_urlsafe(16)}
        sessions.issued += 1
        return sid

    def token_field(data: dict[str, Any]) -> str:
        return f'<input type="hidden" name="csrf_token" value="{data["csrf"]}">'

    def logout_form(data: dict[str, Any]) -> str:
        return f'<form method="post" action="/logout">{token_field(data)}<button>Log out</button></form>'

    def signed_in_page(sid: str, data: dict[str, Any]) -> str:
        page = f"<p>Hello {html.escape(data['user'])}</p>"
        if shape.logout in ("form", "refused", "origin"):
            page += logout_form(data) if shape.logout != "origin" else '<form method="post" action="/logout"></form>'
        if shape.link_id:
            page += f'<a href="/export?sid={sid}">export</a>'
        return page

    async def home(request: Request) -> Response:
        return respond('<a href="/login">Sign in</a>')

    async def login_page(request: Request) -> Response:
        sid, data = current(request)
        fresh = None
        if data is None:
            if shape.budget is not None and sessions.issued >= shape.budget:
                return respond("<p>too many new sessions, try later</p>", 429)
            sid = fresh = start()
            data = sessions.data[sid]
        if shape.odd_form:
            body = (
                '<form id="register" method="post" action="/register">'
                '<input name="username"><input type="password" name="password"><button>Register</button></form>'
                f'<form id="signin" method="post" action="/session">{token_field(data)}'
                '<input name="company_name"><input name="handle">'
                '<input type="password" name="trap" style="display:none">'
                '<input type="password" name="passphrase"><button>Sign in</button></form>'
            )
        else:
            body = (
                f'<form method="post" action="/login">{token_field(data)}'
                '<input name="username"><input type="password" name="password"><button>Sign in</button></form>'
            )
        return respond(body, sid=fresh)

    async def sign_in(request: Request) -> Response:
        sid, data = current(request)
        form = await request.form()
        if data is None or sid is None or form.get("csrf_token") != data["csrf"]:
            return respond("<p>expired form</p>", 403)
        user, secret = ("handle", "passphrase") if shape.odd_form else ("username", "password")
        if form.get(user) != USERNAME or form.get(secret) != PASSWORD or form.get("trap"):
            return await login_page(request)
        if shape.login == "stay":  # the same ID becomes signed in: only --check-url can tell
            data["user"] = USERNAME
            return respond(f"<p>Welcome back</p>{signed_in_page(sid, data)}")
        del sessions.data[sid]
        new = start()
        sessions.data[new]["user"] = USERNAME
        response = RedirectResponse("/home", 303)
        finish(response, new)
        return response

    async def register(request: Request) -> Response:
        return respond("<p>registration is closed</p>", 403)

    async def signed_in(request: Request) -> Response:
        sid, data = current(request)
        if sid is None or data is None or "user" not in data:
            target = "/login"
            if shape.echo is not None:
                asked = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                target += f"?next={quote(asked, safe='/' if shape.echo == 'django' else '')}"
            response = RedirectResponse(target, 302)
            finish(response)
            return response
        return respond(signed_in_page(sid, data))

    def same_site(request: Request) -> bool:
        return request.headers.get("origin") == f"{request.url.scheme}://{request.url.netloc}"

    async def logout(request: Request) -> Response:
        sid, data = current(request)
        form = await request.form()
        if shape.logout == "refused" or not same_site(request):
            return respond("<p>forbidden</p>", 403)
        if shape.logout != "origin" and (data is None or form.get("csrf_token") != data["csrf"]):
            return respond("<p>forbidden</p>", 403)
        if sid is not None:
            sessions.data.pop(sid, None)
        response = RedirectResponse("/", 303)
        finish(response)
        if shape.clear_site_data is not None:
            response.headers["clear-site-data"] = shape.clear_site_data
        else:
            response.headers.append("set-cookie", f"{name}=; Max-Age=0; {GOOD_COOKIE}")
        return response

    async def logout_page(request: Request) -> Response:
        _, data = current(request)
        if shape.logout != "confirm" or data is None:
            return respond("<p>method not allowed</p>", 405)
        return respond(f"<p>Log out?</p>{logout_form(data)}")

    routes = [
        Route("/", home),
        Route("/login", login_page, methods=["GET"]),
        Route("/login" if not shape.odd_form else "/session", sign_in, methods=["POST"]),
        Route("/register", register, methods=["POST"]),
        Route("/home", signed_in),
    ]
    if shape.logout != "none":
        routes += [Route("/logout", logout, methods=["POST"]), Route("/logout", logout_page, methods=["GET"])]
    app: ASGIApp = Starlette(routes=routes)
    return app


def audit(shape: Shape, *extra: str, credentials: bool = True) -> tuple[Result, dict[str, Any], dict[str, str]]:
    """Audit a :func:`form_site` of ``shape`` through the CLI; return the result, report and statuses."""
    login = ["--username", USERNAME, "--password", PASSWORD] if credentials else []
    with serve(form_site(shape)) as url:
        result = CliRunner().invoke(main, ["audit", url, *login, "--json", *extra])
    assert "Traceback" not in result.output
    if not result.stdout.startswith("{"):
        return result, {}, {}
    report = orjson.loads(result.stdout)
    return result, report, {c["item"]: c["status"] for c in report["checks"]}


def detail(report: dict[str, Any], item: str) -> str:
    found: str = next(c["detail"] for c in report["checks"] if c["item"] == item)
    return found


def not_passed(checks: dict[str, str]) -> dict[str, str]:
    return {item: status for item, status in checks.items() if status not in ("pass", "skip")}


LOGOUT_ITEMS = ("logout invalidates the session", "logout clears the cookie")


def test_the_site_as_built_passes_every_check() -> None:
    result, _, checks = audit(Shape())
    assert result.exit_code == 0, result.output
    assert not_passed(checks) == {}
    assert checks["logout invalidates the session"] == "pass"
    assert checks["fixation on login"] == "pass"


# -- signing in: --check-url, --login-form, --user-field, --password-field ---------------------------


def test_a_login_that_changes_no_cookie_and_stays_put_needs_check_url() -> None:
    result, _, _ = audit(Shape(login="stay"))
    assert result.exit_code == 1
    assert "changed no cookie and led nowhere: give --check-url" in result.stderr


def test_with_check_url_such_a_login_is_judged_and_its_fixation_found() -> None:
    result, report, checks = audit(Shape(login="stay"), "--check-url", "/home")
    assert result.exit_code == 1, result.output
    # The login keeps the anonymous ID: fixation, found because --check-url told the login worked.
    assert not_passed(checks) == {"fixation on login": "fail"}
    assert checks["logout invalidates the session"] == "pass"
    assert checks["session ID not accepted from the URL"] == "pass"
    assert report["login"] == "form (POST /login) on /login"


def test_a_page_with_two_password_forms_and_odd_field_names_is_signed_in_with_the_options() -> None:
    options = ["--login-form", "#signin", "--user-field", "handle", "--password-field", "passphrase"]
    result, report, checks = audit(Shape(odd_form=True), *options)
    assert result.exit_code == 0, result.output
    assert not_passed(checks) == {}
    assert report["login"] == "form#signin (POST /session) on /login"


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ([], "the login form on /login answered 403"),  # the registration form, picked first
        (["--login-form", "#signin"], "came back after signing in"),  # company_name and the honeypot guessed
        (["--login-form", "#signin", "--user-field", "handle"], "came back after signing in"),  # the honeypot
        (["--login-form", "#signin", "--password-field", "passphrase"], "came back after signing in"),
        (["--login-form", "#signin", "--user-field", "nick"], "has no field named 'nick' (--user-field)"),
    ],
    ids=["no options", "form only", "no password field", "no user field", "a wrong field"],
)
def test_without_all_three_options_the_odd_form_cannot_be_signed_in(options: list[str], error: str) -> None:
    result, _, _ = audit(Shape(odd_form=True), *options)
    assert result.exit_code == 1
    assert error in result.stderr


# -- logging out --------------------------------------------------------------------------------------


def test_logout_path_submits_the_pages_logout_form_with_its_token_and_origin() -> None:
    # The logout needs the form's CSRF token and a same-site Origin: a bare POST is refused.
    result, report, checks = audit(Shape(), "--logout-path", "/logout")
    assert result.exit_code == 0, result.output
    assert {item: checks[item] for item in LOGOUT_ITEMS} == dict.fromkeys(LOGOUT_ITEMS, "pass")
    assert detail(report, "logout clears the cookie") == "POST /logout deletes it"


def test_logout_path_without_a_form_posts_with_the_sites_origin() -> None:
    result, _, checks = audit(Shape(logout="origin"), "--logout-path", "/logout")
    assert result.exit_code == 0, result.output
    assert {item: checks[item] for item in LOGOUT_ITEMS} == dict.fromkeys(LOGOUT_ITEMS, "pass")


def test_logout_path_submits_the_confirmation_form_the_logout_page_shows() -> None:
    result, _, checks = audit(Shape(logout="confirm"), "--logout-path", "/logout")
    assert result.exit_code == 0, result.output
    assert {item: checks[item] for item in LOGOUT_ITEMS} == dict.fromkeys(LOGOUT_ITEMS, "pass")


@pytest.mark.parametrize("extra", [[], ["--logout-path", "/logout"]], ids=["found form", "logout path"])
def test_a_refused_logout_is_skipped_with_its_reason_not_failed(extra: list[str]) -> None:
    result, report, checks = audit(Shape(logout="refused"), *extra)
    assert result.exit_code == 0, result.output
    assert not_passed(checks) == {}
    for item in LOGOUT_ITEMS:
        assert checks[item] == "skip"
        assert detail(report, item).startswith("the logout was refused (403): POST /logout answered 403")


def test_a_bare_logout_path_refused_for_want_of_a_token_is_skipped_not_failed() -> None:
    # No page offers a logout form: the POST carries no token, and the site refuses it.
    result, report, checks = audit(Shape(logout="bare"), "--logout-path", "/logout")
    assert result.exit_code == 0, result.output
    assert checks["logout invalidates the session"] == "skip"
    assert "the logout was refused (403)" in detail(report, "logout invalidates the session")


def test_no_logout_anywhere_is_skipped_and_asks_for_logout_path() -> None:
    result, report, checks = audit(Shape(logout="none"))
    assert result.exit_code == 0, result.output
    for item in LOGOUT_ITEMS:
        assert checks[item] == "skip"
        assert detail(report, item) == (
            "no logout form or link on the page the login led to, and nothing at /api/logout: set --logout-path"
        )


@pytest.mark.parametrize("value", ['"cookies"', '"cache", "cookies", "storage"', '"*"'])
def test_clear_site_data_at_logout_counts_as_clearing_the_cookie(value: str) -> None:
    result, report, checks = audit(Shape(clear_site_data=value))
    assert result.exit_code == 0, result.output
    assert checks["logout clears the cookie"] == "pass"
    assert detail(report, "logout clears the cookie") == "POST /logout sends Clear-Site-Data"


def test_clear_site_data_without_cookies_leaves_the_cookie() -> None:
    _, _, checks = audit(Shape(clear_site_data='"cache"'))
    assert checks["logout clears the cookie"] == "warn"


# -- the cookie's name prefix ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cookie", "attributes", "status", "said"),
    [
        ("__Secure-sid", GOOD_COOKIE, "pass", "__Secure-: only https pages can set it"),
        ("__Secure-sid", "Path=/; HttpOnly; SameSite=Lax", "fail", "__Secure- without Secure"),
        ("__Host-sid", f"{GOOD_COOKIE}; Domain=127.0.0.1", "fail", "__Host- with a Domain"),
        ("__Host-sid", "Path=/app; Secure; HttpOnly; SameSite=Lax", "fail", "__Host- with a Path other than /"),
        ("__Host-sid", "Path=/; HttpOnly; SameSite=Lax", "fail", "__Host- with no Secure"),
        ("__Host-sid", "HttpOnly; Secure", "fail", "__Host- with a Path other than /"),
    ],
    ids=[
        "secure",
        "secure without Secure",
        "host with Domain",
        "host with Path=/app",
        "host without Secure",
        "no Path",
    ],
)
def test_the_cookie_prefix_is_judged_on_what_the_site_sent(
    cookie: str, attributes: str, status: str, said: str
) -> None:
    result, report, checks = audit(Shape(cookie=cookie, attributes=attributes), credentials=False)
    assert report["cookie_name"] == cookie
    assert checks["cookie name prefix"] == status
    assert detail(report, "cookie name prefix").startswith(said)
    assert result.exit_code == (0 if status == "pass" else 1)


# -- caching of session answers -----------------------------------------------------------------------


@pytest.mark.parametrize("cache_control", ["public, max-age=600", "s-maxage=300", "max-age=60"])
def test_session_answers_a_shared_cache_may_keep_fail(cache_control: str) -> None:
    result, report, checks = audit(Shape(cache_control=cache_control))
    assert result.exit_code == 1
    assert checks["session responses kept out of shared caches"] == "fail"
    assert detail(report, "session responses kept out of shared caches").endswith(
        f"answers {cache_control!r}: a shared cache may serve it to others"
    )
    assert checks["Cache-Control on the cookie-setting response"] == "warn"


def test_private_session_answers_pass_the_caching_check() -> None:
    _, _, checks = audit(Shape(cache_control="private, max-age=60"))
    assert checks["session responses kept out of shared caches"] == "pass"


# -- session IDs in URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("echo", ["django", "flask"])
def test_a_login_redirect_echoing_the_auditors_own_url_probe_is_no_leak(echo: str) -> None:
    # /home?__Host-sid=<live id>, sent without the cookie, is answered by a redirect to
    # /login?next=/home%3F__Host-sid%3D<id>: the auditor's own ID, handed back.
    result, _, checks = audit(Shape(echo=echo))
    assert result.exit_code == 0, result.output
    assert checks["no session ID in redirects or links"] == "pass"
    assert checks["session ID not accepted from the URL"] == "pass"


def test_a_site_putting_its_own_session_id_in_a_link_still_fails() -> None:
    result, report, checks = audit(Shape(echo="django", link_id=True))
    assert result.exit_code == 1
    assert checks["no session ID in redirects or links"] == "fail"
    assert re.fullmatch(
        r"GET /home put a session ID in '/export\?sid=[\w-]+'", detail(report, "no session ID in redirects or links")
    )


# -- sampling -----------------------------------------------------------------------------------------------


def test_when_the_site_stops_issuing_sessions_the_report_says_why_the_sample_is_short() -> None:
    result, report, checks = audit(Shape(budget=30), credentials=False)
    assert result.exit_code == 0, result.output
    stop = report["sample_stop"]
    assert re.fullmatch(
        r"the site issued no new cookie at request \d+ \(GET /login answered 429\); sampled \d+ IDs", stop
    )
    assert report["sample_size"] < 30
    assert f"sampled {report['sample_size']} IDs" in stop
    assert checks["ID randomness (FIPS 140-2)"] == "skip"
    assert detail(report, "ID randomness (FIPS 140-2)").endswith(f"({stop})")


def test_a_full_sample_has_no_stop_reason() -> None:
    _, report, checks = audit(Shape(), credentials=False)
    assert report["sample_stop"] is None
    assert checks["ID randomness (FIPS 140-2)"] == "pass"
