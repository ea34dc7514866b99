"""Per-number state in Redis, folded in idempotently: an event delivered twice counts once.

Each event is one Lua script on the number's own slot that sets the event's idempotency marker and
applies every update atomically, so a crash can neither lose nor double an event. Scripts for many
events are sent in one round trip per batch (``services.common.redisbatch``: packed by hiredis, no
``SCRIPT EXISTS`` round trip). The same code folds a dataset for the trainer, so training features
are computed exactly as production computes them.
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

from services.common import keys, recent, redisbatch, windows
from services.common.pseudonym import opaque_id
from services.common.windows import CALL_WINDOWS, DISTINCT_1H, DISTINCT_24H, RING_ADD

log = logging.getLogger(__name__)


# Lua source with the windows and retention baked in, so each call sends only what varies.
# KEYS: marker, num, win, hll 1 h, hll 24 h, out, recent decisions; ARGV: t_ms, callee digest, summary
SETUP_BODY = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', MARKER_TTL) then return 0 end
local t = tonumber(ARGV[1])
local seen = redis.call('HMGET', KEYS[2], 'first_seen_ms', 'last_seen_ms')
local first, last = tonumber(seen[1]), tonumber(seen[2])
local set = {}
if (not first) or first > t then set[#set + 1] = 'first_seen_ms'; set[#set + 1] = ARGV[1] end
if (not last) or last < t then set[#set + 1] = 'last_seen_ms'; set[#set + 1] = ARGV[1] end
if #set > 0 then redis.call('HSET', KEYS[2], unpack(set)) end
redis.call('HINCRBY', KEYS[2], 'setups', 1)
redis.call('EXPIRE', KEYS[2], NUMBER_TTL)
ring_add(KEYS[3], CALL_RINGS, t, 1)
redis.call('EXPIRE', KEYS[3], NUMBER_TTL)
if ARGV[2] ~= '' then
  redis.call('PFADD', KEYS[4], ARGV[2])
  redis.call('EXPIRE', KEYS[4], HLL_1H_TTL)
  redis.call('PFADD', KEYS[5], ARGV[2])
  redis.call('EXPIRE', KEYS[5], HLL_24H_TTL)
  capped_add(KEYS[6], ARGV[2], RELATIONSHIP_CAP, NUMBER_TTL)
end
if ARGV[3] ~= '' then
  redis.call('LPUSH', KEYS[7], ARGV[3])
  redis.call('LTRIM', KEYS[7], 0, RECENT_DECISIONS - 1)
  redis.call('EXPIRE', KEYS[7], DECISIONS_TTL)
end
return 1
"""


def compile_script(body: str, retention: Retention) -> str:
    """A script's source with the shared helpers, the windows and the retention baked in."""
    constants = {
        "MARKER_TTL": retention.marker_ttl_s,
        "NUMBER_TTL": retention.number_ttl_s,
        "PRESENCE_TTL": retention.presence_ttl_s,
        "RELATIONSHIP_CAP": retention.relationship_cap,
        "ACTIVE_TTL": retention.active_ttl_s,
        "CAMPAIGN_NUMBERS_CAP": retention.campaign_numbers_cap,
        "TELL_EVERY_UP_TO": retention.tell_every_up_to,
        "HLL_1H_TTL": windows.hll_ttl_s(DISTINCT_1H),
        "HLL_24H_TTL": windows.hll_ttl_s(DISTINCT_24H),
        "SHORT_CALL_MS": windows.SHORT_CALL_MS,
        "RAPID_GAP_MS": windows.RAPID_GAP_MS,
        "DAY_MS": windows.COMPLAINTS_30D.bucket_ms,
        "COMPLAINT_SLOTS": windows.COMPLAINTS_30D.slots,
        "RECENT_DECISIONS": recent.RECENT_DECISIONS,
        "DECISIONS_TTL": recent.DECISIONS_TTL_S,
    }
    prelude = "".join(f"local {name} = {value}\n" for name, value in constants.items())
    prelude += f"local CALL_RINGS = {windows.lua_rings(CALL_WINDOWS)}\n"
    return prelude + RING_ADD + body


# KEYS: inbound set of the callee; ARGV: caller digest
INBOUND_BODY = """
capped_add(KEYS[1], ARGV[1], RELATIONSHIP_CAP, NUMBER_TTL)
return 1
"""

# KEYS: marker, num, act; ARGV: setup_ms, end_ms, answered, duration_ms, call digest
CDR_BODY = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', MARKER_TTL) then return 0 end
local setup = tonumber(ARGV[1])
local finish = tonumber(ARGV[2])
redis.call('HINCRBY', KEYS[2], 'cdrs', 1)
if ARGV[3] == '1' then
  redis.call('HINCRBY', KEYS[2], 'answered', 1)
  redis.call('HINCRBY', KEYS[2], 'answered_ms', ARGV[4])
  if tonumber(ARGV[4]) < SHORT_CALL_MS then redis.call('HINCRBY', KEYS[2], 'short', 1) end
end
redis.call('ZADD', KEYS[3], finish, ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. setup)
local concurrent = redis.call('ZCOUNT', KEYS[3], setup, '+inf')
local best = tonumber(redis.call('HGET', KEYS[2], 'max_concurrent') or '0')
if concurrent > best then redis.call('HSET', KEYS[2], 'max_concurrent', concurrent) end
local last_end = tonumber(redis.call('HGET', KEYS[2], 'last_end_ms') or '-1')
if last_end >= 0 and setup >= last_end and setup - last_end <= RAPID_GAP_MS then
  redis.call('HINCRBY', KEYS[2], 'rapid', 1)
end
if finish > last_end then redis.call('HSET', KEYS[2], 'last_end_ms', finish) end
redis.call('EXPIRE', KEYS[2], NUMBER_TTL)
redis.call('EXPIRE', KEYS[3], ACTIVE_TTL)
return 1
"""

# KEYS: marker, num, win; ARGV: t_ms, fraud (0/1), honeypot (0/1)
COMPLAINT_BODY = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', MARKER_TTL) then return 0 end
local rings = {{'ca', DAY_MS, COMPLAINT_SLOTS}}
if ARGV[2] == '1' then rings[#rings + 1] = {'cf', DAY_MS, COMPLAINT_SLOTS} end
if ARGV[3] == '1' then rings[#rings + 1] = {'ch', DAY_MS, COMPLAINT_SLOTS} end
redis.call('HINCRBY', KEYS[2], 'complaints', 1)
ring_add(KEYS[3], rings, tonumber(ARGV[1]), 1)
redis.call('EXPIRE', KEYS[2], NUMBER_TTL)
redis.call('EXPIRE', KEYS[3], NUMBER_TTL)
return 1
"""

# KEYS: marker, num, campaigns; ARGV: synthetic ('' when abstained), bot (''), campaign ids...
VERDICT_BODY = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', MARKER_TTL) then return 0 end
for i, field in ipairs({'synthetic', 'bot'}) do
  if ARGV[i] ~= '' then
    local held = tonumber(redis.call('HGET', KEYS[2], field) or '-1')
    if tonumber(ARGV[i]) > held then redis.call('HSET', KEYS[2], field, ARGV[i]) end
  end
end
for i = 3, #ARGV do redis.call('SADD', KEYS[3], ARGV[i]) end
redis.call('HSET', KEYS[2], 'campaigns', redis.call('SCARD', KEYS[3]))
redis.call('EXPIRE', KEYS[2], NUMBER_TTL)
redis.call('EXPIRE', KEYS[3], NUMBER_TTL)
return 1
"""

# KEYS: marker, presence, and for a call event its call's end marker; ARGV: state (1 home, 2 roaming,
# 3 detached, 4 in call, 5 call ended), t_ms, country (roaming, else ''), call id (4 and 5, else '').
# Registration and call are ordered apart, each by its own time: an event older than what its part
# holds changes nothing. A call's end clears the call only if it is the one held, and leaves its end
# time as the call part's time; its end marker keeps the call's start, however late it arrives, from
# ever reading as a call in progress. Only a change renews the TTL, so a subscriber nobody reports on
# decays to unknown.
PRESENCE_BODY = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', MARKER_TTL) then return 0 end
local state, t = tonumber(ARGV[1]), tonumber(ARGV[2])
local changed = false
if state <= 3 then
  if t >= tonumber(redis.call('HGET', KEYS[2], 'reg_ms') or '-1') then
    redis.call('HSET', KEYS[2], 'reg', state, 'reg_ms', ARGV[2], 'cc', ARGV[3])
    changed = true
  end
else
  local held = redis.call('HMGET', KEYS[2], 'call', 'call_ms')
  local newer = t >= tonumber(held[2] or '-1')
  if state == 4 then
    if newer and redis.call('EXISTS', KEYS[3]) == 0 then
      redis.call('HSET', KEYS[2], 'call', ARGV[4], 'call_ms', ARGV[2])
      changed = true
    end
  else
    redis.call('SET', KEYS[3], '1', 'EX', MARKER_TTL)
    if newer and held[1] == ARGV[4] then
      redis.call('HSET', KEYS[2], 'call', '', 'call_ms', ARGV[2])
      changed = true
    end
  end
end
if changed then redis.call('EXPIRE', KEYS[2], PRESENCE_TTL) end
return 1
"""

# KEYS: campaign members HLL, numbers zset, meta; ARGV: (number digest, pseudonym) pairs.
# Returns {'into', campaign} when the campaign was merged into another (link there instead), else
# {'size', size, numbers to tell...}: the campaign's numbers are told its size each time it grows
# while small, then at every quarter of growth, so an early member never reads a stale small size.
LINK_BODY = """
local into = redis.call('HGET', KEYS[3], 'into')
if into then return {'into', into} end
local now = redis.call('TIME')[1]
for i = 1, #ARGV, 2 do
  redis.call('PFADD', KEYS[1], ARGV[i])
  redis.call('ZADD', KEYS[2], now, ARGV[i + 1])
end
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -CAMPAIGN_NUMBERS_CAP - 1)
local size = redis.call('PFCOUNT', KEYS[1])
local told = tonumber(redis.call('HGET', KEYS[3], 'told') or '0')
local out = {'size', tostring(size)}
if size > told and (size <= TELL_EVERY_UP_TO or size >= told * 1.25) then
  redis.call('HSET', KEYS[3], 'told', size)
  for _, number in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do out[#out + 1] = number end
end
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], NUMBER_TTL) end
return out
"""

# KEYS: the merged campaign's numbers zset and meta; ARGV: the campaign it was merged into.
# Marks the merge (links of the old id go to the new one from now on) and returns its numbers.
MERGE_BODY = """
redis.call('HSET', KEYS[2], 'into', ARGV[1])
redis.call('EXPIRE', KEYS[2], NUMBER_TTL)
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""

# KEYS: num, campaigns; ARGV: campaign size, campaign id. A number told it belongs to a campaign
# (its own verdict, a back-fill on discovery, a merge, a growth step) records the campaign and raises
# its size; only numbers reputation still holds (their hash carries the TTL).
RAISE_BODY = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[2], NUMBER_TTL)
local held = tonumber(redis.call('HGET', KEYS[1], 'campaign_numbers') or '0')
local set = {'campaigns', redis.call('SCARD', KEYS[2])}
if tonumber(ARGV[1]) > held then set[3] = 'campaign_numbers'; set[4] = ARGV[1] end
redis.call('HSET', KEYS[1], unpack(set))
return 1
"""

MAX_MERGE_HOPS = 8


@dataclass(frozen=True)
class Retention:
    """How long state lives: markers cover redelivery, numbers a month, presence hours; caps bound sets."""

    marker_ttl_s: int = 2 * 86_400
    number_ttl_s: int = 35 * 86_400
    presence_ttl_s: int = 3 * 3_600
    relationship_cap: int = 2000
    active_ttl_s: int = 86_400
    campaign_numbers_cap: int = 10_000
    tell_every_up_to: int = 64


@dataclass(frozen=True)
class SetupUpdate:
    """One call setup to fold in: caller, callee (digest, may be empty), time, identity."""

    caller: str
    callee: str
    tenant: str
    call_id: str
    t_ms: int
    summary: str = ""  # the audited decision for the caller's recent list (services.common.recent)


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
    earlier_members: tuple[str, ...] = ()  # pseudonyms heard playing the campaign before discovery


@dataclass(frozen=True)
class PresenceUpdate:
    """One presence report about a home subscriber (``state``: a PresenceState value, 1 to 5)."""

    number: str
    tenant: str
    event_id: str
    t_ms: int
    state: int
    country: str = ""  # ROAMING only
    call_id: str = ""  # IN_CALL and CALL_ENDED only


Update = SetupUpdate | CdrUpdate | ComplaintUpdate | VerdictUpdate | PresenceUpdate


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

        def script(body: str) -> Any:
            return client.register_script(compile_script(body, retention))

        def folding(body: str) -> str:
            source = compile_script(body, retention)
            sha = redisbatch.script_sha(source)
            self._scripts[sha] = source
            return sha

        self._scripts: dict[str, str] = {}
        self._setup = folding(SETUP_BODY)
        self._inbound = folding(INBOUND_BODY)
        self._cdr = folding(CDR_BODY)
        self._complaint = folding(COMPLAINT_BODY)
        self._verdict = folding(VERDICT_BODY)
        self._presence = folding(PRESENCE_BODY)
        self._link = script(LINK_BODY)
        self._merge = script(MERGE_BODY)
        self._raise = script(RAISE_BODY)

    async def load_scripts(self) -> None:
        """Load the fold scripts into Redis (``apply`` reloads them itself after a NOSCRIPT)."""
        for source in self._scripts.values():
            await self._client.script_load(source)

    def queue(self, pipe: Any, update: Update) -> int:
        """Queue one update's fold on a redis-py pipeline (the trainer's, shared with its reads, in
        event order); returns how many results it adds. The scripts must be loaded."""
        commands = self.commands(update)
        for command in commands:
            pipe.execute_command(*command)
        return len(commands)

    def commands(self, update: Update) -> list[tuple[Any, ...]]:
        """One update's EVALSHA commands: its fold, and for a setup with a callee the callee's side."""
        if isinstance(update, SetupUpdate):
            callee = keys.digest(update.callee) if update.callee else ""
            fold = _evalsha(
                self._setup,
                [
                    keys.seen_key(update.caller, "setup", update.tenant, update.call_id),
                    keys.number_key(update.caller),
                    keys.window_key(update.caller),
                    keys.hll_key(update.caller, DISTINCT_1H.prefix, DISTINCT_1H.bucket(update.t_ms)),
                    keys.hll_key(update.caller, DISTINCT_24H.prefix, DISTINCT_24H.bucket(update.t_ms)),
                    keys.outbound_key(update.caller),
                    keys.decisions_key(update.caller),
                ],
                [update.t_ms, callee, update.summary],
            )
            if update.callee:
                return [
                    fold,
                    _evalsha(self._inbound, [keys.inbound_key(update.callee)], [keys.digest(update.caller)]),
                ]
            return [fold]
        if isinstance(update, CdrUpdate):
            return [
                _evalsha(
                    self._cdr,
                    [
                        keys.seen_key(update.caller, "cdr", update.tenant, update.call_id),
                        keys.number_key(update.caller),
                        keys.active_key(update.caller),
                    ],
                    [
                        update.setup_ms,
                        update.end_ms,
                        int(update.answered),
                        update.duration_ms,
                        opaque_id(update.tenant + chr(0) + update.call_id)[:16],
                    ],
                )
            ]
        if isinstance(update, ComplaintUpdate):
            return [
                _evalsha(
                    self._complaint,
                    [
                        keys.seen_key(update.reported, "complaint", update.tenant, update.complaint_id),
                        keys.number_key(update.reported),
                        keys.window_key(update.reported),
                    ],
                    [update.t_ms, int(update.fraud), int(update.honeypot)],
                )
            ]
        if isinstance(update, PresenceUpdate):
            presence = [
                keys.seen_key(update.number, "presence", update.tenant, update.event_id),
                keys.presence_key(update.number),
            ]
            if update.call_id:
                presence.append(keys.seen_key(update.number, "call-end", update.tenant, update.call_id))
            return [
                _evalsha(
                    self._presence, presence, [update.state, update.t_ms, update.country, update.call_id]
                )
            ]
        return [
            _evalsha(
                self._verdict,
                [
                    keys.seen_key(update.caller, "verdict", update.tenant, update.segment_id),
                    keys.number_key(update.caller),
                    keys.campaigns_key(update.caller),
                ],
                [
                    "" if update.synthetic is None else repr(update.synthetic),
                    "" if update.bot is None else repr(update.bot),
                    *update.campaign_ids,
                ],
            )
        ]

    async def apply(self, updates: Sequence[Update]) -> list[bool]:
        """Fold a batch of updates in one round trip; True for each update applied (not a duplicate).

        Redis errors are retried with capped exponential backoff for as long as it takes: the
        partition waits rather than skip or lose events. Re-sending after a partial failure is safe
        because every script is idempotent.
        """
        backoff = 0.05
        while True:
            try:
                batches = [self.commands(update) for update in updates]
                shape = [len(commands) for commands in batches]
                results = await redisbatch.send(
                    self._client, [command for commands in batches for command in commands], self._scripts
                )
                failed = next((reply for reply in results if isinstance(reply, Exception)), None)
                if failed is not None:
                    raise failed
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
        backoff = 0.05
        while verdicts:
            try:
                await self._link_campaigns(verdicts)  # idempotent (PFADD, raise-to-max): safe to repeat
                break
            except RedisError as exc:
                if self._on_retry is not None:
                    self._on_retry()
                log.warning("redis campaign link failed; retrying", extra={"error": type(exc).__name__})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._retry_max_backoff_s)
        return applied

    async def _link_campaigns(self, verdicts: Sequence[VerdictUpdate]) -> None:
        """Link each number to its campaign and tell the campaign's numbers its size as it grows.

        A verdict's first campaign id is the one its recording belongs to; further ids are campaigns
        the audio service found to be the same one and merged into the first: their numbers join it
        and links to their ids go to it from now on.
        """
        links: list[tuple[str, list[str]]] = []
        for verdict in verdicts:
            if not verdict.campaign_ids:
                continue
            first, *merged = verdict.campaign_ids
            links.append((first, [verdict.caller, *verdict.earlier_members]))
            for other in merged:
                if other != first:
                    numbers = await self._merge(
                        keys=[keys.campaign_numbers_key(other), keys.campaign_meta_key(other)],
                        args=[first],
                    )
                    links.append((first, [n.decode() for n in numbers]))
        for _ in range(MAX_MERGE_HOPS):
            if not links:
                return
            pipe = self._client.pipeline(transaction=False)
            for campaign, numbers in links:
                await self._link(
                    keys=[
                        keys.campaign_members_key(campaign),
                        keys.campaign_numbers_key(campaign),
                        keys.campaign_meta_key(campaign),
                    ],
                    args=[part for n in numbers for part in (keys.digest(n), n)],
                    client=pipe,
                )
            replies = await pipe.execute()
            pipe = self._client.pipeline(transaction=False)
            redirected: list[tuple[str, list[str]]] = []
            for (campaign, numbers), reply in zip(links, replies, strict=True):
                kind, value, *told = (part.decode() for part in reply)
                if kind == "into":
                    redirected.append((value, numbers))
                    continue
                for number in dict.fromkeys([*numbers, *told]):
                    await self._raise(
                        keys=[keys.number_key(number), keys.campaigns_key(number)],
                        args=[int(value), campaign],
                        client=pipe,
                    )
            await pipe.execute()
            links = redirected
        log.warning("campaign merges form a chain too long to follow", extra={"links": len(links)})


def now_ms() -> int:
    """Wall-clock milliseconds (events carry their own time; this is for fallbacks)."""
    return int(time.time() * 1000)


def _evalsha(sha: str, script_keys: list[str], args: list[Any]) -> tuple[Any, ...]:
    return ("EVALSHA", sha, len(script_keys), *script_keys, *args)
