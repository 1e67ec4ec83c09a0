"""sessionward._deadlines: one shared timer bounding every store call (F19), asyncio.timeout's meaning.

The limits here are real event-loop time, kept to tens of milliseconds: what is tested is
the loop's own timer, which no injected clock drives.
"""

from __future__ import annotations

import asyncio

import pytest

from sessionward._deadlines import Deadlines


async def test_a_block_past_its_deadline_raises_timeout_error() -> None:
    deadlines = Deadlines(0.02)
    with pytest.raises(TimeoutError):
        async with deadlines:
            await asyncio.Event().wait()


async def test_blocks_that_finish_in_time_are_left_alone() -> None:
    deadlines = Deadlines(0.05)

    async def quick(i: int) -> int:
        async with deadlines:
            await asyncio.sleep(0)
            return i

    assert await asyncio.gather(*(quick(i) for i in range(100))) == list(range(100))


async def test_only_the_overdue_among_many_blocks_time_out() -> None:
    deadlines = Deadlines(0.05)
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
        "TimeoutError",
        "finished",
        "TimeoutError",
        "finished",
    ]


async def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    deadlines = Deadlines(10)
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
    deadlines = Deadlines(10)
    deadlines.timeout_s = 0.02
    with pytest.raises(TimeoutError):
        async with deadlines:
            await asyncio.Event().wait()


def test_blocking_use_bounds_nothing_and_passes_errors_through() -> None:
    deadlines = Deadlines(0.001)
    with deadlines:
        value = sum(range(10))
    assert value == 45
    with pytest.raises(ValueError, match="inner"), deadlines:
        raise ValueError("inner")
