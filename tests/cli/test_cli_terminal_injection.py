"""Terminal injection through the CLI: what a site or a user controls is shown, never run.

A site audited by ``sessionward audit`` chooses its cookie attributes, headers and links; a
user chooses the User-Agent that ``sessions list`` shows an administrator, and the name
under which sessions are stored. None of it may move the cursor, erase or hide a line,
open a link, retitle the terminal, or make Rich fail: control characters are printed
visibly (``\\x1b``), markup literally, in tables, plain lines, error lines and JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from cli_hostile_sites import (
    HOSTILE_CACHE,
    HOSTILE_CSP,
    HOSTILE_DOMAIN,
    HOSTILE_EXPIRES,
    HOSTILE_PATH,
    HOSTILE_SAMESITE,
    serve_h11,
    terminal_injection_site,
)
from cli_sites import free_port, hardened_site, serve
from cli_support import login_record, seed
from click.testing import CliRunner, Result

from sessionward.cli import main
from sessionward.cli.common import json_for_terminal, safe_text

# Wide enough that no table cell folds: the assertions read whole values on one line.
WIDE = {"COLUMNS": "400"}

HOSTILE_USER_AGENT = "bad [/close] markup \x1b[2J\x9b1;1H\u2028[link=http://evil.test/]ok[/link] \u202eevil"
HOSTILE_USER = "eve[/x]\x1b]0;pwned\x07\x85"
BIDI_CONTROLS = "".join(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))


def invoke(*args: str) -> Result:
    # color=True: click.echo keeps escape sequences as a terminal would receive them
    # (it strips them from output it believes is a pipe, which would hide the attack).
    result = CliRunner().invoke(main, list(args), env=WIDE, color=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


def assert_inert(text: str) -> None:
    """No character of ``text`` can act on a terminal: no C0 but newline, no DEL, no C1, no separators."""
    acting = sorted({c for c in text if not (c.isprintable() or c == "\n")})
    assert acting == [], acting


def row(output: str, item: str) -> str:
    (line,) = [line for line in output.splitlines() if item in line]
    return line


# -- the pure helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[1A\x1b[2K", "\\x1b[1A\\x1b[2K"),  # C0 ESC: cursor up, erase line
        ("a\tb\nc\rd\x00", "a\\tb\\nc\\rd\\x00"),
        ("\x7f", "\\x7f"),  # DEL
        ("\x9b2J \x9d0;t\x9c \x85", "\\x9b2J \\x9d0;t\\x9c \\x85"),  # C1: CSI, OSC, ST, NEL
        ("\u2028\u2029", "\\u2028\\u2029"),  # line and paragraph separators
        (BIDI_CONTROLS, "".join(f"\\u{ord(c):04x}" for c in BIDI_CONTROLS)),  # bidi embeddings, overrides, isolates
        ("\u200b\ufeff\U000e0001", "\\u200b\\ufeff\\U000e0001"),  # invisible format characters
        ("\udcff", "\\udcff"),  # a lone surrogate (undecodable command-line bytes)
        ("Mozilla/5.0 (X11; Linux) é ü 日本 [b]x[/b]", "Mozilla/5.0 (X11; Linux) é ü 日本 [b]x[/b]"),
    ],
)
def test_safe_text_shows_every_control_and_invisible_character_visibly(raw: str, shown: str) -> None:
    assert safe_text(raw) == shown
    assert safe_text(shown) == shown  # printable text goes through unchanged


def test_json_for_terminal_escapes_what_json_encoders_leave_raw() -> None:
    value = {"ua": "\x1b[2J \x7f \x9b \x85 \u2028 \u2029 \u202e \udcff é 日本 \U0001f600 \U000e0001"}
    encoded = json_for_terminal(value)
    assert_inert(encoded)
    for escape in ("\\u001b", "\\u007f", "\\u009b", "\\u0085", "\\u2028", "\\u2029", "\\u202e", "\\udcff"):
        assert escape in encoded
    assert "\\udb40\\udc01" in encoded  # outside the BMP: a surrogate pair, as JSON spells it
    assert "é 日本 \U0001f600" in encoded  # printable text stays readable
    assert json.loads(encoded) == value  # the data is intact
    assert orjson.loads(json_for_terminal({"ua": "\x9b\u2028"})) == {"ua": "\x9b\u2028"}


# -- sessionward audit ---------------------------------------------------------------------------


def test_escape_sequences_and_markup_in_cookie_attributes_cannot_rewrite_the_audit_table() -> None:
    with serve_h11(terminal_injection_site()) as url:
        result = invoke("audit", url, "--samples", "20")

    # Before: SameSite=[/x]Lax ended the run with a MarkupError and no report at all.
    assert result.exit_code == 1, result.output
    assert_inert(result.output)
    # The FAIL rows the site tried to erase are there, quoting the attacks harmlessly.
    assert "FAIL" in row(result.output, "cookie SameSite")
    assert f"SameSite={HOSTILE_SAMESITE}" in row(result.output, "cookie SameSite")
    assert "FAIL" in row(result.output, "cookie Domain")
    assert "Domain=evil.test\\x9b2j\\u2028\\u202etset" in row(result.output, "cookie Domain")  # lower-cased
    assert "FAIL" in row(result.output, "cookie HttpOnly")
    assert "FAIL" in row(result.output, "cookie Secure")
    assert "FAIL" in row(result.output, "no session ID in redirects or links")
    assert "[/x]" in row(result.output, "no session ID in redirects or links")
    # Escape sequences are shown, not run; Rich markup is printed, not interpreted.
    path = row(result.output, "cookie Path")
    assert "Path=/\\x1b[1A\\x1b[2K[link=http://evil.test/]PASS[/link]" in path
    assert "Expires=Wed, 21 Oct 2099 07:28:00 GMT\\x9d0\\x07\\x7f" in row(result.output, "cookie lifetime")
    assert "default-src 'self' \\x1b]8;;http://evil.test/\\x1b\\[bold red]ok[/]" in row(
        result.output, "Content-Security-Policy"
    )
    cache = row(result.output, "Cache-Control")  # the value is lower-cased
    assert "no-store\\x1b[2k\\x08\\x08\\x08[reverse]fail hidden[/reverse]" in cache
    assert "Checks:" in result.output


def test_escape_sequences_in_cookie_attributes_reach_audit_json_only_as_unicode_escapes() -> None:
    with serve_h11(terminal_injection_site()) as url:
        result = invoke("audit", url, "--samples", "20", "--json")

    assert result.exit_code == 1, result.output
    # Before: C1 codes, U+2028 and the bidi override went out raw (orjson escapes only C0).
    assert_inert(result.output)
    for escape in ("\\u001b[1A", "\\u009b2j", "\\u2028", "\\u202e", "\\u009d0", "\\u0007", "\\u007f"):
        assert escape in result.output
    # JSON is for programs: the values themselves are intact.
    details = {c["item"]: (c["status"], c["detail"]) for c in orjson.loads(result.output)["checks"]}
    assert details["cookie Path"] == ("pass", f"Path={HOSTILE_PATH}")
    assert details["cookie SameSite"][0] == "fail"
    assert details["cookie SameSite"][1].startswith(f"SameSite={HOSTILE_SAMESITE}:")
    assert details["cookie Domain"][0] == "fail"
    assert details["cookie Domain"][1].startswith(f"Domain={HOSTILE_DOMAIN.lower()} ")
    assert details["cookie lifetime"][1].startswith(f"Expires={HOSTILE_EXPIRES}:")
    assert details["Content-Security-Policy"][1] == HOSTILE_CSP[:80]
    assert details["Cache-Control on the cookie-setting response"][1] == HOSTILE_CACHE.lower()


def test_control_codes_and_markup_in_an_error_line_are_shown_not_run() -> None:
    result = invoke("audit", f"http://127.0.0.1:{free_port()}/\x9b2J\x9d0;t\x9c[/x]")

    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: cannot reach ")
    assert "/\\x9b2J\\x9d0;t\\x9c[/x]" in line  # before: the C1 codes went to the terminal raw
    assert_inert(result.stderr)


def test_an_escape_sequence_in_the_audited_url_is_one_error_line_not_a_traceback() -> None:
    result = invoke("audit", f"http://127.0.0.1:{free_port()}/\x1b[2J")  # before: httpx.InvalidURL, a traceback

    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: Invalid value for URL: ")
    assert "\\x1b[2J" in line
    assert_inert(result.stderr)


def test_an_escape_sequence_in_an_audited_path_is_one_error_line_not_a_traceback() -> None:
    with serve(hardened_site()) as url:
        result = invoke("audit", url, "--login-path", "/\x1b[2J")  # before: httpx.InvalidURL, a traceback

    assert result.exit_code == 1, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: cannot reach ")
    assert "/\\x1b[2J" in line
    assert_inert(result.stderr)


# -- sessionward sessions ------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sessions.db'}"


def test_markup_and_control_codes_in_a_stored_user_agent_are_listed_escaped(sqlite_url: str) -> None:
    _, hostile = login_record("alice", user_agent=HOSTILE_USER_AGENT)
    _, plain = login_record("alice", user_agent="Browser/1.0")
    seed(sqlite_url, [hostile, plain])

    table = invoke("sessions", "list", "--user", "alice", "--store", sqlite_url)

    # Before: "[/close]" raised MarkupError, and the administrator saw no session at all.
    assert table.exit_code == 0, table.output
    assert_inert(table.output)
    assert hostile.handle in table.output
    assert plain.handle in table.output
    assert "bad [/close] markup \\x1b[2J\\x9b1;1H\\u2028[link=http://evil.test/]ok[/link] \\u202eevil" in row(
        table.output, hostile.handle
    )

    listed = invoke("sessions", "list", "--user", "alice", "--store", sqlite_url, "--json")

    assert listed.exit_code == 0, listed.output
    assert_inert(listed.output)  # before: \x9b and \u2028 went out raw
    for escape in ("\\u001b[2J", "\\u009b1;1H", "\\u2028", "\\u202e"):
        assert escape in listed.output
    agents = {s["handle"]: s["user_agent"] for s in orjson.loads(listed.output)["sessions"]}
    assert agents == {hostile.handle: HOSTILE_USER_AGENT, plain.handle: "Browser/1.0"}


def test_a_hostile_user_name_is_escaped_by_list_revoke_and_revoke_user(sqlite_url: str) -> None:
    records = [login_record(HOSTILE_USER)[1] for _ in range(3)]
    seed(sqlite_url, records)
    shown = "eve[/x]\\x1b]0;pwned\\x07\\x85"

    table = invoke("sessions", "list", "--user", HOSTILE_USER, "--store", sqlite_url)
    assert table.exit_code == 0, table.output  # before: the title's "[/x]" raised MarkupError
    assert_inert(table.output)
    assert shown in table.output
    assert all(r.handle in table.output for r in records)

    listed = invoke("sessions", "list", "--user", HOSTILE_USER, "--store", sqlite_url, "--json")
    assert listed.exit_code == 0, listed.output
    assert_inert(listed.output)
    assert orjson.loads(listed.output)["user"] == HOSTILE_USER

    revoked = invoke("sessions", "revoke", records[0].handle, "--store", sqlite_url)
    assert revoked.exit_code == 0, revoked.output
    assert_inert(revoked.output)  # before: the stored name went to the terminal raw
    assert revoked.output.strip() == f"revoked session {records[0].handle} of user {shown}"

    everything = invoke("sessions", "revoke-user", HOSTILE_USER, "--store", sqlite_url)
    assert everything.exit_code == 0, everything.output
    assert_inert(everything.output)
    assert "revoked 2 session(s) of user" in everything.output

    nothing = invoke("sessions", "list", "--user", HOSTILE_USER, "--store", sqlite_url)
    assert nothing.exit_code == 0, nothing.output  # before: MarkupError on "no live sessions for user …"
    assert_inert(nothing.output)
    assert "no live sessions for user" in nothing.output
