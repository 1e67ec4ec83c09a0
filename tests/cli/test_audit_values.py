"""Cookie values are read before any statistics: percent-encoding undone, signed formats told apart.

Values are made the way each framework makes them: with the framework itself where it is
installed (Flask, itsdangerous), else by its documented algorithm (express's
cookie-signature, Django's signing, Rails' cookie store, JWT, Laravel's encrypter).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import zlib
from urllib.parse import quote

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import Signer, TimestampSigner

from sessionward.audit.checks import Status
from sessionward.audit.ids import check_ids
from sessionward.audit.values import ValueKind, forge_value, read_cookie_value, read_sample

SECRET = b"a secret the auditor never knows"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def express_value(sid: str | None = None) -> str:
    """express-session's cookie: encodeURIComponent("s:" + id + "." + base64(HMAC-SHA256(id)) without "=")."""
    sid = sid or b64url(secrets.token_bytes(24))  # uid-safe(24)
    mac = base64.b64encode(hmac.new(SECRET, sid.encode(), hashlib.sha256).digest()).decode().rstrip("=")
    return quote(f"s:{sid}.{mac}", safe="-_.!~*'()")


def flask_value(data: dict[str, object]) -> str:
    app = Flask(__name__)
    app.secret_key = SECRET
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    return serializer.dumps(data)


def flask_session_value() -> str:
    """Flask-Session with SESSION_USE_SIGNER: itsdangerous Signer over token_urlsafe(32)."""
    return Signer(SECRET, salt="flask-session", key_derivation="hmac").sign(secrets.token_urlsafe(32)).decode()


def starlette_value(data: dict[str, object]) -> str:
    """starlette.middleware.sessions: TimestampSigner(b64encode(json.dumps(session)))."""
    return TimestampSigner(SECRET).sign(base64.b64encode(json.dumps(data).encode())).decode()


def django_value(data: dict[str, object], *, compress: bool) -> str:
    """django.core.signing.dumps(data, compress=...): payload:timestamp(base62):base64url(HMAC-SHA256)."""
    raw = json.dumps(data, separators=(",", ":")).encode()
    payload = "." + b64url(zlib.compress(raw)) if compress else b64url(raw)
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    now, stamp = int(time.time()), ""
    while now:
        now, digit = divmod(now, 62)
        stamp = digits[digit] + stamp
    value = f"{payload}:{stamp}"
    return f"{value}:{b64url(hmac.new(SECRET, value.encode(), hashlib.sha256).digest())}"


def rails_encrypted_value() -> str:
    """Rails' encrypted cookie store (AES-256-GCM): base64 data--iv--tag, percent-encoded."""
    parts = [base64.b64encode(secrets.token_bytes(n)).decode() for n in (90, 12, 16)]
    return quote("--".join(parts), safe="")


def rails_signed_value(data: dict[str, object]) -> str:
    body = base64.b64encode(json.dumps(data).encode()).decode()
    return quote(f"{body}--{hmac.new(SECRET, body.encode(), hashlib.sha1).hexdigest()}", safe="")


def jwt_value(data: dict[str, object]) -> str:
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(data).encode())
    return f"{head}.{body}.{b64url(hmac.new(SECRET, f'{head}.{body}'.encode(), hashlib.sha256).digest())}"


def laravel_value() -> str:
    data = {"iv": base64.b64encode(secrets.token_bytes(16)).decode(), "value": "x" * 40, "mac": "0" * 64, "tag": ""}
    return quote(base64.b64encode(json.dumps(data).encode()).decode(), safe="")


@pytest.mark.parametrize(
    ("make", "format_start", "kind"),
    [
        (express_value, "express-session signed ID", ValueKind.ID),
        (flask_session_value, "itsdangerous signed ID", ValueKind.ID),
        (lambda: flask_value({"_user_id": "alice", "csrf_token": "x" * 40}), "itsdangerous signed session data", "d"),
        (lambda: flask_value({"csrf_token": secrets.token_hex(100)}), "itsdangerous signed session data", "d"),
        (lambda: starlette_value({"user": "alice"}), "itsdangerous signed session data", "d"),
        (lambda: django_value({"_auth_user_id": "7"}, compress=False), "Django signed session data", "d"),
        (lambda: django_value({"_auth_user_id": "7", "pad": "a" * 200}, compress=True), "Django signed session", "d"),
        (rails_encrypted_value, "Rails encrypted cookie", ValueKind.SEALED),
        (lambda: rails_signed_value({"user_id": 7}), "Rails signed session data", "d"),
        (lambda: jwt_value({"sub": "alice"}), "JWT", "d"),
        (laravel_value, "Laravel encrypted cookie", ValueKind.SEALED),
        (lambda: secrets.token_urlsafe(32), "opaque", ValueKind.ID),
        (lambda: secrets.token_hex(16), "opaque", ValueKind.ID),
    ],
    ids=[
        "express",
        "flask-session signer",
        "flask session",
        "flask session compressed",
        "starlette",
        "django",
        "django compressed",
        "rails encrypted",
        "rails signed",
        "jwt",
        "laravel",
        "opaque base64url",
        "opaque hex",
    ],
)
def test_each_framework_format_is_told_apart(make: object, format_start: str, kind: ValueKind | str) -> None:
    assert callable(make)
    value = read_cookie_value(make())
    assert value.format.startswith(format_start)
    assert value.kind is (ValueKind.DATA if kind == "d" else kind)
    assert (value.session_id is not None) == (value.kind is ValueKind.ID)


def test_express_cookies_are_percent_decoded_and_only_the_id_is_kept() -> None:
    sid = b64url(secrets.token_bytes(24))
    value = read_cookie_value(express_value(sid))
    assert value.percent_encoded
    assert value.session_id == sid
    assert value.described == "express-session signed ID (s:<id>.<signature>), percent-encoded"


def test_express_signed_ids_are_measured_as_ids_not_as_varying_counters() -> None:
    # The false alarm: the percent-encoding of the signature varied the length
    # ("the IDs vary in length (467..515 bits): a counter or timestamp?").
    values = [express_value() for _ in range(110)]
    assert len({len(v) for v in values}) > 1  # the encoded values do vary
    findings = check_ids(values, "alice")
    statuses = {r.item: r.status for r in findings.results}
    assert Status.FAIL not in statuses.values(), findings.results
    assert statuses["ID independence"] is Status.PASS
    assert statuses["ID randomness (FIPS 140-2)"] is Status.PASS
    entropy = next(r.detail for r in findings.results if r.item == "ID length and entropy")
    assert "32 chars, base64url: about 192 bits" in entropy
    assert "express-session" in entropy


def test_percent_encoded_standard_base64_ids_are_decoded_before_measuring() -> None:
    values = [quote(base64.b64encode(secrets.token_bytes(32)).decode(), safe="") for _ in range(80)]
    findings = check_ids(values, None)
    assert findings.bits is not None
    assert findings.bits.encoding == "base64"
    assert min(findings.bits.widths) == 256
    assert Status.FAIL not in {r.status for r in findings.results}


def test_session_data_in_the_cookie_fails_and_the_user_name_is_found_in_it() -> None:
    values = [flask_value({"_user_id": "alice", "_fresh": True, "csrf_token": secrets.token_hex(20)}) for _ in range(2)]
    statuses = {r.item: r for r in check_ids(values, "alice").results}
    assert statuses["session data stays on the server"].status is Status.FAIL
    assert "_user_id" in statuses["session data stays on the server"].detail
    assert statuses["ID carries no user data"].status is Status.FAIL
    assert "key '_user_id'" in statuses["ID carries no user data"].detail
    assert statuses["ID randomness (FIPS 140-2)"].status is Status.SKIP


def test_a_short_user_name_inside_data_keys_is_no_finding() -> None:
    # Only a whole value equal to the name counts: "re" is in "_fresh", which proves nothing.
    values = [flask_value({"_fresh": True, "_user_id": "7"}) for _ in range(2)]
    statuses = {r.item: r.status for r in check_ids(values, "re").results}
    assert statuses["ID carries no user data"] is Status.PASS


def test_an_encrypted_cookie_is_a_warning_and_its_ids_are_not_measured() -> None:
    statuses = {r.item: r.status for r in check_ids([rails_encrypted_value() for _ in range(2)], None).results}
    assert statuses["session data stays on the server"] is Status.WARN
    assert statuses["ID independence"] is Status.SKIP


@pytest.mark.parametrize("make", [express_value, flask_session_value, lambda: secrets.token_hex(32)])
def test_a_forged_value_keeps_the_format_but_is_new(make: object) -> None:
    assert callable(make)
    original = read_cookie_value(make())
    forged = forge_value(original)
    assert forged != original.raw
    assert len(read_cookie_value(forged).raw) == len(original.raw) or original.percent_encoded
    assert read_cookie_value(forged).percent_encoded == original.percent_encoded
    assert read_cookie_value(forged).format == original.format
    assert read_cookie_value(forged).session_id != original.session_id


def test_a_random_id_shaped_like_a_rails_cookie_stays_in_a_sample_of_opaque_ids() -> None:
    # A base64url ID holds "--" twice about once in 10^5: it reads as Rails' data--iv--tag.
    rails_shaped = "2pnVRsGC3FB4qW9--hsuv1K6lvG9150pq--xr4VlpuM"
    assert read_cookie_value(rails_shaped).format.startswith("Rails")
    ids = [secrets.token_hex(16) for _ in range(79)]
    sample = read_sample([*ids, rails_shaped])
    assert sample.format.format == "opaque"
    assert sample.formats == 1
    assert sample.ids == [*ids, rails_shaped]  # all 80 measured, as the report says


def test_a_stray_opaque_value_does_not_join_a_sample_of_a_framework_format() -> None:
    signed = [f"s%3A{secrets.token_urlsafe(24)}.{'A' * 43}" for _ in range(10)]
    sample = read_sample([*signed, secrets.token_hex(16)])
    assert sample.format.format.startswith("express-session")
    assert len(sample.ids) == 10
    assert sample.formats == 2
