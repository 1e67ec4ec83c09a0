"""Deadlines of ``sessionward audit``: each page has one for the whole exchange, the audit has one.

A timeout per read does not bound a page: a site that sends a byte just before each read
would time out never ends it. Each page now has one deadline from the request to the
body's last byte (``--timeout``), and the audit one for all of it (``--deadline``).
"""

from __future__ import annotations

import time

import orjson
from cli_hostile_sites import dripping_site, header_dripping_server, serve_h11, slow_pages_site
from click.testing import CliRunner, Result

from sessionward.audit.site import DEADLINE_ITEM
from sessionward.cli import main


def timed_audit(url: str, *args: str) -> tuple[Result, float]:
    started = time.monotonic()
    result = CliRunner().invoke(main, ["audit", url, *args])
    assert "Traceback" not in result.output
    return result, time.monotonic() - started


def test_a_page_dripping_a_byte_a_second_is_cut_at_the_page_deadline_and_reported() -> None:
    # Before: the 0.3 s timeout applied to each read, and a read waiting for the next byte
    # (a second away) ended the audit with "cannot reach": no report at all.
    with serve_h11(dripping_site(interval_s=1.0, give_up_s=20)) as url:
        result, seconds = timed_audit(url, "--json", "--timeout", "0.3", "--samples", "2")

    report = orjson.loads(result.stdout)
    assert report["cookie_name"] == "sid"
    assert report["sample_size"] == 2
    # Four dripping pages (/, /login, two samples), each cut at 0.3 s.
    assert seconds < 6


def test_a_response_head_dripped_a_byte_at_a_time_is_cut_at_the_page_deadline() -> None:
    # Before: each byte (every 0.1 s) reset the 0.5 s read timeout, and the 8 kB head took 14 minutes.
    with header_dripping_server(interval_s=0.1) as url:
        result, seconds = timed_audit(url, "--timeout", "0.5")

    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot reach {url}")
    assert "timed out (no answer within 0.5 s)" in result.stderr
    assert seconds < 4


def test_the_whole_audit_stops_at_its_deadline_with_a_failed_report() -> None:
    # Each page is in time (2 s each), but the audit as a whole is not.
    with serve_h11(dripping_site(interval_s=0.02, give_up_s=20)) as url:
        result, seconds = timed_audit(url, "--json", "--timeout", "2", "--deadline", "1")

    assert result.exit_code == 1
    report = orjson.loads(result.stdout)
    last = report["checks"][-1]
    assert (last["item"], last["status"]) == (DEADLINE_ITEM, "fail")
    assert "1 s" in last["detail"]
    assert seconds < 4


def test_a_deadline_reached_while_sampling_cuts_the_sample_and_keeps_every_check() -> None:
    with serve_h11(slow_pages_site(delay_s=0.05)) as url:
        result, seconds = timed_audit(url, "--json", "--deadline", "1.5")

    report = orjson.loads(result.stdout)
    statuses = {c["item"]: c["status"] for c in report["checks"]}
    assert statuses[DEADLINE_ITEM] == "warn"
    assert 2 <= report["sample_size"] < 200
    assert "frame protection" in statuses  # the checks after sampling ran
    assert seconds < 4
