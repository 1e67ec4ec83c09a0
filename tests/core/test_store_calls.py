"""sessionward.io._store_calls: one shared timer bounds every store call (F19); overruns are outages.

The limits here are real event-loop time, kept to tens of milliseconds: what is tested is
the loop's own timer, which no injected clock drives.
"""

from __future__ import annotations

import asyncio

import pytest

from sessionward.core.errors import StoreError, StoreUnavailableError
from sessionward.io._store_calls import StoreCalls


async def test_a_call_past_its_deadline_is_an_outage() -> None:
    deadlines = StoreCalls(0.02)
    with pytest.raises(StoreUnavailableError):
        async with deadlines:
            await asyncio.Event().wait()


async def test_blocks_that_finish_in_time_are_left_alone() -> None:
    deadlines = StoreCalls(0.05)

    async def quick(i: int) -> int:
        async with deadlines:
            await asyncio.sleep(0)
            return i

    assert await asyncio.gather(*(quick(i) for i in range(100))) == list(range(100))


async def test_only_the_overdue_among_many_blocks_time_out() -> None:
    deadlines = StoreCalls(0.05)
    never = asyncio.Event()

    async def hang() -> str:
        async with deadlines:
            await never.wait()
        return "finished"

    async def quick() -> str:
        async with deadlines:
            await asyncio.sleep(0)
        return "finished"

    results = await asyncio.gather(hang(), quick(), hang(), quick(), return_exceptions=True)
    assert [type(r).__name__ if isinstance(r, BaseException) else r for r in results] == [
        "StoreUnavailableError",
        "finished",
        "StoreUnavailableError",
        "finished",
    ]


async def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    deadlines = StoreCalls(10)
    entered = asyncio.Event()

    async def waiting() -> None:
        async with deadlines:
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.ensure_future(waiting())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_changed_limit_applies_to_later_blocks() -> None:
    deadlines = StoreCalls(10)
    deadlines.timeout_s = 0.02
    with pytest.raises(StoreUnavailableError):
        async with deadlines:
            await asyncio.Event().wait()


def test_blocking_use_bounds_nothing_and_passes_other_errors_through() -> None:
    deadlines = StoreCalls(0.001)
    with deadlines:
        value = sum(range(10))
    assert value == 45
    with pytest.raises(ValueError, match="inner"), deadlines:
        raise ValueError("inner")


async def test_a_timeout_raised_by_a_driver_is_an_outage_too() -> None:
    with pytest.raises(StoreUnavailableError, match="timed out"):
        async with StoreCalls(10):
            raise TimeoutError("socket read timed out")
    with pytest.raises(StoreUnavailableError, match="timed out"), StoreCalls(10):
        raise TimeoutError("socket read timed out")


async def test_observers_hear_each_call_with_its_duration_and_outcome() -> None:
    heard: list[tuple[float, str]] = []
    calls = StoreCalls(0.02, [lambda seconds, outcome: heard.append((seconds, outcome))])
    async with calls:
        await asyncio.sleep(0.01)
    with pytest.raises(StoreError):
        async with calls:
            raise StoreError("corrupt")
    with pytest.raises(StoreUnavailableError):
        async with calls:
            await asyncio.Event().wait()
    with pytest.raises(LookupError):
        async with calls:
            raise LookupError("not a store failure")
    assert [outcome for _, outcome in heard] == ["ok", "error", "timeout", "ok"]
    assert heard[0][0] >= 0.009
    assert heard[2][0] >= 0.019


def test_observers_hear_blocking_calls_too() -> None:
    heard: list[str] = []
    calls = StoreCalls(10, [lambda seconds, outcome: heard.append(outcome)])
    with calls:
        pass
    with pytest.raises(StoreError), calls:
        raise StoreError("corrupt")
    assert heard == ["ok", "error"]


async def test_a_broken_observer_never_breaks_the_call() -> None:
    def broken(seconds: float, outcome: str) -> None:
        raise RuntimeError("metrics backend down")

    async with StoreCalls(10, [broken]):
        value = 1
    assert value == 1
