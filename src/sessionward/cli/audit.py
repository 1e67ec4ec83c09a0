"""``sessionward audit URL``: check a running site against the session-security checklist.

The checks live in :mod:`sessionward.audit.site`; this module parses options and prints
the report as a table (or JSON). Exit status: 0 when no check fails, 1 when one does,
2 for bad arguments.

Nearly everything in the report was chosen by the audited site (cookie names and
attributes, header values, URLs from its pages), and a hostile site chooses escape
sequences and Rich markup: the report prints it through :mod:`sessionward.cli.common`'s
escaping (visible control characters, no markup), and ``--json`` escapes every
non-printable character as ``\\uXXXX``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sessionward.cli.common import json_for_terminal, terminal_text
from sessionward.core.errors import ConfigError
from sessionward.core.extras import needs_extra

if TYPE_CHECKING:
    from sessionward.audit.browser import BrowserStorage

_STYLES = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


@click.command()
@click.argument("url")
@click.option("--username", "-u", default=None, help="A test account to log in with (enables the login checks).")
@click.option(
    "--password",
    "-p",
    default=None,
    envvar="SESSIONWARD_AUDIT_PASSWORD",
    show_envvar=True,
    help="The test account's password.",
)
@click.option(
    "--login-via",
    type=click.Choice(["auto", "json", "form"]),
    default="auto",
    show_default=True,
    help="Sign in by a JSON POST to --login-path, by the form on --login-page, or JSON first, then the form.",
)
@click.option(
    "--login-path",
    default="/api/login",
    show_default=True,
    help="JSON POST of username and password (paths are from the site root).",
)
@click.option(
    "--login-page",
    default="/login",
    show_default=True,
    help="Page with the login form; fetched before login too, where a site may start an anonymous session.",
)
@click.option(
    "--login-form",
    default=None,
    metavar="SELECTOR",
    help="Which form of the login page signs in: #id, .class, [attr=value] (default: the one with a password field).",
)
@click.option(
    "--user-field", default=None, metavar="NAME", help="The login form's user name field (guessed if omitted)."
)
@click.option(
    "--password-field", default=None, metavar="NAME", help="The login form's password field (guessed if omitted)."
)
@click.option(
    "--browser",
    is_flag=True,
    help="Sign in and out through the login page in headless Chromium, for logins that need JavaScript; the "
    "probes stay plain HTTP, and the report adds what the browser stored. Needs -u/-p and the browser extra.",
)
@click.option(
    "--browser-path",
    default=None,
    metavar="PATH",
    help="The Chromium executable for --browser (implies it) [default: /usr/bin/chromium, else chromium on PATH].",
)
@click.option(
    "--logout-path",
    default=None,
    help="POST (or GET) that logs out [default: /api/logout after a JSON login, "
    "else the logout form or link of the page the login led to].",
)
@click.option(
    "--check-url",
    "--auth-path",
    "auth_path",
    default=None,
    metavar="PATH",
    help="A page answering 2xx (or JSON authenticated=true) only when signed in; also decides whether a form "
    "login worked [default: /api/session/status, else the page the login led to].",
)
@click.option("--cookie-name", default=None, help="The session cookie's name (guessed when omitted).")
@click.option(
    "--samples",
    type=click.IntRange(2, 5000),
    default=200,
    show_default=True,
    help="Most fresh IDs to collect for the randomness tests.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 300),
    default=10.0,
    show_default=True,
    help="Deadline of each page, from the request to the body's last byte, in seconds.",
)
@click.option(
    "--deadline",
    type=click.FloatRange(1, 86400),
    default=300.0,
    show_default=True,
    help="Deadline of the whole audit, in seconds; a cut-short audit fails.",
)
@click.option("--insecure", is_flag=True, help="Do not verify the site's TLS certificate.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def audit(
    ctx: click.Context,
    *,
    url: str,
    username: str | None,
    password: str | None,
    login_via: str,
    login_path: str,
    login_page: str,
    login_form: str | None,
    user_field: str | None,
    password_field: str | None,
    browser: bool,
    browser_path: str | None,
    logout_path: str | None,
    auth_path: str | None,
    cookie_name: str | None,
    samples: int,
    timeout: float,
    deadline: float,
    insecure: bool,
    as_json: bool,
) -> None:
    """Audit the session management of the site at URL (any framework); exit 1 if a check fails.

    Without an account it checks the cookie, its ID and strict mode on pages that start
    anonymous sessions; with one (-u/-p) it signs in, by JSON or the site's login form,
    and checks fixation, logout and IDs in URLs too. With --browser the login form is
    filled and submitted in headless Chromium, for sites whose login needs JavaScript.
    """
    # httpx is imported here: only this verb needs an HTTP client.
    with needs_extra("audit", "sessionward audit"):
        from sessionward.audit.forms import compile_selector
        from sessionward.audit.login import LoginVia
        from sessionward.audit.site import AuditOptions, SiteAuditor, run_audit
    if (username is None) != (password is None):
        raise click.UsageError("give both --username and --password, or neither")
    browser = browser or browser_path is not None
    if browser:
        browser_path = _chromium(browser_path, signs_in=username is not None, login_via=login_via)
    paths = {
        "--login-path": login_path,
        "--login-page": login_page,
        "--logout-path": logout_path,
        "--check-url": auth_path,
    }
    for option, path in paths.items():
        if path is not None and not path.startswith("/"):
            raise click.BadParameter(f"{path!r} must start with '/'", param_hint=option)
    if login_form is not None:
        try:
            compile_selector(login_form)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--login-form") from None
    options = AuditOptions(
        url=url,
        username=username,
        password=password,
        login_path=login_path,
        login_page=login_page,
        logout_path=logout_path,
        auth_path=auth_path,
        cookie_name=cookie_name,
        max_samples=samples,
        timeout_s=timeout,
        audit_timeout_s=deadline,
        verify_tls=not insecure,
        login_via=LoginVia(login_via),
        login_form=login_form,
        user_field=user_field,
        password_field=password_field,
        browser=browser,
        browser_path=browser_path,
    )
    try:
        auditor = SiteAuditor(options)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="URL") from None
    report = run_audit(auditor)
    if as_json:
        click.echo(json_for_terminal(report.as_dict()))
    else:
        console = Console(highlight=False)
        table = Table(title=terminal_text(f"session audit of {url}"))
        table.add_column("check")
        table.add_column("result")
        table.add_column("detail", overflow="fold")
        for check in report.checks:
            status = check.status.value
            table.add_row(
                terminal_text(check.item), Text(status.upper(), style=_STYLES[status]), terminal_text(check.detail)
            )
        console.print(table)
        counts = {s: sum(1 for c in report.checks if c.status.value == s) for s in _STYLES}
        sampled = f"; {report.sample_size} IDs sampled by {report.sample_source}" if report.sample_source else ""
        if report.cookie_format:
            sampled += f"; value: {report.cookie_format}"
        if report.login:
            sampled += f"; signed in by {report.login}"
        console.print(
            terminal_text(
                f"cookie {report.cookie_name or '(none)'}{sampled}. "
                f"Checks: {counts['pass']} pass, {counts['fail']} fail, {counts['warn']} warn, {counts['skip']} skip."
            )
        )
        if report.browser is not None:
            _print_browser(console, report.browser)
    if report.failed:
        ctx.exit(1)


def _chromium(path: str | None, *, signs_in: bool, login_via: str) -> str:
    """The Chromium for ``--browser``, once Playwright and the executable are known to be there."""
    if not signs_in:
        raise click.UsageError("--browser signs in through the login page: give --username and --password")
    if login_via == "json":
        raise click.UsageError("--browser signs in through the login page's form, not with --login-via json")
    with needs_extra("browser", "sessionward audit --browser", setting="--browser"):
        from sessionward.audit.browser import DEFAULT_CHROMIUM, default_chromium
    found = path or default_chromium()
    if found is None or not os.path.isfile(found) or not os.access(found, os.X_OK):
        raise ConfigError(
            "--browser-path",
            f"no Chromium at {found or DEFAULT_CHROMIUM}: install Debian's chromium (apt-get install chromium) "
            "or give the executable with --browser-path PATH",
        )
    return found


def _print_browser(console: Console, stored: BrowserStorage) -> None:
    """What the browser kept for the site: its cookies as stored, the refused ones, its Web Storage keys."""
    table = Table(title="what Chromium stored for the site after signing in")
    table.add_column("cookie")
    table.add_column("as the browser kept it", overflow="fold")
    for cookie in stored.cookies:
        table.add_row(terminal_text(cookie.name), terminal_text(cookie.attributes()))
    for refused in stored.refused:
        table.add_row(terminal_text(refused), Text("REFUSED", style=_STYLES["fail"]))
    console.print(table)
    for area in ("localStorage", "sessionStorage"):
        keys = [k for k in stored.keys if k.area == area]
        listed = [f"{k.key} ({k.length} chars{', looks like a token' if k.token else ''})" for k in keys]
        console.print(terminal_text(f"{area}: {', '.join(listed) or 'empty'}"))
    if stored.after_logout is not None:
        kept = ", ".join(stored.after_logout) or "none"
        console.print(terminal_text(f"cookies the browser still held with their signed-in values after logout: {kept}"))
