"""Login forms as frameworks render them, found and filled the way a browser submits them."""

from __future__ import annotations

import pytest

from sessionward.audit.forms import (
    FormError,
    compile_selector,
    find_logout_form,
    find_logout_link,
    has_password_form,
    login_fields,
    parse_forms,
    select_form,
)

PAGE = "https://shop.example.test/accounts/login/?next=/orders/"

# django.contrib.auth.views.LoginView with the admin-like template.
DJANGO = """
<form action="/accounts/login/" method="post" id="login-form">
  <input type="hidden" name="csrfmiddlewaretoken" value="dj4ngo&amp;t0ken">
  <label for="id_username">Username:</label>
  <input type="text" name="username" autofocus autocapitalize="none" autocomplete="username" maxlength="150"
    required id="id_username">
  <input type="password" name="password" autocomplete="current-password" required id="id_password">
  <input type="hidden" name="next" value="/orders/">
  <input type="submit" value="Log in">
</form>"""
# Spring Security's generated login page.
SPRING = """
<form class="login-form" method="post" action="/login">
  <h2>Please sign in</h2>
  <p><label for="username" class="screenreader">Username</label>
  <input type="text" id="username" name="username" placeholder="Username" required autofocus></p>
  <p><label for="password" class="screenreader">Password</label>
  <input type="password" id="password" name="password" placeholder="Password" required></p>
  <input name="_csrf" type="hidden" value="spr1ng-csrf" />
  <button type="submit" class="primary">Sign in</button>
</form>"""
# Rails 8's authentication generator.
RAILS = """
<form action="/session" accept-charset="UTF-8" method="post"><input type="hidden" name="authenticity_token"
  value="r4ils==" autocomplete="off" />
  <input type="email" name="email_address" id="email_address" required="required" autofocus="autofocus" />
  <input type="password" name="password" id="password" required="required" maxlength="72" />
  <input type="submit" name="commit" value="Sign in" data-disable-with="Sign in" />
</form>"""
# Flask-WTF's FlaskForm rendered with wtforms' defaults, next to a search form.
FLASK = """
<form action="/search" method="get"><input name="q"><button>Search</button></form>
<form method="POST" action="" id="login">
  <input id="csrf_token" name="csrf_token" type="hidden" value="ImZsNHNrIg.Zx.sig">
  <input id="email" name="email" required type="text" value="">
  <input id="password" name="password" required type="password" value="">
  <input id="remember" name="remember" type="checkbox" value="y">
  <input id="submit" name="submit" type="submit" value="Sign In">
  <input name="disabled" value="x" disabled>
</form>"""


def fill(html: str, **options: str) -> tuple[str, str, list[tuple[str, str]]]:
    form = select_form(parse_forms(html, PAGE), options.pop("selector", None))
    assert form is not None
    fields, _, _ = login_fields(form, "alice", "s3cret", **options)
    return form.method, form.action, fields


def test_a_django_login_form_keeps_its_csrf_token_and_next() -> None:
    assert fill(DJANGO) == (
        "POST",
        "https://shop.example.test/accounts/login/",
        [("csrfmiddlewaretoken", "dj4ngo&t0ken"), ("username", "alice"), ("password", "s3cret"), ("next", "/orders/")],
    )


def test_a_spring_security_form_keeps_its_csrf_field() -> None:
    assert fill(SPRING) == (
        "POST",
        "https://shop.example.test/login",
        [("username", "alice"), ("password", "s3cret"), ("_csrf", "spr1ng-csrf")],
    )


def test_a_rails_form_keeps_its_authenticity_token_and_its_named_submit_button() -> None:
    assert fill(RAILS) == (
        "POST",
        "https://shop.example.test/session",
        [("authenticity_token", "r4ils=="), ("email_address", "alice"), ("password", "s3cret"), ("commit", "Sign in")],
    )


def test_a_flask_wtf_form_is_found_among_others_and_posts_back_to_its_page() -> None:
    method, action, fields = fill(FLASK)
    assert (method, action) == ("POST", PAGE)  # an empty action is the page itself
    # The unchecked box and the disabled field are not sent; the submitter is.
    assert fields == [
        ("csrf_token", "ImZsNHNrIg.Zx.sig"),
        ("email", "alice"),
        ("password", "s3cret"),
        ("submit", "Sign In"),
    ]


def test_named_fields_and_a_selector_override_the_guesses() -> None:
    html = '<form id="a" method="post"><input name="who"><input name="pw" type="text"></form>' + SPRING
    _, _, fields = fill(html, selector="form#a", user_field="who", password_field="pw")
    assert fields == [("who", "alice"), ("pw", "s3cret")]


def test_a_field_that_is_not_there_is_a_clear_error() -> None:
    form = select_form(parse_forms(SPRING, PAGE), None)
    assert form is not None
    with pytest.raises(FormError, match="no field named 'login'"):
        login_fields(form, "alice", "s3cret", user_field="login")


def test_selects_textareas_and_controls_outside_the_form_are_sent_as_a_browser_sends_them() -> None:
    html = """<form id="f" method="post" action="/in">
      <select name="realm"><option value="a">A</option><option value="b" selected>B</option></select>
      <select name="lang"><option>en</option><option>fr</option></select>
      <textarea name="note">
hello</textarea>
      <input name="user"><input name="pass" type="password">
      <input type="radio" name="mode" value="x"><input type="radio" name="mode" value="y" checked>
    </form><input name="outside" value="1" form="f">"""
    _, _, fields = fill(html)
    assert fields == [
        ("realm", "b"),
        ("lang", "en"),
        ("note", "hello"),
        ("user", "alice"),
        ("pass", "s3cret"),
        ("mode", "y"),
        ("outside", "1"),
    ]


@pytest.mark.parametrize(
    ("selector", "chosen"),
    [
        ("#login", "login"),
        (".second", "two"),
        ("form[action$='/search']", "search"),
        ("[data-role~=auth]", "two"),
        ("form[method^=g]", "search"),
    ],
)
def test_form_selectors(selector: str, chosen: str) -> None:
    html = """<form id="search" action="/search" method="get"></form>
    <form id="login" action="/in" method="post"></form>
    <form id="two" class="first second" data-role="x auth" method="post"></form>"""
    form = select_form(parse_forms(html, PAGE), selector)
    assert form is not None
    assert form.attributes["id"] == chosen


@pytest.mark.parametrize("selector", ["div#x", "#", "form > input", "[a=b", ""])
def test_a_bad_selector_is_refused_with_what_is_accepted(selector: str) -> None:
    with pytest.raises(ValueError, match=r"selector|form"):
        compile_selector(selector)


def test_logout_forms_and_links_are_found_and_login_forms_recognised() -> None:
    page = """<a href="/profile">me</a><a href="https://other.test/logout">elsewhere</a>
    <form method="post" action="/sessions/revoke"><button>Revoke</button></form>
    <form method="post" action="/bye"><input type="hidden" name="csrf" value="t"><button>Sign out</button></form>
    <a href="/accounts/logout/">Log out</a>"""
    form = find_logout_form(parse_forms(page, PAGE))
    assert form is not None
    assert form.action == "https://shop.example.test/bye"
    assert form.fields() == [("csrf", "t")]
    assert find_logout_link(page, PAGE) == "https://shop.example.test/accounts/logout/"
    assert has_password_form(DJANGO)
    assert not has_password_form(page)
