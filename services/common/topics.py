"""The one declarative list of Kafka topics: name, message type, partitions, retention, cleanup.

Adding a topic (or a consumer and its dead-letter topic): follow CONTRIBUTING.md, "A Kafka topic".

Every topic carries exactly one protobuf message type. Each consumer has its own dead-letter
topic. ``python -m services.common.topics`` creates what is missing and reconciles configs, so
the local stack, CI and the Helm chart's topic hook Job all read the same list.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)
from google.protobuf.message import Message

from fraudmesh.v1 import events_pb2
from services.common.codec import ProtoCodec

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
CALL_PARTITIONS = 8  # calls, CDRs, complaints, audio verdicts and presence are co-partitioned by number key


@dataclass(frozen=True)
class Topic:
    """One Kafka topic and the single message type its records carry."""

    name: str
    message_type: type[Message]
    partitions: int
    retention_ms: int
    cleanup_policy: str = "delete"
    required_fields: tuple[str, ...] = ()
    extra_config: dict[str, str] = field(default_factory=dict)

    def codec(self) -> ProtoCodec[Any]:
        """A strict codec for this topic's message type."""
        return ProtoCodec(self.message_type, self.required_fields)

    def config(self) -> dict[str, str]:
        """Topic-level Kafka configs."""
        return {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            **self.extra_config,
        }


CALLS_SETUP = Topic(
    "calls.setup.v1",
    events_pb2.CallSetupEvent,
    CALL_PARTITIONS,
    7 * DAY_MS,
    required_fields=("setup.call_id", "setup.tenant"),  # no caller ID = withheld (services.common.identity)
)
CALLS_CDR = Topic(
    "calls.cdr.v1",
    events_pb2.Cdr,
    CALL_PARTITIONS,
    7 * DAY_MS,
    required_fields=("call_id", "tenant"),
)
COMPLAINTS = Topic(
    "complaints.v1",
    events_pb2.Complaint,
    CALL_PARTITIONS,
    30 * DAY_MS,
    required_fields=("complaint_id", "tenant", "reported_number"),
)
AUDIO_SEGMENTS = Topic(
    "audio.segments.v1",
    events_pb2.AudioSegment,
    4,
    1 * DAY_MS,
    required_fields=("segment_id", "tenant"),
    extra_config={"max.message.bytes": str(2 * 1024 * 1024)},
)
AUDIO_VERDICTS = Topic(
    "audio.verdicts.v1",
    events_pb2.AudioVerdict,
    CALL_PARTITIONS,
    30 * DAY_MS,
    required_fields=("segment_id", "tenant"),
)
# The home network's reports on the carrier's own subscribers (registration changes, periodic
# re-registration, on-net call start/end), keyed by the pseudonym of the subscriber's number and
# co-partitioned with the caller-keyed topics. A day covers any redelivery; the state folded from it
# lives in Redis for hours (services.reputation.settings.presence_ttl_s).
SUBSCRIBERS_PRESENCE = Topic(
    "subscribers.presence.v1",
    events_pb2.SubscriberPresence,
    CALL_PARTITIONS,
    1 * DAY_MS,
    required_fields=("event_id", "tenant", "number"),
)
# Notices to a home subscriber whose number was presented on a proven spoof to someone they know
# (decision publishes them for tenants with `notify_impersonated`), keyed by the subscriber's
# pseudonym; an operator's notifier turns them into an SMS. A week covers a notifier's outage.
SUBSCRIBERS_NOTICES = Topic(
    "subscribers.notices.v1",
    events_pb2.ImpersonationNotice,
    CALL_PARTITIONS,
    7 * DAY_MS,
    required_fields=("notice_id", "tenant", "subscriber_pseudonym"),
)

# Origination's certificate feed (services.origination.certfeed): every validated chain, keyed by
# its x5u (URLs are not personal data), compacted so a starting decision process reads each URL's
# latest entry; and the misses decision processes report. One partition each: a few thousand
# certificates, read whole by every reader. No tombstones are needed: every entry carries its own
# expiry (a chain at most origination's 1-day cache max-age, a refusal its negative TTL, at most a
# day) and readers ignore expired ones. Compaction decides what a reader sees; deletion after 7 days
# only drops entries long expired, and bounds the topic, whose keys (refused x5u URLs included)
# come from unauthenticated SIP headers.
STI_CERTS = Topic(
    "sti.certs.v1",
    events_pb2.CertificateChain,
    1,
    7 * DAY_MS,
    cleanup_policy="compact,delete",
    required_fields=("x5u",),
    extra_config={"min.cleanable.dirty.ratio": "0.1", "segment.ms": str(HOUR_MS)},
)
STI_CERT_MISSES = Topic(
    "sti.certs.misses.v1",
    events_pb2.CertificateMiss,
    1,
    1 * DAY_MS,
    required_fields=("x5u",),
)

CONSUMERS = ("reputation", "origination", "audio")


def dead_letter_topic(consumer: str) -> Topic:
    """The dead-letter topic of one consumer; it keeps the original bytes for 14 days."""
    if consumer not in CONSUMERS:
        raise ValueError(f"unknown consumer {consumer!r}; add it to CONSUMERS")
    return Topic(
        f"dlq.{consumer}.v1",
        events_pb2.DeadLetter,
        1,
        14 * DAY_MS,
        required_fields=("consumer", "source_topic", "reason"),
        extra_config={"max.message.bytes": str(4 * 1024 * 1024)},
    )


# What reputation folds (one agent each, services/reputation/agents.py): the one list every job,
# test and benchmark that starts a reputation consumer group at the topics' end goes by.
REPUTATION_INPUTS: tuple[Topic, ...] = (
    CALLS_SETUP,
    CALLS_CDR,
    COMPLAINTS,
    AUDIO_VERDICTS,
    SUBSCRIBERS_PRESENCE,
)

TOPICS: tuple[Topic, ...] = (
    CALLS_SETUP,
    CALLS_CDR,
    COMPLAINTS,
    AUDIO_SEGMENTS,
    AUDIO_VERDICTS,
    SUBSCRIBERS_PRESENCE,
    SUBSCRIBERS_NOTICES,
    STI_CERTS,
    STI_CERT_MISSES,
    *(dead_letter_topic(consumer) for consumer in CONSUMERS),
)


def by_name(name: str) -> Topic:
    """Look a topic up by name."""
    for topic in TOPICS:
        if topic.name == name:
            return topic
    raise KeyError(name)


def ensure_topics(bootstrap: str, timeout_s: float = 60.0) -> dict[str, str]:
    """Create missing topics and reconcile configs; returns topic name → what was done.

    Waits up to ``timeout_s`` for the broker to answer, so it can run right after the broker starts.
    An existing topic with fewer partitions is grown; one with more is reported, never shrunk.
    """
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            metadata = admin.list_topics(timeout=5)
            if metadata.brokers:
                break
        except KafkaException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"no Kafka broker answered at {bootstrap} within {timeout_s:.0f} s")
        time.sleep(1)
    outcome: dict[str, str] = {}
    existing = metadata.topics
    missing = [t for t in TOPICS if t.name not in existing]
    if missing:
        futures = admin.create_topics(
            [NewTopic(t.name, t.partitions, 1, config=t.config()) for t in missing],
            operation_timeout=30,
        )
        for name, future in futures.items():
            future.result()
            outcome[name] = "created"
    for topic in TOPICS:
        if topic.name in outcome:
            continue
        have = len(existing[topic.name].partitions)
        if have < topic.partitions:
            admin.create_partitions([NewPartitions(topic.name, topic.partitions)])[topic.name].result()
            outcome[topic.name] = f"grown {have}→{topic.partitions} partitions"
        elif have > topic.partitions:
            outcome[topic.name] = f"has {have} partitions (> {topic.partitions} declared; left alone)"
        else:
            outcome[topic.name] = "ok"
    resources = [
        ConfigResource(
            "topic",
            t.name,
            incremental_configs=[
                ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                for key, value in t.config().items()
            ],
        )
        for t in TOPICS
    ]
    for future in admin.incremental_alter_configs(resources).values():
        future.result()
    return outcome


def main(argv: list[str] | None = None) -> int:
    """CLI: create or reconcile every declared topic and print what was done."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    try:
        outcome = ensure_topics(args.bootstrap, args.timeout)
    except (TimeoutError, KafkaException) as exc:
        print(f"topics: {exc}", file=sys.stderr)
        return 1
    width = max(len(name) for name in outcome)
    for topic in TOPICS:
        print(
            f"  {topic.name:<{width}}  {topic.partitions:>2}p  {topic.message_type.DESCRIPTOR.name:<15}"
            f"  {outcome[topic.name]}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
