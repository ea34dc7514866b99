"""Per-number state in Redis, folded in idempotently: an event delivered twice counts once.

Each event is one Lua script on the number's own slot that sets the event's idempotency marker and
applies every update atomically, so a crash can neither lose nor double an event. Scripts for many
events are sent in one pipeline (one round trip per batch). The same code folds a dataset for the
trainer, so training features are computed exactly as production computes them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.common import keys, windows
from services.common.pseudonym import opaque_id
from services.common.windows import CALL_WINDOWS, DISTINCT_1H, DISTINCT_24H

log = logging.getLogger(__name__)

RING_ADD = """
local function ring_add(key, prefix, bucket, slots, inc)
  local field = prefix .. (bucket % slots)
  local current = redis.call('HGET', key, field)
  if current then
    local sep = string.find(current, ':', 1, true)
    local held = tonumber(string.sub(current, 1, sep - 1))
    if held == bucket then
      redis.call('HSET', key, field, bucket .. ':' .. (tonumber(string.sub(current, sep + 1)) + inc))
      return
    elseif held > bucket then
      return
    end
  end
  redis.call('HSET', key, field, bucket .. ':' .. inc)
end
local function capped_add(key, member, cap, ttl)
  if redis.call('SCARD', key) < cap then
    redis.call('SADD', key, member)
  end
  redis.call('EXPIRE', key, ttl)
end
"""

# KEYS: marker, num, win, hll_1h, hll_24h, out
# ARGV: t_ms, marker_ttl, number_ttl, callee_digest, out_cap, then (prefix, bucket, slots) x3, hll ttls
APPLY_SETUP = (
    RING_ADD
    + """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then return 0 end
local t = tonumber(ARGV[1])
redis.call('HINCRBY', KEYS[2], 'setups', 1)
local first = tonumber(redis.call('HGET', KEYS[2], 'first_seen_ms'))
if (not first) or first > t then redis.call('HSET', KEYS[2], 'first_seen_ms', ARGV[1]) end
local last = tonumber(redis.call('HGET', KEYS[2], 'last_seen_ms'))
if (not last) or last < t then redis.call('HSET', KEYS[2], 'last_seen_ms', ARGV[1]) end
redis.call('EXPIRE', KEYS[2], ARGV[3])
for i = 0, 2 do
  ring_add(KEYS[3], ARGV[6 + 3 * i], tonumber(ARGV[7 + 3 * i]), tonumber(ARGV[8 + 3 * i]), 1)
end
redis.call('EXPIRE', KEYS[3], ARGV[3])
if ARGV[4] ~= '' then
  redis.call('PFADD', KEYS[4], ARGV[4])
  redis.call('EXPIRE', KEYS[4], ARGV[15])
  redis.call('PFADD', KEYS[5], ARGV[4])
  redis.call('EXPIRE', KEYS[5], ARGV[16])
  capped_add(KEYS[6], ARGV[4], tonumber(ARGV[5]), ARGV[3])
end
return 1
"""
)

# KEYS: inbound set of the callee; ARGV: caller digest, cap, ttl
RECORD_INBOUND = (
    RING_ADD
    + """
capped_add(KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3])
return 1
"""
)

# KEYS: marker, num, act; ARGV: setup_ms, end_ms, answered, duration_ms, call digest, marker_ttl,
# number_ttl, active_ttl, short_ms, rapid_gap_ms
APPLY_CDR = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[6]) then return 0 end
local setup = tonumber(ARGV[1])
local finish = tonumber(ARGV[2])
redis.call('HINCRBY', KEYS[2], 'cdrs', 1)
if ARGV[3] == '1' then
  redis.call('HINCRBY', KEYS[2], 'answered', 1)
  redis.call('HINCRBY', KEYS[2], 'answered_ms', ARGV[4])
  if tonumber(ARGV[4]) < tonumber(ARGV[9]) then redis.call('HINCRBY', KEYS[2], 'short', 1) end
end
redis.call('ZADD', KEYS[3], finish, ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. setup)
local concurrent = redis.call('ZCOUNT', KEYS[3], setup, '+inf')
local best = tonumber(redis.call('HGET', KEYS[2], 'max_concurrent') or '0')
if concurrent > best then redis.call('HSET', KEYS[2], 'max_concurrent', concurrent) end
local last_end = tonumber(redis.call('HGET', KEYS[2], 'last_end_ms') or '-1')
if last_end >= 0 and setup >= last_end and setup - last_end <= tonumber(ARGV[10]) then
  redis.call('HINCRBY', KEYS[2], 'rapid', 1)
end
if finish > last_end then redis.call('HSET', KEYS[2], 'last_end_ms', finish) end
redis.call('EXPIRE', KEYS[2], ARGV[7])
redis.call('EXPIRE', KEYS[3], ARGV[8])
return 1
"""

# KEYS: marker, num, win; ARGV: t_ms, fraud (0/1), honeypot (0/1), marker_ttl, number_ttl, day bucket,
# slots
APPLY_COMPLAINT = (
    RING_ADD
    + """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[4]) then return 0 end
local day = tonumber(ARGV[6])
local slots = tonumber(ARGV[7])
redis.call('HINCRBY', KEYS[2], 'complaints', 1)
ring_add(KEYS[3], 'ca', day, slots, 1)
if ARGV[2] == '1' then ring_add(KEYS[3], 'cf', day, slots, 1) end
if ARGV[3] == '1' then ring_add(KEYS[3], 'ch', day, slots, 1) end
redis.call('EXPIRE', KEYS[2], ARGV[5])
redis.call('EXPIRE', KEYS[3], ARGV[5])
return 1
"""
)

# KEYS: marker, num, campaigns; ARGV: synthetic ('' when abstained), bot (''), marker_ttl, number_ttl,
# campaign ids...
APPLY_VERDICT = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[3]) then return 0 end
for i, field in ipairs({'synthetic', 'bot'}) do
  if ARGV[i] ~= '' then
    local held = tonumber(redis.call('HGET', KEYS[2], field) or '-1')
    if tonumber(ARGV[i]) > held then redis.call('HSET', KEYS[2], field, ARGV[i]) end
  end
end
for i = 5, #ARGV do redis.call('SADD', KEYS[3], ARGV[i]) end
redis.call('HSET', KEYS[2], 'campaigns', redis.call('SCARD', KEYS[3]))
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('EXPIRE', KEYS[3], ARGV[4])
return 1
"""

# KEYS: campaign members HLL; ARGV: number digest, ttl. Returns the campaign's size.
LINK_CAMPAIGN = """
redis.call('PFADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return redis.call('PFCOUNT', KEYS[1])
"""

# KEYS: num; ARGV: campaign size
RAISE_CAMPAIGN_SIZE = """
local held = tonumber(redis.call('HGET', KEYS[1], 'campaign_numbers') or '0')
if tonumber(ARGV[1]) > held then redis.call('HSET', KEYS[1], 'campaign_numbers', ARGV[1]) end
return 1
"""


@dataclass(frozen=True)
class Retention:
    """How long state lives: markers cover redelivery, numbers a month, caps bound hot sets."""

    marker_ttl_s: int = 2 * 86_400
    number_ttl_s: int = 35 * 86_400
    relationship_cap: int = 2000
    active_ttl_s: int = 86_400


@dataclass(frozen=True)
class SetupUpdate:
    """One call setup to fold in: caller, callee (digest, may be empty), time, identity."""

    caller: str
    callee: str
    tenant: str
    call_id: str
    t_ms: int


@dataclass(frozen=True)
class CdrUpdate:
    """One CDR to fold in for the calling number."""

    caller: str
    tenant: str
    call_id: str
    setup_ms: int
    end_ms: int
    answered: bool
    duration_ms: int


@dataclass(frozen=True)
class ComplaintUpdate:
    """One complaint about the reported number."""

    reported: str
    tenant: str
    complaint_id: str
    t_ms: int
    fraud: bool
    honeypot: bool


@dataclass(frozen=True)
class VerdictUpdate:
    """One audio verdict about the calling number."""

    caller: str
    tenant: str
    segment_id: str
    synthetic: float | None
    bot: float | None
    campaign_ids: tuple[str, ...]


Update = SetupUpdate | CdrUpdate | ComplaintUpdate | VerdictUpdate


class NumberStore:
    """Folds events into per-number state; batches share one pipeline (one round trip)."""

    def __init__(
        self,
        client: aioredis.Redis,
        retention: Retention = Retention(),
        retry_max_backoff_s: float = 5.0,
        on_retry: Any = None,
    ) -> None:
        self._client = client
        self.retention = retention
        self._retry_max_backoff_s = retry_max_backoff_s
        self._on_retry = on_retry
        self._setup = client.register_script(APPLY_SETUP)
        self._inbound = client.register_script(RECORD_INBOUND)
        self._cdr = client.register_script(APPLY_CDR)
        self._complaint = client.register_script(APPLY_COMPLAINT)
        self._verdict = client.register_script(APPLY_VERDICT)
        self._link = client.register_script(LINK_CAMPAIGN)
        self._raise = client.register_script(RAISE_CAMPAIGN_SIZE)

    async def _queue(self, pipe: Any, update: Update) -> int:
        """Queue one update's scripts on a pipeline; returns how many results it adds."""
        r = self.retention
        if isinstance(update, SetupUpdate):
            args: list[Any] = [update.t_ms, r.marker_ttl_s, r.number_ttl_s, update.callee, r.relationship_cap]
            for window in CALL_WINDOWS:
                args += [window.prefix, window.bucket(update.t_ms), window.slots]
            args += [windows.hll_ttl_s(DISTINCT_1H), windows.hll_ttl_s(DISTINCT_24H)]
            await self._setup(
                keys=[
                    keys.seen_key(update.caller, "setup", update.tenant, update.call_id),
                    keys.number_key(update.caller),
                    keys.window_key(update.caller),
                    keys.hll_key(update.caller, DISTINCT_1H.prefix, DISTINCT_1H.bucket(update.t_ms)),
                    keys.hll_key(update.caller, DISTINCT_24H.prefix, DISTINCT_24H.bucket(update.t_ms)),
                    keys.outbound_key(update.caller),
                ],
                args=args,
                client=pipe,
            )
            if update.callee:
                await self._inbound(
                    keys=[keys.inbound_key(update.callee)],
                    args=[keys.digest(update.caller), r.relationship_cap, r.number_ttl_s],
                    client=pipe,
                )
                return 2
            return 1
        if isinstance(update, CdrUpdate):
            await self._cdr(
                keys=[
                    keys.seen_key(update.caller, "cdr", update.tenant, update.call_id),
                    keys.number_key(update.caller),
                    keys.active_key(update.caller),
                ],
                args=[
                    update.setup_ms,
                    update.end_ms,
                    int(update.answered),
                    update.duration_ms,
                    opaque_id(update.tenant + chr(0) + update.call_id)[:16],
                    r.marker_ttl_s,
                    r.number_ttl_s,
                    r.active_ttl_s,
                    windows.SHORT_CALL_MS,
                    windows.RAPID_GAP_MS,
                ],
                client=pipe,
            )
            return 1
        if isinstance(update, ComplaintUpdate):
            window = windows.COMPLAINTS_30D
            await self._complaint(
                keys=[
                    keys.seen_key(update.reported, "complaint", update.tenant, update.complaint_id),
                    keys.number_key(update.reported),
                    keys.window_key(update.reported),
                ],
                args=[
                    update.t_ms,
                    int(update.fraud),
                    int(update.honeypot),
                    r.marker_ttl_s,
                    r.number_ttl_s,
                    window.bucket(update.t_ms),
                    window.slots,
                ],
                client=pipe,
            )
            return 1
        await self._verdict(
            keys=[
                keys.seen_key(update.caller, "verdict", update.tenant, update.segment_id),
                keys.number_key(update.caller),
                keys.campaigns_key(update.caller),
            ],
            args=[
                "" if update.synthetic is None else repr(update.synthetic),
                "" if update.bot is None else repr(update.bot),
                r.marker_ttl_s,
                r.number_ttl_s,
                *update.campaign_ids,
            ],
            client=pipe,
        )
        return 1

    async def apply(self, updates: Sequence[Update]) -> list[bool]:
        """Fold a batch of updates in one round trip; True for each update applied (not a duplicate).

        Redis errors are retried with capped exponential backoff for as long as it takes: the
        partition waits rather than skip or lose events. Re-sending after a partial failure is safe
        because every script is idempotent.
        """
        backoff = 0.05
        while True:
            try:
                pipe = self._client.pipeline(transaction=False)
                shape = [await self._queue(pipe, update) for update in updates]
                results = await pipe.execute()
                break
            except RedisError as exc:
                if self._on_retry is not None:
                    self._on_retry()
                log.warning("redis write failed; retrying", extra={"error": type(exc).__name__})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._retry_max_backoff_s)
        applied: list[bool] = []
        position = 0
        for size in shape:
            applied.append(bool(results[position]))
            position += size
        verdicts = [u for u, ok in zip(updates, applied, strict=True) if ok and isinstance(u, VerdictUpdate)]
        if verdicts:
            await self._link_campaigns(verdicts)
        return applied

    async def _link_campaigns(self, verdicts: Sequence[VerdictUpdate]) -> None:
        """Add each number to its campaigns' member sets and copy the campaign size onto the number."""
        pairs = [(v, cid) for v in verdicts for cid in v.campaign_ids]
        if not pairs:
            return
        pipe = self._client.pipeline(transaction=False)
        for verdict, cid in pairs:
            await self._link(
                keys=[keys.campaign_members_key(cid)],
                args=[keys.digest(verdict.caller), self.retention.number_ttl_s],
                client=pipe,
            )
        sizes = await pipe.execute()
        pipe = self._client.pipeline(transaction=False)
        for (verdict, _cid), size in zip(pairs, sizes, strict=True):
            await self._raise(keys=[keys.number_key(verdict.caller)], args=[size], client=pipe)
        await pipe.execute()


def now_ms() -> int:
    """Wall-clock milliseconds (events carry their own time; this is for fallbacks)."""
    return int(time.time() * 1000)
