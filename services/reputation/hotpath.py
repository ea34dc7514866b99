"""The reputation hot path: call setups and CDRs folded in batches straight off confluent-kafka.

faust's per-event stream machinery (a task, futures and a conductor hop per record) capped one
worker at ~6k records/s; these two topics carry nearly every event a carrier produces, so they skip
it. One loop: ``consume`` up to ``hot_batch_size`` records (librdkafka fetches and queues them in
its own threads), decode and normalise each (``Folding``), dead-letter what cannot be folded (acked
by the broker before anything moves on), fold the batch with one script call per caller and topic
(``NumberStore.apply``: one pipelined round trip, retried until Redis takes it — the partition waits,
never skips), and only then commit the batch's offsets. A crash or a rebalance redelivers from the
last commit and the per-number offset marks fold each record once.

The rest of the service (complaints, audio verdicts, presence: low rate, campaign linking) stays on
faust (``services.reputation.agents``), which also runs this loop as a task and owns the process.
The hot topics have a consumer group of their own (``consumer_group``): faust's group speaks its
own assignor protocol, which a librdkafka member cannot join.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from opentelemetry import trace

from services.common.codec import DecodeError
from services.common.kafka import extract_trace_context, make_consumer, make_producer
from services.common.streams import dead_letter, log_dead_letter
from services.common.topics import CALLS_CDR, CALLS_SETUP, Topic, dead_letter_topic
from services.reputation import metrics
from services.reputation.folding import Folding, RejectedRecordError
from services.reputation.numbers import NumberStore, Position, Update
from services.reputation.settings import ReputationSettings

log = logging.getLogger(__name__)
tracer = trace.get_tracer("fraudmesh.reputation")

HOT_TOPICS: tuple[Topic, ...] = (CALLS_SETUP, CALLS_CDR)


def consumer_group(app_id: str, topic: Topic) -> str:
    """The consumer group reputation reads ``topic`` in: the hot topics have their own."""
    return f"{app_id}.batch" if topic in HOT_TOPICS else app_id


class DeadLetters:
    """Dead letters of the hot path, on a confluent-kafka producer; ``publish`` waits for the acks."""

    def __init__(self, bootstrap: str, consumer: str) -> None:
        self.consumer = consumer
        self.topic = dead_letter_topic(consumer)
        self._codec = self.topic.codec()
        self._producer = make_producer(bootstrap, f"fraudmesh-{consumer}-dead-letters", **{"linger.ms": 0})

    def publish(self, letters: Sequence[tuple[Message, str, BaseException]], timeout_s: float = 30.0) -> None:
        """Publish every dead letter and wait until the broker has them all; raises if it does not."""
        failures: list[str] = []

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                failures.append(error.name())

        for message, reason, error in letters:
            record = dead_letter(
                self.consumer,
                (message.topic() or "", message.partition() or 0, message.offset() or 0),
                message.key() or b"",
                message.value() or b"",
                reason,
                error,
            )
            value = self._codec.encode(record)
            key = record.key or None
            self._producer.produce(self.topic.name, key=key, value=value, on_delivery=delivered)
            log_dead_letter(record)
        left = self._producer.flush(timeout_s)
        if left or failures:
            raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, f"dead letters not acked: {failures}"))

    def close(self) -> None:
        self._producer.flush(5.0)


@dataclass(frozen=True, slots=True)
class _Batch:
    """One consumed batch, decoded: what to fold, dead-letter and commit."""

    updates: list[Update]
    spans: list[tuple[trace.Span, int | None]]  # (span, index in updates or None: dead-lettered)
    letters: list[tuple[Message, str, BaseException]]
    newest: dict[tuple[str, int], tuple[int, float]]  # (topic, partition) → (offset, timestamp s)
    counts: dict[str, list[int]]  # topic → indices in updates


class HotPath:
    """The batch consumer of calls.setup.v1 and calls.cdr.v1 for one reputation worker."""

    def __init__(
        self, settings: ReputationSettings, folding: Folding, store: NumberStore, consumer: str
    ) -> None:
        self._settings = settings
        self._store = store
        self._dead_letters = DeadLetters(settings.kafka_bootstrap, consumer)
        self._to_update: dict[str, Callable[[bytes, int, Position | None], Update]] = {
            CALLS_SETUP.name: folding.setup,
            CALLS_CDR.name: folding.cdr,
        }
        self._pending: asyncio.Future[Any] | None = None

    async def run(self) -> None:
        """Consume, fold and commit until cancelled; a fatal client error raises."""
        consumer = make_consumer(
            self._settings.kafka_bootstrap,
            consumer_group(self._settings.app_id, CALLS_SETUP),
            **{
                "client.id": f"{self._settings.app_id}-batch",
                "session.timeout.ms": 10_000,
                "heartbeat.interval.ms": 3_000,
                "fetch.wait.max.ms": 50,
            },
        )
        consumer.subscribe([topic.name for topic in HOT_TOPICS], on_revoke=self._revoked)
        writing: asyncio.Future[None] | None = None
        try:
            while True:
                # The next batch is fetched and decoded while the previous one's writes are in
                # flight (Redis works on its own core); it is sent only once that one is written
                # and committed, so a number's batches still reach Redis in offset order.
                messages = await self._in_thread(
                    consumer.consume, self._settings.hot_batch_size, self._settings.batch_wait_s
                )
                batch = self._prepare(messages) if messages else None
                if writing is not None:
                    await writing
                    writing = None
                if batch is not None:
                    writing = asyncio.ensure_future(self._write(consumer, batch))
        finally:
            if writing is not None:  # cancelled: uncommitted writes are redelivered and fold once
                writing.cancel()
                await asyncio.wait([writing])
            await self._in_thread(consumer.close)
            self._dead_letters.close()

    async def _in_thread(self, call: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking client call in a thread; on cancellation, let it finish before re-raising,
        so the consumer is never closed under a call in progress."""
        self._pending = asyncio.get_running_loop().run_in_executor(None, call, *args)
        try:
            return await asyncio.shield(self._pending)
        except asyncio.CancelledError:
            await asyncio.wait([self._pending])
            raise

    @staticmethod
    def _revoked(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # One batch's writes may still be in flight: if its commit then fails, the partitions' new
        # owner re-reads it, and the offset marks fold each record once.
        for tp in partitions:
            metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(0)

    def _prepare(self, messages: list[Message]) -> _Batch:
        """Decode a consumed batch into updates and dead letters (no I/O)."""
        updates: list[Update] = []
        spans: list[tuple[trace.Span, int | None]] = []
        letters: list[tuple[Message, str, BaseException]] = []
        newest: dict[tuple[str, int], tuple[int, float]] = {}  # (topic, partition) → (offset, timestamp)
        counts: dict[str, list[int]] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                log.warning("kafka consumer error", extra={"error": error.name()})
                continue
            topic, partition, offset = message.topic() or "", message.partition() or 0, message.offset() or 0
            _kind, stamp_ms = message.timestamp()
            if stamp_ms <= 0:
                stamp_ms = int(time.time() * 1000)
            newest[(topic, partition)] = (offset, stamp_ms / 1000.0)
            headers = message.headers()
            span = None
            if headers:
                parent = extract_trace_context(headers)
                if trace.get_current_span(parent).get_span_context().is_valid:
                    span = tracer.start_span("reputation.fold", context=parent, kind=trace.SpanKind.CONSUMER)
            try:
                update = self._to_update[topic](message.value() or b"", stamp_ms, (partition, offset))
            except (DecodeError, RejectedRecordError) as exc:
                letters.append((message, exc.reason, exc))
                update = None
            except Exception as exc:  # a bug must not kill the loop silently or lose the record
                log.exception("record could not be folded; dead-lettering it", extra={"topic": topic})
                letters.append((message, "processing_error", exc))
                update = None
            if update is not None:
                counts.setdefault(topic, []).append(len(updates))
                updates.append(update)
            if span is not None:
                spans.append((span, len(updates) - 1 if update is not None else None))
        return _Batch(updates, spans, letters, newest, counts)

    async def _write(self, consumer: Consumer, batch: _Batch) -> None:
        """Dead letters acked, updates folded, then the batch's offsets committed."""
        updates, spans, counts = batch.updates, batch.spans, batch.counts
        if batch.letters:
            await self._dead_letter(batch.letters)
        applied: list[bool] = []
        if updates:
            started = time.perf_counter()
            forgotten = self._store.forgotten
            applied = await self._store.apply(updates)
            metrics.PROBATION_FORGOTTEN.inc(self._store.forgotten - forgotten)
            elapsed = time.perf_counter() - started
            for topic, indices in counts.items():
                metrics.APPLY_SECONDS.labels(topic).observe(elapsed)
                metrics.BATCH_SIZE.labels(topic).observe(len(indices))
                folded = sum(1 for i in indices if applied[i])
                metrics.EVENTS.labels(topic, "applied").inc(folded)
                metrics.EVENTS.labels(topic, "duplicate").inc(len(indices) - folded)
        for span, index in spans:
            outcome = "dead_lettered" if index is None else "applied" if applied[index] else "duplicate"
            span.set_attributes({"fraudmesh.outcome": outcome})
            span.end()
        await self._commit(consumer, batch.newest)

    async def _dead_letter(self, letters: list[tuple[Message, str, BaseException]]) -> None:
        backoff = 0.05
        while True:
            try:
                await asyncio.to_thread(self._dead_letters.publish, letters)
                break
            except KafkaException as exc:
                log.warning("dead letters not acked; retrying", extra={"error": str(exc)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._settings.redis_retry_max_backoff_s)
        for message, reason, _error in letters:
            metrics.DEAD_LETTERS.labels(message.topic(), reason).inc()
            metrics.EVENTS.labels(message.topic(), "dead_lettered").inc()

    async def _commit(self, consumer: Consumer, newest: dict[tuple[str, int], tuple[int, float]]) -> None:
        if not newest:
            return
        now = time.time()
        offsets = [TopicPartition(topic, part, offset + 1) for (topic, part), (offset, _) in newest.items()]
        try:
            # Not _in_thread: the next batch's consume() may be running in another thread.
            await asyncio.to_thread(consumer.commit, offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # A rebalance took the partitions: their new owner re-reads from the last commit and the
            # offset marks fold nothing twice.
            log.warning("offset commit failed", extra={"error": str(exc.args[0] if exc.args else exc)})
        for (topic, partition), (offset, stamp_s) in newest.items():
            label = (topic, str(partition))
            metrics.FRESHNESS.labels(*label).set(max(0.0, now - stamp_s))
            metrics.LAG.labels(topic).observe(max(0.0, now - stamp_s))
            _low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
            if high >= 0:
                metrics.CONSUMER_LAG.labels(*label).set(max(0, high - offset - 1))
