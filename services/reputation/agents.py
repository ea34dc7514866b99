"""The reputation service: setups and CDRs on the batch hot path (``services.reputation.hotpath``),
complaints, audio verdicts and subscriber presence on faust agents, all folded into Redis.

The faust app owns the process: it runs the hot path as a task (an unrecoverable error there ends the
process with status 70, for its supervisor to restart it) and a timer exporting Redis's memory use
and evictions. Each agent takes events in batches (``noack_take``), turns each into an update or a
dead letter,
folds the batch in one Redis round trip, and only then acknowledges the events — so a crash or a
rebalance redelivers them and the idempotent scripts count them once. Every record ends in exactly
one place: applied, recognised as a duplicate, or dead-lettered with its reason.

Setups, CDRs and audio verdicts are folded under the caller's identity by the one rule of
``services.common.identity`` (P-Asserted-Identity, else From; a withheld caller under its trunk's
withheld bucket), the key decision reads; complaints under the number the callee reported. Only a
caller ID that is neither a number nor withheld is dead-lettered (``invalid_calling_number``).
Presence reports are folded under the subscriber's number (``invalid_number`` when it is not one).

A record that carries a trace context (e.g. decision's audit record) gets a ``reputation.fold``
span, child of the producer's span, from decode to the end of the batch's Redis write; records
without one cost no span work.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable

import faust
from faust.types import TP, EventT, StreamT
from opentelemetry import trace

from services.common.codec import DecodeError
from services.common.kafka import extract_trace_context
from services.common.redisstore import make_async_redis
from services.common.streams import DeadLetterWriter, make_faust_app, raw_topic
from services.common.topics import (
    AUDIO_VERDICTS,
    COMPLAINTS,
    SUBSCRIBERS_PRESENCE,
    Topic,
)
from services.reputation import metrics
from services.reputation.folding import Folding, RejectedRecordError
from services.reputation.hotpath import HotPath
from services.reputation.numbers import NumberStore, Position, Update
from services.reputation.scripts import Retention
from services.reputation.settings import ReputationSettings

log = logging.getLogger(__name__)
tracer = trace.get_tracer("fraudmesh.reputation")

CONSUMER = "reputation"

FoldFn = Callable[[bytes, int, Position | None], Update]


def build_app(settings: ReputationSettings) -> faust.App:
    """The reputation faust app: the hot path's task, one batching agent per low-rate topic."""
    app = make_faust_app(settings, settings.app_id)
    folding = Folding(settings)
    redis = make_async_redis(settings)
    store = NumberStore(
        redis,
        Retention(
            marker_ttl_s=settings.dedupe_ttl_s,
            number_ttl_s=settings.number_ttl_s,
            presence_ttl_s=settings.presence_ttl_s,
            probation=settings.probation,
            probation_per_slot=settings.probation_per_slot,
            probation_ttl_s=settings.probation_ttl_s,
        ),
        retry_max_backoff_s=settings.redis_retry_max_backoff_s,
        on_retry=metrics.REDIS_RETRIES.inc,
    )
    dead_letters = DeadLetterWriter(app, CONSUMER)

    hot = HotPath(settings, folding, store, CONSUMER)

    @app.task  # type: ignore[untyped-decorator]
    async def hot_path() -> None:
        try:
            await hot.run()
        except asyncio.CancelledError:
            raise
        except BaseException:
            log.critical("reputation hot path failed; exiting for the supervisor to restart", exc_info=True)
            logging.shutdown()
            os._exit(70)

    @app.timer(interval=15.0)  # type: ignore[untyped-decorator]
    async def redis_memory() -> None:
        try:
            info = await redis.info()
        except Exception:  # a Redis outage is the folds' to report; this gauge just skips a beat
            return
        metrics.REDIS_EVICTED.set(info.get("evicted_keys", 0))
        limit = info.get("maxmemory", 0)
        metrics.REDIS_USED_RATIO.set(info.get("used_memory", 0) / limit if limit else 0.0)

    async def fold(stream: StreamT[bytes], topic: Topic, to_update: FoldFn) -> None:
        batches = stream.noack_take(settings.batch_size, within=settings.batch_wait_s)  # type: ignore[attr-defined]
        lag = metrics.LAG.labels(topic.name)
        async for batch in batches:
            events: list[EventT[bytes]] = list(batch)  # noack_take yields the events themselves
            updates: list[Update] = []
            spans: list[tuple[trace.Span, int | None]] = []  # (span, index in updates or None)
            now = time.time()
            for event in events:
                lag.observe(max(0.0, now - event.message.timestamp))
                parent = extract_trace_context(event.message.headers)
                if trace.get_current_span(parent).get_span_context().is_valid:
                    span = tracer.start_span("reputation.fold", context=parent, kind=trace.SpanKind.CONSUMER)
                    with trace.use_span(span):
                        update = await _to_update(event, topic, to_update)
                    spans.append((span, len(updates) if update is not None else None))
                else:
                    update = await _to_update(event, topic, to_update)
                if update is not None:
                    updates.append(update)
            applied: list[bool] = []
            if updates:
                started = time.perf_counter()
                forgotten = store.forgotten
                applied = await store.apply(updates)
                metrics.PROBATION_FORGOTTEN.inc(store.forgotten - forgotten)
                metrics.APPLY_SECONDS.labels(topic.name).observe(time.perf_counter() - started)
                metrics.BATCH_SIZE.labels(topic.name).observe(len(updates))
                for ok in applied:
                    metrics.EVENTS.labels(topic.name, "applied" if ok else "duplicate").inc()
            for span, index in spans:
                outcome = "dead_lettered" if index is None else "applied" if applied[index] else "duplicate"
                span.set_attributes({"messaging.destination.name": topic.name, "fraudmesh.outcome": outcome})
                span.end()
            for event in events:
                await stream.ack(event)
            _export_lag(events)

    def _export_lag(events: list[EventT[bytes]]) -> None:
        """Per partition: records not yet folded (the consumer's high watermark) and freshness."""
        newest = {(e.message.topic, e.message.partition): e.message for e in events}
        now = time.time()
        for (name, partition), message in newest.items():
            label = (name, str(partition))
            metrics.FRESHNESS.labels(*label).set(max(0.0, now - message.timestamp))
            try:
                high = app.consumer.highwater(TP(name, partition))
            except AssertionError:  # aiokafka's way of saying the partition was revoked meanwhile
                high = None
            if high is not None and high >= 0:  # None: no fetch response yet
                metrics.CONSUMER_LAG.labels(*label).set(max(0, high - message.offset - 1))

    async def _to_update(event: EventT[bytes], topic: Topic, to_update: FoldFn) -> Update | None:
        """The event's update, or None once it has been dead-lettered with its reason."""
        message = event.message
        try:
            at = (message.partition, message.offset)
            return to_update(message.value or b"", int(message.timestamp * 1000), at)
        except DecodeError as exc:
            await _dead_letter(event, exc.reason, exc)
        except RejectedRecordError as exc:
            await _dead_letter(event, exc.reason, exc)
        except Exception as exc:  # a bug must not kill the agent silently or lose the record
            log.exception("record could not be folded; dead-lettering it", extra={"topic": topic.name})
            await _dead_letter(event, "processing_error", exc)
        return None

    async def _dead_letter(event: EventT[bytes], reason: str, error: BaseException) -> None:
        await dead_letters.send(event, reason, error)
        metrics.DEAD_LETTERS.labels(event.message.topic, reason).inc()
        metrics.EVENTS.labels(event.message.topic, "dead_lettered").inc()

    @app.agent(raw_topic(app, COMPLAINTS), name="reputation.complaints")
    async def complaints(stream: StreamT[bytes]) -> None:
        await fold(stream, COMPLAINTS, folding.complaint)

    @app.agent(raw_topic(app, AUDIO_VERDICTS), name="reputation.verdicts")
    async def verdicts(stream: StreamT[bytes]) -> None:
        await fold(stream, AUDIO_VERDICTS, folding.verdict)

    @app.agent(raw_topic(app, SUBSCRIBERS_PRESENCE), name="reputation.presence")
    async def presence(stream: StreamT[bytes]) -> None:
        await fold(stream, SUBSCRIBERS_PRESENCE, folding.presence)

    return app
