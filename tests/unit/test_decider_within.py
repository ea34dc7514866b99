"""A dependency wait ends at its deadline even when the work refuses to be cancelled promptly."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from services.decision.decider import within


async def test_work_that_absorbs_its_cancellation_does_not_hold_the_call() -> None:
    finished = asyncio.Event()

    async def stubborn() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0.3)  # e.g. a client library waiting out its own pool timeout
        finally:
            finished.set()
        return "late"

    started = time.perf_counter()
    with pytest.raises(TimeoutError):
        await within(stubborn, 0.01)
    assert time.perf_counter() - started < 0.2
    await asyncio.wait_for(finished.wait(), 2)


async def test_a_result_in_time_and_errors_pass_through() -> None:
    async def quick() -> int:
        return 7

    async def broken() -> int:
        raise OSError("refused")

    assert await within(quick, 1.0) == 7
    with pytest.raises(OSError, match="refused"):
        await within(broken, 1.0)


async def test_a_cancelled_caller_abandons_its_work() -> None:
    cancelled = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    caller = asyncio.create_task(within(slow, 5.0))
    await asyncio.sleep(0.01)
    caller.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await caller
    await asyncio.wait_for(cancelled.wait(), 1)
