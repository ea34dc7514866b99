"""Faust apps and workers configured the fraudmesh way, and dead-lettering of bad records.

Agents read raw bytes and decode with the topic's strict codec, because a value that fails
faust's own deserialiser is only logged and skipped; here it becomes a DeadLetter record on the
consumer's dead-letter topic, with the original bytes and the reason, before the offset moves on.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import faust
from faust.types import EventT, TopicT
from google.protobuf.timestamp_pb2 import Timestamp

from fraudmesh.v1 import events_pb2
from services.common.codec import ProtoCodec
from services.common.logs import logging_config, scrub
from services.common.settings import CommonSettings, SettingsError, load
from services.common.telemetry import setup_telemetry
from services.common.topics import Topic, dead_letter_topic

log = logging.getLogger(__name__)

S = TypeVar("S", bound=CommonSettings)


def kafka_broker_urls(bootstrap: str) -> list[str]:
    """faust's broker URLs from a Kafka bootstrap list ("h1:9092,h2:9092")."""
    return [f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip()]


def make_faust_app(settings: CommonSettings, app_id: str, **overrides: Any) -> faust.App:
    """A faust app on the aiokafka transport: at-least-once, no web server, topics pre-created.

    Topics come from services.common.topics (created by ``make topics`` or the chart's job), so
    faust never declares them with its own guesses at partitions and retention.
    """
    conf: dict[str, Any] = {
        "broker": kafka_broker_urls(settings.kafka_bootstrap),
        # faust creates its data folder at start even with the memory store; in the working
        # directory that fails on a read-only root filesystem (the chart's pods) and litters a
        # checkout, so it goes under the temp dir ($TMPDIR; an emptyDir in the chart).
        "datadir": Path(tempfile.gettempdir()) / f"{app_id}-data",
        "web_enabled": False,
        "web_bind": "127.0.0.1",
        "store": "memory://",
        "processing_guarantee": "at_least_once",
        "producer_acks": -1,
        "consumer_auto_offset_reset": "earliest",
        "topic_allow_declare": False,
        "topic_disable_leader": True,
        "autodiscover": False,
        "broker_commit_every": 1000,
        "broker_commit_interval": 1.0,
        # faust's 60 s default leaves a crashed worker's partitions unserved for a minute.
        "broker_session_timeout": 10.0,
        "broker_heartbeat_interval": 3.0,
    }
    conf.update(overrides)
    return faust.App(app_id, **conf)


def raw_topic(app: faust.App, topic: Topic) -> TopicT:
    """A faust topic handle that yields raw key/value bytes, decoded later with ``topic.codec()``."""
    return app.topic(
        topic.name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=topic.partitions,
    )


def run_stream_service(settings_class: type[S], build_app: Callable[[S], faust.App]) -> int:
    """``python -m services.<name>`` of a faust service: settings → telemetry → worker; 2 on bad settings."""
    try:
        settings = load(settings_class)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    telemetry = setup_telemetry(settings)
    try:
        run_worker(build_app(settings), settings)
    finally:
        telemetry.shutdown()
    return 0


def run_worker(app: faust.App, settings: CommonSettings) -> None:
    """Run a faust worker in the foreground with fraudmesh logging; returns when it stops."""
    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        logging_config=logging_config(settings.service_name, settings.log_level, settings.log_format),
        redirect_stdouts=False,
        quiet=True,
    )
    worker.execute_from_commandline()


class DeadLetterWriter:
    """Publishes records a consumer could not handle to that consumer's dead-letter topic."""

    def __init__(self, app: faust.App, consumer: str) -> None:
        self.consumer = consumer
        self.topic = dead_letter_topic(consumer)
        self._codec: ProtoCodec[events_pb2.DeadLetter] = self.topic.codec()
        self._handle = raw_topic(app, self.topic)

    def build(self, event: EventT[bytes], reason: str, error: BaseException) -> events_pb2.DeadLetter:
        """The DeadLetter record for one consumed event (original bytes kept untouched)."""
        message = event.message
        return dead_letter(
            self.consumer,
            (message.topic, message.partition, message.offset),
            _as_bytes(message.key),
            _as_bytes(message.value),
            reason,
            error,
        )

    async def send(self, event: EventT[bytes], reason: str, error: BaseException) -> None:
        """Publish the dead letter and wait for the broker's ack, so the record is never lost."""
        record = self.build(event, reason, error)
        pending = await self._handle.send(key=record.key or None, value=self._codec.encode(record))
        await asyncio.wait_for(asyncio.ensure_future(pending), timeout=30)
        log_dead_letter(record)


def log_dead_letter(record: events_pb2.DeadLetter) -> None:
    """The warning every dead letter gets: where the record came from and why (never its bytes)."""
    log.warning(
        "record dead-lettered",
        extra={
            "consumer": record.consumer,
            "reason": record.reason,
            "source_topic": record.source_topic,
            "source_partition": record.source_partition,
            "source_offset": record.source_offset,
        },
    )


def dead_letter(
    consumer: str, source: tuple[str, int, int], key: bytes, value: bytes, reason: str, error: BaseException
) -> events_pb2.DeadLetter:
    """The DeadLetter record of one consumed record: ``source`` is (topic, partition, offset)."""
    stamp = Timestamp()
    stamp.GetCurrentTime()
    detail = str(getattr(error, "detail", "") or error)
    topic, partition, offset = source
    return events_pb2.DeadLetter(
        consumer=consumer,
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        key=key,
        value=value,
        reason=reason,
        error_type=type(error).__name__,
        detail=scrub(detail)[:1024],
        dead_lettered_at=stamp,
    )


def _as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return bytes(value)
