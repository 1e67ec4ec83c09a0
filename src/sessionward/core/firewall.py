"""Request-target rules applied before anything else.

After Spring Security's StrictHttpFirewall: a path that could smuggle a session ID
(``;jsessionid=``), bypass path-based authorization (encoded ``/``, ``.`` segments, ``//``)
or carry a non-printable character (CR and LF that inject into headers, NUL, ESC that drives
a terminal, NEL or U+2028 that split a log line…) is refused with 400 before any store is
touched, and methods outside the allowed set get 405.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sessionward.core.config import FirewallPolicy

# Paths that every rule below lets through, whatever the policy relaxes: segments of
# unreserved characters, none empty (no "//") or starting with "." (no dot segments), no
# "%", ";" or "\\". One C-level match answers most requests; the rest take the long way.
_PLAIN_PATH = re.compile(rb"(?:/[A-Za-z0-9_~\-][A-Za-z0-9_~.\-]*)*/?")

# A non-printable character sent as it is: a C0 control or space (never valid unencoded in a
# request target), DEL, a C1 control in UTF-8 (C2 80 to C2 9F, NEL among them) or the line
# and paragraph separators U+2028/U+2029 (E2 80 A8/A9). C2 and E2 are lead bytes, never
# continuation bytes, so text such as "ą" (C4 85) or "…" (E2 80 A6) cannot match. The
# latin-1 view that PEP 3333 gives PATH_INFO is only a transport: a lone byte 85 is invalid
# UTF-8, which every decoder here turns into U+FFFD, not NEL.
_RAW_CONTROL = re.compile(rb"[\x00-\x20\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]")

# The same characters percent-encoded, hex digits in either case, and the multi-byte ones
# also half-encoded ("%c2" then a raw 85 decodes to NEL all the same). Searched only after
# _RAW_CONTROL found nothing, so a match here always holds a "%".
_ENCODED_CONTROL = re.compile(
    rb"%[01][0-9a-f]|%7f"
    rb"|(?:%c2|\xc2)(?:%[89][0-9a-f]|[\x80-\x9f])"
    rb"|(?:%e2|\xe2)(?:%80|\x80)(?:%a[89]|[\xa8\xa9])",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a request was refused, and with which status."""

    status: int
    reason: str


def check_request(policy: FirewallPolicy, method: str, raw_path: bytes) -> Rejection | None:
    """Return a :class:`Rejection` for a request the firewall refuses, else ``None``.

    Args:
        policy: The rules.
        method: The request method.
        raw_path: The request target's path as sent (percent-encoded, no query).
    """
    if not policy.enabled:
        return None
    if method not in policy.allowed_methods:
        return Rejection(405, "method_not_allowed")
    if len(raw_path) > policy.max_path_length:
        return Rejection(400, "path_too_long")
    if raw_path and _PLAIN_PATH.fullmatch(raw_path) is not None:
        return None
    if _RAW_CONTROL.search(raw_path) is not None:
        return Rejection(400, "non_printable")
    lowered = raw_path.lower()
    if not policy.allow_semicolon and (b";" in raw_path or b"%3b" in lowered):
        return Rejection(400, "semicolon")
    if not policy.allow_encoded_slash and b"%2f" in lowered:
        return Rejection(400, "encoded_slash")
    if not policy.allow_backslash and (b"\\" in raw_path or b"%5c" in lowered):
        return Rejection(400, "backslash")
    if not policy.allow_encoded_percent and b"%25" in lowered:
        return Rejection(400, "encoded_percent")
    if not policy.allow_encoded_period and b"%2e" in lowered:
        return Rejection(400, "encoded_period")
    if _ENCODED_CONTROL.search(raw_path) is not None:
        return Rejection(400, "encoded_control")
    if not policy.allow_double_slash and b"//" in raw_path:
        return Rejection(400, "double_slash")
    if not raw_path.startswith(b"/") and raw_path != b"*":
        return Rejection(400, "not_absolute")
    for segment in raw_path.split(b"/"):
        if segment in (b".", b".."):
            return Rejection(400, "dot_segment")
    return None
