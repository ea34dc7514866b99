"""Driving the real mesh through Kafka from outside: build call setups, produce them, read topics and DLQs.

Shared by the main job, the smoke job, the benchmarks and the integration tests, so all of them
exercise the services exactly as a switch, mediation and an operator would (processes to run the
services are in ``loadtest.processes``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import KafkaError, Producer, TopicPartition
from google.protobuf.timestamp_pb2 import Timestamp

from fraudmesh.v1 import call_pb2, common_pb2, events_pb2
from services.common.identity import attribute_setup
from services.common.kafka import inject_trace_headers, make_consumer, make_producer
from services.common.phone import normalize
from services.common.pseudonym import Pseudonymizer
from services.common.topics import CALLS_SETUP, Topic, dead_letter_topic


def call_setup(
    calling: str,
    called: str,
    *,
    tenant: str = "demo-cn",
    call_id: str | None = None,
    event_ms: int | None = None,
    ingress: common_pb2.IngressKind.ValueType = common_pb2.INGRESS_KIND_DOMESTIC_INTERCONNECT,
    pai: str = "",
    trunk: str = "trunk-ic-1",
) -> events_pb2.CallSetupEvent:
    """A calls.setup.v1 record as a switch would present the call (no decision attached).

    ``calling`` is the From user part, ``pai`` the P-Asserted-Identity the trunk sent ('' for none).
    """
    stamp = Timestamp()
    stamp.FromMilliseconds(event_ms if event_ms is not None else int(time.time() * 1000))
    return events_pb2.CallSetupEvent(
        setup=call_pb2.CallSetup(
            call_id=call_id or f"{uuid.uuid4()}@sbc1.demo.invalid",
            event_time=stamp,
            tenant=tenant,
            calling_number=calling,
            p_asserted_identity=pai,
            called_number=called,
            ingress_trunk_id=trunk,
            ingress_kind=ingress,
            ingress_region="CN-BJ",
            user_agent="fraudmesh-loadtest",
        )
    )


@dataclass
class SetupProducer:
    """Produces call setups keyed by the caller's pseudonym, as the decision service does.

    The caller is the call's attributed identity (``services.common.identity``): PAI, else From, a
    withheld caller its trunk's bucket.
    """

    producer: Producer
    pseudonymize: Pseudonymizer
    default_region: str = "CN"

    @classmethod
    def connect(
        cls, bootstrap: str, pseudonymize: Pseudonymizer, default_region: str = "CN"
    ) -> SetupProducer:
        """An idempotent producer on the given cluster."""
        return cls(make_producer(bootstrap, "fraudmesh-loadtest"), pseudonymize, default_region)

    def send(self, record: events_pb2.CallSetupEvent) -> None:
        """Queue one setup (keyed by the caller's pseudonym) with the current trace context."""
        key = self.pseudonymize.kafka_key(attribute_setup(record.setup, self.default_region).key)
        self.send_raw(CALLS_SETUP, key, CALLS_SETUP.codec().encode(record))

    def send_raw(self, topic: Topic, key: bytes, value: bytes) -> None:
        """Queue arbitrary bytes (used for poison records), waiting for room when the queue is full."""
        while True:
            try:
                self.producer.produce(topic.name, key=key, value=value, headers=inject_trace_headers())
                break
            except BufferError:
                self.producer.poll(0.05)
        self.producer.poll(0)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until every queued record is acknowledged by the broker (acks=all)."""
        remaining = self.producer.flush(timeout_s)
        if remaining:
            raise TimeoutError(f"{remaining} records not acknowledged within {timeout_s} s")


def end_offsets(bootstrap: str, topic: Topic) -> dict[int, int]:
    """The current end offset of every partition of a topic (where new records will land)."""
    consumer = make_consumer(bootstrap, f"fraudmesh-offsets-{uuid.uuid4()}")
    try:
        offsets = {}
        for partition in range(topic.partitions):
            _low, high = consumer.get_watermark_offsets(TopicPartition(topic.name, partition), timeout=10)
            offsets[partition] = high
        return offsets
    finally:
        consumer.close()


K = TypeVar("K", bound=Hashable)


def read_matching(
    bootstrap: str,
    topic: Topic,
    since: Mapping[int, int],
    key_of: Callable[[Any], K],
    wanted: Iterable[K],
    timeout_s: float,
    alive: Callable[[], bool] = lambda: True,
) -> dict[K, Any]:
    """Records of ``topic`` written after ``since`` whose ``key_of(record)`` is ``wanted``.

    Reads until every wanted key was found, the time runs out or ``alive()`` turns false; other
    records are passed over.
    """
    codec = topic.codec()
    remaining = set(wanted)
    consumer = make_consumer(bootstrap, f"fraudmesh-reader-{uuid.uuid4().hex[:12]}")
    consumer.assign([TopicPartition(topic.name, p, offset) for p, offset in since.items()])
    found: dict[K, Any] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while remaining - found.keys() and time.monotonic() < deadline and alive():
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(f"{topic.name} read failed: {error}")
            record = codec.decode(message.value())
            key = key_of(record)
            if key in remaining:
                found[key] = record
    finally:
        consumer.close()
    return found


def read_dead_letters(
    bootstrap: str,
    consumer_name: str,
    since: Mapping[int, int],
    keys: Iterable[bytes],
    timeout_s: float = 60.0,
) -> dict[bytes, events_pb2.DeadLetter]:
    """Dead letters written after ``since`` whose record keys are among ``keys``.

    Reads until every key has been found or the time runs out; other dead letters (a worker
    replaying older poison records, say) are passed over.
    """
    topic = dead_letter_topic(consumer_name)
    return read_matching(bootstrap, topic, since, lambda letter: letter.key, keys, timeout_s)


def pseudonyms_of(numbers: Iterable[str], pseudonymize: Pseudonymizer, region: str) -> dict[str, str]:
    """Map each raw number to its pseudonym, normalising exactly as the services do."""
    return {n: pseudonymize(normalize(n, region, allow_unallocated=True).canonical) for n in numbers}


def start_group_at_end(bootstrap: str, group_id: str, topic: Topic) -> None:
    """Commit a consumer group's offsets at the topic's current end, so a new worker in that group
    handles only records produced from now on (and none produced while it is still joining)."""
    offsets = end_offsets(bootstrap, topic)
    consumer = make_consumer(bootstrap, group_id)
    try:
        consumer.commit(
            offsets=[TopicPartition(topic.name, p, offset) for p, offset in offsets.items()],
            asynchronous=False,
        )
    finally:
        consumer.close()
