"""What a session cookie's value is made of, read before any statistics (``sessionward audit``).

Frameworks seldom send a bare ID. express-session sends ``s:<id>.<signature>``,
percent-encoded (``s%3A…``, the signature's ``+`` and ``/`` as ``%2B`` and ``%2F``, so the
length varies with the signature, not the ID); Flask-Session can sign its ID with
itsdangerous (``<id>.<signature>``); Flask's and Starlette's default sessions, Django's
``signed_cookies`` backend, Rails' cookie store and JWTs put the session *data* in the
cookie, signed or encrypted. Measuring such a value as if it were an ID finds "bias" in
base64 padding, JSON and timestamps, and misses the real finding: there is no ID.

:func:`read_cookie_value` undoes percent-encoding, recognises these formats by their
shape (and, for readable data, by the payload decoding to JSON), and returns the part to
measure. Pure functions; nothing is verified (the auditor has no key), only read.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import string
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote, unquote

import orjson

_MAX_INFLATED = 64 * 1024
_B64URL_CHARS = string.ascii_letters + string.digits + "-_"
# What encodeURIComponent (express, most JavaScript) leaves as it is.
_URI_COMPONENT_SAFE = "-_.!~*'()"


class ValueKind(StrEnum):
    """What a cookie value carries."""

    ID = "id"  # an opaque ID, possibly signed: the ID part is measured
    DATA = "data"  # the session data itself, readable
    SEALED = "sealed"  # encrypted: neither the data nor an ID can be read


@dataclass(frozen=True, slots=True)
class CookieValue:
    """One session cookie value, read.

    Attributes:
        raw: The value as the ``Set-Cookie`` header sent it.
        format: A name for the format seen (``opaque``, ``express-session signed ID``, …).
        kind: Whether it carries an ID, readable data, or sealed data.
        session_id: The part to measure as an ID (``None`` unless ``kind`` is ID).
        data: The decoded session data when ``kind`` is DATA.
        percent_encoded: Whether percent-decoding changed the value.
    """

    raw: str
    format: str
    kind: ValueKind
    session_id: str | None = None
    data: object = None
    percent_encoded: bool = False

    @property
    def described(self) -> str:
        """The format as the report names it."""
        return f"{self.format}, percent-encoded" if self.percent_encoded else self.format


# express-session (cookie-signature): "s:" + id + "." + base64(HMAC-SHA256) without "=" padding.
_EXPRESS = re.compile(r"s:(?P<id>[^.]+)\.(?P<sig>[A-Za-z0-9+/]{43})")
_JWT = re.compile(r"(?P<head>eyJ[A-Za-z0-9_-]*)\.(?P<body>eyJ[A-Za-z0-9_-]*)\.(?P<sig>[A-Za-z0-9_-]*)")
# itsdangerous TimestampSigner (Flask's and Starlette's sessions): payload.timestamp.signature,
# the signature a base64url HMAC (SHA-1: 27 chars, SHA-256: 43, SHA-512: 86).
_SIGNATURE = r"(?:[A-Za-z0-9_-]{27}|[A-Za-z0-9_-]{43}|[A-Za-z0-9_-]{86})"
_ITSDANGEROUS_TIMED = re.compile(
    rf"(?P<payload>\.?[A-Za-z0-9_+/=-]+)\.(?P<ts>[A-Za-z0-9_-]{{4,8}})\.(?P<sig>{_SIGNATURE})"
)
_ITSDANGEROUS = re.compile(rf"(?P<payload>[^.]+)\.(?P<sig>{_SIGNATURE})")
# django.core.signing: value:timestamp(base62):signature, or value:signature.
_DJANGO_TIMED = re.compile(rf"(?P<payload>\.?[^:]+):(?P<ts>[0-9A-Za-z]{{4,8}}):(?P<sig>{_SIGNATURE})")
_DJANGO = re.compile(rf"(?P<payload>[^:]+):(?P<sig>{_SIGNATURE})")
# Rails' cookie store: encrypted "data--iv--tag" (AES-GCM), or signed "data--hexdigest".
_B64_PART = r"[A-Za-z0-9+/]+={0,2}"
_RAILS_ENCRYPTED = re.compile(rf"(?P<data>{_B64_PART})--(?P<iv>{_B64_PART})--(?P<tag>{_B64_PART})")
_RAILS_SIGNED = re.compile(rf"(?P<data>{_B64_PART})--(?P<digest>[0-9a-f]{{40,128}})")


OPAQUE = "opaque"
"""The format of a value that matches no known shape: an ID, measured whole."""


def read_cookie_value(raw: str) -> CookieValue:
    """Read a session cookie's value: undo percent-encoding, tell its format, find the ID."""
    decoded, encoded = _decoded(raw)
    for reader in (_express, _jwt, _itsdangerous, _django, _rails, _laravel):
        found = reader(decoded)
        if found is not None:
            return CookieValue(raw, found[0], found[1], found[2], found[3], encoded)
    return CookieValue(raw, OPAQUE, ValueKind.ID, decoded, None, encoded)


def _decoded(raw: str) -> tuple[str, bool]:
    """Return ``raw`` without its quotes and percent-encoding, and whether it was percent-encoded."""
    value = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw
    decoded = unquote(value) if "%" in value else value
    return decoded, decoded != value


def _as_opaque(value: CookieValue) -> CookieValue:
    """Read ``value`` again as an opaque ID, whatever shape it happened to have."""
    decoded, encoded = _decoded(value.raw)
    return CookieValue(value.raw, OPAQUE, ValueKind.ID, decoded, None, encoded)


_Found = tuple[str, ValueKind, str | None, object]


def _express(value: str) -> _Found | None:
    match = _EXPRESS.fullmatch(value)
    if match is None:
        return None
    return "express-session signed ID (s:<id>.<signature>)", ValueKind.ID, match["id"], None


def _jwt(value: str) -> _Found | None:
    match = _JWT.fullmatch(value)
    if match is None or (data := _json(_b64(match["body"]))) is None:
        return None
    return "JWT (session data in the cookie)", ValueKind.DATA, None, data


def _itsdangerous(value: str) -> _Found | None:
    timed = _ITSDANGEROUS_TIMED.fullmatch(value)
    if timed is not None and (data := _payload(timed["payload"])) is not None:
        return "itsdangerous signed session data (Flask, Starlette)", ValueKind.DATA, None, data
    plain = _ITSDANGEROUS.fullmatch(value)
    if plain is None:
        return None
    if (data := _payload(plain["payload"])) is not None:
        return "itsdangerous signed data", ValueKind.DATA, None, data
    return "itsdangerous signed ID (<id>.<signature>, Flask-Session)", ValueKind.ID, plain["payload"], None


def _django(value: str) -> _Found | None:
    timed = _DJANGO_TIMED.fullmatch(value)
    if timed is not None:
        if (data := _payload(timed["payload"])) is not None:
            return "Django signed session data (signed_cookies)", ValueKind.DATA, None, data
        return "Django signed ID (<id>:<timestamp>:<signature>)", ValueKind.ID, timed["payload"], None
    plain = _DJANGO.fullmatch(value)
    if plain is None:
        return None
    if (data := _payload(plain["payload"])) is not None:
        return "Django signed data", ValueKind.DATA, None, data
    return "Django signed ID (<id>:<signature>)", ValueKind.ID, plain["payload"], None


def _rails(value: str) -> _Found | None:
    if _RAILS_ENCRYPTED.fullmatch(value) is not None:
        return "Rails encrypted cookie (data--iv--tag)", ValueKind.SEALED, None, None
    signed = _RAILS_SIGNED.fullmatch(value)
    if signed is None:
        return None
    data = _b64(signed["data"])
    readable = _json(data)
    if readable is None and data is not None and data.startswith(b"\x04\x08"):  # Ruby Marshal
        readable = data.decode("latin-1")
    if readable is None:
        return "Rails signed cookie (data--digest)", ValueKind.SEALED, None, None
    return "Rails signed session data (data--digest)", ValueKind.DATA, None, readable


def _laravel(value: str) -> _Found | None:
    if not value.startswith("eyJ"):
        return None
    data = _json(_b64(value))
    if isinstance(data, dict) and {"iv", "value", "mac"} <= set(data):
        return "Laravel encrypted cookie", ValueKind.SEALED, None, None
    return None


def _b64(text: str) -> bytes | None:
    """Decode base64 or base64url, padded or not; ``None`` if it is neither."""
    stripped = text.rstrip("=")
    padded = stripped + "=" * (-len(stripped) % 4)
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def _payload(text: str) -> object:
    """The JSON in an itsdangerous/Django payload (``.`` + base64(zlib(JSON)) when compressed)."""
    compressed = text.startswith(".")
    data = _b64(text[1:] if compressed else text)
    if data is None:
        return None
    if compressed:
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(data, _MAX_INFLATED)
        except zlib.error:
            return None
    return _json(data)


def _json(data: bytes | None) -> object:
    """The JSON object or array in ``data``; ``None`` for anything else (IDs are not JSON objects)."""
    if not data or data[:1] not in (b"{", b"["):
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


@dataclass(frozen=True, slots=True)
class SampleFormat:
    """The format of a sample of cookie values, and the IDs to measure."""

    format: CookieValue
    values: list[CookieValue]
    ids: list[str]
    formats: int

    @property
    def kind(self) -> ValueKind:
        """What the values carry."""
        return self.format.kind


def read_sample(values: Sequence[str]) -> SampleFormat:
    """Read every value; the sample's format is the commonest one, and its IDs are those of that format.

    In a sample of opaque IDs, a value of another shape is an opaque ID too: a random
    base64url ID holds ``--`` twice about once in 10⁵ (Rails' ``data--iv--tag``), and a
    site that issues opaque IDs issues nothing else. Dropping it would shrink the sample.
    """
    read = [read_cookie_value(v) for v in values]
    counts = Counter(r.format for r in read)
    common = counts.most_common(1)[0][0]
    if common == OPAQUE:
        read = [r if r.format == OPAQUE else _as_opaque(r) for r in read]
        counts = Counter(r.format for r in read)
    kept = [r for r in read if r.format == common]
    ids = [r.session_id for r in kept if r.session_id]
    return SampleFormat(kept[0], kept, ids, len(counts))


def data_strings(data: object) -> Iterator[tuple[str, str]]:
    """Every string in decoded session data, with the key it sits under (``""`` at the top)."""
    stack: list[tuple[str, object]] = [("", data)]
    while stack:
        key, item = stack.pop()
        if isinstance(item, str):
            yield key, item
        elif isinstance(item, dict):
            stack.extend((str(k), v) for k, v in item.items())
            stack.extend(("", str(k)) for k in item)
        elif isinstance(item, list):
            stack.extend((key, v) for v in item)
        elif isinstance(item, int | float) and not isinstance(item, bool):
            yield key, str(item)


def data_keys(data: object) -> list[str]:
    """The top-level keys of decoded session data (what the report shows of it)."""
    return [str(k) for k in data] if isinstance(data, dict) else []


def forge_like(sample: str) -> str:
    """Return a made-up ID shaped like ``sample`` (an attacker's planted, never-issued ID)."""
    if re.fullmatch(r"[0-9a-f]+", sample):
        alphabet = "0123456789abcdef"
    elif all(c in _B64URL_CHARS for c in sample):
        alphabet = _B64URL_CHARS
    else:
        alphabet = "".join(sorted(set(sample)))
    return "".join(secrets.choice(alphabet) for _ in sample)


def forge_value(value: CookieValue) -> str:
    """Return a made-up cookie value of the same format as ``value``, as it would be sent.

    The ID part is made up like :func:`forge_like`; a signature around it is made up
    too (keeping its length and separators), so the value is well-formed, though a
    server that checks the signature sees through it. Percent-encoding is redone.
    """
    decoded = unquote(value.raw) if value.percent_encoded else value.raw
    if value.session_id is not None and value.session_id in decoded:
        before, _, after = decoded.partition(value.session_id)
        forged = before + forge_like(value.session_id) + re.sub(r"[A-Za-z0-9+/_-]+", _forge_match, after)
    else:
        forged = forge_like(decoded)
    return quote(forged, safe=_URI_COMPONENT_SAFE) if value.percent_encoded else forged


def _forge_match(match: re.Match[str]) -> str:
    # A signature keeps to its own characters, so that the value keeps its format.
    symbols = sorted(set(match[0]))
    return "".join(secrets.choice(symbols) for _ in match[0])
