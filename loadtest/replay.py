"""Replay a dataset into the running mesh: events to Kafka, setups to Decide, in compressed time.

Simulated time is mapped to wall time by ``speed`` (1440 = a simulated day in a minute) up to
``paced_until_ms`` (the scenario's end: complaints filed days later then follow flat out); the run is
bounded by an event count and a wall-clock limit and stops by itself. With ``decide`` set (a
loopback address only) every setup goes to DecisionService.Decide — which publishes the audit record
itself — and the answers are written to ``outcomes.fmds`` for the report; without it, setups go
straight to calls.setup.v1, so replay works before the decision service exists. CDRs, complaints
and the home network's presence reports (subscribers.presence.v1, keyed by the subscriber's number)
always go to their topics, at their simulated time like every other event. Audio metadata carries
no audio: segments rendered beforehand (``loadtest.audio.attach``, passed in ``ReplayConfig.audio``)
go to audio.segments.v1 in their place; the rest are skipped.

A dataset generated with a lead-in (``ReplayConfig.scored_from_ms``) replays it first: every event
before that moment goes straight to its topic, flat out and never to Decide — the setups as the
audit-shaped records reputation folds, like the trainer folds a lead-in without scoring it — then
the producer is flushed, ``after_lead_in`` runs (the main job waits there until reputation has
folded the lead-in) and the scored window replays as above, paced from its own first event.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
from confluent_kafka import Producer

from fraudmesh.v1 import dataset_pb2, decision_pb2, decision_pb2_grpc
from services.common.identity import attribute_record
from services.common.kafka import inject_trace_headers, make_producer
from services.common.phone import InvalidNumberError, normalize
from services.common.pseudonym import Pseudonymizer
from services.common.topics import (
    AUDIO_SEGMENTS,
    CALLS_CDR,
    CALLS_SETUP,
    COMPLAINTS,
    SUBSCRIBERS_PRESENCE,
    Topic,
)
from training.dataset import EVENTS, OUTCOMES, RecordWriter, read_records

REPLAY_RECORD = "replay.json"
PUBLISHED = {
    "setup": CALLS_SETUP,
    "cdr": CALLS_CDR,
    "complaint": COMPLAINTS,
    "presence": SUBSCRIBERS_PRESENCE,
}

# A decision restarted by the mesh's supervisor is back on the same loopback port within seconds;
# gRPC's default reconnect backoff (growing to 120 s) would leave Decide failing long after that.
RECONNECT = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 1000))


class ReplayError(ValueError):
    """Replay was asked for something it must not do (e.g. a non-loopback target)."""


def require_loopback(address: str) -> None:
    """Refuse any target that is not on this machine: replay load never leaves loopback."""
    host = address.rsplit(":", 1)[0].strip("[]")
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as exc:
        raise ReplayError(f"cannot resolve {host!r}: {exc}") from None
    for ip in resolved:
        if not ipaddress.ip_address(ip).is_loopback:
            raise ReplayError(
                f"{address} resolves to {ip}, which is not loopback; replay only targets this machine"
            )


@dataclass
class ReplayStats:
    """What a replay did."""

    published: dict[str, int] = field(default_factory=dict)
    decided: int = 0
    decide_errors: dict[str, int] = field(default_factory=dict)
    skipped_audio: int = 0
    audio_segments: int = 0
    unkeyable: int = 0
    wall_s: float = 0.0
    simulated_s: float = 0.0
    stopped_by: str = "end of dataset"
    lead_in: dict[str, int] = field(default_factory=dict)  # the lead-in's share of ``published``
    lead_in_audio: list[str] = field(default_factory=list)  # segment ids published in the lead-in
    lead_in_wall_s: float = 0.0  # publishing the lead-in until Kafka acknowledged it
    settle_s: float = 0.0  # in ``after_lead_in``

    @property
    def events(self) -> int:
        """Records published to Kafka plus setups sent to Decide."""
        return sum(self.published.values()) + self.decided + sum(self.decide_errors.values())

    @property
    def scored_events(self) -> int:
        """Events of the scored window (after the lead-in)."""
        return self.events - sum(self.lead_in.values())

    @property
    def scored_wall_s(self) -> float:
        """Wall time of the scored window."""
        return self.wall_s - self.lead_in_wall_s - self.settle_s


@dataclass
class ReplayConfig:
    """Where and how fast to replay."""

    bootstrap: str
    pseudonymize: Pseudonymizer
    default_region: str = "CN"
    speed: float = 0.0  # simulated seconds per wall second; 0 = as fast as possible
    max_events: int = 0
    max_seconds: float = 600.0
    decide: str = ""
    decide_timeout_s: float = 0.05
    concurrency: int = 64
    audio: Mapping[str, bytes] = field(default_factory=dict)  # segment id → encoded AudioSegment
    scored_from_ms: int = 0  # events before this are the lead-in: straight to Kafka, flat out
    # events after this (late complaints and CDRs past the scenario's end) go flat out too; 0 = none
    paced_until_ms: int = 0
    offered_calls_per_s: float = 0.0  # what the pacing offers on average (for the record); 0 = flat out
    # why to stop early, checked before each event ("" = go on): the main job's mesh broke for good
    abort: Callable[[], str] | None = None


def _key_for(kind: str, message: Any, region: str, pseudonymize: Pseudonymizer) -> bytes | None:
    """The record's Kafka key: the pseudonym of the call's attributed identity (services.common.identity),
    of the reported number for a complaint, of the subscriber's number for a presence report; None
    when it names no usable number."""
    try:
        if kind == "complaint":
            canonical = normalize(message.reported_number, region, allow_unallocated=True).canonical
        elif kind == "presence":
            canonical = normalize(message.number, region, allow_unallocated=True).canonical
        else:
            canonical = attribute_record(message.setup if kind == "setup" else message, region).key
    except InvalidNumberError:
        return None
    return pseudonymize.kafka_key(canonical)


async def replay(
    dataset: Path,
    config: ReplayConfig,
    progress: Callable[[ReplayStats], None] | None = None,
    after_lead_in: Callable[[ReplayStats], None] | None = None,
) -> ReplayStats:
    """Replay ``dataset`` into Kafka (and Decide); returns counts and timings.

    ``after_lead_in`` runs in a worker thread once the lead-in (events before
    ``config.scored_from_ms``) is acknowledged by Kafka, before the first scored event is sent.
    """
    if config.decide:
        require_loopback(config.decide)
    host = config.bootstrap.split(",")[0]
    require_loopback(host)
    producer = make_producer(config.bootstrap, "fraudmesh-replay", **{"linger.ms": 20, "batch.size": 1 << 20})
    stats = ReplayStats()
    started = time.monotonic()
    first_sim_ms: int | None = None
    in_lead_in = config.scored_from_ms > 0
    paced_from, paced_from_ms = started, 0  # pacing counts from the scored window's first event
    channel: grpc.aio.Channel | None = None
    stub: decision_pb2_grpc.DecisionServiceStub | None = None
    outcomes: RecordWriter | None = None
    in_flight: set[asyncio.Task[None]] = set()
    slots = asyncio.Semaphore(config.concurrency)
    (dataset / OUTCOMES).unlink(missing_ok=True)
    if config.decide:
        channel = grpc.aio.insecure_channel(config.decide, options=RECONNECT)
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        outcomes = RecordWriter(dataset / OUTCOMES)

    async def decide(record: dataset_pb2.DatasetRecord) -> None:
        assert stub is not None
        assert outcomes is not None
        setup = record.setup.setup
        sent = time.perf_counter()
        outcome = dataset_pb2.ReplayOutcome(call_id=setup.call_id, sent_at_ms=int(time.time() * 1000))
        try:
            reply = await stub.Decide(  # type: ignore[misc]  # the stub is typed for sync channels
                decision_pb2.DecideRequest(setup=setup), timeout=config.decide_timeout_s
            )
            outcome.decision.CopyFrom(reply.decision)
            stats.decided += 1
        except grpc.aio.AioRpcError as exc:
            outcome.error = exc.code().name
            stats.decide_errors[outcome.error] = stats.decide_errors.get(outcome.error, 0) + 1
        finally:
            outcome.client_latency_us = int((time.perf_counter() - sent) * 1e6)
            outcomes.write(dataset_pb2.DatasetRecord(time_ms=record.time_ms, outcome=outcome))
            slots.release()

    try:
        for count, record in enumerate(read_records(dataset / EVENTS)):
            if config.max_events and count >= config.max_events:
                stats.stopped_by = f"max events ({config.max_events})"
                break
            if time.monotonic() - started > config.max_seconds:
                stats.stopped_by = f"max seconds ({config.max_seconds:.0f})"
                break
            if config.abort is not None and (reason := config.abort()):
                stats.stopped_by = f"abort ({reason})"
                break
            if first_sim_ms is None:
                first_sim_ms = paced_from_ms = record.time_ms
            stats.simulated_s = (record.time_ms - first_sim_ms) / 1000
            if in_lead_in and record.time_ms >= config.scored_from_ms:
                in_lead_in = False
                await _end_lead_in(producer, stats, started, after_lead_in)
                paced_from, paced_from_ms = time.monotonic(), record.time_ms
            paced = not config.paced_until_ms or record.time_ms <= config.paced_until_ms
            if config.speed > 0 and not in_lead_in and paced:
                wall = time.monotonic() - paced_from
                due = (record.time_ms - paced_from_ms) / 1000 / config.speed
                if due > wall + 0.002:
                    producer.poll(0)
                    await asyncio.sleep(due - wall)
            kind = record.WhichOneof("record")
            if kind == "setup" and stub is not None and not in_lead_in:
                await slots.acquire()
                task = asyncio.create_task(decide(record))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                continue
            topic: Topic | None = PUBLISHED.get(kind or "")
            if kind == "audio":
                rendered = config.audio.get(record.audio.segment.segment_id)
                if rendered is None:
                    stats.skipped_audio += 1
                    continue
                topic, message, value = AUDIO_SEGMENTS, record.audio.segment, rendered
                stats.audio_segments += 1
                if in_lead_in:
                    stats.lead_in_audio.append(message.segment_id)
            elif topic is not None:
                message = getattr(record, kind or "")
                value = topic.codec().encode(message)
            else:
                continue
            key = _key_for(kind or "", message, config.default_region, config.pseudonymize)
            if key is None:
                stats.unkeyable += 1
                key = b""
            while True:
                try:
                    producer.produce(topic.name, key=key or None, value=value, headers=inject_trace_headers())
                    break
                except BufferError:
                    producer.poll(0.01)
                    await asyncio.sleep(0)
            stats.published[topic.name] = stats.published.get(topic.name, 0) + 1
            if in_lead_in:
                stats.lead_in[topic.name] = stats.lead_in.get(topic.name, 0) + 1
            if count % 2000 == 0:
                producer.poll(0)
                await asyncio.sleep(0)
                if progress is not None:
                    progress(stats)
        if in_flight:
            await asyncio.gather(*in_flight)
        _flush(producer)
    finally:
        if channel is not None:
            await channel.close()
        if outcomes is not None:
            outcomes.close()
    stats.wall_s = time.monotonic() - started
    _write_run_record(dataset, config, stats)
    return stats


def _flush(producer: Producer) -> None:
    remaining = producer.flush(30)
    if remaining:
        raise RuntimeError(f"{remaining} records were not acknowledged by Kafka")


async def _end_lead_in(
    producer: Producer,
    stats: ReplayStats,
    started: float,
    after_lead_in: Callable[[ReplayStats], None] | None,
) -> None:
    """Wait until Kafka acknowledged the lead-in, then run ``after_lead_in`` off the event loop."""
    _flush(producer)
    stats.lead_in_wall_s = time.monotonic() - started
    if after_lead_in is not None:
        await asyncio.to_thread(after_lead_in, stats)
    stats.settle_s = time.monotonic() - started - stats.lead_in_wall_s


def _write_run_record(dataset: Path, config: ReplayConfig, stats: ReplayStats) -> None:
    """replay.json: how the last replay ran, so a report can tell "stopped early" from "lost"."""
    record = {
        "finished": datetime.now().astimezone().isoformat(timespec="seconds"),
        "speed": config.speed,
        "paced_until_ms": config.paced_until_ms,
        "offered_calls_per_s": round(config.offered_calls_per_s, 1),
        "concurrency": config.concurrency,
        "max_events": config.max_events,
        "max_seconds": config.max_seconds,
        "decide": config.decide,
        "stopped_by": stats.stopped_by,
        "wall_s": round(stats.wall_s, 3),
        "simulated_s": round(stats.simulated_s, 3),
        "published": stats.published,
        "decided": stats.decided,
        "decide_errors": stats.decide_errors,
        "audio_segments": stats.audio_segments,
        "skipped_audio": stats.skipped_audio,
        "unkeyable": stats.unkeyable,
        "scored_from_ms": config.scored_from_ms,
        "lead_in_published": stats.lead_in,
        "lead_in_audio_segments": len(stats.lead_in_audio),
        "lead_in_wall_s": round(stats.lead_in_wall_s, 3),
        "settle_s": round(stats.settle_s, 3),
    }
    (dataset / REPLAY_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
