"""The one-round-trip read of a caller's reputation features, for the decision service and trainer.

One EVALSHA on the caller's slot returns every reputation feature of the caller plus the
caller-callee relationship; ``fill`` writes them into a feature vector in schema order. A number
reputation has never seen reads as zero counts and age 0 (known, not missing); ratios without a
denominator and audio scores never measured are NaN. The same read returns the number's presence as
its home network reported it (``Presence``): not a model feature, it feeds origination's proofs.

A new reputation or audio feature, once a fold in ``services.reputation.numbers`` keeps its state:
a hash field goes in ``NUM_FIELDS`` (the script reads exactly what it lists), a windowed count in
``RINGS``; then its ``ReputationRead`` field, its place in ``parse`` and its formula in ``fill``.
``tests/unit/test_featurestore.py`` fails on whichever step was forgotten.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from services.common import keys, windows
from services.common.features import INDEX
from services.common.windows import (
    CALL_WINDOWS,
    COMPLAINTS_30D,
    DISTINCT_1H,
    DISTINCT_24H,
    FRAUD_COMPLAINTS_30D,
    HONEYPOT_30D,
    Window,
)

NUM_FIELDS = (
    "first_seen_ms",
    "setups",
    "cdrs",
    "answered",
    "short",
    "answered_ms",
    "max_concurrent",
    "rapid",
    "campaigns",
    "campaign_numbers",
    "synthetic",
    "bot",
)
"""The fields of the number's hash the read returns first, in this order (the script is built from it)."""

PRESENCE_FIELDS = ("reg", "reg_ms", "cc", "call", "call_ms")
"""The fields of the presence hash (``keys.presence_key``) the read returns last, in this order."""

_NUM_FIELDS_LUA = (
    "local NUM_FIELDS = {" + ", ".join(f"'{name}'" for name in NUM_FIELDS) + "}\n"
    "local PRESENCE_FIELDS = {" + ", ".join(f"'{name}'" for name in PRESENCE_FIELDS) + "}\n"
    f"local SETUPS_I, CDRS_I = {NUM_FIELDS.index('setups') + 1}, {NUM_FIELDS.index('cdrs') + 1}"
)

# KEYS: num, win, out, in, presence, probation bucket, then the distinct-callee HLL buckets (1 h then
# 24 h)
# ARGV: callee digest, count of 1 h HLL keys, the caller's digest, then (prefix, lowest bucket,
# highest bucket) per ring
# reply: the NUM_FIELDS values, one sum per ring of RINGS, distinct 1 h and 24 h, the two
# relationships, the PRESENCE_FIELDS values, then the caller's probation entry ('' when it has full
# state or none; its called number, bytes 48-59, answers caller_called here)
_READ_BODY = """
local num = redis.call('HMGET', KEYS[1], unpack(NUM_FIELDS))
local presence = redis.call('HMGET', KEYS[5], unpack(PRESENCE_FIELDS))
local ring = redis.call('HGETALL', KEYS[2])
local held = {}
for i = 1, #ring, 2 do
  local field, value = ring[i], ring[i + 1]
  local sep = string.find(value, ':', 1, true)
  local prefix = string.match(field, '^%a+')
  held[#held + 1] = {prefix, tonumber(string.sub(value, 1, sep - 1)), tonumber(string.sub(value, sep + 1))}
end
local sums = {}
local n_rings = (n_argv - 3) / 3
for r = 0, n_rings - 1 do
  local prefix, low, high = ARGV[4 + 3 * r], tonumber(ARGV[5 + 3 * r]), tonumber(ARGV[6 + 3 * r])
  local total = 0
  for _, entry in ipairs(held) do
    if entry[1] == prefix and entry[2] >= low and entry[2] <= high then total = total + entry[3] end
  end
  sums[#sums + 1] = total
end
local n_1h = tonumber(ARGV[2])
local hll_1h, hll_24h = {}, {}
for i = 7, n_keys do
  if i - 6 <= n_1h then hll_1h[#hll_1h + 1] = KEYS[i] else hll_24h[#hll_24h + 1] = KEYS[i] end
end
local distinct_1h = redis.call('PFCOUNT', unpack(hll_1h))
local distinct_24h = redis.call('PFCOUNT', unpack(hll_24h))
local callee_called = 0
local caller_called = 0
if ARGV[1] ~= '' then
  callee_called = redis.call('SISMEMBER', KEYS[4], ARGV[1])
  caller_called = redis.call('SISMEMBER', KEYS[3], ARGV[1])
end
local probation = ''
if not num[SETUPS_I] and not num[CDRS_I] then
  probation = redis.call('HGET', KEYS[6], ARGV[3]) or ''
  if probation ~= '' and ARGV[1] ~= '' and string.sub(probation, 48, 59) == ARGV[1] then caller_called = 1 end
end
local out = {}
for i = 1, #NUM_FIELDS do out[i] = num[i] or '' end
for _, v in ipairs(sums) do out[#out + 1] = tostring(v) end
out[#out + 1] = tostring(distinct_1h)
out[#out + 1] = tostring(distinct_24h)
out[#out + 1] = tostring(callee_called)
out[#out + 1] = tostring(caller_called)
for i = 1, #PRESENCE_FIELDS do out[#out + 1] = presence[i] or '' end
out[#out + 1] = probation
"""
READ_FEATURES = _NUM_FIELDS_LUA + "\nlocal n_keys, n_argv = #KEYS, #ARGV\n" + _READ_BODY + "return out\n"

# The decision's one round trip per call: the read above, the caller's list entries and, for a
# verified PASSporT, its replay marker (SET NX EX), all on the caller's slot.
# KEYS: the read's keys, then the lists key, then the replay key when there is one
# ARGV: the read's args, then the list fields, their count, and the marker's TTL in s ('' for none)
# reply: {the read's reply, the list values, 1 new marker / 0 already there / -1 none asked}
_CALL_HEAD = """
local replay_ttl = ARGV[#ARGV]
local n_fields = tonumber(ARGV[#ARGV - 1])
local has_replay = replay_ttl ~= ''
local n_keys = #KEYS - 1 - (has_replay and 1 or 0)
local n_argv = #ARGV - 2 - n_fields
"""
_CALL_TAIL = """
local fields = {}
for i = 1, n_fields do fields[i] = ARGV[n_argv + i] end
local listed = redis.call('HMGET', KEYS[n_keys + 1], unpack(fields))
local replay = -1
if has_replay then
  replay = redis.call('SET', KEYS[n_keys + 2], '1', 'NX', 'EX', replay_ttl) and 1 or 0
end
return {out, listed, replay}
"""
READ_CALL = _NUM_FIELDS_LUA + _CALL_HEAD + _READ_BODY + _CALL_TAIL

_COMPLAINTS_7D = Window(COMPLAINTS_30D.prefix, COMPLAINTS_30D.bucket_ms, windows.COMPLAINTS_7D_DAYS)
RINGS = (*CALL_WINDOWS, COMPLAINTS_30D, _COMPLAINTS_7D, FRAUD_COMPLAINTS_30D, HONEYPOT_30D)


@dataclass(frozen=True)
class Presence:
    """A number's presence as its home network last reported it (``subscribers.presence.v1``).

    ``state`` 0 is unknown: no report, or none for ``presence_ttl_s`` (the key expired), which proves
    nothing. ``call_id`` is the on-net call last reported started and not ended; readers take a
    call older than their ``presence_call_max_s`` to have ended (its CALL_ENDED lost).
    """

    state: int  # 0 unknown (no key, expired, or never reported), 1 attached home, 2 roaming, 3 detached
    since_ms: int  # event time of the latest registration report (0 when unknown)
    country: str  # ISO 3166-1 alpha-2 of the visited network when roaming ('' when not known)
    call_id: str  # an on-net call in progress ('' none)
    call_ms: int  # when that call started; with no call, when the last one ended (0 never)


@dataclass(frozen=True)
class ReputationRead:
    """Everything reputation knows about a caller (and its callee) at one moment."""

    seen: bool
    first_seen_ms: int
    setups: int
    cdrs: int
    answered: int
    short: int
    answered_ms: int
    max_concurrent: int
    rapid: int
    campaigns: int
    campaign_numbers: int
    synthetic: float
    bot: float
    calls_1m: int
    calls_1h: int
    calls_24h: int
    complaints_30d: int
    complaints_7d: int
    fraud_complaints_30d: int
    honeypot_hits_30d: int
    distinct_1h: int
    distinct_24h: int
    callee_called_caller: bool
    caller_called_callee: bool
    presence: Presence


def read_request(caller: str, callee: str, now_ms: int) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of the read script for a caller pseudonym, callee pseudonym ('' if none)."""
    hll_keys = [keys.hll_key(caller, DISTINCT_1H.prefix, b) for b in DISTINCT_1H.buckets(now_ms)]
    hll_keys += [keys.hll_key(caller, DISTINCT_24H.prefix, b) for b in DISTINCT_24H.buckets(now_ms)]
    script_keys = [keys.number_key(caller), keys.window_key(caller), keys.outbound_key(caller)]
    script_keys += [
        keys.inbound_key(caller),
        keys.presence_key(caller),
        keys.probation_key(caller),
        *hll_keys,
    ]
    args: list[Any] = [keys.digest(callee) if callee else "", DISTINCT_1H.slots, keys.digest(caller)]
    for ring in RINGS:
        span = ring.buckets(now_ms)
        args += [ring.prefix, span.start, span.stop - 1]
    return script_keys, args


def call_request(
    caller: str,
    callee: str,
    now_ms: int,
    list_fields: list[str],
    replay_digest: bytes | None = None,
    replay_ttl_s: int = 1,
) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of READ_CALL: the feature read, the caller's list fields, an optional replay marker."""
    script_keys, args = read_request(caller, callee, now_ms)
    script_keys.append(keys.lists_key(caller))
    args += [*list_fields, len(list_fields)]
    if replay_digest is None:
        args.append("")
    else:
        script_keys.append(keys.replay_key(caller, replay_digest))
        args.append(max(1, replay_ttl_s))
    return script_keys, args


@dataclass(frozen=True, slots=True)
class CallRead:
    """What READ_CALL returned: the features, the raw list values, and the replay marker's outcome."""

    features: ReputationRead
    list_values: list[Any]
    replayed: bool | None  # None when no marker was asked for


def parse_call(reply: list[Any], now_ms: int) -> CallRead:
    """Turn READ_CALL's reply (read at ``now_ms``) into a typed record."""
    features, listed, replay = reply
    outcome = int(replay)
    return CallRead(parse(features, now_ms), list(listed), None if outcome < 0 else outcome == 0)


def _int(value: Any) -> int:
    return int(value) if value not in (None, b"", "") else 0


def _float(value: Any) -> float:
    return float(value) if value not in (None, b"", "") else math.nan


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return value if isinstance(value, str) else ""


REGISTRATION_STATES = frozenset({1, 2, 3})  # attached home, roaming, detached (the proto's values)
_ROAMING = 2


def parse_presence(values: list[Any]) -> Presence:
    """The presence part of the read's reply (the PRESENCE_FIELDS values) as a typed record."""
    held = dict(zip(PRESENCE_FIELDS, values, strict=True))
    state = _int(held["reg"])
    known = state in REGISTRATION_STATES
    return Presence(
        state=state if known else 0,
        since_ms=_int(held["reg_ms"]) if known else 0,
        country=_text(held["cc"]) if state == _ROAMING else "",
        call_id=_text(held["call"]),
        call_ms=_int(held["call_ms"]),
    )


def parse(reply: list[Any], now_ms: int) -> ReputationRead:
    """Turn the read script's reply (read at ``now_ms``) into a typed record."""
    num = dict(zip(NUM_FIELDS, reply[: len(NUM_FIELDS)], strict=True))
    rest = [_int(v) for v in reply[len(NUM_FIELDS) : -len(PRESENCE_FIELDS) - 1]]
    (
        calls_1m,
        calls_1h,
        calls_24h,
        c30,
        c7,
        cf30,
        ch30,
        distinct_1h,
        distinct_24h,
        callee_called,
        caller_called,
    ) = rest
    read = ReputationRead(
        seen=num["setups"] not in (None, b"", "") or num["cdrs"] not in (None, b"", ""),
        first_seen_ms=_int(num["first_seen_ms"]),
        setups=_int(num["setups"]),
        cdrs=_int(num["cdrs"]),
        answered=_int(num["answered"]),
        short=_int(num["short"]),
        answered_ms=_int(num["answered_ms"]),
        max_concurrent=_int(num["max_concurrent"]),
        rapid=_int(num["rapid"]),
        campaigns=_int(num["campaigns"]),
        campaign_numbers=_int(num["campaign_numbers"]),
        synthetic=_float(num["synthetic"]),
        bot=_float(num["bot"]),
        calls_1m=calls_1m,
        calls_1h=calls_1h,
        calls_24h=calls_24h,
        complaints_30d=c30,
        complaints_7d=c7,
        fraud_complaints_30d=cf30,
        honeypot_hits_30d=ch30,
        distinct_1h=distinct_1h,
        distinct_24h=distinct_24h,
        callee_called_caller=bool(callee_called),
        caller_called_callee=bool(caller_called),
        presence=parse_presence(reply[-len(PRESENCE_FIELDS) - 1 : -1]),
    )
    return _with_probation(read, reply[-1], now_ms) if reply[-1] else read


# A probation entry (services.reputation.scripts, PFMT): setups, the call's time, cdrs, answered,
# answered ms, short, last end, the two marks, the callee digest and two ids.
PROBATION_ENTRY = struct.Struct("<BdHHIHdHdHd12s8s8s")
_PROBATION = PROBATION_ENTRY
_HELD = {"setups": 0, "cdrs": 2}  # the entry's fields holding these totals


def held_counts(client: Any, pseudonyms: list[str], fields: list[str]) -> list[list[int]]:
    """Per number, its totals ``fields`` ("setups", "cdrs") in whichever tier holds it: the full
    state's hash, else its probation entry (sync client; for the main job's checks, tools, tests)."""
    pipe = client.pipeline(transaction=False)
    for pseudonym in pseudonyms:
        pipe.hmget(keys.number_key(pseudonym), fields)
        pipe.hget(keys.probation_key(pseudonym), keys.digest(pseudonym))
    replies = pipe.execute()
    out: list[list[int]] = []
    for full, held in zip(replies[::2], replies[1::2], strict=True):
        if any(value is not None for value in full) or not held:
            out.append([_int(value) for value in full])
        else:
            entry = PROBATION_ENTRY.unpack(held)
            out.append([int(entry[_HELD[field]]) for field in fields])
    return out


_BLANK_CALLEE = b" " * 12


def _with_probation(read: ReputationRead, packed: bytes, now_ms: int) -> ReputationRead:
    """The read of a number held only in probation: its one call and CDR totals, as full state of
    the same events would read (its distinct-callee windows count its callee once)."""
    setups, t, cdrs, answered, answered_ms, short, _end, _sp, _so, _cp, _co, callee, _sid, _cid = (
        _PROBATION.unpack(packed)
    )
    t_ms = int(t)

    def within(window: Window) -> int:
        return setups if setups and window.bucket(t_ms) in window.buckets(now_ms) else 0

    def distinct(window: Window) -> int:
        return min(1, within(window)) if callee != _BLANK_CALLEE else 0

    calls_1m, calls_1h, calls_24h = (within(window) for window in CALL_WINDOWS)
    return replace(
        read,
        seen=True,
        first_seen_ms=t_ms if setups else 0,
        setups=setups,
        cdrs=cdrs,
        answered=answered,
        short=short,
        answered_ms=answered_ms,
        max_concurrent=1 if cdrs else 0,
        calls_1m=calls_1m,
        calls_1h=calls_1h,
        calls_24h=calls_24h,
        distinct_1h=distinct(DISTINCT_1H),
        distinct_24h=distinct(DISTINCT_24H),
    )


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def fill(vector: npt.NDArray[np.float32], read: ReputationRead, now_ms: int) -> None:
    """Write the reputation and audio features of ``read`` into ``vector`` (schema order)."""
    age_s = max(0.0, (now_ms - read.first_seen_ms) / 1000) if read.first_seen_ms else 0.0
    values = {
        "number_age_s": age_s,
        "setups_total": read.setups,
        "calls_1m": read.calls_1m,
        "calls_1h": read.calls_1h,
        "calls_24h": read.calls_24h,
        "distinct_callees_1h": read.distinct_1h,
        "distinct_callees_24h": read.distinct_24h,
        "distinct_ratio_24h": _ratio(read.distinct_24h, read.calls_24h),
        "cdrs_total": read.cdrs,
        "answer_ratio": _ratio(read.answered, read.cdrs),
        "short_call_ratio": _ratio(read.short, read.answered),
        "mean_answered_s": _ratio(read.answered_ms / 1000, read.answered),
        "max_concurrent": read.max_concurrent,
        "rapid_sequential_ratio": _ratio(read.rapid, read.cdrs),
        "complaints_7d": read.complaints_7d,
        "complaints_30d": read.complaints_30d,
        "fraud_complaints_30d": read.fraud_complaints_30d,
        "honeypot_hits_30d": read.honeypot_hits_30d,
        "callee_called_caller": float(read.callee_called_caller),
        "caller_called_callee": float(read.caller_called_callee),
        "campaigns": read.campaigns,
        "campaign_numbers": read.campaign_numbers,
        "synthetic_voice": read.synthetic,
        "bot_behaviour": read.bot,
    }
    for name, value in values.items():
        vector[INDEX[name]] = value


class FeatureReader:
    """Reads a caller's reputation features in one round trip (redis.asyncio or sync client)."""

    def __init__(self, client: Any) -> None:
        self._script = client.register_script(READ_FEATURES)

    async def read(self, caller: str, callee: str, now_ms: int) -> ReputationRead:
        """The caller's features at ``now_ms`` (async client)."""
        script_keys, args = read_request(caller, callee, now_ms)
        return parse(await self._script(keys=script_keys, args=args), now_ms)

    def read_sync(self, caller: str, callee: str, now_ms: int) -> ReputationRead:
        """The caller's features at ``now_ms`` (sync client; for tools and the trainer)."""
        script_keys, args = read_request(caller, callee, now_ms)
        return parse(self._script(keys=script_keys, args=args), now_ms)
