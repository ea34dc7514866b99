"""Origination's certificate feed on Kafka: every validated chain to every decision process.

Decision verifies SHAKEN in its own process (services.decision.verification) and never fetches an
x5u: origination owns certificates (allow-listed fetching, CRLs, pre-warm, the shared Redis copy)
and publishes each chain it validates — or its refusal — to ``sti.certs.v1``, a compacted topic
keyed by the x5u URL, so the topic holds each URL's latest entry for as long as it matters.

* ``CertificatePublisher`` (origination): one record per chain entering origination's cache and per
  refusal it remembers; produce is non-blocking.
* ``CertificateFollower`` (every decision process): assigns the topic's partitions itself (no group,
  no commits: each process reads it whole), loads it up to its end before the process serves
  (bounded), then keeps following on a daemon thread. Each chain is validated again against this
  process's trust anchors — Kafka is never trusted for validity — and handed to the event loop
  thread-safely; expired entries are ignored (so the topic needs no tombstones). ``report_miss``
  publishes an unknown x5u to ``sti.certs.misses.v1`` at most once per URL per interval.
* ``MissFollower`` (origination): reads the misses in a consumer group and fetches each URL in the
  background (allow-list, shared copy and negative caching apply); the publisher sends the result.
  A URL already cached is published again (a reader that missed it catches up).

Records carry x5u URLs and public certificates only, never numbers. A record that does not decode
or a chain that does not validate is counted (``on_event("refused")``) and logged without the URL's
query string; the thread never dies of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Final

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from cryptography.hazmat.primitives import serialization
from google.protobuf.message import DecodeError

from fraudmesh.v1 import events_pb2
from services.common.kafka import make_consumer, make_producer
from services.common.topics import STI_CERT_MISSES, STI_CERTS, dead_letter_topic
from services.origination.certs import CachedChain, CertificateCache, CertificateError, ChainValidator
from services.origination.failures import Failure
from services.origination.fetch import FetchError, parse_pem_chain

log = logging.getLogger(__name__)

POLL_S: Final = 0.2
CONSUMER: Final = "origination"
MAX_TRACKED_MISSES: Final = 10_000


def _url_for_logs(x5u: str) -> str:
    """The URL without query or fragment (they can carry tokens)."""
    return x5u.split("?", 1)[0].split("#", 1)[0][:200]


def chain_record(chain: CachedChain, now_ms: int) -> events_pb2.CertificateChain:
    """The feed record of a validated chain (without its trust anchor)."""
    certificates = chain.chain[:-1] or chain.chain
    pem = b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certificates)
    return events_pb2.CertificateChain(
        x5u=chain.x5u, pem=pem, expires_at_ms=int(chain.expires_at * 1000), published_ms=now_ms
    )


def refusal_record(x5u: str, failure: Failure, until: float, now_ms: int) -> events_pb2.CertificateChain:
    """The feed record of a refused x5u, standing until ``until`` (epoch seconds)."""
    return events_pb2.CertificateChain(
        x5u=x5u, failure=failure.value, refused_until_ms=int(until * 1000), published_ms=now_ms
    )


class CertificatePublisher:
    """Publishes origination's validated chains and refusals to sti.certs.v1 (non-blocking)."""

    def __init__(self, producer: Producer, clock: Callable[[], float] = time.time) -> None:
        self._producer: Producer | None = producer
        self._clock = clock
        self.published = 0

    @classmethod
    def connect(cls, bootstrap: str, client_id: str) -> CertificatePublisher:
        return cls(make_producer(bootstrap, client_id))

    def chain(self, chain: CachedChain) -> None:
        self._send(chain.x5u, chain_record(chain, int(self._clock() * 1000)))

    def refusal(self, x5u: str, failure: Failure, until: float) -> None:
        self._send(x5u, refusal_record(x5u, failure, until, int(self._clock() * 1000)))

    def _send(self, x5u: str, record: events_pb2.CertificateChain) -> None:
        if self._producer is None:  # closed
            return
        try:
            self._producer.produce(STI_CERTS.name, record.SerializeToString(), key=x5u.encode())
            self._producer.poll(0)
            self.published += 1
        except (BufferError, Exception) as exc:  # the feed is best effort; readers also ask again
            log.warning(
                "certificate not published", extra={"x5u": _url_for_logs(x5u), "error": type(exc).__name__}
            )

    def dead_letter(self, message: Any, reason: str, error: BaseException) -> None:
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
            detail=str(error)[:200],
        )
        letter.dead_lettered_at.GetCurrentTime()
        if self._producer is None:
            return
        try:
            self._producer.produce(dead_letter_topic(CONSUMER).name, letter.SerializeToString())
            self._producer.poll(0)
        except (BufferError, Exception) as exc:
            log.warning("dead letter not sent", extra={"reason": reason, "error": type(exc).__name__})

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


class FollowedChains:
    """x5u → chain validated by this process, and recent refusals; bounded, loop-thread only."""

    def __init__(self, max_entries: int = 4096, clock: Callable[[], float] = time.time) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, CachedChain] = OrderedDict()
        self._failures: OrderedDict[str, tuple[Failure, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, x5u: str, now: float | None = None) -> CachedChain | None:
        entry = self._entries.get(x5u)
        if entry is None:
            return None
        if entry.expires_at <= (self._clock() if now is None else now):
            del self._entries[x5u]
            return None
        return entry

    def failure(self, x5u: str, now: float | None = None) -> Failure | None:
        found = self._failures.get(x5u)
        if found is None:
            return None
        if found[1] <= (self._clock() if now is None else now):
            del self._failures[x5u]
            return None
        return found[0]

    def put(self, chain: CachedChain) -> None:
        """Hold a chain (already validated here); when full, the one expiring first goes."""
        self._failures.pop(chain.x5u, None)
        self._entries[chain.x5u] = chain
        if len(self._entries) > self._max:
            soonest = min(self._entries.values(), key=lambda entry: entry.expires_at)
            del self._entries[soonest.x5u]

    def put_refusal(self, x5u: str, failure: Failure, until: float) -> None:
        """Remember origination's refusal of x5u until ``until``."""
        self._entries.pop(x5u, None)
        self._failures[x5u] = (failure, until)
        self._failures.move_to_end(x5u)
        while len(self._failures) > self._max:
            self._failures.popitem(last=False)


class CertificateFollower:
    """A decision process's copy of the feed, and its reports of unknown certificates."""

    def __init__(
        self,
        bootstrap: str,
        validator: ChainValidator,
        *,
        client_id: str,
        max_entries: int = 4096,
        miss_interval_s: float = 30.0,
        on_event: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._bootstrap = bootstrap
        self._validator = validator
        self._client_id = client_id
        self._miss_interval_s = miss_interval_s
        self._on_event = on_event or (lambda _outcome: None)
        self._clock = clock
        self.chains = FollowedChains(max_entries, clock)
        self._misses: dict[str, float] = {}
        self._producer: Producer | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._caught_up: asyncio.Event | None = None

    async def start(self, catch_up_timeout_s: float = 10.0) -> int:
        """Load the feed up to its end (bounded by the timeout), then keep following; chains held."""
        self._loop = asyncio.get_running_loop()
        self._caught_up = asyncio.Event()
        self._producer = make_producer(self._bootstrap, f"{self._client_id}-misses", **{"linger.ms": 20})
        self._thread = threading.Thread(target=self._follow, name="certificate-feed", daemon=True)
        self._thread.start()
        try:
            await asyncio.wait_for(self._caught_up.wait(), catch_up_timeout_s)
        except TimeoutError:
            log.warning(
                "certificate feed not loaded to its end in time; unknown chains answer PENDING",
                extra={"timeout_s": catch_up_timeout_s, "chains": len(self.chains)},
            )
        return len(self.chains)

    def report_miss(self, x5u: str) -> None:
        """Ask origination for x5u (non-blocking; at most once per URL per interval)."""
        now = time.monotonic()
        last = self._misses.get(x5u)
        if (last is not None and now - last < self._miss_interval_s) or self._producer is None:
            return
        if len(self._misses) >= MAX_TRACKED_MISSES:
            self._misses.clear()
        self._misses[x5u] = now
        record = events_pb2.CertificateMiss(x5u=x5u, seen_ms=int(self._clock() * 1000))
        try:
            self._producer.produce(STI_CERT_MISSES.name, record.SerializeToString(), key=x5u.encode())
            self._producer.poll(0)
            self._on_event("miss_reported")
        except (BufferError, Exception) as exc:  # best effort: the next call asks again
            log.warning("certificate miss not reported", extra={"error": type(exc).__name__})

    async def close(self) -> None:
        """Stop following and deliver pending miss reports (bounded)."""
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)
        if self._producer is not None:
            await asyncio.to_thread(self._producer.flush, 2.0)
            self._producer = None  # released now (see CertificatePublisher.close)

    # ---- the feed thread -------------------------------------------------------------------

    def _follow(self) -> None:
        consumer = make_consumer(
            self._bootstrap,
            f"{self._client_id}-{uuid.uuid4().hex[:8]}",  # never committed: no group state kept
            **{"enable.partition.eof": True, "client.id": self._client_id},
        )
        try:
            pending = self._assign(consumer)
            while not self._stop.is_set():
                message = consumer.poll(POLL_S)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(message.partition())
                        if not pending:
                            self._signal_caught_up()
                    else:
                        log.warning("certificate feed error", extra={"error": str(error)[:200]})
                    continue
                self._take(message.value() or b"")
        except Exception:  # the feed must never take the process down; it stops and says so
            log.exception("certificate feed stopped")
        finally:
            with contextlib.suppress(Exception):
                consumer.close()

    def _assign(self, consumer: Consumer) -> set[int]:
        """Assign every partition of the topic from its beginning; waits until the topic exists."""
        while not self._stop.is_set():
            try:
                topic = consumer.list_topics(STI_CERTS.name, timeout=5).topics.get(STI_CERTS.name)
            except Exception as exc:  # broker not up yet: keep trying, unknown chains answer PENDING
                log.warning("certificate feed: no broker yet", extra={"error": type(exc).__name__})
                topic = None
            if topic is not None and topic.error is None and topic.partitions:
                partitions = sorted(topic.partitions)
                consumer.assign([TopicPartition(STI_CERTS.name, p, OFFSET_BEGINNING) for p in partitions])
                return set(partitions)
            time.sleep(1.0)
        return set()

    def _take(self, value: bytes) -> None:
        """Validate one record here and hand the outcome to the event loop."""
        try:
            record = events_pb2.CertificateChain.FromString(value)
        except DecodeError:
            self._on_event("refused")
            log.warning("certificate feed record does not decode")
            return
        now = self._clock()
        if record.failure:
            until = record.refused_until_ms / 1000
            try:
                failure = Failure(record.failure)
            except ValueError:
                failure = Failure.CERT_UNAVAILABLE
            if until > now:
                self._hand(self.chains.put_refusal, record.x5u, failure, until)
            return
        try:
            chain = self._validator.validate(record.x5u, parse_pem_chain(record.pem), now)
        except (CertificateError, FetchError) as exc:
            self._on_event("refused")
            log.warning(
                "certificate from the feed refused here",
                extra={
                    "x5u": _url_for_logs(record.x5u),
                    "error": type(exc).__name__,
                    "detail": str(exc)[:200],
                },
            )
            return
        expires_at = min(record.expires_at_ms / 1000, chain.not_after)
        if expires_at <= now:
            self._on_event("expired")
            return
        self._hand(self.chains.put, replace(chain, expires_at=expires_at))
        self._on_event("loaded")

    def _hand(self, action: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed while we were parsing
            loop.call_soon_threadsafe(action, *args)

    def _signal_caught_up(self) -> None:
        caught_up, loop = self._caught_up, self._loop
        if caught_up is not None and loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(caught_up.set)


class MissFollower:
    """Origination's reader of sti.certs.misses.v1: fetch (or republish) what decision processes ask for."""

    def __init__(
        self,
        bootstrap: str,
        group_id: str,
        cache: CertificateCache,
        publisher: CertificatePublisher,
    ) -> None:
        self._bootstrap = bootstrap
        self._group_id = group_id
        self._cache = cache
        self._publisher = publisher
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._recent: dict[str, float] = {}
        self.handled = 0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._follow, name="certificate-misses", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)

    def _follow(self) -> None:
        consumer = make_consumer(
            self._bootstrap,
            self._group_id,
            **{"enable.auto.commit": True, "auto.offset.reset": "latest"},  # old misses were answered
        )
        consumer.subscribe([STI_CERT_MISSES.name])
        try:
            while not self._stop.is_set():
                message = consumer.poll(POLL_S)
                if message is None or message.error() is not None:
                    continue
                try:
                    x5u = events_pb2.CertificateMiss.FromString(message.value() or b"").x5u
                except DecodeError as exc:
                    self._publisher.dead_letter(message, "decode_error", exc)
                    continue
                loop = self._loop
                if x5u and loop is not None and not loop.is_closed():
                    with contextlib.suppress(RuntimeError):
                        loop.call_soon_threadsafe(self._handle, x5u)
        except Exception:
            log.exception("certificate miss follower stopped")
        finally:
            with contextlib.suppress(Exception):
                consumer.close()

    def _handle(self, x5u: str) -> None:
        """On the loop: republish a cached chain, else fetch it (a burst of one URL counts once)."""
        now = time.monotonic()
        if now - self._recent.get(x5u, -1e9) < 1.0:
            return
        if len(self._recent) >= MAX_TRACKED_MISSES:
            self._recent.clear()
        self._recent[x5u] = now
        self.handled += 1
        chain = self._cache.get(x5u)
        if chain is not None:
            self._publisher.chain(chain)
        else:
            self._cache.fetch_in_background(x5u)
