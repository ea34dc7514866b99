"""Replay publishes a simulated dataset to the real topics, and reputation folds it into Redis."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from loadtest.kafkaio import end_offsets
from loadtest.replay import ReplayConfig, ReplayError, replay, require_loopback
from loadtest.scenario import load
from loadtest.simulate import simulate, write_dataset
from services.common import keys
from services.common.pseudonym import Pseudonymizer
from services.common.topics import CALLS_CDR, CALLS_SETUP, COMPLAINTS
from training.dataset import CALLS, read_records

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
        for t in (CALLS_SETUP, CALLS_CDR, COMPLAINTS)
    }
    config = ReplayConfig(bootstrap=stack.settings.kafka_bootstrap, pseudonymize=pseudonymize, speed=0)
    stats = asyncio.run(replay(dataset, config))
    truth = [r.call_truth for r in read_records(dataset / CALLS)]
    assert stats.published[CALLS_SETUP.name] == len(truth)
    assert stats.published[CALLS_CDR.name] == len(truth)
    assert stats.stopped_by == "end of dataset"
    after = {
        t.name: sum(end_offsets(stack.settings.kafka_bootstrap, t).values())
        for t in (CALLS_SETUP, CALLS_CDR, COMPLAINTS)
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
        pipe = redis_client.pipeline(transaction=False)
        for number in expected:
            pipe.hget(keys.number_key(pseudonymize(number)), "setups")
        seen = {n: int(v or 0) for n, v in zip(expected, pipe.execute(), strict=True)}
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
