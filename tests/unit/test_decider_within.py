"""A dependency wait ends at its deadline even when the work refuses to be cancelled promptly."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from services.decision.within import LateWakeupError, within


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


async def test_a_reply_that_arrived_while_the_loop_was_blocked_is_read() -> None:
    loop = asyncio.get_running_loop()
    answered = loop.create_future()

    async def dependency() -> str:
        reply = await answered
        await asyncio.sleep(0)  # the hops between a socket read and the waiting call
        await asyncio.sleep(0)
        return str(reply)

    def blocked_past_the_deadline() -> None:
        answered.set_result("in time")  # the reply arrives in time ...
        time.sleep(0.02)  # ... but this process does not run again until well past the deadline

    loop.call_later(0.001, blocked_past_the_deadline)
    assert await within(dependency, 0.004) == "in time"


async def test_a_late_wakeup_without_a_reply_is_a_timeout_seen_late() -> None:
    async def silent() -> None:
        await asyncio.sleep(10)

    asyncio.get_running_loop().call_soon(time.sleep, 0.02)
    with pytest.raises(LateWakeupError):
        await within(silent, 0.004)


async def test_an_on_time_wakeup_without_a_reply_is_a_plain_timeout() -> None:
    async def silent() -> None:
        await asyncio.sleep(10)

    # On a busy machine (CI, or tests in parallel) a wakeup can really be late, which is then
    # rightly a LateWakeupError: the claim is that an on-time one, seen within a few tries, is not.
    for _ in range(20):
        with pytest.raises(TimeoutError) as caught:
            await within(silent, 0.01)
        if not isinstance(caught.value, LateWakeupError):
            return
    pytest.fail("every one of 20 waits woke late: the loop never woke on time")
