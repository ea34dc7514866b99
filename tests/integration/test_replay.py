"""Replay publishes a simulated dataset to the real topics, and reputation folds it into Redis."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis
from confluent_kafka import KafkaError, TopicPartition

from fraudmesh.v1 import common_pb2, decision_pb2, decision_pb2_grpc, verdicts_pb2
from loadtest.jobs import generate
from loadtest.kafkaio import end_offsets
from loadtest.replay import ReplayConfig, ReplayError, ReplayStats, replay, require_loopback
from loadtest.report import scored_from_ms
from loadtest.scenario import load
from loadtest.simulate import simulate, write_dataset
from services.common.featurestore import held_counts
from services.common.kafka import make_consumer
from services.common.phone import normalize
from services.common.pseudonym import Pseudonymizer
from services.common.topics import CALLS_CDR, CALLS_SETUP, COMPLAINTS, SUBSCRIBERS_PRESENCE
from training.dataset import CALLS, EVENTS, OUTCOMES, Manifest, read_records

from .conftest import Stack, Worker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("replay")
    write_dataset(simulate(load("ci")), folder)
    return folder


def test_replay_refuses_targets_off_this_machine() -> None:
    require_loopback("127.0.0.1:19092")
    require_loopback("localhost:50051")
    with pytest.raises(ReplayError, match="not loopback"):
        require_loopback("192.0.2.10:9092")


def test_replay_reaches_kafka_and_reputation_counts_every_call(
    reputation_worker: Worker,
    stack: Stack,
    dataset: Path,
    redis_client: redis.Redis,
    pseudonymize: Pseudonymizer,
) -> None:
    before = {
        t.name: sum(end_offsets(stack.settings.kafka_bootstrap, t).values())
        for t in (CALLS_SETUP, CALLS_CDR, COMPLAINTS, SUBSCRIBERS_PRESENCE)
    }
    config = ReplayConfig(bootstrap=stack.settings.kafka_bootstrap, pseudonymize=pseudonymize, speed=0)
    stats = asyncio.run(replay(dataset, config))
    truth = [r.call_truth for r in read_records(dataset / CALLS)]
    assert stats.published[CALLS_SETUP.name] == len(truth)
    assert stats.published[CALLS_CDR.name] == len(truth)
    assert stats.stopped_by == "end of dataset"
    after = {
        t.name: sum(end_offsets(stack.settings.kafka_bootstrap, t).values())
        for t in (CALLS_SETUP, CALLS_CDR, COMPLAINTS, SUBSCRIBERS_PRESENCE)
    }
    for name, count in stats.published.items():
        assert after[name] - before[name] >= count

    per_number = Counter(call.presented_number for call in truth)
    sample = [number for number, _ in per_number.most_common(15)] + list(per_number)[:15]
    invalid = {call.presented_number for call in truth if call.actor_kind == 10}  # INVALID_NUMBER_SPOOFER
    expected = {n: per_number[n] for n in sample if n not in invalid}
    deadline = time.monotonic() + 120
    seen: dict[str, int] = {}
    while time.monotonic() < deadline:
        held = held_counts(redis_client, [pseudonymize(number) for number in expected], ["setups"])
        seen = {n: counts[0] for n, counts in zip(expected, held, strict=True)}
        if seen == expected:
            break
        assert reputation_worker.process.alive(), reputation_worker.process.tail()
        time.sleep(0.5)
    assert seen == expected


def test_replay_stops_by_itself_at_its_bounds(
    stack: Stack, dataset: Path, pseudonymize: Pseudonymizer
) -> None:
    config = ReplayConfig(
        bootstrap=stack.settings.kafka_bootstrap, pseudonymize=pseudonymize, speed=0, max_events=500
    )
    stats = asyncio.run(replay(dataset, config))
    assert stats.stopped_by == "max events (500)"
    assert stats.events + stats.skipped_audio == 500
    paced = ReplayConfig(
        bootstrap=stack.settings.kafka_bootstrap, pseudonymize=pseudonymize, speed=60.0, max_seconds=2.0
    )
    started = time.monotonic()
    stats = asyncio.run(replay(dataset, paced))
    assert stats.stopped_by.startswith("max seconds")
    assert time.monotonic() - started < 10
    assert stats.simulated_s <= 60.0 * 2.5


class RecordingDecisionService(decision_pb2_grpc.DecisionServiceServicer):
    """A DecisionService that allows every call and remembers which calls it was asked about."""

    def __init__(self) -> None:
        self.call_ids: list[str] = []

    async def Decide(
        self, request: decision_pb2.DecideRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> decision_pb2.DecideResponse:
        self.call_ids.append(request.setup.call_id)
        decision = verdicts_pb2.Decision(call_id=request.setup.call_id, action=common_pb2.ACTION_ALLOW)
        return decision_pb2.DecideResponse(decision=decision)

    async def DecideStream(
        self,
        request_iterator: AsyncIterator[decision_pb2.DecideRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[decision_pb2.DecideResponse]:
        async for request in request_iterator:
            yield await self.Decide(request, context)


async def _replay_against(
    service: RecordingDecisionService, dataset: Path, config: ReplayConfig, settle: Any
) -> ReplayStats:
    server = grpc.aio.server()
    decision_pb2_grpc.add_DecisionServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        config.decide = f"127.0.0.1:{port}"
        return await replay(dataset, config, after_lead_in=settle)
    finally:
        await server.stop(None)


def test_a_lead_in_goes_straight_to_kafka_and_only_the_scored_window_to_decide(
    stack: Stack, tmp_path: Path, pseudonymize: Pseudonymizer
) -> None:
    dataset = tmp_path / "lead-in"
    assert generate(argparse.Namespace(scenario="ci", out=dataset, seed=None, lead_in_hours=2.0)) == 0
    scored_from = scored_from_ms(Manifest.read(dataset))
    events = list(read_records(dataset / EVENTS))
    setups = [r for r in events if r.WhichOneof("record") == "setup"]
    presence = [r for r in events if r.WhichOneof("record") == "presence"]
    lead_in = [r.setup.setup.call_id for r in setups if r.time_ms < scored_from]
    scored = [r.setup.setup.call_id for r in setups if r.time_ms >= scored_from]
    assert lead_in
    assert scored
    bootstrap = stack.settings.kafka_bootstrap
    before = sum(end_offsets(bootstrap, CALLS_SETUP).values())
    service = RecordingDecisionService()
    at_settle: dict[str, int] = {}

    def settle(stats: ReplayStats) -> None:
        at_settle["decided"] = len(service.call_ids)
        at_settle["setups_in_kafka"] = sum(end_offsets(bootstrap, CALLS_SETUP).values()) - before
        at_settle["lead_in_setups"] = stats.lead_in[CALLS_SETUP.name]

    config = ReplayConfig(
        bootstrap=bootstrap,
        pseudonymize=pseudonymize,
        speed=0,
        decide_timeout_s=10.0,
        concurrency=8,
        scored_from_ms=scored_from,
    )
    stats = asyncio.run(_replay_against(service, dataset, config, settle))
    assert at_settle == {"decided": 0, "setups_in_kafka": len(lead_in), "lead_in_setups": len(lead_in)}
    assert stats.decide_errors == {}
    assert sorted(service.call_ids) == sorted(scored)
    assert stats.published[CALLS_SETUP.name] == len(lead_in)
    assert stats.published[SUBSCRIBERS_PRESENCE.name] == len(presence)
    assert stats.lead_in[SUBSCRIBERS_PRESENCE.name] == sum(r.time_ms < scored_from for r in presence) > 0
    assert stats.lead_in[SUBSCRIBERS_PRESENCE.name] < len(presence), "the scored window's go out in it"
    assert stats.decided == len(scored)
    outcomes = [r.outcome.call_id for r in read_records(dataset / OUTCOMES)]
    assert sorted(outcomes) == sorted(scored)
    assert stats.stopped_by == "end of dataset"
    assert stats.lead_in_wall_s > 0
    assert stats.scored_events == stats.events - sum(stats.lead_in.values())


def test_presence_reports_reach_their_topic_keyed_by_the_subscriber(
    stack: Stack, dataset: Path, pseudonymize: Pseudonymizer
) -> None:
    reports = {
        r.presence.event_id: r.presence
        for r in read_records(dataset / EVENTS)
        if r.WhichOneof("record") == "presence"
    }
    assert reports
    bootstrap = stack.settings.kafka_bootstrap
    since = end_offsets(bootstrap, SUBSCRIBERS_PRESENCE)
    config = ReplayConfig(bootstrap=bootstrap, pseudonymize=pseudonymize, speed=0)
    stats = asyncio.run(replay(dataset, config))
    assert stats.published[SUBSCRIBERS_PRESENCE.name] == len(reports)
    codec = SUBSCRIBERS_PRESENCE.codec()
    consumer = make_consumer(bootstrap, "fraudmesh-test-presence")
    consumer.assign([TopicPartition(SUBSCRIBERS_PRESENCE.name, p, o) for p, o in since.items()])
    keyed: dict[str, bytes | None] = {}
    deadline = time.monotonic() + 60
    try:
        while len(keyed) < len(reports) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                assert error.code() == KafkaError._PARTITION_EOF, error
                continue
            report = codec.decode(message.value())
            if report.event_id in reports:
                assert report == reports[report.event_id]
                keyed[report.event_id] = message.key()
    finally:
        consumer.close()
    assert keyed.keys() == reports.keys()
    for event_id, key in keyed.items():
        number = normalize(reports[event_id].number, "CN", allow_unallocated=True).canonical
        assert key == pseudonymize.kafka_key(number)
