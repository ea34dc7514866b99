"""Origination's certificate feed on Kafka: every validated chain to every decision process.

Decision verifies SHAKEN in its own process (services.decision.verification) and never fetches an
x5u: origination owns certificates (allow-listed fetching, CRLs, pre-warm, the shared Redis copy)
and publishes each chain it validates — or its refusal — to ``sti.certs.v1``, a compacted topic
keyed by the x5u URL, so the topic holds each URL's latest entry for as long as it matters
(origination's side, the publisher and the miss follower, is ``services.origination.certpublish``).

This module is the feed's contract and its reader:

* the records (``chain_record``, ``refusal_record``, ``decode_chain_record``, ``decode_miss``) and
  what a record means to a reader (``read_record`` → ``FeedUpdate``): each chain is validated again
  against the reader's own trust anchors — Kafka is never trusted for validity; expired entries are
  ignored, so the topic needs no tombstones (one is honoured: it forgets its URL);
* ``FollowedChains``, the bounded in-memory copy the Verifier reads (its ``ChainSource``); a chain
  held wins over a later refusal of its URL, so one origination replica failing to fetch a URL
  another one validated does not withdraw it;
* ``CertificateFollower`` (every decision process): assigns the topic's partitions itself (no
  group, no commits: each process reads it whole), loads it up to its end before the process
  serves (bounded), then keeps following on a daemon thread, where records are parsed and
  validated; changes reach the event loop through ``call_soon_threadsafe``. ``report_miss``
  publishes an unknown x5u to ``sti.certs.misses.v1`` at most once per URL per interval.

Records carry x5u URLs and public certificates only, never numbers. A record that does not decode
or a chain that does not validate is counted (``on_event("refused")``) and logged without the URL's
query string; the thread never dies of one. ``on_event`` may run on the feed's thread, and this
module registers no metrics: each process counts the outcomes in its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from cryptography.hazmat.primitives import serialization

from fraudmesh.v1 import events_pb2
from services.common.codec import DecodeError, ProtoCodec
from services.common.kafka import make_consumer, make_producer
from services.common.topics import STI_CERT_MISSES, STI_CERTS
from services.origination.certs import CachedChain, CertificateError, ChainValidator
from services.origination.failures import Failure
from services.origination.fetch import FetchError, parse_pem_chain

__all__ = [
    "CertificateFollower",
    "FeedUpdate",
    "FollowedChains",
    "MissDeduper",
    "chain_record",
    "decode_chain_record",
    "decode_miss",
    "read_record",
    "refusal_record",
]

log = logging.getLogger(__name__)

POLL_S: Final = 0.2
BATCH: Final = 500
MAX_TRACKED_MISSES: Final = 10_000

Event = Callable[[str], None]
Outcome = Literal["loaded", "refusal", "forget", "expired", "refused"]
CHAINS_CODEC: Final[ProtoCodec[events_pb2.CertificateChain]] = STI_CERTS.codec()
MISSES_CODEC: Final[ProtoCodec[events_pb2.CertificateMiss]] = STI_CERT_MISSES.codec()


def ignore(_outcome: str) -> None:
    """The default on_event: count nothing."""


def url_for_logs(x5u: str) -> str:
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


def decode_chain_record(key: bytes | None, value: bytes) -> events_pb2.CertificateChain:
    """A sti.certs.v1 record, strictly: it parses, names its x5u, and is keyed by it (DecodeError)."""
    record = CHAINS_CODEC.decode(value)
    if key is not None and key != record.x5u.encode():
        raise DecodeError("key_mismatch", "record key is not its x5u")
    if not record.failure and not record.pem:
        raise DecodeError("missing_field", "neither a chain nor a refusal")
    return record


def decode_miss(value: bytes | None) -> str:
    """The x5u of a sti.certs.misses.v1 record; DecodeError (with its reason) when unusable."""
    return str(MISSES_CODEC.decode(value).x5u)


@dataclass(frozen=True, slots=True)
class FeedUpdate:
    """What one sti.certs.v1 record means to a reader.

    ``outcome``: "loaded" (``chain`` validated here), "refusal" (origination refused ``x5u`` with
    ``failure`` until ``until``), "forget" (a tombstone), "expired" or "refused" (does not decode
    or does not validate here; nothing changes).
    """

    outcome: Outcome
    x5u: str = ""
    chain: CachedChain | None = None
    failure: Failure | None = None
    until: float = 0.0


_CHANGES: Final[frozenset[Outcome]] = frozenset({"loaded", "refusal", "forget"})
_EVENTS: Final[frozenset[Outcome]] = frozenset({"loaded", "refused", "expired"})


def read_record(key: bytes | None, value: bytes | None, validator: ChainValidator, now: float) -> FeedUpdate:
    """Decode one record and validate its chain against ``validator``'s anchors (Kafka is not trusted)."""
    if value is None:
        return FeedUpdate("forget", key.decode("utf-8", "replace")) if key else FeedUpdate("refused")
    try:
        record = decode_chain_record(key, value)
    except DecodeError as exc:
        log.warning("certificate feed record does not decode", extra={"reason": exc.reason})
        return FeedUpdate("refused")
    if record.failure:
        until = record.refused_until_ms / 1000
        if until <= now:
            return FeedUpdate("expired", record.x5u)
        try:
            failure = Failure(record.failure)
        except ValueError:
            failure = Failure.CERT_UNAVAILABLE
        return FeedUpdate("refusal", record.x5u, failure=failure, until=until)
    expires_at = record.expires_at_ms / 1000
    if expires_at <= now:
        return FeedUpdate("expired", record.x5u)
    try:
        chain = validator.validate(record.x5u, parse_pem_chain(record.pem), now)
    except (CertificateError, FetchError) as exc:
        log.warning(
            "certificate from the feed refused here",
            extra={"x5u": url_for_logs(record.x5u), "error": type(exc).__name__, "detail": str(exc)[:200]},
        )
        return FeedUpdate("refused", record.x5u)
    return FeedUpdate("loaded", record.x5u, replace(chain, expires_at=min(expires_at, chain.not_after)))


class MissDeduper:
    """At most one pass per key per interval; bounded (forgets everything when it tracks too many)."""

    __slots__ = ("_clock", "_interval", "_limit", "_seen")

    def __init__(
        self,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
        limit: int = MAX_TRACKED_MISSES,
    ) -> None:
        self._interval = interval_s
        self._clock = clock
        self._limit = limit
        self._seen: dict[str, float] = {}

    def first(self, key: str) -> bool:
        """True if key was not let through within the interval (and lets it through now)."""
        now = self._clock()
        last = self._seen.get(key)
        if last is not None and now - last < self._interval:
            return False
        if last is None and len(self._seen) >= self._limit:
            self._seen.clear()
        self._seen[key] = now
        return True

    def __len__(self) -> int:
        """How many keys are tracked."""
        return len(self._seen)


class FollowedChains:
    """x5u → chain validated by this process, and recent refusals; bounded, mutated on one thread.

    When full, the chain expiring first goes (a heap of expiries, stale pairs skipped lazily). A
    chain held wins over a refusal of its URL (``get`` is asked first, as the Verifier does).
    """

    def __init__(self, max_entries: int = 4096, clock: Callable[[], float] = time.time) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max = max_entries
        self._clock = clock
        self._entries: dict[str, CachedChain] = {}
        self._expiry: list[tuple[float, str]] = []
        self._failures: OrderedDict[str, tuple[Failure, float]] = OrderedDict()

    def __len__(self) -> int:
        """The number of chains held (expired ones included until touched)."""
        return len(self._entries)

    def get(self, x5u: str, now: float | None = None) -> CachedChain | None:
        """The chain of x5u unless absent or expired; never blocks, never fetches."""
        entry = self._entries.get(x5u)
        if entry is None:
            return None
        if entry.expires_at <= (self._clock() if now is None else now):
            del self._entries[x5u]
            return None
        return entry

    def failure(self, x5u: str, now: float | None = None) -> Failure | None:
        """Why origination refused x5u, while that refusal stands."""
        found = self._failures.get(x5u)
        if found is None:
            return None
        if found[1] <= (self._clock() if now is None else now):
            del self._failures[x5u]
            return None
        return found[0]

    def refusals(self) -> int:
        """The number of refusals held (lapsed ones included until touched)."""
        return len(self._failures)

    def put(self, chain: CachedChain) -> None:
        """Hold a chain (already validated here); it replaces any refusal of its URL."""
        self._failures.pop(chain.x5u, None)
        self._entries[chain.x5u] = chain
        heapq.heappush(self._expiry, (chain.expires_at, chain.x5u))
        while len(self._entries) > self._max:
            expires_at, x5u = heapq.heappop(self._expiry)
            held = self._entries.get(x5u)
            if held is not None and held.expires_at == expires_at:
                del self._entries[x5u]
        if len(self._expiry) > 2 * self._max + 64:
            self._expiry = [(entry.expires_at, url) for url, entry in self._entries.items()]
            heapq.heapify(self._expiry)

    def put_refusal(self, x5u: str, failure: Failure, until: float) -> None:
        """Remember origination's refusal of x5u until ``until``; bounded, oldest refusal first out."""
        self._failures[x5u] = (failure, until)
        self._failures.move_to_end(x5u)
        while len(self._failures) > self._max:
            self._failures.popitem(last=False)

    def apply(self, update: FeedUpdate) -> None:
        """Apply what a feed record means (``read_record``): hold, remember a refusal, or forget."""
        if update.outcome == "loaded" and update.chain is not None:
            self.put(update.chain)
        elif update.outcome == "refusal" and update.failure is not None:
            self.put_refusal(update.x5u, update.failure, update.until)
        elif update.outcome == "forget":
            self.forget(update.x5u)

    def forget(self, x5u: str) -> None:
        """Drop whatever is held for x5u (a tombstone on the feed)."""
        self._entries.pop(x5u, None)
        self._failures.pop(x5u, None)


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
        on_event: Event | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._bootstrap = bootstrap
        self._validator = validator
        self._client_id = client_id
        self._on_event = on_event or ignore
        self._clock = clock
        self.chains = FollowedChains(max_entries, clock)
        self._misses = MissDeduper(miss_interval_s)
        self._producer: Producer | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._caught_up: asyncio.Event | None = None

    async def start(self, catch_up_timeout_s: float = 10.0) -> int:
        """Load the feed up to its end (bounded by the timeout), then keep following; chains held."""
        if self._thread is not None:
            raise RuntimeError("the certificate follower is already started")
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
        if self._producer is None or not self._misses.first(x5u):
            return
        record = events_pb2.CertificateMiss(x5u=x5u, seen_ms=int(self._clock() * 1000))
        try:
            self._producer.produce(STI_CERT_MISSES.name, MISSES_CODEC.encode(record), key=x5u.encode())
            self._producer.poll(0)
            self._on_event("miss_reported")
        except Exception as exc:  # BufferError, KafkaException: best effort, the next call asks again
            log.warning("certificate miss not reported", extra={"error": type(exc).__name__})

    async def close(self) -> None:
        """Stop following and deliver pending miss reports (bounded)."""
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)
        if self._producer is not None:
            await asyncio.to_thread(self._producer.flush, 2.0)
            self._producer = None  # released now (see certpublish.CertificatePublisher.close)

    # ---- the feed thread -------------------------------------------------------------------

    def _follow(self) -> None:
        consumer = make_consumer(
            self._bootstrap,
            f"{self._client_id}-{uuid.uuid4().hex[:8]}",  # never committed: no group state kept
            **{"enable.partition.eof": True, "client.id": self._client_id},
        )
        try:
            pending = self._assign(consumer)
            if not pending:
                self._signal_caught_up()
            while not self._stop.is_set():
                for message in consumer.consume(BATCH, POLL_S):
                    error = message.error()
                    if error is None:
                        self._take(message.key(), message.value())
                    elif error.code() == KafkaError._PARTITION_EOF:
                        if pending:
                            pending.discard(message.partition() or 0)
                            if not pending:
                                self._signal_caught_up()
                    else:
                        log.warning("certificate feed error", extra={"error": str(error)[:200]})
        except Exception:  # the consumer itself failed: the process keeps serving what it holds
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
            self._stop.wait(1.0)
        return set()

    def _take(self, key: bytes | None, value: bytes | None) -> None:
        """Read one record here (never raises) and hand the change to the event loop."""
        try:
            update = read_record(key, value, self._validator, self._clock())
        except Exception as exc:  # anything a hostile record makes the libraries raise
            log.warning("certificate feed record unusable", extra={"error": type(exc).__name__})
            update = FeedUpdate("refused")
        if update.outcome in _CHANGES:
            self._hand(self.chains.apply, update)
        if update.outcome in _EVENTS:
            self._on_event(update.outcome)

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
