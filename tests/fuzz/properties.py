"""The fuzz targets, shared by the test suite and ``scripts/fuzz_campaign.py``.

Each :class:`Target` pairs a Hypothesis strategy of inputs with a check that raises on a
broken property. :func:`run_target` runs one, either as a test (the first failure is
shrunk to a minimal input and raised) or as a campaign (every failure is counted and
grouped by kind, the smallest input of each kept, and the run goes on).

Why Hypothesis rather than a coverage-guided fuzzer such as atheris: the inputs worth
trying here are structured (an entry the store wrote, then a field swapped; cookies
joined into headers), which a strategy states directly and a byte mutator finds only by
luck; failures shrink to the fewest edits; and it is already a dev dependency, so the
suite needs nothing new. Raw-bytes inputs are mixed into every target all the same.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException

from fuzz.checks import Violation
from fuzz.decoders import (
    check_file_case,
    check_json_case,
    check_redis_case,
    file_cases,
    json_cases,
    redis_cases,
    sql_cases,
    sqlite_rig,
)
from fuzz.parsers import (
    check_client_case,
    check_cookie_case,
    check_firewall_case,
    check_id_case,
    check_joined_case,
    client_cases,
    cookie_cases,
    firewall_cases,
    id_cases,
    joined_cases,
)
from fuzz.session_data import check_session_case, session_cases

Check = Callable[[Any], None]


@contextmanager
def _plain(check: Check) -> Iterator[Check]:
    yield check


@dataclass(frozen=True)
class Target:
    """One fuzz target.

    Attributes:
        name: Short name (``--targets`` of the campaign).
        what: What is fuzzed, for the campaign's table.
        strategy: The inputs.
        open: Returns a context manager yielding the check (it may hold a database).
        suite_examples: Inputs per run of the test suite.
        campaign_examples: Inputs per run of the campaign, by default.
    """

    name: str
    what: str
    strategy: st.SearchStrategy[Any]
    open: Callable[[], AbstractContextManager[Check]]
    suite_examples: int
    campaign_examples: int


def _target(name: str, what: str, strategy: st.SearchStrategy[Any], check: Check, suite: int, campaign: int) -> Target:
    return Target(name, what, strategy, lambda: _plain(check), suite, campaign)


TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        _target("cookies",
                "core.cookies.session_cookie_values, core.engine.SessionEngine.read_cookie/read_csrf_cookie",
                cookie_cases(), check_cookie_case, 400, 150_000),
        _target("joined_cookies", "core.cookies.split_joined_cookie_header", joined_cases, check_joined_case,
                300, 100_000),
        _target("firewall", "core.firewall.check_request under any policy", firewall_cases, check_firewall_case,
                1000, 150_000),
        _target("client_headers", "core.clientinfo: Forwarded, X-Forwarded-*, Host, User-Agent, Origin",
                client_cases(), check_client_case, 300, 100_000),
        _target("ids", "core.ids: is_well_formed, storage_key, seal/open_successor, generate_id", id_cases,
                check_id_case, 300, 100_000),
        _target("session_data", "core.session.Session.__setitem__, in-place changes, core.records.dumps/loads",
                session_cases, check_session_case, 400, 120_000),
        _target("records_json", "core.records.meta_from_json, tombstone_from_json", json_cases(), check_json_case,
                300, 100_000),
        _target("redis_decode", "stores._redis_layout.decode_entry", redis_cases(), check_redis_case, 300, 100_000),
        _target("file_decode", "stores._file_io.decode_entry", file_cases(), check_file_case, 300, 60_000),
        Target("sql_rows",
               "stores.sql.SqlStore on SQLite, rows read by stores._sql_rows.row_entry: load, find_handle, "
               "find_moved, list_user, purge_expired",
               sql_cases(), sqlite_rig, 150, 25_000),
    )
}  # fmt: skip


@dataclass
class Failure:
    """Failures of one kind: how many, and the smallest input that showed it."""

    count: int = 0
    input: str = ""
    error: str = ""
    where: str = ""


@dataclass
class Tally:
    """What a campaign run of one target saw."""

    inputs: int = 0
    rejected: int = 0
    exceptions: int = 0
    violations: int = 0
    seconds: float = 0.0
    failures: dict[str, Failure] = field(default_factory=dict)

    def wrap(self, check: Check) -> Check:
        """Return ``check`` counting its inputs and recording, not raising, its failures."""

        def counted(case: Any) -> None:
            self.inputs += 1
            try:
                check(case)
            except HypothesisException:
                self.rejected += 1  # reject(): an input SQLite itself refuses
                raise
            except Exception as error:
                self.record(error, case)

        return counted

    def record(self, error: Exception, case: Any) -> None:
        """Count ``error``; keep ``case`` if it is the smallest input of its kind so far."""
        if isinstance(error, Violation):
            self.violations += 1
            kind = f"violation: {error.signature}"
        else:
            self.exceptions += 1
            kind = f"{type(error).__name__} {_raised_at(error)}"
        shown = repr(case)
        failure = self.failures.setdefault(kind, Failure())
        failure.count += 1
        if not failure.input or len(shown) < len(failure.input):
            failure.input, failure.error = shown, f"{type(error).__name__}: {error}"[:300]
            failure.where = "".join(traceback.format_exception(error)[-4:])[-1200:]

    def merge(self, other: Tally) -> None:
        """Add ``other``'s counts (another chunk of the same target)."""
        self.inputs += other.inputs
        self.rejected += other.rejected
        self.exceptions += other.exceptions
        self.violations += other.violations
        self.seconds += other.seconds
        for kind, failure in other.failures.items():
            mine = self.failures.setdefault(kind, Failure())
            mine.count += failure.count
            if not mine.input or len(failure.input) < len(mine.input):
                mine.input, mine.error, mine.where = failure.input, failure.error, failure.where


def _raised_at(error: BaseException) -> str:
    """Return where ``error`` was raised: the innermost frame in sessionward, else the last."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [frame for frame in frames if "sessionward" in Path(frame.filename).parts] or frames
    if not ours:
        return ""
    frame = ours[-1]
    parts = Path(frame.filename).parts
    short = "/".join(parts[parts.index("sessionward") :]) if "sessionward" in parts else Path(frame.filename).name
    return f"at {short}:{frame.lineno} in {frame.name}"


def run_target(
    target: Target,
    *,
    max_examples: int | None = None,
    derandomize: bool = False,
    random_seed: int | None = None,
    tally: Tally | None = None,
) -> None:
    """Run ``target``'s property over ``max_examples`` inputs (default: the suite's count).

    Without ``tally`` the first failure is shrunk and raised (the test suite); with one,
    failures are recorded in it and the run goes on (the campaign).
    """
    started = time.perf_counter()
    with target.open() as check:
        body = check if tally is None else tally.wrap(check)
        test = given(target.strategy)(body)
        test = settings(
            max_examples=max_examples or target.suite_examples,
            derandomize=derandomize,
            database=None,
            deadline=None,
            print_blob=False,
            suppress_health_check=list(HealthCheck),
            phases=(Phase.explicit, Phase.generate, Phase.shrink) if tally is None else (Phase.generate,),
        )(test)
        if random_seed is not None:
            test = seed(random_seed)(test)
        test()
    if tally is not None:
        tally.seconds += time.perf_counter() - started
