"""Request-target rules applied before anything else (F5).

After Spring Security's StrictHttpFirewall: a path that could smuggle a session ID
(``;jsessionid=``), bypass path-based authorization (encoded ``/``, ``.`` segments, ``//``)
or inject into headers (CR, LF, NUL) is refused with 400 before any store is touched, and
methods outside the allowed set get 405.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sessionward.config import FirewallPolicy

# Paths that every rule below lets through, whatever the policy relaxes: segments of
# unreserved characters, none empty (no "//") or starting with "." (no dot segments), no
# "%", ";" or "\\". One C-level match answers most requests; the rest take the long way.
_PLAIN_PATH = re.compile(rb"(?:/[A-Za-z0-9_~\-][A-Za-z0-9_~.\-]*)*/?")


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
    if any(byte < 0x21 or byte == 0x7F for byte in raw_path):
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
    if b"%00" in raw_path or b"%0a" in lowered or b"%0d" in lowered:
        return Rejection(400, "encoded_control")
    if not policy.allow_double_slash and b"//" in raw_path:
        return Rejection(400, "double_slash")
    if not raw_path.startswith(b"/") and raw_path != b"*":
        return Rejection(400, "not_absolute")
    for segment in raw_path.split(b"/"):
        if segment in (b".", b".."):
            return Rejection(400, "dot_segment")
    return None
