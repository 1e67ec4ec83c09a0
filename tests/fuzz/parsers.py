"""Fuzz targets of the parsers that read a request: cookies, the firewall, client headers, IDs.

Where the input is built from known parts (cookies joined into headers), the parser must
give back exactly those parts: an oracle that does not restate the parser. Where it is
raw bytes, the properties are the invariants a caller relies on (a session cookie value
is never cut across a ``;``, an ID is only ever well-formed, the firewall answers the same
way twice and never lets through what its policy refuses).
"""

from __future__ import annotations

import ipaddress
import unicodedata
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import strategies as st

from fuzz.checks import expect
from fuzz.hostile import ID_ALPHABET, any_text, raw_ids
from sessionward.core import ids
from sessionward.core.clientinfo import client_info, normalize_origin, request_origin
from sessionward.core.config import CookiePolicy, Creation, FirewallPolicy, SessionPolicy
from sessionward.core.cookies import MAX_COOKIE_HEADER_BYTES, session_cookie_values, split_joined_cookie_header
from sessionward.core.engine import CookieProblem, SessionEngine
from sessionward.core.firewall import Rejection, check_request

# -- cookies: core/cookies.py and core/engine.py::SessionEngine.read_cookie / read_csrf_cookie -

ENGINES = {
    "secure": SessionEngine(SessionPolicy()),
    "plain": SessionEngine(SessionPolicy(cookie=CookiePolicy(secure=False))),
    "named": SessionEngine(SessionPolicy(cookie=CookiePolicy(name="__Secure-app.s"))),
    "stateless": SessionEngine(SessionPolicy(creation=Creation.STATELESS)),
}


def _near_misses(name: bytes) -> list[bytes]:
    """Names a lax parser would take for ``name`` (case, percent-encoding, spaces, affixes)."""
    return [
        name,
        name.lower(),
        name.upper(),
        name.replace(b"H", b"%48"),
        name + b"x",
        b"x" + name,
        name + b"\x00",
        name.replace(b"-", b"\xe2\x80\x90"),
        b'"' + name + b'"',
        name + b" ",
        b"\t" + name,
    ]


_WANTED = sorted({engine.cookie_name.encode() for engine in ENGINES.values()})
_CSRF = sorted({engine.csrf_cookie.cookie_name.encode() for engine in ENGINES.values()})
_NAMES = [miss for name in (*_WANTED, *_CSRF) for miss in _near_misses(name)]
_CSRF_TOKENS = st.text(ID_ALPHABET, min_size=42, max_size=44).map(str.encode)


def _without(*forbidden: bytes) -> Callable[[bytes], bytes]:
    def clean(raw: bytes) -> bytes:
        for byte in forbidden:
            raw = raw.replace(byte, b"")
        return raw

    return clean


odd_cookie_names = st.sampled_from(_NAMES) | st.binary(max_size=6).map(_without(b";", b"="))
odd_cookie_values = st.sampled_from(
    (b"", b" ", b'"quoted"', b"a,b", b"\x00", b"\r\n", b"\xff", b"=", b"a=b", b"\x7f")
) | st.binary(max_size=24).map(_without(b";"))
spaces = st.sampled_from((b"", b"", b" ", b"\t", b"  "))


@dataclass(frozen=True)
class Cookie:
    """One ``name=value`` of a header (``has_value`` false: a bare name, no ``=``)."""

    name: bytes
    value: bytes
    has_value: bool
    before: bytes
    after: bytes

    def text(self) -> bytes:
        """Return the cookie as it sits between two ``;``."""
        return self.before + self.name + (b"=" + self.value if self.has_value else b"") + self.after


def cookies(names: st.SearchStrategy[bytes], values: st.SearchStrategy[bytes]) -> st.SearchStrategy[Cookie]:
    """Return cookies named and valued from ``names`` and ``values``, spaced or not."""
    return st.builds(Cookie, names, values, st.booleans() | st.just(True), spaces, spaces)


any_cookies = cookies(odd_cookie_names, odd_cookie_values | raw_ids.map(str.encode) | _CSRF_TOKENS)


@dataclass(frozen=True)
class CookieCase:
    """The ``Cookie`` headers of a request: built from cookies, or raw bytes (``raw``)."""

    headers: tuple[tuple[Cookie, ...], ...]
    raw: tuple[bytes, ...]
    padding: int
    engine: str

    def values(self) -> list[bytes]:
        """Return the header values as sent."""
        if self.raw:
            return list(self.raw)
        built = [b";".join(cookie.text() for cookie in header) for header in self.headers]
        if self.padding and built:
            built[0] += b"; pad=" + b"x" * self.padding
        return built

    def sent(self, name: bytes) -> list[bytes]:
        """Return the values the built headers carry for ``name``, in order (the oracle)."""
        return [
            cookie.value.strip(b" \t")
            for header in self.headers
            for cookie in header
            if cookie.has_value and (cookie.before + cookie.name).strip(b" \t") == name
        ]


@st.composite
def cookie_cases(draw: st.DrawFn) -> CookieCase:
    """Return headers that mostly carry the engine's own cookies, from a pool of one or two IDs.

    So that the cases that matter come often: the session cookie sent twice with the same
    ID or with two, beside near-miss names (``__host-sid``, ``__%48ost-sid``) and noise.
    """
    engine = draw(st.sampled_from(sorted(ENGINES)))
    own = (ENGINES[engine].cookie_name.encode(), ENGINES[engine].csrf_cookie.cookie_name.encode())
    pool = draw(st.lists(raw_ids.map(str.encode) | _CSRF_TOKENS, min_size=1, max_size=2))
    cookie = cookies(st.sampled_from(own) | odd_cookie_names, st.sampled_from(pool) | odd_cookie_values)
    headers = draw(st.lists(st.lists(cookie, max_size=5).map(tuple), max_size=3).map(tuple))
    raw = draw(st.just(()) | st.lists(st.binary(max_size=64), min_size=1, max_size=3).map(tuple))
    padding = draw(st.sampled_from((0, 0, 0, 100, MAX_COOKIE_HEADER_BYTES - 64, MAX_COOKIE_HEADER_BYTES)))
    return CookieCase(headers, raw, padding, engine)


def _no_separators(value: bytes) -> None:
    expect(b";" not in value, "a cookie value holds ';'", repr(value))
    expect(value == value.strip(b" \t"), "a cookie value keeps surrounding blanks", repr(value))


def check_cookie_case(case: CookieCase) -> None:
    """Parse the headers for each cookie name; check values, read_cookie and read_csrf_cookie."""
    headers = case.values()
    engine = ENGINES[case.engine]
    oversized = sum(len(header) for header in headers) > MAX_COOKIE_HEADER_BYTES
    for name in (*_WANTED, *_CSRF):
        found = session_cookie_values(headers, name)
        for value in found:
            _no_separators(value)
            expect(any(value in header for header in headers), "a cookie value that was never sent", repr(value))
        if oversized:
            expect(found == [], "an oversized Cookie header was read", repr(name))
        elif not case.raw:
            expect(found == case.sent(name), "session_cookie_values: not exactly the values sent", repr(name))
        if not any(name in header for header in headers):
            expect(found == [], "a cookie found under a name that was never sent", repr(name))
    _check_read_cookie(engine, headers)
    token = engine.read_csrf_cookie(headers)
    if token is not None:
        csrf = session_cookie_values(headers, engine.csrf_cookie.cookie_name)
        expect(set(csrf) == {token.encode()}, "read_csrf_cookie: a token beside another one", repr(csrf))
        expect(len(token) == 43 and set(token) <= set(ID_ALPHABET), "read_csrf_cookie: a malformed token", token)


def _check_read_cookie(engine: SessionEngine, headers: list[bytes]) -> None:
    read = engine.read_cookie(headers)
    if engine.stateless:
        expect(not read.sent, "a stateless engine read a cookie")
        return
    sent = session_cookie_values(headers, engine.cookie_name)
    if read.raw_id is not None:
        raw = read.raw_id
        expect(ids.is_well_formed(raw), "read_cookie: a malformed ID", repr(raw))
        expect(all(char.isprintable() and char not in ";, " for char in raw), "read_cookie: a control character")
        expect(read.key == ids.storage_key(raw), "read_cookie: the key is not the ID's")
        expect(set(sent) == {raw.encode()}, "read_cookie: an ID beside another value", repr(sent))
    elif not sent:
        expect(not read.sent, "read_cookie: no cookie, yet a problem", repr(read))
    elif len(set(sent)) > 1:
        expect(read.problem is CookieProblem.CONFLICT, "read_cookie: two values without a conflict", repr(sent))
    else:
        expect(read.problem is CookieProblem.MALFORMED, "read_cookie: a refused value that is well-formed", repr(sent))
        expect(not ids.is_well_formed(sent[0].decode("latin-1")), "read_cookie: a well-formed ID refused", repr(sent))


@dataclass(frozen=True)
class JoinedCase:
    """Cookie headers that a WSGI server joined into one (``separator``), or one raw header."""

    headers: tuple[tuple[Cookie, ...], ...]
    separator: bytes
    raw: bytes | None


joined_cases = st.builds(
    JoinedCase,
    st.lists(st.lists(any_cookies, max_size=4).map(tuple), min_size=1, max_size=4).map(tuple),
    st.sampled_from((b",", b", ")),
    st.none()
    | st.binary(max_size=80)
    | st.builds(
        lambda head, size: (head * (size // max(1, len(head)) + 1))[:size],
        st.binary(min_size=1, max_size=24),
        st.integers(min_value=MAX_COOKIE_HEADER_BYTES - 4, max_value=MAX_COOKIE_HEADER_BYTES + 4),
    ),
)


def check_joined_case(case: JoinedCase) -> None:
    """Split a joined header: nothing lost, and splitting only adds readings of a name."""
    built = [b";".join(cookie.text() for cookie in header) for header in case.headers]
    header = case.raw if case.raw is not None else case.separator.join(built)
    parts = split_joined_cookie_header(header)
    if b"," not in header or len(header) > MAX_COOKIE_HEADER_BYTES:
        expect(parts == [header], "split_joined_cookie_header: an oversized or comma-free header was split")
    else:
        expect(b",".join(parts) == header, "split_joined_cookie_header: bytes lost or added")
        expect(all(b"," not in part for part in parts), "split_joined_cookie_header: a part still holds ','")
    for name in (*_WANTED, *_CSRF):
        after = session_cookie_values(parts, name)
        for value in session_cookie_values([header], name):
            first = value.split(b",")[0].strip(b" \t")
            expect(first in after, "splitting hid a value a single header reading finds", repr((name, value)))
        if case.raw is None and not any(b"," in part for part in built) and len(header) <= MAX_COOKIE_HEADER_BYTES:
            expect(after == session_cookie_values(built, name), "a joined header reads unlike the headers", repr(name))


# -- the firewall: core/firewall.py -------------------------------------------------------------

PATH_PIECES = (
    b"/", b".", b"..", b"/./", b"/../", b"/.", b"%2e", b"%2E", b"%2f", b"%2F", b"%5c", b"%5C", b"\\", b";", b"%3b",
    b"%3B", b"%25", b"%", b"%0", b"%00", b"%0a", b"%0D", b"%1f", b"%7f", b"%7F", b"%20", b" ", b"\t", b"\x00",
    b"\r\n", b"\x7f", b"%c2%85", b"%C2%9f", b"\xc2\x85", b"%c2", b"\xc2", b"\x85", b"%85", b"%e2%80%a8",
    b"%E2%80%A9", b"\xe2\x80\xa8", b"\xe2\x80\xa9", b"\xe2\x80", b"%e2", b"%80", b"%a8", b"%c0%ae", b"*", b"?",
    b"#", b"jsessionid=x", b"//", b"\xff",
)  # fmt: skip
"""Pieces that some rule is about, put into otherwise plain paths."""

_SAFE_SEGMENTS = (
    b"a",
    b"b0",
    b"~x",
    b"-",
    b"_",
    b"%41",
    b"%20",
    b"%c4%85",
    b"\xc4\x85",
    b"\xe2\x80\xa6",
    b"x.y",
    b"...",
)


@st.composite
def paths(draw: st.DrawFn) -> bytes:
    """Return a path the firewall lets through with up to three hostile pieces put in it, or bytes."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=40))
    segments = draw(st.lists(st.sampled_from(_SAFE_SEGMENTS), max_size=4))
    path = bytearray(b"/" + b"/".join(segments) + draw(st.sampled_from((b"", b"/"))))
    for _ in range(draw(st.sampled_from((1, 1, 1, 0, 2, 3)))):
        at = draw(st.integers(0, len(path)))
        path[at:at] = draw(st.sampled_from(PATH_PIECES))
    return bytes(path)


methods = st.sampled_from(("GET",) * 8 + ("POST", "HEAD", "TRACE", "get", "", "CONNECT", "G\x00T"))
_DEFAULT_METHODS = FirewallPolicy().allowed_methods
_METHOD_SETS: tuple[frozenset[str], ...] = (*(_DEFAULT_METHODS,) * 3, frozenset({"GET"}), frozenset())


@st.composite
def firewall_policies(draw: st.DrawFn) -> FirewallPolicy:
    """Return any valid firewall policy: the default rules half of the time, else relaxed at random."""
    strict = draw(st.booleans())
    flags = {name: False if strict else draw(st.booleans()) for name in _FLAGS.values()}
    return FirewallPolicy(
        enabled=draw(st.just(True) | st.booleans()),
        allowed_methods=draw(st.sampled_from(_METHOD_SETS)),
        max_path_length=draw(st.sampled_from((8192, 8192, 16, 24))),
        **flags,
    )


_FLAGS = {
    "semicolon": "allow_semicolon",
    "encoded_slash": "allow_encoded_slash",
    "backslash": "allow_backslash",
    "encoded_percent": "allow_encoded_percent",
    "encoded_period": "allow_encoded_period",
    "double_slash": "allow_double_slash",
}
_REASONS = {
    *_FLAGS,
    "method_not_allowed",
    "path_too_long",
    "non_printable",
    "encoded_control",
    "not_absolute",
    "dot_segment",
}


@dataclass(frozen=True)
class FirewallCase:
    """A request target and method, under a firewall policy."""

    policy: FirewallPolicy
    method: str
    path: bytes


firewall_cases = st.builds(FirewallCase, firewall_policies(), methods, paths())


def _controls(text: str) -> list[str]:
    return [char for char in text if unicodedata.category(char) == "Cc" or char in "\u2028\u2029"]


def check_firewall_case(case: FirewallCase) -> None:
    """Decide twice (same answer); what passes holds nothing the policy refuses, decoded or not."""
    policy, path = case.policy, case.path
    decision = check_request(policy, case.method, path)
    expect(decision == check_request(policy, case.method, path), "firewall: two answers to one request")
    if decision is not None:
        expect(isinstance(decision, Rejection), "firewall: not a Rejection", repr(decision))
        expect(
            decision.status in (400, 405) and decision.reason in _REASONS, "firewall: unknown answer", repr(decision)
        )
        expect(policy.enabled, "firewall: a disabled firewall refused")
        return
    if not policy.enabled:
        return
    expect(case.method in policy.allowed_methods, "firewall: a method outside the policy passed", case.method)
    expect(len(path) <= policy.max_path_length, "firewall: an overlong path passed")
    decoded = urllib.parse.unquote_to_bytes(path)
    for view in (path, decoded):
        controls = _controls(view.decode("utf-8", "replace"))
        expect(not controls, "firewall: a non-printable character passed", repr((path, controls)))
    if not policy.allow_semicolon:
        expect(b";" not in decoded, "firewall: ';' passed", repr(path))
    if not policy.allow_backslash:
        expect(b"\\" not in decoded, "firewall: '\\' passed", repr(path))
    if not policy.allow_encoded_slash:
        expect(decoded.count(b"/") == path.count(b"/"), "firewall: an encoded '/' passed", repr(path))
        if not policy.allow_double_slash:
            expect(b"//" not in decoded, "firewall: '//' passed", repr(path))
        if not policy.allow_encoded_period and not policy.allow_backslash:
            segments = decoded.split(b"/")
            expect(b"." not in segments and b".." not in segments, "firewall: a dot segment passed", repr(path))
    expect(path.startswith(b"/") or path == b"*", "firewall: a relative path passed", repr(path))
    strict = FirewallPolicy(allowed_methods=policy.allowed_methods, max_path_length=policy.max_path_length)
    if check_request(strict, case.method, path) is None:
        for flag in _FLAGS.values():
            looser = FirewallPolicy(
                allowed_methods=policy.allowed_methods, max_path_length=policy.max_path_length, **{flag: True}
            )
            expect(check_request(looser, case.method, path) is None, "firewall: relaxing a rule refused a path", flag)


# -- client headers: core/clientinfo.py ----------------------------------------------------------

_ADDRESSES = (
    "203.0.113.9", "10.0.0.1", "127.0.0.1", "::1", "2001:db8::7", "::ffff:10.0.0.2", "fe80::1%eth0",
    "[2001:db8::1]:443", "10.0.0.1:8080", "unknown", "_hidden", "", "300.1.1.1", "1.2.3", "::ffff:999.1.1.1",
)  # fmt: skip
_PROXIES = (
    (),
    (ipaddress.ip_network("10.0.0.0/8"),),
    (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128")),
    (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")),
)
_HEADER_NAMES = (b"forwarded", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"host", b"user-agent")
addresses = st.sampled_from(_ADDRESSES) | any_text


@st.composite
def _header_value(draw: st.DrawFn, name: bytes) -> bytes:
    pieces: list[str]
    if name == b"forwarded":
        element = st.builds(
            lambda key, value, quoted: f'{key}="{value}"' if quoted else f"{key}={value}",
            st.sampled_from(("for", "For", "proto", "host", "by", "x")),
            addresses | st.sampled_from(("https", "http", "ftp", "example.com", "a:1")),
            st.booleans(),
        )
        pieces = [";".join(draw(st.lists(element, max_size=3))) for _ in range(draw(st.integers(0, 3)))]
        text = ", ".join(pieces)
    elif name == b"x-forwarded-for":
        text = ", ".join(draw(st.lists(addresses, max_size=4)))
    elif name in (b"host", b"x-forwarded-host"):
        text = draw(
            st.sampled_from(("example.com", "EXAMPLE.com:443", "[::1]:80", "a:b", "", "ex ample", "x" * 300)) | any_text
        )
    else:
        text = draw(st.sampled_from(("https", "http", "HTTPS", "wss", "https, http", "")) | any_text)
    return text.encode("utf-8", "surrogatepass") if draw(st.booleans()) else draw(st.binary(max_size=30))


@dataclass(frozen=True)
class ClientCase:
    """An ASGI scope's socket peer, scheme and headers, and the trusted proxy networks."""

    peer: tuple[str, int] | None
    scheme: str
    headers: tuple[tuple[bytes, bytes], ...]
    proxies: int
    origin: str


@st.composite
def client_cases(draw: st.DrawFn) -> ClientCase:
    """Return a scope with forwarding, host and user-agent headers, plausible or not."""
    headers = []
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from(_HEADER_NAMES) | st.binary(max_size=6).map(bytes.lower))
        headers.append((name, draw(_header_value(name))))
    peer = draw(st.none() | st.tuples(addresses, st.integers(0, 65535)))
    scheme = draw(st.sampled_from(("http", "https", "ws", "wss", "HTTP", "ftp", "")))
    origin = draw(st.sampled_from(("https://example.com", "null", "HTTP://A:80", "https://[::1]:443")) | any_text)
    return ClientCase(peer, scheme, tuple(headers), draw(st.integers(0, len(_PROXIES) - 1)), origin)


def _trusted(ip: str, proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    """Tell whether the socket peer ``ip`` (maybe written ``a.b.c.d:port`` or ``[v6]:port``) is a proxy."""
    host = ip.strip()
    if host.startswith("[") and "]" in host:
        host = host[1 : host.index("]")]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in proxies)


def _is_address(text: str | None) -> bool:
    try:
        ipaddress.ip_address(text or "")
    except ValueError:
        return False
    return True


def check_client_case(case: ClientCase) -> None:
    """Read the client as the middleware does: headers from anyone but a trusted proxy are ignored."""
    proxies = _PROXIES[case.proxies]
    scope = {"type": "http", "client": case.peer, "scheme": case.scheme, "headers": list(case.headers)}
    info = client_info(scope, proxies)
    origin = request_origin(scope, proxies)
    peer_ip = case.peer[0] if case.peer else None
    agents = [value.decode("latin-1") for name, value in case.headers if name == b"user-agent"]
    expect(info.user_agent == (agents[-1] if agents else None), "client_info: not the last User-Agent")
    expect(origin.client == info, "client_info and request_origin disagree", repr((info, origin.client)))
    if peer_ip is None or not _trusted(peer_ip, proxies):
        expect(info.ip == peer_ip, "client_info: forwarding headers believed from an untrusted peer", repr(info.ip))
    elif info.ip != peer_ip:
        expect(_is_address(info.ip), "client_info: a believed hop is not an IP address", repr(info.ip))
    expect(origin.scheme in ("http", "https"), "request_origin: a scheme other than http(s)", origin.scheme)
    if origin.host is not None:
        expect(origin.host == origin.host.lower().strip(), "request_origin: the host is not normalized", origin.host)
    serialized = origin.origin
    if serialized is not None:
        expect(serialized.startswith(f"{origin.scheme}://"), "RequestOrigin.origin: another scheme", serialized)
    normalized = normalize_origin(case.origin)
    if normalized is not None:
        expect(normalize_origin(normalized) == normalized, "normalize_origin is not idempotent", repr(case.origin))


# -- IDs: core/ids.py --------------------------------------------------------------------------


@dataclass(frozen=True)
class IdCase:
    """A cookie value read as an ID, a second ID, a sealed successor and an entropy setting."""

    raw: str
    other: str
    sealed: str
    bits: int


id_texts = (
    raw_ids
    | any_text
    | st.text(ID_ALPHABET + "=+/.", max_size=90)
    | st.sampled_from((21, 22, 86, 87, 88)).flatmap(lambda size: st.text(ID_ALPHABET, min_size=size, max_size=size))
)
id_cases = st.builds(
    IdCase,
    id_texts,
    raw_ids,
    st.text("0123456789abcdefABCDEF ", max_size=90) | any_text,
    st.integers(min_value=0, max_value=600),
)


def check_id_case(case: IdCase) -> None:
    """Check the ID shape test against its definition, hashing, handles and sealing."""
    raw = case.raw
    well_formed = ids.is_well_formed(raw)
    shaped = 22 <= len(raw) <= 86 and set(raw) <= set(ID_ALPHABET)
    expect(well_formed == shaped, "is_well_formed: not exactly base64url of 128 to 512 bits", repr(raw))
    expect(ids.is_key(raw) == (len(raw) == 64 and set(raw) <= set("0123456789abcdef")), "is_key: wrong answer")
    expect(ids.is_handle(raw) == (len(raw) == 16 and set(raw) <= set("0123456789abcdef")), "is_handle: wrong answer")
    if well_formed:
        key = ids.storage_key(raw)
        expect(ids.is_key(key) and ids.is_handle(ids.handle_of(key)), "storage_key: not a key", key)
        sealed = ids.seal_successor(raw, case.other)
        expect(ids.open_successor(raw, sealed) == case.other, "open_successor: the seal does not open")
        opened = ids.open_successor(raw, case.sealed)
        expect(opened is None or ids.is_well_formed(opened), "open_successor: a malformed ID", repr(opened))
    valid_bits = 128 <= case.bits <= 512 and case.bits % 8 == 0
    try:
        fresh = ids.generate_id(case.bits)
    except ValueError:
        expect(not valid_bits, "generate_id: valid entropy refused", str(case.bits))
        return
    expect(valid_bits, "generate_id: invalid entropy accepted", str(case.bits))
    expect(ids.is_well_formed(fresh) and len(fresh) == -(-case.bits // 6), "generate_id: malformed", fresh)
