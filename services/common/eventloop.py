"""The event loop every grpc.aio process of fraudmesh runs on: uvloop (libuv), not asyncio's default.

Measured with the whole mesh on a 2-core machine (``make bench-decision``, docs/architecture.md):
uvloop halves Decide's server-side p50 at half load and raises its saturation by ~15 %, because the
loop's own scheduling, timers and socket I/O (the Redis pipeline, grpc.aio's callbacks) run in C.
grpc.aio runs on any asyncio loop. faust workers keep the loop faust's ``mode`` creates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on a new uvloop event loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
