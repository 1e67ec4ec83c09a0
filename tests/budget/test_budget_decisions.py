"""The budget's decisions live in the sans-I/O engine: who a client is, and what its count means."""

from __future__ import annotations

import pytest

from sessionward import SessionPolicy
from sessionward.core.config import BudgetAction, CreationBudget
from sessionward.core.engine import ClientInfo, CreationVerdict, Hits, SessionEngine, counter_name
from sessionward.core.ids import is_key

NOW = 1_700_000_000.0


def engine(**budget: object) -> SessionEngine:
    return SessionEngine(SessionPolicy(creation_budget=CreationBudget(**budget)))  # type: ignore[arg-type]


def counter_of(ip: str | None, **budget: object) -> str | None:
    return engine(**budget).creation_counter(ClientInfo(ip=ip))


def test_ipv4_clients_are_budgeted_per_address_and_ipv6_clients_per_64() -> None:
    assert counter_of("198.51.100.7") != counter_of("198.51.100.8")
    assert counter_of("2001:db8:1:2::1") == counter_of("2001:db8:1:2:ffff:ffff:ffff:fffe")
    assert counter_of("2001:db8:1:2::1") != counter_of("2001:db8:1:3::1")
    assert counter_of("::ffff:198.51.100.7") == counter_of("198.51.100.7")
    # A wider IPv6 prefix for ISPs that hand out /56s.
    assert counter_of("2001:db8:1:2::1", ipv6_prefix=56) == counter_of("2001:db8:1:3::1", ipv6_prefix=56)


def test_counter_names_are_digests_that_never_hold_the_address() -> None:
    name = counter_of("198.51.100.7")
    assert name is not None
    assert is_key(name)
    assert "198.51.100" not in name
    # Another purpose never shares a counter with the budget, whatever it counts.
    assert counter_name("login-throttle", "198.51.100.7/32") != name


def test_no_budget_when_it_is_off_or_the_client_is_unknown() -> None:
    assert counter_of("198.51.100.7", per_minute=0) is None
    # No IP (a UNIX socket): budgeting every such client together would cap the site.
    assert counter_of(None) is None
    assert counter_of("") is None


@pytest.mark.parametrize(
    ("action", "count", "requested", "verdict"),
    [
        (BudgetAction.SKIP, 3, True, CreationVerdict.CREATE),
        (BudgetAction.SKIP, 4, True, CreationVerdict.SKIP),
        (BudgetAction.REFUSE, 3, True, CreationVerdict.CREATE),
        (BudgetAction.REFUSE, 4, True, CreationVerdict.REFUSE),
        # A session the `always` policy would make unasked is skipped, never refused.
        (BudgetAction.REFUSE, 4, False, CreationVerdict.SKIP),
    ],
)
def test_the_count_decides(action: BudgetAction, count: int, requested: bool, verdict: CreationVerdict) -> None:
    name = counter_name("test", "198.51.100.7/32")
    judged = engine(per_minute=3, action=action).judge_creation(name, Hits(count, NOW + 60), requested=requested)
    assert judged is verdict


def test_retry_after_is_the_rest_of_the_window_in_whole_seconds() -> None:
    made = engine()
    assert made.retry_after(Hits(200, NOW + 60), NOW) == 60
    assert made.retry_after(Hits(200, NOW + 60), NOW + 59.2) == 1
    assert made.retry_after(Hits(200, NOW + 60), NOW + 60) == 1
    assert made.first_over_budget(Hits(121, NOW + 60))
    assert not made.first_over_budget(Hits(122, NOW + 60))


def test_a_spent_budget_is_judged_without_the_store_until_its_window_ends() -> None:
    made = engine(per_minute=3)
    name = counter_name("test", "198.51.100.7/32")
    assert made.known_spent(name, NOW) is None
    assert made.judge_creation(name, Hits(3, NOW + 60), requested=True) is CreationVerdict.CREATE
    assert made.known_spent(name, NOW) is None, "within budget: the store still decides"
    assert made.judge_creation(name, Hits(4, NOW + 60), requested=True) is CreationVerdict.SKIP
    assert made.known_spent(name, NOW + 1) == Hits(5, NOW + 60)
    assert made.known_spent(name, NOW + 59) == Hits(6, NOW + 60)
    assert made.known_spent(name, NOW + 60) is None, "a new window: ask the store again"
    assert made.known_spent(counter_name("test", "198.51.100.8/32"), NOW) is None
