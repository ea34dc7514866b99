"""Time windows of the per-number features, shared by the Redis writers and the one-round-trip reader.

Counts over a window use a ring of buckets kept in one Redis hash: field ``<prefix><bucket mod
slots>`` holds ``"<bucket>:<count>"``. A write to a slot holding an older bucket resets it; a late
write whose slot already holds a newer bucket is outside every window that slot can still serve
and is dropped. A read at time ``now`` sums the slots whose bucket lies in ``(now_bucket - slots,
now_bucket]``: the window's count covers between ``span - bucket`` and ``span`` of history (the
oldest, partial bucket of the exact window is not counted). Distinct callees use one HyperLogLog
per bucket, merged by PFCOUNT at read time, with the same bucket semantics and HLL's ~0.8 %
standard error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

SECOND: Final = 1000
MINUTE: Final = 60 * SECOND
HOUR: Final = 60 * MINUTE
DAY: Final = 24 * HOUR


@dataclass(frozen=True)
class Window:
    """A counting window: a ring of ``slots`` buckets of ``bucket_ms`` under a field prefix."""

    prefix: str
    bucket_ms: int
    slots: int

    @property
    def span_ms(self) -> int:
        """The nominal window length."""
        return self.bucket_ms * self.slots

    def bucket(self, t_ms: int) -> int:
        """The bucket index a time falls into."""
        return t_ms // self.bucket_ms

    def buckets(self, now_ms: int) -> range:
        """Bucket indices a read at ``now_ms`` counts."""
        now = self.bucket(now_ms)
        return range(now - self.slots + 1, now + 1)


CALLS_1M: Final = Window("m", 10 * SECOND, 6)
CALLS_1H: Final = Window("h", 5 * MINUTE, 12)
CALLS_24H: Final = Window("d", HOUR, 24)
CALL_WINDOWS: Final = (CALLS_1M, CALLS_1H, CALLS_24H)

COMPLAINTS_30D: Final = Window("ca", DAY, 30)
FRAUD_COMPLAINTS_30D: Final = Window("cf", DAY, 30)
HONEYPOT_30D: Final = Window("ch", DAY, 30)
COMPLAINTS_7D_DAYS: Final = 7

DISTINCT_1H: Final = Window("q", 15 * MINUTE, 4)
DISTINCT_24H: Final = Window("s", 4 * HOUR, 6)
DISTINCT_WINDOWS: Final = (DISTINCT_1H, DISTINCT_24H)

SHORT_CALL_MS: Final = 10 * SECOND
RAPID_GAP_MS: Final = 3 * SECOND


# Lua helpers every ring writer shares: ring_add(key, {{prefix, bucket_ms, slots}, ...}, t_ms, inc)
# and capped_add(set, member, cap, ttl). Prepended to the writers' scripts.
RING_ADD = """
local function ring_add(key, rings, t, inc)
  local fields = {}
  for i, ring in ipairs(rings) do fields[i] = ring[1] .. (math.floor(t / ring[2]) % ring[3]) end
  local held = redis.call('HMGET', key, unpack(fields))
  local out = {}
  for i, ring in ipairs(rings) do
    local bucket = math.floor(t / ring[2])
    local value = held[i]
    local count = inc
    if value then
      local sep = string.find(value, ':', 1, true)
      local at = tonumber(string.sub(value, 1, sep - 1))
      if at == bucket then count = tonumber(string.sub(value, sep + 1)) + inc
      elseif at > bucket then count = nil end
    end
    if count then
      out[#out + 1] = fields[i]
      out[#out + 1] = bucket .. ':' .. count
    end
  end
  if #out > 0 then redis.call('HSET', key, unpack(out)) end
end
local function capped_add(key, member, cap, ttl)
  if redis.call('SCARD', key) < cap then
    redis.call('SADD', key, member)
  end
  redis.call('EXPIRE', key, ttl)
end
"""


def hll_ttl_s(window: Window) -> int:
    """How long one HLL bucket key must live to serve every read that can count it."""
    return (window.span_ms + window.bucket_ms) // SECOND + 60


def ring_count(held: Mapping[Any, Any], window: Window, now_ms: int, prefix: str = "") -> int:
    """The count a read at ``now_ms`` sees in a ring hash (HGETALL result), Python side of ring_add.

    ``prefix`` is prepended to the window's own prefix, for hashes holding several counters.
    """
    wanted = window.buckets(now_ms)
    total = 0
    for bucket in wanted:
        field = f"{prefix}{window.prefix}{bucket % window.slots}"
        value = held.get(field, held.get(field.encode()))
        if value is None:
            continue
        text = value.decode() if isinstance(value, bytes) else value
        at, _, count = text.partition(":")
        if int(at) == bucket:
            total += int(count)
    return total


def lua_rings(rings: tuple[Window, ...] | list[Window], prefix: str = "") -> str:
    """A Lua table literal of rings for ring_add: {{'<prefix><p>', bucket_ms, slots}, ...}."""
    return "{" + ", ".join(f"{{'{prefix}{w.prefix}', {w.bucket_ms}, {w.slots}}}" for w in rings) + "}"
