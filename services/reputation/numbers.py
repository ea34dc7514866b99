"""Per-number state in Redis, folded in idempotently: an event delivered twice counts once.

One Lua script per event sets the event's idempotency marker and updates the number's state in a
single atomic step, so a crash between "seen" and "counted" cannot lose or double an event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.common import keys
from services.reputation import metrics

log = logging.getLogger(__name__)

# KEYS[1] idempotency marker, KEYS[2] number hash.
# ARGV[1] event time (ms), ARGV[2] marker TTL (s), ARGV[3] number TTL (s).
_APPLY_SETUP = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then
  return 0
end
redis.call('HINCRBY', KEYS[2], 'setups', 1)
local first = redis.call('HGET', KEYS[2], 'first_seen_ms')
if (not first) or tonumber(first) > tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[2], 'first_seen_ms', ARGV[1])
end
local last = redis.call('HGET', KEYS[2], 'last_seen_ms')
if (not last) or tonumber(last) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[2], 'last_seen_ms', ARGV[1])
end
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""


@dataclass(frozen=True)
class NumberState:
    """What reputation knows about one number so far."""

    setups: int
    first_seen_ms: int
    last_seen_ms: int


class NumberStore:
    """Writes and reads per-number state for one tenant-independent pseudonym space."""

    def __init__(
        self,
        client: aioredis.Redis,
        dedupe_ttl_s: int,
        number_ttl_s: int,
        retry_max_backoff_s: float = 5.0,
    ) -> None:
        self._client = client
        self._dedupe_ttl_s = dedupe_ttl_s
        self._number_ttl_s = number_ttl_s
        self._retry_max_backoff_s = retry_max_backoff_s
        self._apply_setup = client.register_script(_APPLY_SETUP)

    async def apply_setup(self, pseudonym: str, tenant: str, call_id: str, event_ms: int) -> bool:
        """Count one call setup for the caller; False when this call was already counted.

        Retries Redis errors with capped exponential backoff for as long as it takes: the
        partition waits rather than skip or lose the event.
        """
        marker = keys.seen_key(pseudonym, "setup", tenant, call_id)
        number = keys.number_key(pseudonym)
        backoff = 0.05
        started = time.perf_counter()
        while True:
            try:
                applied = await self._apply_setup(
                    keys=[marker, number], args=[event_ms, self._dedupe_ttl_s, self._number_ttl_s]
                )
                break
            except RedisError as exc:
                metrics.REDIS_RETRIES.inc()
                log.warning("redis write failed; retrying", extra={"error": type(exc).__name__})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._retry_max_backoff_s)
        metrics.APPLY_SECONDS.observe(time.perf_counter() - started)
        return bool(applied)

    async def read(self, pseudonym: str) -> NumberState | None:
        """The number's state, or None when reputation has never seen it (or it expired)."""
        raw = await self._client.hgetall(keys.number_key(pseudonym))
        if not raw:
            return None
        return NumberState(
            setups=int(raw[b"setups"]),
            first_seen_ms=int(raw[b"first_seen_ms"]),
            last_seen_ms=int(raw[b"last_seen_ms"]),
        )
