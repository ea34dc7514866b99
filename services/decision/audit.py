"""The audit trail: every decision is published to calls.setup.v1 without the call waiting for Kafka.

``AuditPublisher.publish`` only hands the record to librdkafka's local queue (bounded by
``audit_queue_max``) and returns; delivery reports are collected by ``run`` in the background. If
Kafka is down the queue fills, further records are dropped and counted — decisions keep flowing.
The record is the CallSetupEvent reputation folds in, so the audit trail also feeds reputation.
The same producer carries the notices to impersonated subscribers (subscribers.notices.v1).
"""

from __future__ import annotations

import asyncio
import logging

from confluent_kafka import KafkaError, Message

from fraudmesh.v1 import events_pb2
from services.common.kafka import inject_trace_headers, make_producer
from services.common.topics import CALLS_SETUP, SUBSCRIBERS_NOTICES
from services.decision import metrics

log = logging.getLogger(__name__)


class AuditPublisher:
    """A non-blocking, bounded publisher of CallSetupEvent records."""

    def __init__(self, bootstrap: str, queue_max: int, client_id: str = "fraudmesh-decision") -> None:
        self._producer = make_producer(
            bootstrap,
            client_id,
            **{
                "queue.buffering.max.messages": queue_max,
                "message.timeout.ms": 300_000,
                "linger.ms": 5,
                "socket.connection.setup.timeout.ms": 3000,
            },
        )
        self._codec = CALLS_SETUP.codec()
        self._notices = SUBSCRIBERS_NOTICES.codec()
        self.dropped = 0

    def publish(self, record: events_pb2.CallSetupEvent, key: bytes | None) -> bool:
        """Queue one record; False (and counted) when the local queue is full. Never blocks."""
        try:
            self._producer.produce(
                CALLS_SETUP.name,
                key=key,
                value=self._codec.encode(record),
                headers=inject_trace_headers(),
                on_delivery=_delivered,
            )
        except BufferError:
            self.dropped += 1
            metrics.AUDIT.labels("dropped").inc()
            return False
        metrics.audit("queued").inc()
        self._producer.poll(0)
        return True

    def notify(self, notice: events_pb2.ImpersonationNotice, key: bytes) -> bool:
        """Queue a notice to an impersonated subscriber (subscribers.notices.v1); never blocks."""
        try:
            self._producer.produce(
                SUBSCRIBERS_NOTICES.name,
                key=key,
                value=self._notices.encode(notice),
                on_delivery=_notice_delivered,
            )
        except BufferError:
            metrics.NOTICES.labels("dropped").inc()
            return False
        metrics.NOTICES.labels("queued").inc()
        return True

    def pending(self) -> int:
        """Records in the local queue, not yet acknowledged."""
        return len(self._producer)

    async def run(self, every_s: float = 0.05) -> None:
        """Serve delivery reports until cancelled."""
        while True:
            self._producer.poll(0)
            metrics.AUDIT_QUEUE.set(len(self._producer))
            await asyncio.sleep(every_s)

    async def drain(self, timeout_s: float = 5.0) -> int:
        """Wait (bounded) for queued records on shutdown; returns how many remain undelivered."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(self._producer) and asyncio.get_running_loop().time() < deadline:
            self._producer.poll(0.05)
            await asyncio.sleep(0)
        return len(self._producer)

    def close(self) -> None:
        """Drop what drain() could not deliver (each counted failed) and destroy the producer now.

        Left to the garbage collector, librdkafka's destroy runs whenever the last reference goes,
        blocking whatever event loop holds the thread at that moment (a later call's deadline).
        """
        self._producer.purge()
        self._producer.poll(0)
        self._producer.close()


def _notice_delivered(error: KafkaError | None, _message: Message) -> None:
    metrics.NOTICES.labels("delivered" if error is None else "failed").inc()
    if error is not None:
        log.warning("impersonation notice not delivered", extra={"error": error.name()})


def _delivered(error: KafkaError | None, _message: Message) -> None:
    if error is None:
        metrics.audit("delivered").inc()
    else:
        metrics.AUDIT.labels("failed").inc()
        log.warning("audit record not delivered", extra={"error": error.name()})
