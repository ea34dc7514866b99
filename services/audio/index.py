"""The landmark index in Redis: one key of packed postings per (shard, tier, hash).

A posting is 6 bytes — recording number (uint32) and the anchor's frame in that recording's
timeline (uint16, offset by ``TIME_BASE`` so a timeline may extend before its first segment).
Candidate recordings go to a tier per day (``d<epoch day>``) that expires as a whole after the
discovery window; campaign recordings go to the ``c`` tier, refreshed whenever a campaign is
indexed again. Reads fetch every tier of a query's hashes with MGETs per shard and tier in one
pipeline; writes append with script calls per shard. Keys share 16 hash tags, so both work on a
Redis Cluster. No command names more than ``MAX_KEYS_PER_COMMAND`` keys: Redis runs one command at a
time, and a ~550-key script blocked a shared Redis for 45-72 ms under load (its slowlog, measured
during ``make run``), long past the decision service's 4 ms read deadline; chunks of 64 keep each
command well under a millisecond and cost nothing extra, being in the same pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis

from services.audio.fingerprint import IntArray
from services.common import keys

POSTING = np.dtype([("rec", "<u4"), ("t", "<u2")])
TIME_BASE = 32768
SHARDS = 16
CAMPAIGN_TIER = "c"
DAY_MS = 86_400_000
MAX_KEYS_PER_COMMAND = 64

APPEND = """
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('APPEND', key, ARGV[i + 1])
  redis.call('EXPIRE', key, ttl)
end
return #KEYS
"""


def day_tier(t_ms: int) -> str:
    """The candidate tier of a day."""
    return f"d{t_ms // DAY_MS}"


def shard_of(hashes: IntArray) -> IntArray:
    """A hash's shard (a multiplicative mix, so the skewed low bits do not cluster)."""
    return ((hashes * 0x9E3779B1) >> 16) & (SHARDS - 1)


def pack(recording: int, times: IntArray) -> list[bytes]:
    """One 6-byte posting per time."""
    out = np.empty(len(times), dtype=POSTING)
    out["rec"] = recording
    out["t"] = np.clip(times + TIME_BASE, 0, 65535)
    return [row.tobytes() for row in out]


@dataclass(frozen=True)
class Postings:
    """Postings of a query's unique hashes, grouped by hash (CSR: starts, recordings, times)."""

    starts: IntArray
    recordings: IntArray
    times: IntArray

    @property
    def total(self) -> int:
        """Number of postings read."""
        return len(self.recordings)


class FingerprintIndex:
    """Append and look up landmark postings in Redis."""

    def __init__(
        self, client: aioredis.Redis, candidate_ttl_s: int, campaign_ttl_s: int, window_s: int
    ) -> None:
        self._client = client
        self._append = client.register_script(APPEND)
        self.candidate_ttl_s = candidate_ttl_s
        self.campaign_ttl_s = campaign_ttl_s
        self.window_days = max(1, -(-window_s // 86_400))

    def tiers(self, t_ms: int) -> list[str]:
        """The tiers a query at ``t_ms`` reads: campaigns, and each day of the discovery window."""
        day = t_ms // DAY_MS
        return [CAMPAIGN_TIER, *(f"d{day - i}" for i in range(self.window_days + 1))]

    async def postings(self, hashes: IntArray, t_ms: int) -> Postings:
        """Every posting of ``hashes`` (sorted unique) in every tier the query reads."""
        shards = shard_of(hashes)
        tiers = self.tiers(t_ms)
        groups = [np.flatnonzero(shards == s) for s in range(SHARDS)]
        pipe = self._client.pipeline(transaction=False)
        plan: list[npt.NDArray[np.intp]] = []
        for tier in tiers:
            for shard, members in enumerate(groups):
                for start in range(0, len(members), MAX_KEYS_PER_COMMAND):
                    chunk = members[start : start + MAX_KEYS_PER_COMMAND]
                    pipe.mget([keys.fingerprint_key(shard, tier, int(hashes[i])) for i in chunk])
                    plan.append(chunk)
        replies = await pipe.execute()
        chunks: list[list[bytes]] = [[] for _ in range(len(hashes))]
        for members, values in zip(plan, replies, strict=True):
            for i, value in zip(members, values, strict=True):
                if value:
                    chunks[i].append(value)
        lengths = np.array(
            [sum(len(c) for c in chunk) // POSTING.itemsize for chunk in chunks], dtype=np.int64
        )
        starts = np.zeros(len(hashes) + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        flat = np.frombuffer(b"".join(b"".join(chunk) for chunk in chunks), dtype=POSTING)
        return Postings(
            starts=starts,
            recordings=flat["rec"].astype(np.int64),
            times=flat["t"].astype(np.int64) - TIME_BASE,
        )

    async def add(self, recording: int, hashes: IntArray, times: IntArray, tier: str) -> None:
        """Append one recording's postings (times already in its timeline) to a tier."""
        if len(hashes) == 0:
            return
        ttl = self.campaign_ttl_s if tier == CAMPAIGN_TIER else self.candidate_ttl_s
        packed = pack(recording, times)
        shards = shard_of(hashes)
        pipe = self._client.pipeline(transaction=False)
        for shard in range(SHARDS):
            members = np.flatnonzero(shards == shard)
            if len(members) == 0:
                continue
            merged: dict[int, bytes] = {}
            for i in members:
                merged[int(hashes[i])] = merged.get(int(hashes[i]), b"") + packed[i]
            items = list(merged.items())
            for start in range(0, len(items), MAX_KEYS_PER_COMMAND):
                chunk = items[start : start + MAX_KEYS_PER_COMMAND]
                await self._append(
                    keys=[keys.fingerprint_key(shard, tier, h) for h, _ in chunk],
                    args=[ttl, *(value for _, value in chunk)],
                    client=pipe,
                )
        await pipe.execute()
