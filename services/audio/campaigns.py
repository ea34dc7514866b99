"""Campaign matching and discovery: which recording a segment plays, and whether it is a campaign.

Every segment is looked up in the landmark index. A segment that matches nothing becomes a new
candidate recording (indexed in the day tier). A segment that matches a recording adds its caller
to that recording's callers within the discovery window; once ``min_callers`` distinct callers
played it, the recording becomes a campaign — its id derived from the recording's number and
first-seen time (stable, never reassigned), its postings copied to the campaign tier, its first
members logged as pseudonyms. A match that reaches past the recording's known span (a callee who
answered earlier or stayed longer) extends the recording's timeline with the new part. Parts of
one recording discovered apart merge into the oldest campaign once the same numbers play them.
Operators seed known scam recordings straight into the campaign tier.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis.asyncio as aioredis

from services.audio import fingerprint as fpr
from services.audio.index import CAMPAIGN_TIER, TIME_BASE, FingerprintIndex, day_tier
from services.audio.segments import Audio
from services.common import keys
from services.common.pseudonym import opaque_id

log = logging.getLogger(__name__)

MIN_HASHES = 40
EXTEND_FRAMES = int(2 * fpr.FRAMES_PER_S)
MEMBER_CAP = 10_000
MAX_MERGE_HOPS = 8
OVERLAP_SAMPLE = 1_000  # the most recent members compared when two campaigns may be one
MIN_SHARED_NUMBERS = 3
MAX_EARLIER_MEMBERS = 1_000  # back-filled on discovery (callers within the window, usually a few)
COMPARABLE_VOTES = 2  # a match with less than half the best match's votes is a shared phrase
COUNTER_TTL_S = 400 * 86_400


@dataclass(frozen=True)
class MatchRules:
    """When a query matches a recording, and when a recording becomes a campaign."""

    min_votes: int = 10
    min_coverage: float = 0.6
    probes: tuple[float, ...] = (0.98, 1.02, 0.96, 1.04)
    min_callers: int = 5
    window_s: int = 86_400


@dataclass(frozen=True)
class CampaignResult:
    """What campaign matching concluded for one segment."""

    outcome: str  # campaign | discovered | candidate | new | too_short
    campaign_ids: tuple[str, ...] = ()
    score: float = 0.0
    recordings: tuple[int, ...] = field(default_factory=tuple)
    earlier_members: tuple[str, ...] = ()  # on discovery: the numbers heard playing it before


def campaign_id_for(recording: int, first_seen_ms: int) -> str:
    """The id a discovered campaign gets: stable for its recording, never reused.

    Letters only (hex digits mapped to a-p), so the log scrubber never mistakes it for a number.
    """
    digest = opaque_id(f"{recording}:{first_seen_ms}")[:16]
    return "ac-" + "".join(chr(ord("a") + int(c, 16)) for c in digest)


class CampaignTracker:
    """Matches segments against the index and keeps recordings and campaigns in Redis."""

    def __init__(
        self,
        client: aioredis.Redis,
        index: FingerprintIndex,
        rules: MatchRules,
        params: fpr.FingerprintParams = fpr.DEFAULT,
    ) -> None:
        self._client: Any = client  # redis-py's reply types are unions; replies here are bytes
        self.index = index
        self.rules = rules
        self.params = params

    async def match(self, audio: Audio, t_ms: int) -> tuple[fpr.Fingerprint, list[fpr.Match]]:
        """The recordings a segment matches, and its fingerprint at the speed that matched.

        The segment is tried at its own speed first, then re-timed by each probe factor: landmark
        hashes tolerate about ±1 % of speed change, the probes extend that to about ±5 %.
        """
        own = fpr.fingerprint(audio, self.params)
        if len(own.hashes) < MIN_HASHES:
            return own, []
        for speed in (1.0, *self.rules.probes):
            fp = own if speed == 1.0 else fpr.fingerprint(_change_speed(audio, speed), self.params)
            hashes, q_starts, q_times = fpr.query_layout(fp)
            postings = await self.index.postings(hashes, t_ms)
            found = [
                m
                for m in fpr.vote(q_starts, q_times, postings.starts, postings.recordings, postings.times)
                if m.votes >= self.rules.min_votes and m.coverage >= self.rules.min_coverage
            ]
            if found:
                return fp, found
        return own, []

    async def observe(self, audio: Audio, caller: str, t_ms: int) -> CampaignResult:
        """Match a segment played by ``caller`` (a pseudonym), index it, and update its recording."""
        fp, matches = await self.match(audio, t_ms)
        if len(fp.hashes) < MIN_HASHES:
            return CampaignResult("too_short")
        if not matches:
            recording = await self._new_recording(fp, t_ms, day_tier(t_ms))
            await self._add_caller(recording, caller, t_ms)
            return CampaignResult("new", recordings=(recording,))
        # A much weaker alignment beside a strong one is a phrase the two recordings share (the same
        # TTS voice reading the same sentence), not evidence that they are one recording.
        top = max(m.votes for m in matches)
        live: list[tuple[fpr.Match, dict[bytes, bytes]]] = []
        for m in matches:
            if m.votes * COMPARABLE_VOTES < top:
                continue
            info = await self._client.hgetall(keys.recording_key(m.recording, "info"))
            if info:  # else the recording's metadata expired before its last postings
                await self._add_caller(m.recording, caller, t_ms)
                await self._extend(m, fp, info)
                live.append((m, info))
        best = max(m.coverage for m in matches)
        recordings = tuple(m.recording for m, _ in live)
        if not live:
            return CampaignResult("candidate", (), best)
        held = [await self._resolve(i[b"campaign"].decode()) for _, i in live if i.get(b"campaign")]
        outcome = "campaign" if held else "candidate"
        campaign = held[0] if held else ""  # the best-aligned recording's campaign
        callers: set[bytes] = set()
        if not campaign:
            for m, _ in live:
                callers.update(await self._client.zrange(keys.recording_key(m.recording, "callers"), 0, -1))
            if len(callers) >= self.rules.min_callers:
                m, info = min(live, key=lambda pair: int(pair[1].get(b"first_seen_ms", b"0")))
                campaign = await self._resolve(await self._promote(m.recording, info, t_ms))
                outcome = "discovered"
        if not campaign:
            return CampaignResult(outcome, (), best, recordings)
        # A segment spanning a campaign's part and parts heard apart hands the campaign to them.
        for m, info in live:
            if not info.get(b"campaign"):
                await self._adopt(m.recording, campaign)
        await self._add_member(campaign, caller, t_ms)
        # Parts discovered apart as campaigns of their own are one campaign once the same numbers
        # play them: the newer merge into the oldest. (A segment matching two campaigns does not merge
        # them: a shared sentence would be enough for that.)
        merged = await self._same_numbers(campaign, caller, outcome == "discovered")
        canonical = (await self._oldest_first([campaign, *merged]))[0]
        others = [c for c in [campaign, *merged] if c != canonical]
        for other in others:
            await self._merge(other, canonical)
        earlier = (
            tuple(sorted(c.decode() for c in callers if c.decode() != caller))
            if outcome == "discovered"
            else ()
        )
        return CampaignResult(outcome, (canonical, *others), best, recordings, earlier[:MAX_EARLIER_MEMBERS])

    async def seed(self, audio: Audio, campaign_id: str, label: str, t_ms: int) -> int:
        """Index a known scam recording straight into the campaign tier as ``campaign_id``."""
        fp = fpr.fingerprint(audio, self.params)
        if len(fp.hashes) < MIN_HASHES:
            raise ValueError("recording too short or silent to fingerprint")
        recording = await self._new_recording(fp, t_ms, CAMPAIGN_TIER, campaign=campaign_id)
        await self._register_campaign(campaign_id, recording, t_ms, origin="seed", label=label)
        return recording

    async def campaigns(self) -> list[dict[str, str]]:
        """Every live campaign's info, oldest first."""
        ids = await self._client.zrange(keys.audio_campaign_index_key(), 0, -1)
        out = []
        for cid in ids:
            info = await self._client.hgetall(keys.audio_campaign_key(cid.decode(), "info"))
            if info:
                row = {k.decode(): v.decode() for k, v in info.items()}
                row["members"] = str(
                    await self._client.zcard(keys.audio_campaign_key(cid.decode(), "members"))
                )
                out.append(row)
        return out

    async def _new_recording(self, fp: fpr.Fingerprint, t_ms: int, tier: str, campaign: str = "") -> int:
        counter = keys.recording_counter_key()
        pipe = self._client.pipeline(transaction=False)
        pipe.incr(counter)
        pipe.expire(counter, COUNTER_TTL_S)
        recording = int((await pipe.execute())[0])
        ttl = self.index.campaign_ttl_s if tier == CAMPAIGN_TIER else self.index.candidate_ttl_s
        info = {"first_seen_ms": t_ms, "lo": 0, "hi": fp.frames, "tier": tier}
        if campaign:
            info["campaign"] = campaign
        pipe = self._client.pipeline(transaction=False)
        pipe.hset(keys.recording_key(recording, "info"), mapping=info)
        pipe.expire(keys.recording_key(recording, "info"), ttl)
        await pipe.execute()
        await self._store(recording, fp.hashes, fp.times, tier, ttl)
        return recording

    async def _store(
        self, recording: int, hashes: fpr.IntArray, times: fpr.IntArray, tier: str, ttl: int
    ) -> None:
        """Index postings in ``tier`` and keep them with the recording (for promotion)."""
        await self.index.add(recording, hashes, times, tier)
        rows = np.empty(len(hashes), dtype=[("h", "<u4"), ("t", "<i4")])
        rows["h"] = hashes
        rows["t"] = times
        pipe = self._client.pipeline(transaction=False)
        pipe.append(keys.recording_key(recording, "fp"), rows.tobytes())
        pipe.expire(keys.recording_key(recording, "fp"), ttl)
        await pipe.execute()

    async def _add_caller(self, recording: int, caller: str, t_ms: int) -> int:
        key = keys.recording_key(recording, "callers")
        pipe = self._client.pipeline(transaction=False)
        pipe.zadd(key, {caller: t_ms})
        pipe.zremrangebyscore(key, "-inf", t_ms - self.rules.window_s * 1000)
        pipe.zremrangebyrank(key, 0, -MEMBER_CAP - 1)
        pipe.zcard(key)
        pipe.expire(key, self.index.campaign_ttl_s)
        return int((await pipe.execute())[3])

    async def _promote(self, recording: int, info: dict[bytes, bytes], t_ms: int) -> str:
        """Make a candidate recording a campaign (once, whichever worker gets there first)."""
        first_seen = int(info.get(b"first_seen_ms", str(t_ms).encode()))
        proposed = campaign_id_for(recording, first_seen)
        if not await self._adopt(recording, proposed):
            return (
                await self._client.hget(keys.recording_key(recording, "info"), "campaign") or b""
            ).decode()
        members = tuple(
            m.decode() for m in await self._client.zrange(keys.recording_key(recording, "callers"), 0, -1)
        )
        await self._register_campaign(
            proposed, recording, first_seen, origin="discovered", label="", members=members
        )
        log.info(
            "audio campaign discovered",
            extra={
                "campaign_id": proposed,
                "first_seen_ms": first_seen,
                "member_pseudonyms": list(members),
                "recording": recording,
            },
        )
        return proposed

    async def _adopt(self, recording: int, campaign: str) -> bool:
        """Make a recording part of a campaign (once) and copy its postings to the campaign tier."""
        info_key = keys.recording_key(recording, "info")
        if not await self._client.hsetnx(info_key, "campaign", campaign):
            return False
        rows = np.frombuffer(
            await self._client.get(keys.recording_key(recording, "fp")) or b"",
            dtype=[("h", "<u4"), ("t", "<i4")],
        )
        await self.index.add(recording, rows["h"].astype(np.int64), rows["t"].astype(np.int64), CAMPAIGN_TIER)
        pipe = self._client.pipeline(transaction=False)
        pipe.hset(info_key, "tier", CAMPAIGN_TIER)
        pipe.expire(info_key, self.index.campaign_ttl_s)
        pipe.expire(keys.recording_key(recording, "fp"), self.index.campaign_ttl_s)
        await pipe.execute()
        return True

    async def _register_campaign(
        self,
        campaign_id: str,
        recording: int,
        first_seen_ms: int,
        origin: str,
        label: str,
        members: tuple[str, ...] = (),
    ) -> None:
        info_key = keys.audio_campaign_key(campaign_id, "info")
        pipe = self._client.pipeline(transaction=False)
        pipe.hset(
            info_key,
            mapping={
                "campaign_id": campaign_id,
                "first_seen_ms": first_seen_ms,
                "origin": origin,
                "recording": recording,
                "label": label,
            },
        )
        pipe.expire(info_key, self.index.campaign_ttl_s)
        pipe.zadd(keys.audio_campaign_index_key(), {campaign_id: first_seen_ms})
        pipe.expire(keys.audio_campaign_index_key(), self.index.campaign_ttl_s)
        await pipe.execute()
        for member in members:
            await self._add_member(campaign_id, member, first_seen_ms)

    async def _add_member(self, campaign_id: str, caller: str, t_ms: int) -> None:
        await self._add_members(campaign_id, {caller: t_ms})

    async def _add_members(self, campaign_id: str, members: dict[str, int]) -> None:
        """Add numbers (pseudonym → last heard) to a campaign and the campaign to their own sets."""
        if not members:
            return
        key = keys.audio_campaign_key(campaign_id, "members")
        ttl = self.index.campaign_ttl_s
        pipe = self._client.pipeline(transaction=False)
        pipe.zadd(key, members)
        pipe.zremrangebyrank(key, 0, -MEMBER_CAP - 1)
        pipe.expire(key, ttl)
        for member in members:
            pipe.sadd(keys.audio_member_campaigns_key(member), campaign_id)
            pipe.expire(keys.audio_member_campaigns_key(member), ttl)
        await pipe.execute()

    async def _resolve(self, campaign_id: str) -> str:
        """The campaign ``campaign_id`` was merged into (following merges), or itself."""
        for _ in range(MAX_MERGE_HOPS):
            if not campaign_id:
                return campaign_id
            into = await self._client.hget(keys.audio_campaign_key(campaign_id, "info"), "merged_into")
            if not into:
                return campaign_id
            campaign_id = into.decode()
        return campaign_id

    async def _oldest_first(self, campaign_ids: list[str]) -> list[str]:
        """Distinct campaigns, oldest first (ties by id), so every worker picks the same survivor."""
        unique = list(dict.fromkeys(c for c in campaign_ids if c))
        pipe = self._client.pipeline(transaction=False)
        for cid in unique:
            pipe.hget(keys.audio_campaign_key(cid, "info"), "first_seen_ms")
        seen = await pipe.execute()
        order = sorted(zip(unique, seen, strict=True), key=lambda p: (int(p[1] or 0), p[0]))
        return [cid for cid, _ in order]

    async def _same_numbers(self, campaign: str, caller: str, discovered: bool) -> list[str]:
        """Other campaigns played by the same numbers as ``campaign`` (at least half of the smaller).

        Checked for the caller's other campaigns on every segment, and for every member's when the
        campaign was just discovered, so a part discovered apart joins as soon as the overlap shows.
        """
        numbers = [caller]
        if discovered:
            numbers = [
                m.decode()
                for m in await self._client.zrange(keys.audio_campaign_key(campaign, "members"), 0, -1)
            ]
        pipe = self._client.pipeline(transaction=False)
        for number in numbers[:MEMBER_CAP]:
            pipe.smembers(keys.audio_member_campaigns_key(number))
        others = {await self._resolve(c.decode()) for held in await pipe.execute() for c in held}
        others.discard(campaign)
        return [other for other in sorted(others) if await self._overlapping(campaign, other)]

    async def _overlapping(self, a: str, b: str) -> bool:
        """Whether at least half of the smaller campaign's recent numbers also played the other."""
        recent = [
            set(await self._client.zrange(keys.audio_campaign_key(cid, "members"), -OVERLAP_SAMPLE, -1))
            for cid in (a, b)
        ]
        smaller = min(len(members) for members in recent)
        shared = len(recent[0] & recent[1])
        return smaller > 0 and shared >= max(MIN_SHARED_NUMBERS, (smaller + 1) // 2)

    async def _merge(self, campaign: str, into: str) -> None:
        """Merge ``campaign`` into the older ``into``: its members join, its id points there."""
        info_key = keys.audio_campaign_key(campaign, "info")
        if not await self._client.hsetnx(info_key, "merged_into", into):
            return
        members = await self._client.zrange(
            keys.audio_campaign_key(campaign, "members"), 0, -1, withscores=True
        )
        await self._add_members(into, {m.decode(): int(score) for m, score in members})
        log.info(
            "audio campaigns merged",
            extra={"campaign_id": campaign, "merged_into": into, "members": len(members)},
        )

    async def _extend(self, match: fpr.Match, fp: fpr.Fingerprint, info: dict[bytes, bytes]) -> None:
        """Index the part of a matching segment that lies outside the recording's known span."""
        lo, hi = int(info.get(b"lo", b"0")), int(info.get(b"hi", b"0"))
        aligned = fp.times + match.offset
        outside = (aligned < lo - EXTEND_FRAMES) | (aligned > hi + EXTEND_FRAMES)
        outside &= (aligned > -TIME_BASE) & (aligned < TIME_BASE)
        if not np.any(outside):
            return
        tier = info.get(b"tier", b"").decode() or CAMPAIGN_TIER
        ttl = self.index.campaign_ttl_s if tier == CAMPAIGN_TIER else self.index.candidate_ttl_s
        await self._store(match.recording, fp.hashes[outside], aligned[outside], tier, ttl)
        pipe = self._client.pipeline(transaction=False)
        info_key = keys.recording_key(match.recording, "info")
        span = aligned[(aligned > -TIME_BASE) & (aligned < TIME_BASE)]
        pipe.hset(info_key, mapping={"lo": min(lo, int(span.min())), "hi": max(hi, int(span.max()))})
        await pipe.execute()


def _change_speed(audio: Audio, factor: float) -> Audio:
    n_out = round(len(audio) / factor)
    out: Audio = np.interp(np.arange(n_out) * factor, np.arange(len(audio)), audio).astype(np.float32)
    return out
