"""Auto-pipelining for redis.asyncio: commands issued in one event-loop tick go out as one pipeline.

Concurrent calls on one event loop each need one command (the decision's EVALSHA). Sent one by one,
each takes a pool connection, a write and a read; queued for the rest of the tick and sent together,
a burst costs one connection, one write and one read, and Redis answers them back to back. The
caller waits no longer than before: the batch leaves at the end of the tick it was issued in.

Loop turns are the call path's currency on a busy process (each turn runs every other call's ready
work), so a command costs as few as possible: the first command of a tick starts the task that sends
the batch (no separate flush callback), and ``execute`` returns a plain future the caller can wait on
without wrapping it in a task of its own. The batch goes out through ``services.common.redisbatch``
(hiredis-packed, one write; a script Redis no longer holds is loaded from ``scripts`` and resent).

A command whose caller stopped waiting (its deadline passed) before the batch left is not sent. A
batch runs to completion even when no caller waits for it any more — cancelling redis-py mid-pipeline
drops the connection — bounded by ``timeout_s``; a batch that fails gives every waiting caller the
error, and per-command errors (e.g. NOSCRIPT) go to their own caller only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis

from services.common import redisbatch


class AutoPipeline:
    """One client's commands, batched per event-loop tick (at most ``max_batch`` per pipeline)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        timeout_s: float,
        max_batch: int = 256,
        scripts: Mapping[str, str] | None = None,
    ) -> None:
        """``scripts`` maps the SHA1 of each script sent by EVALSHA to its source, for NOSCRIPT reloads."""
        if timeout_s <= 0 or max_batch < 1:
            raise ValueError("timeout_s must be positive and max_batch at least 1")
        self._redis = redis
        self._scripts = dict(scripts or {})
        self._timeout_s = timeout_s
        self._max_batch = max_batch
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._scheduled = False
        self._inflight: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.commands = 0

    def execute(self, *command: Any) -> asyncio.Future[Any]:
        """Queue one command (``"EVALSHA", sha, numkeys, *keys_and_args``); its reply as a future."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((command, future))
        if not self._scheduled:
            self._scheduled = True
            task = loop.create_task(self._flush())  # its first step runs after this tick's callbacks
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        return future

    async def _flush(self) -> None:
        self._scheduled = False
        batch = [(command, future) for command, future in self._pending if not future.done()]
        self._pending = []
        size = self._max_batch
        for start in range(size, len(batch), size):  # beyond one pipeline's worth: in parallel
            task = asyncio.ensure_future(self._send(batch[start : start + size]))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        if batch:
            await self._send(batch[:size])

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        self.batches += 1
        self.commands += len(batch)
        try:
            async with asyncio.timeout(self._timeout_s):
                replies = await redisbatch.send(self._redis, [command for command, _ in batch], self._scripts)
        except Exception as exc:  # the whole batch failed: every caller still waiting gets the error
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def aclose(self) -> None:
        """Wait for the batches in flight (bounded by their timeout)."""
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
