"""A gzip bomb against ``sessionward audit``: a site's bodies cannot exhaust the auditor.

The bomb is a megabyte on the wire that inflates to a gibibyte of zeros, served at ``/`` and
``/login`` with a fresh session cookie each time, so that the audit reads it for every ID
it samples. Before the fix each response was inflated whole, once per sampled ID (13.7 GB
of memory in the report). Now every body is streamed and cut after ``MAX_BODY_BYTES``
inflated bytes; a body that never ends is cut at ``--timeout``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from cli_hostile_sites import (
    GZIP_BOMB_INFLATED_BYTES,
    dripping_site,
    gzip_bomb,
    gzip_bomb_site,
    huge_page_site,
    serve_h11,
    silent_site,
)
from click.testing import CliRunner

from sessionward.audit.checks import Observed
from sessionward.audit.site import MAX_BODY_BYTES, AuditOptions, SiteAuditor
from sessionward.cli import main

PEAK_RSS_LIMIT = 256 * 1024 * 1024
"""The audit process's peak resident memory: an interpreter with httpx and Rich, plus the cap
(~63 MiB measured; the bomb inflated whole took 8 GiB). Loose, as a busy machine's allocator varies."""
PEAK_TRACED_LIMIT = 4 * MAX_BODY_BYTES
"""Peak of the memory Python allocates while one bomb is read: the kept body and a few decoding steps."""


def fetch_home(handler: Callable[[httpx.Request], httpx.Response]) -> tuple[Observed, int]:
    """What the auditor keeps of the answer ``handler`` gives to ``GET /`` (over a mock transport).

    Also returns the peak of the memory Python allocated during that request (tracemalloc),
    the client and event loop being set up before.
    """

    async def go() -> tuple[Observed, int]:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        auditor = SiteAuditor(AuditOptions(url="http://site.test/"), client=client)
        tracemalloc.start()
        try:
            observed = await auditor.fetcher.fetch("GET", "")
            return observed, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            await auditor.aclose()

    return asyncio.run(go())


def audit_in_a_process(url: str, tmp_path: Path, *extra: str, limit_s: float = 60) -> tuple[int, bytes, int, float]:
    """Run ``sessionward audit URL --json`` in a child process; return (status, stdout, peak RSS bytes, seconds)."""
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    started = time.monotonic()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", "from sessionward.cli import main; main()", "audit", url, "--json", *extra],
            stdout=stdout,
            stderr=stderr,
        )
    try:
        while True:
            # wait4 gives this child's own resource usage (RUSAGE_CHILDREN mixes in every child so far).
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > limit_s:
                process.kill()
                _, status, usage = os.wait4(process.pid, 0)
                process.returncode = os.waitstatus_to_exitcode(status)
                pytest.fail(f"the audit ran over {limit_s} s (peak RSS {usage.ru_maxrss // 1024} MiB)")
            time.sleep(0.02)
    finally:
        if process.returncode is None and process.poll() is None:
            process.kill()
            process.wait()
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    assert b"Traceback" not in err.read_bytes(), err.read_text(errors="replace")
    return process.returncode, out.read_bytes(), usage.ru_maxrss * 1024, seconds


@pytest.mark.parametrize("stacked", [False, True], ids=["gzip", "gzip, gzip"])
def test_a_gzip_bomb_at_home_and_login_is_cut_at_the_cap_with_bounded_memory(tmp_path: Path, stacked: bool) -> None:
    assert GZIP_BOMB_INFLATED_BYTES >= 1000 * MAX_BODY_BYTES
    with serve_h11(gzip_bomb_site(stacked=stacked)) as url:
        status, stdout, peak_rss, seconds = audit_in_a_process(url, tmp_path, "--samples", "10")

    # Before: 8 GiB of memory within a minute, and no report yet.
    assert status == 1, stdout  # the bomb site sends no security headers: those checks fail
    report = orjson.loads(stdout)
    assert report["cookie_name"] == "sid"
    assert report["checks"][-1]["item"] == "frame protection"  # the report is complete
    assert report["sample_source"] == "GET /"
    assert report["sample_size"] == 10  # ten more bombs, each cut at the cap
    assert peak_rss < PEAK_RSS_LIMIT, f"peak RSS {peak_rss / 2**20:.0f} MiB"
    assert seconds < 15


def test_a_100_mb_page_is_never_read_whole(tmp_path: Path) -> None:
    # A guard for the streamed reading (no coding to undo): 12 pages of 100 MB, each read
    # up to twice the cap from the wire, then dropped.
    with serve_h11(huge_page_site()) as url:
        _, stdout, peak_rss, seconds = audit_in_a_process(url, tmp_path, "--samples", "10")

    report = orjson.loads(stdout)
    assert report["sample_size"] == 10
    assert report["checks"][-1]["item"] == "frame protection"  # the report is complete
    assert peak_rss < PEAK_RSS_LIMIT, f"peak RSS {peak_rss / 2**20:.0f} MiB"
    assert seconds < 15


@pytest.mark.parametrize("stacked", [False, True], ids=["gzip", "gzip, gzip"])
def test_a_gzip_bomb_is_read_only_up_to_the_cap(stacked: bool) -> None:
    # In process, under tracemalloc: what one response costs, and what the audit keeps of it.
    bomb = gzip_bomb()
    encoding = "gzip"
    if stacked:  # 2 kB that inflate to 1 MB, which inflates to 1 GiB
        bomb, encoding = zlib.compress(bomb, 9, wbits=16 + zlib.MAX_WBITS), "gzip, gzip"
    served: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(bomb), 16 * 1024):
            served.append(start)
            yield bomb[start : start + 16 * 1024]

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "text/html", "content-encoding": encoding}
        return httpx.Response(200, headers=headers, content=chunks())

    observed, peak = fetch_home(handler)

    assert observed.body == "\0" * MAX_BODY_BYTES  # truncated, not an error
    assert peak < PEAK_TRACED_LIMIT, f"peak {peak / 2**20:.1f} MiB"
    assert len(served) <= 2  # the rest of the bomb was never even read


def test_a_body_that_never_ends_is_cut_at_the_timeout() -> None:
    with serve_h11(dripping_site(give_up_s=20)) as url:
        started = time.monotonic()
        result = CliRunner().invoke(main, ["audit", url, "--json", "--timeout", "0.3", "--samples", "2"])
        seconds = time.monotonic() - started

    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    report = orjson.loads(result.stdout)
    assert report["cookie_name"] == "sid"
    assert report["sample_size"] == 2
    # Five dripping bodies (/, /login, then /login per sample), each cut after 0.3 s; before, each lasted 20 s.
    assert seconds < 8


def test_a_site_that_never_answers_still_times_out_per_request() -> None:
    with serve_h11(silent_site()) as url:
        started = time.monotonic()
        result = CliRunner().invoke(main, ["audit", url, "--timeout", "0.3"])
        seconds = time.monotonic() - started

    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot reach {url}")
    assert "ReadTimeout" in result.stderr or "timed out" in result.stderr
    assert seconds < 5


def request_body(encoding: str, chunks: Iterator[bytes]) -> str:
    """What the auditor keeps of a 200 text/html response with ``encoding`` and body ``chunks``."""

    async def stream() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["accept-encoding"] == "gzip, deflate"
        return httpx.Response(
            200, headers={"content-type": "text/html", "content-encoding": encoding}, content=stream()
        )

    return fetch_home(handler)[0].body


def test_an_endless_gzip_stream_that_inflates_to_nothing_is_read_up_to_twice_the_cap() -> None:
    # Empty stored deflate blocks (not final, LEN 0, NLEN 0xffff), forever: no byte inflates.
    block = b"\x00\x00\x00\xff\xff"
    served = 0

    def endless() -> Iterator[bytes]:
        nonlocal served
        yield b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # a gzip header
        while served < 64 * MAX_BODY_BYTES:  # finite, so that a reader without a limit ends too
            served += 1000 * len(block)
            yield block * 1000

    assert request_body("gzip", endless()) == ""
    assert served <= 2 * MAX_BODY_BYTES + 5000


PAGE = b'<a href="/login">sign in</a> ' * 100


@pytest.mark.parametrize(
    ("encoding", "body", "kept"),
    [
        ("identity", PAGE, PAGE),
        ("gzip", zlib.compress(PAGE, wbits=16 + zlib.MAX_WBITS), PAGE),
        ("GZIP", zlib.compress(PAGE, wbits=16 + zlib.MAX_WBITS), PAGE),
        ("deflate", zlib.compress(PAGE), PAGE),
        ("deflate", zlib.compress(PAGE, wbits=-zlib.MAX_WBITS), PAGE),  # raw deflate, as some servers send
        ("gzip, deflate", zlib.compress(zlib.compress(PAGE, wbits=16 + zlib.MAX_WBITS)), PAGE),
        ("gzip", zlib.compress(PAGE, wbits=16 + zlib.MAX_WBITS)[:200] + b"\xff" * 100, None),  # corrupt: a prefix
        ("br", b"\x0b\x02\x80hello\x03", b""),  # not asked for: not read
        ("gzip, gzip, gzip, gzip", b"", b""),  # more codings than undone
    ],
    ids=["identity", "gzip", "GZIP", "deflate", "raw deflate", "stacked", "corrupt", "br", "too many"],
)
def test_ordinary_bodies_are_read_whole_in_every_coding_asked_for(
    encoding: str, body: bytes, kept: bytes | None
) -> None:
    text = request_body(encoding, iter([body[:50], body[50:]]))
    if kept is None:
        assert PAGE.decode().startswith(text)
        assert text
    else:
        assert text == kept.decode()
