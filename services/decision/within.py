"""A dependency wait bounded by its sub-deadline, that tells a late wake-up from a slow dependency.

``within`` runs the work as its own task and abandons it at the deadline; a wait that ends well
after its deadline (this process was descheduled or its loop busy) first reads a reply that already
arrived, and otherwise raises ``LateWakeupError``, counted apart from a dependency's timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

T = TypeVar("T")

# A dependency wait that ends this long after its deadline was ended late by this process itself
# (asyncio and uvloop timers fire within about a millisecond of their due time when the loop runs).
LATE_WAKEUP_S: Final = 0.001
# Loop turns a late waiter takes to read a reply already received: socket read, the pipeline's
# reply handling, the waiting task (measured: two to three).
LOOK_TURNS: Final = 4


class LateWakeupError(TimeoutError):
    """A timeout seen late: the deadline passed while this process was not running.

    The waiter looked for a reply that had arrived meanwhile (its socket unread while the process
    was descheduled or its loop busy with other calls) and found none, so the dependency did not
    answer within its sub-deadline either; counted apart because it also says this process is
    short of CPU.
    """


async def within(start: Callable[[], Awaitable[T]], wait_s: float, *, look_until: float | None = None) -> T:
    """The result of ``start()`` if it arrives within ``wait_s``, else TimeoutError at ``wait_s``.

    The work runs as its own task and is abandoned (cancelled, its outcome reaped) at the deadline,
    so the caller returns on time even when the work absorbs the cancellation and keeps waiting.

    When the wait ends more than ``LATE_WAKEUP_S`` after its deadline, this process was not running
    at the deadline: the loop takes up to ``LOOK_TURNS`` more turns (never past ``look_until``, the
    call's own budget on the loop's clock) to read a reply that already arrived, and if there is
    none, raises ``LateWakeupError`` (a TimeoutError).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    work = asyncio.ensure_future(start())
    try:
        done, _ = await asyncio.wait((work,), timeout=wait_s)
        if not done and loop.time() - deadline > LATE_WAKEUP_S:
            for _ in range(LOOK_TURNS):
                if work.done() or (look_until is not None and loop.time() >= look_until):
                    break
                await asyncio.sleep(0)
            if not work.done():
                _abandon(work)
                raise LateWakeupError
    except asyncio.CancelledError:
        _abandon(work)
        raise
    if not work.done():
        _abandon(work)
        raise TimeoutError
    return work.result()


def _abandon(work: asyncio.Future[Any]) -> None:
    """Cancel work the call no longer waits for, and reap its outcome so nothing is left unretrieved."""
    work.cancel()
    work.add_done_callback(_reap)


def _reap(work: asyncio.Future[Any]) -> None:
    if not work.cancelled():
        work.exception()
