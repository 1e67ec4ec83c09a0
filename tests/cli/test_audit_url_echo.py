"""The URL check tells an answer handing back its own request's URL from a site leaking its IDs.

The auditor asks ``/profile?sessionid=<live id>`` (does the site take an ID from the
URL?). Django's ``login_required`` and Flask-Login answer with a redirect to
``/login?next=<the page asked for>``: the ID is in the ``Location``, but only because the
auditor put it in the request. That is no leak; a site putting an ID in a URL on its
own still is.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

import httpx
import pytest

from sessionward.audit.checks import Observed, Status, check_ids_in_urls

BASE = "http://127.0.0.1:8000"
LIVE = secrets.token_hex(16)
OTHER = secrets.token_hex(16)


def answer(target: str, location: str = "", body: str = "", method: str = "GET") -> Observed:
    path = target.split("?", 1)[0].split(";", 1)[0]
    headers = httpx.Headers({"location": location} if location else {})
    return Observed(method, path, target, 302 if location else 200, headers, [], body, f"{BASE}{target}")


def verdict(*responses: Observed, name: str = "sessionid") -> Status:
    return check_ids_in_urls(responses, [LIVE, OTHER], name).status


@pytest.mark.parametrize(
    ("target", "location"),
    [
        # Django's redirect_to_login: next= keeps "/" and encodes the rest.
        (f"/accounts/profile/?sessionid={LIVE}", f"/accounts/login/?next=/accounts/profile/%3Fsessionid%3D{LIVE}"),
        # Flask-Login (werkzeug's url_encode): everything encoded.
        (f"/profile?session={LIVE}", f"/login?next=%2Fprofile%3Fsession%3D{LIVE}"),
        # The same with the absolute URL, as some frameworks send it.
        (f"/profile?session={LIVE}", f"/login?next={quote(f'{BASE}/profile?session={LIVE}', safe='')}"),
        # Encoded twice, through a single-sign-on hop.
        (f"/profile?sid={LIVE}", f"/sso?return=%252Fprofile%253Fsid%253D{LIVE}"),
        # The path-parameter probe, handed back the same way.
        (f"/profile;jsessionid={LIVE}", f"/login?next=/profile%3Bjsessionid%3D{LIVE}"),
        # A slash-appending redirect keeps the query it was given.
        (f"/accounts/profile?sessionid={LIVE}", f"/accounts/profile/?sessionid={LIVE}"),
        (f"/profile;jsessionid={LIVE}", f"/profile/;jsessionid={LIVE}"),
    ],
    ids=["django", "flask", "absolute", "encoded twice", "path parameter", "slash redirect", "slash + path param"],
)
def test_a_redirect_handing_back_the_auditors_own_probe_passes(target: str, location: str) -> None:
    assert verdict(answer(target, location)) is Status.PASS


def test_a_login_page_whose_form_posts_back_to_next_passes() -> None:
    body = f'<form action="/login?next=/profile%3Fsid%3D{LIVE}" method="post"></form>'
    assert verdict(answer(f"/login?next=/profile%3Fsid%3D{LIVE}", body=body), name="sid") is Status.PASS


@pytest.mark.parametrize(
    ("target", "location", "body"),
    [
        # The site's own ID in a redirect of a request that carried none.
        ("/", f"/home?sessionid={LIVE}", ""),
        ("/cart", "", f'<a href="/pay;jsessionid={LIVE}">pay</a>'),
        # The echo carries another ID besides: the site added it.
        (f"/profile?sessionid={LIVE}", f"/login?next=/profile%3Fsessionid%3D{LIVE}&s={OTHER}", ""),
        # The request's ID moved into the path: URL rewriting, not an echo.
        (f"/profile?sessionid={LIVE}", f"/(S({LIVE}))/profile", ""),
        # A session-named parameter beside the echo still counts.
        (f"/profile?sessionid={LIVE}", f"/login?next=/profile%3Fsessionid%3D{LIVE}&sid=abc", ""),
        # The site answered the probe with links carrying the ID it was given.
        (f"/profile?sessionid={LIVE}", "", f'<a href="/orders?x=1">o</a><a href="/(S({LIVE}))/cart">c</a>'),
    ],
    ids=["redirect", "link", "another id", "moved to path", "session parameter", "rewritten link"],
)
def test_ids_the_site_put_in_urls_itself_still_fail(target: str, location: str, body: str) -> None:
    assert verdict(answer(target, location, body)) is Status.FAIL


def test_an_echo_in_one_answer_does_not_hide_a_leak_in_another() -> None:
    echo = answer(f"/profile?sessionid={LIVE}", f"/login?next=/profile%3Fsessionid%3D{LIVE}")
    leak = answer("/home", body=f'<a href="/export?token={LIVE}">export</a>')
    result = check_ids_in_urls([echo, leak], [LIVE], "sessionid")
    assert result.status is Status.FAIL
    assert result.detail.startswith("GET /home put a session ID in")


def test_a_url_that_does_not_parse_is_judged_as_it_is() -> None:
    assert verdict(answer(f"/p?sid={LIVE}", f"http://[::1/x?sid={LIVE}")) is Status.FAIL
    assert verdict(answer(f"/p?sid={LIVE}", "http://[::1/x")) is Status.PASS
