"""The auditor's HTTP: one request at a time, each within a deadline, each body capped.

The audited site may be hostile. Every answer is streamed and its body read only up to
:data:`MAX_BODY_BYTES` once its Content-Encoding is undone (a gzip bomb inflates no
further), and every page has a deadline for the whole exchange (connecting, the status
line and headers, the body), not for each read: a site that sends a byte every second
is cut when the page's time is up, however regularly it sends. The whole audit has a
deadline too; a request that would run past it raises :class:`AuditDeadlineError`.
What the audit needs of a page is its head and forms, never a whole download.

Cookies are sent by hand (a ``Cookie`` header per request) rather than through a cookie
jar, so that a ``Secure`` cookie works against a local http:// site as browsers allow,
and so that each probe carries exactly the cookies it means to test.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode, urljoin, urlsplit

import httpx
import orjson

from sessionward.audit.checks import Observed, SetCookie
from sessionward.core.errors import SessionwardError

MAX_BODY_BYTES = 1 << 20
"""Most bytes of a response body the auditor reads (1 MiB), counted after decompression.

The rest of the body is never read (nor inflated): the connection is dropped and the body
is treated as truncated there. It bounds what a gzip bomb costs, whatever its ratio. At
most twice as many bytes are read from the wire, so that compressed data inflating to
nothing (empty deflate blocks) cannot keep the auditor reading either.
"""
ACCEPT_ENCODING = "gzip, deflate"
"""The content codings the auditor asks for and can undo within :data:`MAX_BODY_BYTES`."""
MAX_CODINGS = 3
"""Most content codings stacked on one body (``Content-Encoding: gzip, gzip``) that are undone."""
MAX_REDIRECTS = 10
USER_AGENT = "sessionward-audit"
_INFLATE_STEP = 64 * 1024
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_TEXT_TYPES = ("text/", "json", "xml", "javascript")
_REDIRECTS = (301, 302, 303, 307, 308)


class AuditError(SessionwardError):
    """The audit could not be carried out (site unreachable, login impossible)."""


class AuditDeadlineError(AuditError):
    """The whole audit's deadline passed."""


@dataclass(slots=True)
class Jar:
    """The cookies a browser would hold for the audited site (names and values only).

    One site, one path: the auditor never needs more, and sends each cookie by hand.
    """

    cookies: dict[str, str] = field(default_factory=dict)

    def take(self, answer: Observed) -> None:
        """Store what ``answer`` set, and forget what it deleted."""
        for cookie in answer.cookies:
            if cookie.clears:
                self.cookies.pop(cookie.name, None)
            else:
                self.cookies[cookie.name] = cookie.value

    def copy(self) -> Jar:
        """An independent copy (another browser holding the same cookies)."""
        return Jar(dict(self.cookies))


class Fetcher:
    """Sends the audit's requests, within the page and audit deadlines.

    Args:
        base_url: The audited URL; paths are resolved against it.
        client: The HTTP client (tests inject one over a mock transport).
        page_timeout_s: The deadline of each page, from the request to the body's last byte.
        audit_timeout_s: The deadline of the whole audit, from this object's creation.
    """

    def __init__(
        self, base_url: str, client: httpx.AsyncClient, *, page_timeout_s: float, audit_timeout_s: float
    ) -> None:
        self.base_url = base_url
        self.client = client
        self.page_timeout_s = page_timeout_s
        self.audit_timeout_s = audit_timeout_s
        self._audit_deadline: float | None = None
        self.seen: list[Observed] = []

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` (from the site root); ``""`` is the audited URL itself."""
        return urljoin(self.base_url, path) if path else self.base_url

    @property
    def audit_deadline(self) -> float:
        """The event-loop time the audit must end by (fixed at the first request)."""
        if self._audit_deadline is None:
            self._audit_deadline = asyncio.get_running_loop().time() + self.audit_timeout_s
        return self._audit_deadline

    async def fetch(
        self,
        method: str,
        target: str,
        *,
        cookies: Mapping[str, str] | None = None,
        json: object = None,
        form: Sequence[tuple[str, str]] | None = None,
        referer: str | None = None,
    ) -> Observed:
        """Send one request carrying exactly ``cookies``; never follow redirects.

        ``target`` is a path from the site's root (``/api/login``), ``""`` for the audited
        URL, or an absolute URL.
        """
        url = self.url(target)
        headers = {
            "accept": "application/json, text/html;q=0.9",
            "accept-encoding": ACCEPT_ENCODING,
            "user-agent": USER_AGENT,
        }
        if cookies:
            headers["cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
        content: bytes | None = None
        if json is not None:
            content = orjson.dumps(json)
            headers["content-type"] = "application/json"
        elif form is not None:
            content = urlencode(list(form)).encode()
            headers["content-type"] = "application/x-www-form-urlencoded"
        if referer is not None:
            headers["referer"] = referer
            if method not in ("GET", "HEAD"):  # as browsers do: CSRF defences compare it with the host
                parts = urlsplit(referer)
                headers["origin"] = f"{parts.scheme}://{parts.netloc}"
        loop = asyncio.get_running_loop()
        audit_deadline = self.audit_deadline
        if loop.time() >= audit_deadline:
            raise AuditDeadlineError(f"the audit ran out of its {self.audit_timeout_s:g} s")
        deadline = min(loop.time() + self.page_timeout_s, audit_deadline)
        try:
            async with contextlib.AsyncExitStack() as stack:
                try:
                    async with asyncio.timeout_at(deadline):
                        response = await stack.enter_async_context(
                            self.client.stream(method, url, headers=headers, content=content, follow_redirects=False)
                        )
                except TimeoutError:
                    if deadline >= audit_deadline:
                        raise AuditDeadlineError(f"the audit ran out of its {self.audit_timeout_s:g} s") from None
                    raise AuditError(
                        f"cannot reach {url}: timed out (no answer within {self.page_timeout_s:g} s)"
                    ) from None
                body = await _text(response, deadline)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise AuditError(f"cannot reach {url}: {error or type(error).__name__}") from None
        finally:
            # Each probe chooses its cookies; nothing may ride along from a previous answer.
            self.client.cookies.clear()
        cookies_set = [c for c in (SetCookie.parse(h) for h in response.headers.get_list("set-cookie")) if c]
        shown = urlsplit(url).path or "/"
        observed = Observed(method, shown, target, response.status_code, response.headers, cookies_set, body, url)
        self.seen.append(observed)
        return observed

    async def browse(
        self,
        method: str,
        target: str,
        jar: Jar,
        *,
        form: Sequence[tuple[str, str]] | None = None,
        json: object = None,
        referer: str | None = None,
    ) -> list[Observed]:
        """Send a request as a browser would: with the jar's cookies, following same-site redirects.

        Every answer's cookies go into ``jar``. A 301/302/303 turns into a GET (as browsers
        do for a form's POST); a 307/308 repeats the method and body. Returns every answer
        in order; the last one is where the browser landed.
        """
        answers = []
        origin = urlsplit(self.url(target))
        for _ in range(MAX_REDIRECTS + 1):
            answer = await self.fetch(method, target, cookies=jar.cookies, form=form, json=json, referer=referer)
            jar.take(answer)
            answers.append(answer)
            location = answer.headers.get("location")
            if answer.status not in _REDIRECTS or not location:
                break
            following = urljoin(answer.url, location)
            parts = urlsplit(following)
            if (parts.scheme, parts.netloc) != (origin.scheme, origin.netloc):
                break  # another site (single sign-on, say): not followed
            if answer.status in (301, 302, 303):
                method, form, json = "GET", None, None
            referer, target = answer.url, following
        return answers


async def _text(response: httpx.Response, deadline: float) -> str:
    """The start of a textual body (HTML, JSON, XML, scripts), decoded; ``""`` for any other body."""
    kind = response.headers.get("content-type", "")
    if not any(t in kind for t in _TEXT_TYPES):
        return ""  # not read at all
    return (await read_body(response, deadline=deadline)).decode(_charset(response), errors="replace")


def _charset(response: httpx.Response) -> str:
    charset = response.charset_encoding
    if charset:
        try:
            return codecs.lookup(charset).name
        except LookupError:
            pass
    return "utf-8"


async def read_body(response: httpx.Response, *, limit: int = MAX_BODY_BYTES, deadline: float | None = None) -> bytes:
    """Read at most ``limit`` bytes of a streamed response's body, its Content-Encoding undone.

    Reading ends at the end of the body, or of its compressed stream. It stops early, the
    body taken as truncated there, at ``limit`` decoded bytes, at ``2 * limit`` bytes from
    the wire, at the ``deadline`` (an event-loop time; it cuts a read that is waiting), or
    at corrupt compressed data. No decoding step inflates more than 64 KiB at once, so
    memory stays near ``limit`` even for stacked codings (``Content-Encoding: gzip,
    gzip``). A body in a coding the auditor did not ask for (br, zstd, …), or in more than
    :data:`MAX_CODINGS`, reads as empty. Network errors are raised as httpx raises them.
    """
    listed = response.headers.get_list("content-encoding", split_commas=True)
    codings = [c.lower() for c in listed if c.lower() not in ("", "identity")]
    if len(codings) > MAX_CODINGS or any(c not in ("gzip", "x-gzip", "deflate") for c in codings):
        return b""
    # The last coding listed was applied last: it is undone first.
    decoders = [_Inflater(wbits=_WBITS[c], raw_fallback=c == "deflate") for c in reversed(codings)]
    body = bytearray()
    wire = 0
    try:
        async with asyncio.timeout_at(deadline):
            async for chunk in response.aiter_raw():
                wire += len(chunk)
                for piece in _decode(chunk, decoders):
                    body += piece[: limit - len(body)]
                    if len(body) >= limit:
                        return bytes(body)
                if wire >= 2 * limit or any(d.done for d in decoders):
                    break
    except TimeoutError:
        pass  # the page's time is up: the body is cut here
    return bytes(body)


def _decode(chunk: bytes, decoders: Sequence[_Inflater]) -> Iterator[bytes]:
    """Pass ``chunk`` through each decoder in turn, piece by piece."""
    if not decoders:
        yield chunk
        return
    for piece in decoders[0].feed(chunk):
        yield from _decode(piece, decoders[1:])


class _Inflater:
    """Undo one gzip or deflate coding, yielding at most ``_INFLATE_STEP`` bytes at a time.

    ``raw_fallback``: "deflate" bodies are meant to be zlib streams but are sometimes raw
    deflate; like httpx, read a stream whose first bytes are not zlib as raw deflate.
    """

    def __init__(self, *, wbits: int, raw_fallback: bool) -> None:
        self.inflater = zlib.decompressobj(wbits)
        self.raw_fallback = raw_fallback
        self.first = True
        self.done = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Inflate ``data``; set :attr:`done` at the stream's end, at corrupt data or when stuck."""
        while not self.done:
            try:
                out = self.inflater.decompress(data, _INFLATE_STEP)
            except zlib.error:
                if self.first and self.raw_fallback:
                    self.inflater, self.first = zlib.decompressobj(-zlib.MAX_WBITS), False
                    continue
                self.done = True  # corrupt: keep what was inflated so far
                return
            self.first = False
            if out:
                yield out
            if self.inflater.eof:
                self.done = True  # anything after the stream's end is ignored
                return
            data = self.inflater.unconsumed_tail
            if not data and len(out) < _INFLATE_STEP:
                return  # this chunk is used up and nothing more is pending
            if not out:
                self.done = True  # input left but no progress: never loop on it
                return
