"""The faust agent of the audio service: audio.segments.v1 → audio.verdicts.v1 (or dlq.audio.v1).

Each segment is decoded and checked, analysed, its verdict stored under an idempotency marker and
then published keyed by the caller's pseudonym, and only then acknowledged. The caller is the
call's attributed identity (``services.common.identity``: PAI, else From, a withheld caller its
trunk's bucket), the same key reputation folds the verdict under. A segment delivered
again finds the marker and re-publishes the stored verdict without touching the index or the
campaign counts, so duplicates count once and a crash between store and publish loses nothing
(reputation folds a verdict once per segment id). Bad segments go to the dead-letter topic with a
stable reason; a Redis outage makes the partition wait and retry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
from faust.types import EventT, StreamT
from redis.exceptions import RedisError

from fraudmesh.v1 import events_pb2
from services.audio import metrics
from services.audio.analysis import Analyzer
from services.audio.campaigns import CampaignTracker, MatchRules
from services.audio.index import FingerprintIndex
from services.audio.segments import RejectedSegmentError, decode
from services.audio.settings import AudioSettings
from services.audio.synthetic import LfccLogisticDetector
from services.common import keys
from services.common.codec import DecodeError
from services.common.identity import attribute_record
from services.common.phone import InvalidNumberError
from services.common.pseudonym import Pseudonymizer
from services.common.redisstore import make_async_redis
from services.common.streams import DeadLetterWriter, make_faust_app, raw_topic
from services.common.topics import AUDIO_SEGMENTS, AUDIO_VERDICTS

log = logging.getLogger(__name__)

CONSUMER = "audio"


def build_analyzer(settings: AudioSettings, client: Any) -> Analyzer:
    """The analyzer on a Redis client, with the settings' rules and detector model."""
    index = FingerprintIndex(
        client, settings.candidate_ttl_s, settings.campaign_ttl_s, settings.campaign_window_s
    )
    rules = MatchRules(
        min_votes=settings.match_min_votes,
        min_coverage=settings.match_min_coverage,
        probes=settings.probes,
        min_callers=settings.campaign_min_callers,
        window_s=settings.campaign_window_s,
    )
    return Analyzer(
        campaigns=CampaignTracker(client, index, rules),
        synthetic=LfccLogisticDetector.from_path(settings.synthetic_model_path),
    )


def build_app(settings: AudioSettings) -> faust.App:
    """The audio faust app: one agent on audio.segments.v1."""
    app = make_faust_app(settings, settings.app_id)
    client: Any = make_async_redis(settings)
    analyzer = build_analyzer(settings, client)
    pseudonymize = Pseudonymizer(settings.pseudonym_key)
    dead_letters = DeadLetterWriter(app, CONSUMER)
    verdicts = raw_topic(app, AUDIO_VERDICTS)
    codec = AUDIO_SEGMENTS.codec()
    verdict_codec = AUDIO_VERDICTS.codec()

    def caller_of(segment: events_pb2.AudioSegment) -> str:
        try:
            identity = attribute_record(segment, settings.region_for(segment.tenant))
        except InvalidNumberError as exc:
            raise RejectedSegmentError("invalid_calling_number", f"caller ID: {exc.reason.value}") from None
        return pseudonymize(identity.key)

    async def publish(caller: str, value: bytes) -> None:
        pending = await verdicts.send(key=caller.encode(), value=value)
        await asyncio.wait_for(asyncio.ensure_future(pending), timeout=30)

    async def handle(event: EventT[bytes]) -> str:
        message = event.message
        started = time.perf_counter()
        segment = codec.decode(message.value or b"")
        caller = caller_of(segment)
        legs = decode(segment, settings.max_segment_s, settings.min_segment_s)
        metrics.STAGE_SECONDS.labels("decode").observe(time.perf_counter() - started)
        t_ms = (
            int(segment.start_time.ToMilliseconds())
            if segment.start_time.ByteSize()
            else int(message.timestamp * 1000)
        )
        marker = keys.seen_key(caller, "audio", segment.tenant, segment.segment_id)
        backoff = 0.05
        while True:
            try:
                stored: bytes | None = await client.get(marker)
                if stored is not None:
                    await publish(caller, stored)
                    return "duplicate"
                verdict = await analyzer.verdict(segment, legs, caller, t_ms)
                value = verdict_codec.encode(verdict)
                await client.set(marker, value, ex=settings.dedupe_ttl_s)
                break
            except RedisError as exc:
                metrics.REDIS_RETRIES.inc()
                log.warning("redis failed; retrying the segment", extra={"error": type(exc).__name__})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        started = time.perf_counter()
        await publish(caller, value)
        metrics.STAGE_SECONDS.labels("publish").observe(time.perf_counter() - started)
        return "verdict"

    async def dead_letter(event: EventT[bytes], reason: str, error: BaseException) -> None:
        await dead_letters.send(event, reason, error)
        metrics.DEAD_LETTERS.labels(reason).inc()
        metrics.SEGMENTS.labels("dead_lettered").inc()

    @app.agent(raw_topic(app, AUDIO_SEGMENTS), name="audio.segments")
    async def segments(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                metrics.SEGMENTS.labels(await handle(event)).inc()
            except DecodeError as exc:
                await dead_letter(event, exc.reason, exc)
            except RejectedSegmentError as exc:
                await dead_letter(event, exc.reason, exc)
            except Exception as exc:  # a bug must not kill the agent silently or lose the segment
                log.exception("segment could not be analysed; dead-lettering it")
                await dead_letter(event, "processing_error", exc)

    return app
