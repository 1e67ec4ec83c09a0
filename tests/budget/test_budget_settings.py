"""The creation budget's settings: a policy field validated on construction, two variables.

A malformed value stops start-up with a message naming the setting (or the
``SESSIONWARD_*`` variable) and what it accepts, as for every other setting.
"""

from __future__ import annotations

import pytest

from sessionward import ConfigError, SessionPolicy
from sessionward.core.config import BudgetAction, CreationBudget


def test_the_budget_is_on_by_default_and_skips_past_it() -> None:
    budget = SessionPolicy().creation_budget
    assert budget == CreationBudget(per_minute=120, action=BudgetAction.SKIP, ipv4_prefix=32, ipv6_prefix=64)
    assert budget.enabled


def test_both_variables_are_read() -> None:
    policy = SessionPolicy.from_env(
        {"SESSIONWARD_ANONYMOUS_SESSION_BUDGET": "30", "SESSIONWARD_ANONYMOUS_SESSION_BUDGET_ACTION": "Refuse"}
    )
    assert policy.creation_budget == CreationBudget(per_minute=30, action=BudgetAction.REFUSE)
    off = SessionPolicy.from_env({"SESSIONWARD_ANONYMOUS_SESSION_BUDGET": "0"}).creation_budget
    assert not off.enabled


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("SESSIONWARD_ANONYMOUS_SESSION_BUDGET", "lots", "0 for off"),
        ("SESSIONWARD_ANONYMOUS_SESSION_BUDGET", "-1", "0 for off"),
        ("SESSIONWARD_ANONYMOUS_SESSION_BUDGET", "2.5", "0 for off"),
        ("SESSIONWARD_ANONYMOUS_SESSION_BUDGET", "10000000", "1000000"),
        ("SESSIONWARD_ANONYMOUS_SESSION_BUDGET_ACTION", "block", "skip or refuse"),
    ],
)
def test_a_malformed_variable_names_itself_and_what_it_accepts(variable: str, value: str, accepted: str) -> None:
    with pytest.raises(ConfigError) as raised:
        SessionPolicy.from_env({variable: value})
    assert raised.value.setting == variable
    assert accepted in str(raised.value)


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"per_minute": -1}, "creation_budget.per_minute"),
        ({"per_minute": True}, "creation_budget.per_minute"),
        ({"action": "block"}, "creation_budget.action"),
        ({"ipv4_prefix": 33}, "creation_budget.ipv4_prefix"),
        ({"ipv6_prefix": 16}, "creation_budget.ipv6_prefix"),
    ],
)
def test_a_bad_budget_in_code_is_refused_naming_the_field(changes: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigError) as raised:
        CreationBudget(**changes)  # type: ignore[arg-type]
    assert raised.value.setting == setting
