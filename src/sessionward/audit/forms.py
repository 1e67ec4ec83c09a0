"""HTML forms as a browser submits them: found, filled and encoded without any I/O.

The auditor signs in to sites that use an HTML form (most of them) the way a browser
does: it parses the login page (the standard library's :mod:`html.parser`, which
tolerates broken markup), picks the form (one a selector names, or the one with a
password field), keeps every field the site put there — the hidden CSRF tokens of Django
(``csrfmiddlewaretoken``), Spring Security (``_csrf``), Rails (``authenticity_token``)
and Flask-WTF (``csrf_token``) among them — fills in the user name and password, and
encodes what a browser would send: successful controls only, in document order, the
first named submit button as the submitter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from sessionward.audit.http import AuditError

USER_FIELD_HINT = re.compile(r"user|login|e-?mail|name|account|ident|uid", re.IGNORECASE)
NOT_USER_FIELD = re.compile(r"csrf|token|captcha|search|query|otp|code", re.IGNORECASE)
CSRF_FIELD_HINT = re.compile(r"csrf|xsrf|authenticity|verificationtoken|^_?token$", re.IGNORECASE)
"""Names of hidden anti-CSRF fields: Django, Spring, Rails, Flask-WTF, ASP.NET, Laravel, PHP's usual ``token``."""
LOGOUT_HINT = re.compile(r"log[\s_-]*out|log[\s_-]*off|sign[\s_-]*out|sign[\s_-]*off|abmelden|d[ée]connexion", re.I)
_TEXT_TYPES = frozenset(("text", "email", "tel", ""))
_NEVER_SENT = frozenset(("submit", "button", "reset", "image", "file"))
_SELECTOR_PART = re.compile(
    r"""(?P<tag>^[a-zA-Z][\w-]*)|\#(?P<id>[\w-]+)|\.(?P<cls>[\w-]+)"""
    r"""|\[\s*(?P<attr>[\w:-]+)\s*(?:(?P<op>[*^$~]?=)\s*(?P<value>"[^"]*"|'[^']*'|[^\]\s]+)\s*)?\]"""
)


class FormError(AuditError):
    """A login or logout form could not be found or filled."""


@dataclass(slots=True)
class Control:
    """One form control (``input``, ``select``, ``textarea``, ``button``)."""

    tag: str
    type: str
    name: str
    value: str
    checked: bool = False
    disabled: bool = False
    label: str = ""


@dataclass(slots=True)
class Form:
    """One ``<form>`` of a page, with its controls in document order."""

    attributes: dict[str, str]
    page_url: str
    controls: list[Control] = field(default_factory=list)

    @property
    def action(self) -> str:
        """Where the form is submitted: its ``action`` resolved against the page (the page itself if empty)."""
        return urljoin(self.page_url, self.attributes.get("action", "").strip() or self.page_url)

    @property
    def method(self) -> str:
        """``GET`` or ``POST`` (anything else is GET, as browsers read it)."""
        return "POST" if self.attributes.get("method", "").strip().lower() == "post" else "GET"

    @property
    def multipart(self) -> bool:
        """Whether the form asks for ``multipart/form-data``."""
        return self.attributes.get("enctype", "").strip().lower() == "multipart/form-data"

    @property
    def has_password(self) -> bool:
        """Whether the form has a password field."""
        return any(c.tag == "input" and c.type == "password" for c in self.controls)

    def fields(self, filled: dict[str, str] | None = None) -> list[tuple[str, str]]:
        """The name/value pairs a browser submits, with ``filled`` names given those values.

        Disabled and nameless controls, unchecked boxes, file inputs and every button but
        the first named submit button (the one "clicked") are left out.
        """
        filled = filled or {}
        pairs: list[tuple[str, str]] = []
        submitter_sent = False
        for control in self.controls:
            if control.disabled or not control.name:
                continue
            if control.type in ("submit", "image") or (control.tag == "button" and control.type == "submit"):
                if not submitter_sent:
                    pairs.append((control.name, control.value))
                    submitter_sent = True
                continue
            if control.type in _NEVER_SENT:
                continue
            if control.type in ("checkbox", "radio") and not control.checked:
                continue
            pairs.append((control.name, filled.get(control.name, control.value)))
        return pairs

    def describe(self) -> str:
        """How the report names the form."""
        shown = f"#{self.attributes['id']}" if self.attributes.get("id") else ""
        return f"form{shown} ({self.method} {urlsplit(self.action).path or '/'})"


class _FormParser(HTMLParser):
    """Collect forms and their controls; controls with ``form="id"`` join that form."""

    def __init__(self, page_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page_url = page_url
        self.forms: list[Form] = []
        self.current: Form | None = None
        self.by_id: dict[str, Form] = {}
        self.orphans: list[tuple[str, Control]] = []
        self.open_text: Control | None = None  # a textarea, button or option collecting its text
        self.select: Control | None = None
        self.select_chosen = False  # an option marked "selected" was seen
        self.select_has_value = False  # some option (the first, unless one is selected) gave the value
        self.option_value: str | None = None
        self.option_selected = False
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k.lower(): v or "" for k, v in attrs}
        if tag == "form":
            if self.current is None:  # browsers ignore a form nested in a form
                self.current = Form(attributes, self.page_url)
                self.forms.append(self.current)
                if attributes.get("id"):
                    self.by_id.setdefault(attributes["id"], self.current)
            return
        if tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"])
            return
        if tag == "option" and self.select is not None:
            self.option_value = attributes.get("value")
            self.option_selected = "selected" in attributes
            self.open_text = Control("option", "", "", "")
            return
        if tag not in ("input", "select", "textarea", "button"):
            return
        default_type = {"input": "text", "button": "submit"}.get(tag, tag)
        control = Control(
            tag=tag,
            type=attributes.get("type", default_type).strip().lower() or default_type,
            name=attributes.get("name", ""),
            value=attributes.get("value", "") if tag != "select" else "",
            checked="checked" in attributes,
            disabled="disabled" in attributes,
        )
        if tag == "input" and control.type in ("checkbox", "radio") and "value" not in attributes:
            control.value = "on"
        self._place(control, attributes.get("form"))
        if tag in ("textarea", "button"):
            self.open_text = control
        elif tag == "select":
            self.select, self.select_chosen, self.select_has_value = control, False, False

    def _place(self, control: Control, owner: str | None) -> None:
        if owner:
            self.orphans.append((owner, control))
        elif self.current is not None:
            self.current.controls.append(control)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.current = None
        elif tag == "option" and self.select is not None and self.open_text is not None:
            # A browser sends the selected option, or else the first one.
            value = self.option_value if self.option_value is not None else self.open_text.label.strip()
            if (self.option_selected and not self.select_chosen) or not self.select_has_value:
                self.select.value = value
                self.select_has_value = True
            self.select_chosen = self.select_chosen or self.option_selected
            self.open_text = None
        elif tag == "select":
            self.select = None
            self.open_text = None
        elif tag in ("textarea", "button") and self.open_text is not None:
            if tag == "textarea":
                self.open_text.value = self.open_text.label.removeprefix("\n")
            self.open_text = None

    def handle_data(self, data: str) -> None:
        if self.open_text is not None:
            self.open_text.label += data

    def finish(self) -> list[Form]:
        self.close()
        for owner, control in self.orphans:
            if owner in self.by_id:
                self.by_id[owner].controls.append(control)
        return self.forms


def parse_forms(html: str, page_url: str) -> list[Form]:
    """Every form of ``html``, its action resolved against ``page_url``."""
    parser = _FormParser(page_url)
    parser.feed(html)
    return parser.finish()


def page_links(html: str, page_url: str) -> list[str]:
    """Every ``<a href>`` of ``html``, resolved against ``page_url``."""
    parser = _FormParser(page_url)
    parser.feed(html)
    parser.finish()
    return [urljoin(page_url, link) for link in parser.links]


def has_password_form(html: str) -> bool:
    """Whether the page holds a form with a password field (a login form, shown again after a failure)."""
    if "password" not in html.lower():
        return False
    return any(form.has_password for form in parse_forms(html, "http://page.invalid/"))


def select_form(forms: Sequence[Form], selector: str | None) -> Form | None:
    """The form ``selector`` names, or else the first form with a password field.

    A selector is CSS-like, for the ``<form>`` element only: ``#id``, ``.class``,
    ``[attr]``, ``[attr=value]`` (also ``*=``, ``^=``, ``$=``, ``~=``), combined, with an
    optional leading ``form``: ``form#login``, ``form[action$="/session"]``.
    """
    if selector is None:
        return next((f for f in forms if f.has_password), None)
    test = compile_selector(selector)
    return next((f for f in forms if test(f.attributes)), None)


def compile_selector(selector: str) -> _Matcher:
    """Parse a form selector (see :func:`select_form`); raise :class:`ValueError` naming what is wrong."""
    text = selector.strip()
    parts: list[re.Match[str]] = []
    position = 0
    while position < len(text):
        match = _SELECTOR_PART.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(
                f"{selector!r} is not a form selector: use #id, .class, [attr], [attr=value] "
                "(or *=, ^=, $=, ~=), optionally after 'form'"
            )
        if match["tag"] and position != 0:
            raise ValueError(f"{selector!r}: a tag name may only come first")
        parts.append(match)
        position = match.end()
    if not parts:
        raise ValueError("an empty form selector")
    if parts[0]["tag"] and parts[0]["tag"].lower() != "form":
        raise ValueError(f"{selector!r} must select a <form> element")
    return _Matcher(parts)


class _Matcher:
    def __init__(self, parts: list[re.Match[str]]) -> None:
        self.parts = parts

    def __call__(self, attributes: dict[str, str]) -> bool:
        return all(self._one(part, attributes) for part in self.parts)

    @staticmethod
    def _one(part: re.Match[str], attributes: dict[str, str]) -> bool:
        if part["tag"]:
            return True
        if part["id"]:
            return attributes.get("id") == part["id"]
        if part["cls"]:
            return part["cls"] in attributes.get("class", "").split()
        name = part["attr"].lower()
        if name not in attributes:
            return False
        if part["op"] is None:
            return True
        wanted = part["value"]
        if wanted[:1] in ("'", '"'):
            wanted = wanted[1:-1]
        have = attributes[name]
        return {
            "=": have == wanted,
            "*=": wanted in have,
            "^=": have.startswith(wanted),
            "$=": have.endswith(wanted),
            "~=": wanted in have.split(),
        }[part["op"]]


def login_fields(
    form: Form, username: str, password: str, *, user_field: str | None = None, password_field: str | None = None
) -> tuple[list[tuple[str, str]], str, str]:
    """What to submit to sign in with ``form``: its own fields, the user name and password filled in.

    The password field is the one named ``password_field`` or the first password input;
    the user field is the one named ``user_field``, or else the text input whose name
    looks like a user name (``username``, ``email``, ``login``…), or else the last text
    input before the password. Returns the pairs and the two field names.
    """
    names = [c.name for c in form.controls if c.name]
    if password_field is not None:
        if password_field not in names:
            raise FormError(f"{form.describe()} has no field named {password_field!r} (--password-field)")
        secret = password_field
    else:
        secret = next((c.name for c in form.controls if c.type == "password" and c.name), "")
        if not secret:
            raise FormError(f"{form.describe()} has no named password field; give --password-field")
    if user_field is not None:
        if user_field not in names:
            raise FormError(f"{form.describe()} has no field named {user_field!r} (--user-field)")
        user = user_field
    else:
        user = _guess_user_field(form, secret)
    return form.fields({user: username, secret: password}), user, secret


def _guess_user_field(form: Form, secret: str) -> str:
    texts = [c for c in form.controls if c.tag == "input" and c.type in _TEXT_TYPES and c.name and not c.disabled]
    hinted = [c for c in texts if USER_FIELD_HINT.search(c.name) and not NOT_USER_FIELD.search(c.name)]
    if hinted:
        return hinted[0].name
    before: list[Control] = []
    for control in form.controls:
        if control.name == secret:
            break
        if control in texts:
            before.append(control)
    if before:
        return before[-1].name
    raise FormError(f"{form.describe()} has no field for the user name; give --user-field")


def find_logout_form(forms: Sequence[Form]) -> Form | None:
    """A form that logs out: its action, id, class or button says "log out" / "sign out"."""
    for form in forms:
        said = " ".join(
            [
                urlsplit(form.action).path,
                form.attributes.get("id", ""),
                form.attributes.get("class", ""),
                form.attributes.get("name", ""),
                *(f"{c.value} {c.label}" for c in form.controls if c.tag == "button" or c.type == "submit"),
            ]
        )
        if LOGOUT_HINT.search(said) and not form.has_password:
            return form
    return None


def form_to(forms: Sequence[Form], url: str) -> Form | None:
    """The first form without a password field that is submitted to ``url``'s path."""
    path = urlsplit(url).path
    return next((f for f in forms if urlsplit(f.action).path == path and not f.has_password), None)


def csrf_fields(forms: Sequence[Form]) -> list[tuple[str, str]]:
    """The hidden anti-CSRF token fields of ``forms`` (the first of each name).

    Sent along with a POST that no form of the page offers (an explicit logout URL): a
    site's token is usually valid for the whole session, whatever form carried it.
    """
    found: dict[str, str] = {}
    for form in forms:
        for control in form.controls:
            if control.type == "hidden" and control.name and CSRF_FIELD_HINT.search(control.name):
                found.setdefault(control.name, control.value)
    return list(found.items())


def has_csrf_field(form: Form) -> bool:
    """Whether ``form`` carries a hidden anti-CSRF token field."""
    return bool(csrf_fields([form]))


def find_logout_link(html: str, page_url: str) -> str | None:
    """A same-site link whose path says "log out" / "sign out" (many sites log out on a GET)."""
    site = urlsplit(page_url)
    for link in page_links(html, page_url):
        parts = urlsplit(link)
        if (parts.scheme, parts.netloc) == (site.scheme, site.netloc) and LOGOUT_HINT.search(parts.path):
            return link
    return None
