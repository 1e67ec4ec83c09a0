"""``sessionward audit URL``: check a running site against seed 000's checklist.

The checks live in :mod:`sessionward.audit_site`; this module parses options and prints
the report as a table (or JSON). Exit status: 0 when no check fails, 1 when one does,
2 for bad arguments.

Nearly everything in the report was chosen by the audited site (cookie names and
attributes, header values, URLs from its pages), and a hostile site chooses escape
sequences and Rich markup: the report prints it through :mod:`sessionward.cli_common`'s
escaping (visible control characters, no markup), and ``--json`` escapes every
non-printable character as ``\\uXXXX``.
"""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sessionward.cli_common import json_for_terminal, terminal_text

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
    "--login-path",
    default="/api/login",
    show_default=True,
    help="JSON POST of username and password (paths are from the site root).",
)
@click.option(
    "--login-page",
    default="/login",
    show_default=True,
    help="Page fetched before login, where a form-based site may start an anonymous session.",
)
@click.option("--logout-path", default="/api/logout", show_default=True, help="POST that logs out.")
@click.option(
    "--auth-path",
    default="/api/session/status",
    show_default=True,
    help="A page answering 2xx (or JSON authenticated=true) only when signed in.",
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
    "--timeout", type=click.FloatRange(0.1, 300), default=10.0, show_default=True, help="Per request, seconds."
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
    login_path: str,
    login_page: str,
    logout_path: str,
    auth_path: str,
    cookie_name: str | None,
    samples: int,
    timeout: float,
    insecure: bool,
    as_json: bool,
) -> None:
    """Audit the session management of the site at URL (any framework); exit 1 if a check fails."""
    # httpx is imported here: only this verb needs an HTTP client.
    try:
        from sessionward.audit_site import AuditOptions, SiteAuditor
    except ImportError as error:
        raise click.ClickException(f"the audit needs httpx ({error}); install 'sessionward[audit]'") from None
    if (username is None) != (password is None):
        raise click.UsageError("give both --username and --password, or neither")
    paths = {
        "--login-path": login_path,
        "--login-page": login_page,
        "--logout-path": logout_path,
        "--auth-path": auth_path,
    }
    for option, path in paths.items():
        if not path.startswith("/"):
            raise click.BadParameter(f"{path!r} must start with '/'", param_hint=option)
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
        verify_tls=not insecure,
    )
    try:
        auditor = SiteAuditor(options)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="URL") from None
    try:
        report = auditor.run()
    finally:
        auditor.close()
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
        console.print(
            terminal_text(
                f"cookie {report.cookie_name or '(none)'}{sampled}. "
                f"Checks: {counts['pass']} pass, {counts['fail']} fail, {counts['warn']} warn, {counts['skip']} skip."
            )
        )
    if report.failed:
        ctx.exit(1)
