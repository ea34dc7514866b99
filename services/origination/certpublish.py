"""Origination's side of the certificate feed (services.origination.certfeed): publish, and answer misses.

* ``CertificatePublisher``: one ``sti.certs.v1`` record per chain entering origination's cache and
  per refusal it remembers (the cache's ``on_cached`` / ``on_refused`` hooks); produce is
  non-blocking, a record the broker never took is counted.
* ``MissFollower``: reads ``sti.certs.misses.v1`` in a consumer group on a daemon thread and, on the
  event loop, republishes a chain origination holds, or fetches the URL in the background (the
  allow-list and the shared Redis copy apply); the publisher sends the result. A URL refused
  recently is not fetched again (its refusal is already the feed's latest entry for it), and a
  burst of misses for one URL is handled once. A miss that does not decode goes to
  ``dlq.origination.v1`` with the reason.

confluent-kafka on a thread rather than a faust agent: the serve role is a grpc.aio process, and a
faust worker wants to own the event loop and its process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Final

from confluent_kafka import KafkaError, Message, Producer

from fraudmesh.v1 import events_pb2
from services.common.codec import DecodeError
from services.common.kafka import make_consumer, make_producer
from services.common.logs import scrub
from services.common.topics import STI_CERT_MISSES, STI_CERTS, dead_letter_topic
from services.origination.certfeed import (
    BATCH,
    CHAINS_CODEC,
    POLL_S,
    Event,
    MissDeduper,
    chain_record,
    decode_miss,
    ignore,
    refusal_record,
    url_for_logs,
)
from services.origination.certs import CachedChain, CertificateCache
from services.origination.failures import Failure

__all__ = ["CertificatePublisher", "MissFollower"]

log = logging.getLogger(__name__)

CONSUMER: Final = "origination"


class CertificatePublisher:
    """Publishes origination's validated chains and refusals to sti.certs.v1 (non-blocking).

    ``on_event`` hears "published", "publish_failed" (queue full, or the broker never took it).
    """

    def __init__(
        self, producer: Producer, clock: Callable[[], float] = time.time, on_event: Event | None = None
    ) -> None:
        self._producer: Producer | None = producer
        self._clock = clock
        self._on_event = on_event or ignore
        self.published = 0

    @classmethod
    def connect(cls, bootstrap: str, client_id: str, on_event: Event | None = None) -> CertificatePublisher:
        """A publisher with its own idempotent producer."""
        return cls(make_producer(bootstrap, client_id), on_event=on_event)

    def chain(self, chain: CachedChain) -> None:
        """Publish a chain origination validated (the cache's ``on_cached`` hook)."""
        self._send(chain.x5u, chain_record(chain, int(self._clock() * 1000)))

    def refusal(self, x5u: str, failure: Failure, until: float) -> None:
        """Publish origination's refusal of x5u (the cache's ``on_refused`` hook)."""
        self._send(x5u, refusal_record(x5u, failure, until, int(self._clock() * 1000)))

    def _send(self, x5u: str, record: events_pb2.CertificateChain) -> None:
        if self._producer is None:  # closed
            return
        try:
            self._producer.produce(
                STI_CERTS.name, CHAINS_CODEC.encode(record), key=x5u.encode(), on_delivery=self._delivered
            )
            self._producer.poll(0)
            self.published += 1
        except Exception as exc:  # BufferError, KafkaException: best effort, readers also ask again
            self._on_event("publish_failed")
            log.warning(
                "certificate not published", extra={"x5u": url_for_logs(x5u), "error": type(exc).__name__}
            )

    def _delivered(self, error: KafkaError | None, _message: Message) -> None:
        self._on_event("publish_failed" if error is not None else "published")

    def dead_letter(self, message: Message, reason: str, error: BaseException) -> None:
        """Send a record origination could not read to its dead-letter topic, with the reason."""
        letter = events_pb2.DeadLetter(
            consumer=CONSUMER,
            source_topic=message.topic() or "",
            source_partition=message.partition() or 0,
            source_offset=message.offset() or 0,
            key=message.key() or b"",
            value=message.value() or b"",
            reason=reason,
            error_type=type(error).__name__,
            detail=scrub(str(getattr(error, "detail", "") or error))[:1024],
        )
        letter.dead_lettered_at.GetCurrentTime()
        if self._producer is None:
            return
        try:
            self._producer.produce(dead_letter_topic(CONSUMER).name, letter.SerializeToString())
            self._producer.poll(0)
        except Exception as exc:
            log.warning("dead letter not sent", extra={"reason": reason, "error": type(exc).__name__})
        log.warning(
            "record dead-lettered",
            extra={"consumer": CONSUMER, "reason": reason, "source_topic": letter.source_topic},
        )

    def flush(self, timeout_s: float = 5.0) -> int:
        """Deliver what is queued (bounded); returns how many records are left."""
        return int(self._producer.flush(timeout_s)) if self._producer is not None else 0

    def close(self, timeout_s: float = 5.0) -> int:
        """Flush (bounded) and release the producer now, not at some later garbage collection.

        A librdkafka client left for the collector can be destroyed in a forked child whose
        threads it never had (seen as a segfault in the trainer's worker pool).
        """
        left = self.flush(timeout_s)
        self._producer = None
        return left


class MissFollower:
    """Origination's reader of sti.certs.misses.v1: fetch (or republish) what decision processes ask for.

    ``on_event`` hears, per miss: "republished", "fetch_started", "fetch_in_flight", "refused" (a
    recent refusal stands; not fetched again), "deduplicated", "dead_lettered".
    """

    def __init__(
        self,
        bootstrap: str,
        group_id: str,
        cache: CertificateCache,
        publisher: CertificatePublisher,
        *,
        dedupe_s: float = 1.0,
        on_event: Event | None = None,
    ) -> None:
        self._bootstrap = bootstrap
        self._group_id = group_id
        self._cache = cache
        self._publisher = publisher
        self._on_event = on_event or ignore
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._recent = MissDeduper(dedupe_s)
        self.handled = 0

    def start(self) -> None:
        """Start reading on a daemon thread; misses are handled on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._follow, name="certificate-misses", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        """Stop reading (bounded) and leave the group."""
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)

    def _follow(self) -> None:
        consumer = make_consumer(
            self._bootstrap,
            self._group_id,
            # Misses are advisory (decision asks again after its interval): auto-commit, and a new
            # group starts at the end, since older misses were answered or will be asked again.
            **{"enable.auto.commit": True, "auto.offset.reset": "latest"},
        )
        consumer.subscribe([STI_CERT_MISSES.name])
        try:
            while not self._stop.is_set():
                for message in consumer.consume(BATCH, POLL_S):
                    error = message.error()
                    if error is not None:
                        log.warning("certificate miss feed error", extra={"error": str(error)[:200]})
                        continue
                    try:
                        x5u = decode_miss(message.value())
                    except DecodeError as exc:
                        self._publisher.dead_letter(message, exc.reason, exc)
                        self._publisher.flush(5.0)  # on the broker before the offset is committed
                        self._on_event("dead_lettered")
                        continue
                    self._hand(x5u)
        except Exception:  # the consumer itself failed; origination keeps serving Verify
            log.exception("certificate miss follower stopped")
        finally:
            with contextlib.suppress(Exception):
                consumer.close()

    def _hand(self, x5u: str) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._handle, x5u)

    def _handle(self, x5u: str) -> None:
        """On the loop: republish a cached chain, else fetch it (a burst of one URL counts once)."""
        self.handled += 1
        if not self._recent.first(x5u):
            self._on_event("deduplicated")
            return
        chain = self._cache.get(x5u)
        if chain is not None:
            self._publisher.chain(chain)
            self._on_event("republished")
        elif self._cache.failure(x5u) is not None:
            self._on_event("refused")
        elif self._cache.fetch_in_background(x5u):
            self._on_event("fetch_started")
        else:
            self._on_event("fetch_in_flight")
