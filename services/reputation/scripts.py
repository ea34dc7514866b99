"""The Lua scripts reputation folds with, compiled with the windows and retention baked in.

Idempotency is by position, not by marker: every record a consumer folds carries its Kafka
(partition, offset), and each number keeps, per input topic and partition, the highest offset
folded into it (``w<topic><partition>`` in its ``num`` hash, or in its probation entry). The topics
are co-partitioned by number and a consumer reads a partition in order from a committed offset that
was written first, so the offsets folded into one number form a prefix: an event at or below the
mark was folded already. The mark lives as long as the number's state (``NUMBER_TTL``, longer than
any input topic keeps records), so the duplicate window is the topics' whole retention at no cost
per event. A position of ``''`` (the trainer's replay, tests) folds unconditionally.

A number seen for the first time costs no full record: its first call is held in a compact
probation entry (59 bytes) in a per-slot bucket (``keys.probation_key``) of bounded size; a second
call, a complaint or an audio verdict promotes it to full state, carrying the entry's call and CDR
totals over. A full bucket forgets a random entry to make room, and says so in the script's reply,
so a sprayed number space costs the sprayer, never established reputation.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common import recent, windows
from services.common.windows import CALL_WINDOWS, DISTINCT_1H, DISTINCT_24H, RING_ADD


@dataclass(frozen=True)
class Retention:
    """How long state lives and how much of it a number may hold.

    Markers (presence only now) cover redelivery, numbers a month, presence hours; caps bound sets.
    ``probation``: numbers seen once live in the bounded probation tier (``probation_per_slot``
    entries in each of the 16,384 slot buckets, ~75 bytes each with Redis's overhead) for
    ``probation_ttl_s`` after their bucket's last write.
    """

    marker_ttl_s: int = 2 * 86_400
    number_ttl_s: int = 35 * 86_400
    presence_ttl_s: int = 3 * 3_600
    relationship_cap: int = 2000
    active_ttl_s: int = 86_400
    campaign_numbers_cap: int = 10_000
    tell_every_up_to: int = 64
    probation: bool = True
    probation_per_slot: int = 64
    probation_ttl_s: int = 86_400


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
        "PROBATION": "true" if retention.probation else "false",
        "PROBATION_PER_SLOT": retention.probation_per_slot,
        "PROBATION_TTL": retention.probation_ttl_s,
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
    return prelude + RING_ADD + PROBATION_HELPERS + body


# A probation entry, packed with Lua's struct: setups (0/1), that call's time, CDR totals (cdrs,
# answered, answered ms, short, last end), the setup and CDR marks (partition, offset; partition
# 65535 = none), the called number's digest (12 characters, blank = none) and the ids of the held
# setup and of the last CDR (8 characters each). 75 bytes: redis.conf raises hash-max-listpack-value
# to 96 so a bucket stays in its compact encoding.
#
# Besides positions, a number remembers the ids of its last RECENT_IDS events per stream (``r<topic>``,
# 12 characters each): the same event sent again as a new record (a client retrying Decide, a CDR
# collector resending) counts once too.
PROBATION_HELPERS = """
local PFMT = '<BdHHIHdHdHdc12c8c8'
local NO_PART = 65535
local BLANK = '            '
local NO_ID = '        '
local RECENT_IDS = 5
local function p_new()
  return {setups = 0, t = 0, cdrs = 0, answered = 0, answered_ms = 0, short = 0, last_end = -1,
          sp = NO_PART, so = -1, cp = NO_PART, co = -1, callee = BLANK, sid = NO_ID, cid = NO_ID}
end
local function p_read(bucket, field)
  local packed = redis.call('HGET', bucket, field)
  if not packed then return nil end
  local p = {}
  p.setups, p.t, p.cdrs, p.answered, p.answered_ms, p.short, p.last_end, p.sp, p.so, p.cp, p.co, p.callee,
    p.sid, p.cid = struct.unpack(PFMT, packed)
  return p
end
local function p_write(bucket, field, p)
  local forgotten = 0
  if redis.call('HEXISTS', bucket, field) == 0 and redis.call('HLEN', bucket) >= PROBATION_PER_SLOT then
    redis.call('HDEL', bucket, redis.call('HRANDFIELD', bucket))
    forgotten = 1
  end
  redis.call('HSET', bucket, field, struct.pack(PFMT, p.setups, p.t, p.cdrs, p.answered,
    math.min(p.answered_ms, 4294967295), p.short, p.last_end, p.sp, p.so, p.cp, p.co, p.callee, p.sid, p.cid))
  redis.call('EXPIRE', bucket, PROBATION_TTL)
  return forgotten
end
-- A number's full state from its probation entry (the number holds no state yet).
local function p_promote(num, win, out, p)
  local set = {}
  if p.setups > 0 then
    set = {'setups', p.setups, 'first_seen_ms', p.t, 'last_seen_ms', p.t}
    ring_add(win, CALL_RINGS, p.t, p.setups)
    redis.call('EXPIRE', win, NUMBER_TTL)
    if p.callee ~= BLANK then capped_add(out, p.callee, RELATIONSHIP_CAP, NUMBER_TTL) end
  end
  if p.cdrs > 0 then
    for _, v in ipairs({'cdrs', p.cdrs, 'answered', p.answered, 'answered_ms', p.answered_ms,
                        'short', p.short, 'last_end_ms', p.last_end, 'max_concurrent', 1}) do
      set[#set + 1] = v
    end
  end
  if p.sid ~= NO_ID then set[#set + 1] = 'rs'; set[#set + 1] = p.sid .. '    ' end
  if p.cid ~= NO_ID then set[#set + 1] = 'rc'; set[#set + 1] = p.cid .. '    ' end
  if p.sp ~= NO_PART then set[#set + 1] = 'ws' .. p.sp; set[#set + 1] = p.so end
  if p.cp ~= NO_PART then set[#set + 1] = 'wc' .. p.cp; set[#set + 1] = p.co end
  if #set > 0 then
    redis.call('HSET', num, unpack(set))
    redis.call('EXPIRE', num, NUMBER_TTL)
  end
end
-- Promote a number held only in probation (before a complaint or verdict about it is folded).
local function p_take(num, win, out, bucket, field)
  if not PROBATION or redis.call('EXISTS', num) == 1 then return end
  local p = p_read(bucket, field)
  if p then
    p_promote(num, win, out, p)
    redis.call('HDEL', bucket, field)
  end
end
-- The recent-ids ring: true when ``id`` is in it (a resent event), else false and ``id`` joins it.
local function seen_id(ring, id)
  for i = 1, #ring, 12 do
    local held = string.sub(ring, i, i + 11)
    if held == id or (string.sub(held, 9) == '    ' and string.sub(held, 1, 8) == string.sub(id, 1, 8)) then
      return true, ring
    end
  end
  return false, string.sub(id .. ring, 1, RECENT_IDS * 12)
end
-- True when this record was folded into the number already (by position, or its id among the
-- number's recent ones); else records both.
local function folded(num, stream, partition, offset, id)
  if partition ~= '' then
    local field = 'w' .. stream .. partition
    if tonumber(offset) <= tonumber(redis.call('HGET', num, field) or '-1') then return true end
    redis.call('HSET', num, field, offset)
  end
  local repeated, ring = seen_id(redis.call('HGET', num, 'r' .. stream) or '', id)
  if repeated then return true end
  redis.call('HSET', num, 'r' .. stream, ring)
  return false
end
"""

# One caller's setups of one batch, in offset order.
# KEYS: num, win, out, recent decisions, probation bucket, then the distinct-callee HLL keys
# ARGV: partition ('' = fold unconditionally), the caller's digest (its probation field), then per
# setup eight values: offset, t_ms, callee digest ('' none), its 1 h and 24 h HLL key index in KEYS
# (0 none), the audited decision summary ('' none), the call's id (12 characters), and the index in
# KEYS of the callee's inbound set (0: none, or the caller adds itself there after the reply; a
# single-node Redis, the trainer's, takes it here), and 1 when the call came from the carrier's own
# network (an authenticated subscriber, never a sprayed number: full state from its first call).
# Hence nine values per setup.
# Reply: {probation entries forgotten (0/1), then per setup 1 folded into full state, 2 held in
# probation, -1 a duplicate of one in full state (its inbound add is sent again: a crash may have
# come between the two), 0 a duplicate in probation}. Only a caller with full state enters its
# callees' inbound sets: a sprayed number's one call costs the callee nothing.
SETUPS_BODY = """
local P = ARGV[1]
local n = (#ARGV - 2) / 9
local function at(i, j) return ARGV[2 + (i - 1) * 9 + j] end
local reply = {0}
for i = 1, n do reply[i + 1] = 0 end
local mark = nil
if P ~= '' and redis.call('EXISTS', KEYS[1]) == 1 then
  mark = tonumber(redis.call('HGET', KEYS[1], 'ws' .. P) or '-1')
elseif PROBATION and redis.call('EXISTS', KEYS[1]) == 0 then
  local p = p_read(KEYS[5], ARGV[2]) or p_new()
  local held = (P ~= '' and p.sp == tonumber(P)) and p.so or -1
  local count, last, ids, on_net = 0, nil, {[p.sid] = true}, false
  for i = 1, n do
    local id = string.sub(at(i, 7), 1, 8)
    if (P == '' or tonumber(at(i, 1)) > held) and not ids[id] then
      count = count + 1
      last = i
      ids[id] = true
      on_net = on_net or at(i, 9) == '1'
    end
  end
  if count == 0 then return reply end
  if p.setups + count < 2 and not on_net then
    p.setups = 1
    p.t = tonumber(at(last, 2))
    p.sid = string.sub(at(last, 7), 1, 8)
    if at(last, 3) ~= '' then p.callee = at(last, 3) end
    if P ~= '' then p.sp = tonumber(P); p.so = tonumber(at(last, 1)) end
    reply[1] = p_write(KEYS[5], ARGV[2], p)
    reply[last + 1] = 2
    return reply
  end
  p_promote(KEYS[1], KEYS[2], KEYS[3], p)
  redis.call('HDEL', KEYS[5], ARGV[2])
  if P ~= '' then mark = held end
elseif P ~= '' then
  mark = -1
end
local seen = redis.call('HMGET', KEYS[1], 'first_seen_ms', 'last_seen_ms', 'rs')
local first, last, ring = tonumber(seen[1]), tonumber(seen[2]), seen[3] or ''
local folded_n, top = 0, mark
local hll, hll_1h, summaries = {}, {}, {}
for i = 1, n do
  local offset = tonumber(at(i, 1))
  local fresh = mark == nil or offset > mark
  if fresh and top ~= nil and offset > top then top = offset end
  local repeated = false
  if fresh then repeated, ring = seen_id(ring, at(i, 7)) end
  if not (fresh and not repeated) then
    reply[i + 1] = -1
  else
    folded_n = folded_n + 1
    reply[i + 1] = 1
    local t = tonumber(at(i, 2))
    if (not first) or t < first then first = t end
    if (not last) or t > last then last = t end
    ring_add(KEYS[2], CALL_RINGS, t, 1)
    local callee = at(i, 3)
    if callee ~= '' then
      local h1, h24 = tonumber(at(i, 4)), tonumber(at(i, 5))
      hll_1h[h1] = true
      for _, k in ipairs({h1, h24}) do
        if not hll[k] then hll[k] = {} end
        hll[k][#hll[k] + 1] = callee
      end
      capped_add(KEYS[3], callee, RELATIONSHIP_CAP, NUMBER_TTL)
      local inbound = tonumber(at(i, 8))
      if inbound > 0 then capped_add(KEYS[inbound], ARGV[2], RELATIONSHIP_CAP, NUMBER_TTL) end
    end
    if at(i, 6) ~= '' then summaries[#summaries + 1] = at(i, 6) end
  end
end
if top ~= nil and top ~= mark then
  redis.call('HSET', KEYS[1], 'ws' .. P, top)
  redis.call('EXPIRE', KEYS[1], NUMBER_TTL)
end
if folded_n == 0 then return reply end
redis.call('HSET', KEYS[1], 'first_seen_ms', first, 'last_seen_ms', last, 'rs', ring)
redis.call('HINCRBY', KEYS[1], 'setups', folded_n)
redis.call('EXPIRE', KEYS[1], NUMBER_TTL)
redis.call('EXPIRE', KEYS[2], NUMBER_TTL)
for k, members in pairs(hll) do
  redis.call('PFADD', KEYS[k], unpack(members))
  redis.call('EXPIRE', KEYS[k], hll_1h[k] and HLL_1H_TTL or HLL_24H_TTL)
end
if #summaries > 0 then
  redis.call('LPUSH', KEYS[4], unpack(summaries))
  redis.call('LTRIM', KEYS[4], 0, RECENT_DECISIONS - 1)
  redis.call('EXPIRE', KEYS[4], DECISIONS_TTL)
end
return reply
"""

# KEYS: inbound set of the callee; ARGV: caller digest
INBOUND_BODY = """
capped_add(KEYS[1], ARGV[1], RELATIONSHIP_CAP, NUMBER_TTL)
return 1
"""

# One caller's CDRs of one batch, in offset order. A number in probation keeps its CDR totals in its
# entry (a CDR does not promote: every sprayed call has one).
# KEYS: num, act, probation bucket; ARGV: partition, the caller's digest, then per CDR six values:
# offset, setup_ms, end_ms, answered (0/1), duration_ms, the call's id (16 characters).
# Reply: {probation entries forgotten, then 1 folded / 0 duplicate per CDR}.
CDRS_BODY = """
local P = ARGV[1]
local n = (#ARGV - 2) / 6
local function at(i, j) return ARGV[2 + (i - 1) * 6 + j] end
local reply = {0}
for i = 1, n do reply[i + 1] = 0 end
if PROBATION and redis.call('EXISTS', KEYS[1]) == 0 then
  local p = p_read(KEYS[3], ARGV[2]) or p_new()
  local held = (P ~= '' and p.cp == tonumber(P)) and p.co or -1
  local any = false
  for i = 1, n do
    local offset = tonumber(at(i, 1))
    local id = string.sub(at(i, 6), 1, 8)
    if (P == '' or offset > held) and id ~= p.cid then
      any = true
      reply[i + 1] = 1
      p.cid = id
      p.cdrs = p.cdrs + 1
      local duration = tonumber(at(i, 5))
      if at(i, 4) == '1' then
        p.answered = p.answered + 1
        p.answered_ms = p.answered_ms + duration
        if duration < SHORT_CALL_MS then p.short = p.short + 1 end
      end
      local finish = tonumber(at(i, 3))
      if finish > p.last_end then p.last_end = finish end
      if P ~= '' then p.cp = tonumber(P); p.co = offset end
    end
  end
  if any then reply[1] = p_write(KEYS[3], ARGV[2], p) end
  return reply
end
local mark = -1
local held = redis.call('HMGET', KEYS[1], 'wc' .. P, 'rc')
if P ~= '' then mark = tonumber(held[1] or '-1') end
local ring = held[2] or ''
local top = mark
local folded_n = 0
for i = 1, n do
  local offset = tonumber(at(i, 1))
  local fresh = P == '' or offset > mark
  if fresh and P ~= '' and offset > top then top = offset end
  local repeated = false
  if fresh then repeated, ring = seen_id(ring, string.sub(at(i, 6), 1, 12)) end
  if fresh and not repeated then
    folded_n = folded_n + 1
    reply[i + 1] = 1
    local setup, finish, duration = tonumber(at(i, 2)), tonumber(at(i, 3)), tonumber(at(i, 5))
    redis.call('HINCRBY', KEYS[1], 'cdrs', 1)
    if at(i, 4) == '1' then
      redis.call('HINCRBY', KEYS[1], 'answered', 1)
      redis.call('HINCRBY', KEYS[1], 'answered_ms', duration)
      if duration < SHORT_CALL_MS then redis.call('HINCRBY', KEYS[1], 'short', 1) end
    end
    redis.call('ZADD', KEYS[2], finish, at(i, 6))
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. setup)
    local concurrent = redis.call('ZCOUNT', KEYS[2], setup, '+inf')
    local best = tonumber(redis.call('HGET', KEYS[1], 'max_concurrent') or '0')
    if concurrent > best then redis.call('HSET', KEYS[1], 'max_concurrent', concurrent) end
    local last_end = tonumber(redis.call('HGET', KEYS[1], 'last_end_ms') or '-1')
    if last_end >= 0 and setup >= last_end and setup - last_end <= RAPID_GAP_MS then
      redis.call('HINCRBY', KEYS[1], 'rapid', 1)
    end
    if finish > last_end then redis.call('HSET', KEYS[1], 'last_end_ms', finish) end
  end
end
if P ~= '' and top ~= mark then
  redis.call('HSET', KEYS[1], 'wc' .. P, top)
  redis.call('EXPIRE', KEYS[1], NUMBER_TTL)
end
if folded_n == 0 then return reply end
redis.call('HSET', KEYS[1], 'rc', ring)
redis.call('EXPIRE', KEYS[1], NUMBER_TTL)
redis.call('EXPIRE', KEYS[2], ACTIVE_TTL)
return reply
"""

# KEYS: num, win, out, probation bucket; ARGV: partition, offset, the number's digest, t_ms, fraud
# (0/1), honeypot (0/1), the complaint's id (12 characters). A complaint promotes a number held in
# probation.
COMPLAINT_BODY = """
p_take(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[3])
if folded(KEYS[1], 'k', ARGV[1], ARGV[2], ARGV[7]) then return 0 end
local rings = {{'ca', DAY_MS, COMPLAINT_SLOTS}}
if ARGV[5] == '1' then rings[#rings + 1] = {'cf', DAY_MS, COMPLAINT_SLOTS} end
if ARGV[6] == '1' then rings[#rings + 1] = {'ch', DAY_MS, COMPLAINT_SLOTS} end
redis.call('HINCRBY', KEYS[1], 'complaints', 1)
ring_add(KEYS[2], rings, tonumber(ARGV[4]), 1)
redis.call('EXPIRE', KEYS[1], NUMBER_TTL)
redis.call('EXPIRE', KEYS[2], NUMBER_TTL)
return 1
"""

# KEYS: num, campaigns, win, out, probation bucket; ARGV: partition, offset, the number's digest,
# the segment's id (12 characters), synthetic ('' when abstained), bot (''), campaign ids... A
# verdict promotes a number in probation.
VERDICT_BODY = """
p_take(KEYS[1], KEYS[3], KEYS[4], KEYS[5], ARGV[3])
if folded(KEYS[1], 'v', ARGV[1], ARGV[2], ARGV[4]) then return 0 end
for i, field in ipairs({'synthetic', 'bot'}) do
  if ARGV[i + 4] ~= '' then
    local held = tonumber(redis.call('HGET', KEYS[1], field) or '-1')
    if tonumber(ARGV[i + 4]) > held then redis.call('HSET', KEYS[1], field, ARGV[i + 4]) end
  end
end
for i = 7, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
redis.call('HSET', KEYS[1], 'campaigns', redis.call('SCARD', KEYS[2]))
redis.call('EXPIRE', KEYS[1], NUMBER_TTL)
redis.call('EXPIRE', KEYS[2], NUMBER_TTL)
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
