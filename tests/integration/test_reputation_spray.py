"""A sprayed number space through the real reputation worker into a Redis with a small maxmemory.

Established numbers (five calls each) are folded first; then ``FRAUDMESH_SPRAY_NUMBERS`` (default
1,000,000) distinct new numbers call once each, as a robocaller's software-generated numbers do.
Every established number must keep its exact state, Redis must stay within its budget with nothing
evicted, the worker's Prometheus series must not grow, and every sprayed number must be accounted
for: held in probation or counted as forgotten. The per-number cost is printed and extrapolated to
10 M. A slow drill: ``make test-chaos`` runs it, with the other chaos drills, as its own CI step.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from confluent_kafka import TopicPartition

from loadtest.kafkaio import SetupProducer, call_setup, end_offsets
from services.common import keys
from services.common.kafka import make_consumer
from services.common.pseudonym import Pseudonymizer
from services.common.settings import Secret
from services.common.topics import CALLS_SETUP
from services.reputation.hotpath import consumer_group

from .conftest import Stack, Worker, _free_port, start_reputation_worker

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

SPRAY = int(os.environ.get("FRAUDMESH_SPRAY_NUMBERS", "1000000"))
ESTABLISHED = 2_000
CALLS_EACH = 5
MAXMEMORY_MB = 96
PER_SLOT = 16  # probation entries per slot bucket: 262,144 numbers seen once at most


@pytest.fixture
def small_redis(tmp_path: Path) -> Iterator[tuple[str, redis.Redis]]:
    """A Redis of its own: MAXMEMORY_MB, volatile-ttl, as deploy/local/redis.conf configures it."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server not found (make system-deps installs it)")
    port = _free_port()
    process = subprocess.Popen(
        [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
            "--maxmemory",
            f"{MAXMEMORY_MB}mb",
            "--maxmemory-policy",
            "volatile-ttl",
            "--hash-max-listpack-value",
            "96",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail("the spray test's Redis did not start")
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0", client
    finally:
        client.close()
        process.terminate()
        process.wait(10)


def series(worker: Worker) -> dict[str, float]:
    url = f"http://127.0.0.1:{worker.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        lines = response.read().decode().splitlines()
    out: dict[str, float] = {}
    for line in lines:
        if line.startswith("fraudmesh_"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def drained(bootstrap: str, group: str, ends: dict[int, int]) -> bool:
    consumer = make_consumer(bootstrap, group)
    try:
        committed = consumer.committed([TopicPartition(CALLS_SETUP.name, p) for p in ends], timeout=10)
    finally:
        consumer.close()
    return all(tp.offset >= ends[tp.partition] for tp in committed)


def wait_drained(stack: Stack, app_id: str, worker: Worker, timeout_s: float) -> None:
    ends = end_offsets(stack.settings.kafka_bootstrap, CALLS_SETUP)
    group = consumer_group(app_id, CALLS_SETUP)
    deadline = time.monotonic() + timeout_s
    while not drained(stack.settings.kafka_bootstrap, group, ends):
        assert worker.process.alive(), worker.process.tail()
        assert time.monotonic() < deadline, f"the worker did not drain the spray:\n{worker.process.tail()}"
        time.sleep(1.0)


def test_a_sprayed_number_space_costs_established_numbers_nothing(
    stack: Stack, small_redis: tuple[str, redis.Redis]
) -> None:
    url, client = small_redis
    key_hex = secrets.token_hex(32)
    pseudonymize = Pseudonymizer(Secret(bytes.fromhex(key_hex)))
    app_id = f"fraudmesh-reputation-spray-{uuid.uuid4().hex[:8]}"
    worker = start_reputation_worker(
        stack,
        app_id,
        {
            "FRAUDMESH_PSEUDONYM_KEY": key_hex,
            "FRAUDMESH_REDIS_URL": url,
            "FRAUDMESH_PROBATION_PER_SLOT": str(PER_SLOT),
            "FRAUDMESH_LOG_LEVEL": "WARNING",
        },
    )
    producer = SetupProducer.connect(stack.settings.kafka_bootstrap, pseudonymize)
    codec = CALLS_SETUP.codec()
    callees = [f"+86138{random.randrange(10**8):08d}" for _ in range(5_000)]
    try:
        established = list({f"+86139{random.randrange(10**8):08d}": None for _ in range(ESTABLISHED)})
        for round_ in range(CALLS_EACH):
            for number in established:
                producer.send(
                    call_setup(number, random.choice(callees), call_id=f"{app_id}-e{round_}-{number}")
                )
        producer.flush()
        wait_drained(stack, app_id, worker, 120)
        pseudonyms = [pseudonymize(n) for n in established]
        before = {p: client.hgetall(keys.number_key(p)) for p in pseudonyms}
        assert all(int(state[b"setups"]) == CALLS_EACH for state in before.values())
        series_before = series(worker)
        memory_before = client.info("memory")["used_memory"]

        started = time.monotonic()
        sprayed = 0
        seen: set[int] = set()
        while sprayed < SPRAY:
            digits = random.randrange(10**8)
            if digits in seen:
                continue
            seen.add(digits)
            number = f"+86170{digits:08d}"  # a virtual-number range, as the seeds' robocallers use
            value = codec.encode(call_setup(number, random.choice(callees), call_id=f"{app_id}-s{sprayed}"))
            producer.send_raw(CALLS_SETUP, pseudonymize.kafka_key(number), value)
            sprayed += 1
        producer.flush()
        produced_s = time.monotonic() - started
        wait_drained(stack, app_id, worker, 900)
        folded_s = time.monotonic() - started
        time.sleep(16)  # the worker's Redis gauges refresh every 15 s

        after = {p: client.hgetall(keys.number_key(p)) for p in pseudonyms}
        changed = [p for p in pseudonyms if after[p] != before[p]]
        memory = client.info("memory")
        evicted = client.info("stats")["evicted_keys"]
        metrics_after = series(worker)
        forgotten = metrics_after.get("fraudmesh_reputation_probation_forgotten_total", 0.0)
        pipe = client.pipeline(transaction=False)
        for bucket in keys.probation_keys():
            pipe.hlen(bucket)
        held = sum(pipe.execute())
        per_number = (memory["used_memory"] - memory_before) / SPRAY
        print(
            f"\nspray: {SPRAY:,} new numbers produced in {produced_s:.0f} s, folded by {folded_s:.0f} s; "
            f"{ESTABLISHED:,} established numbers, {len(changed)} changed; "
            f"Redis {memory['used_memory'] / 2**20:.1f} MB of {MAXMEMORY_MB} MB, evicted {evicted}; "
            f"probation holds {held:,}, forgot {forgotten:,.0f}; {per_number:.1f} B per sprayed number "
            f"while it fills; full at {PER_SLOT * 16_384:,} entries, it costs "
            f"{(memory['used_memory'] - memory_before) / 2**20:.1f} MB for 10 M numbers as for {SPRAY:,}"
        )
        assert not changed, f"{len(changed)} established numbers' state changed"
        assert memory["used_memory"] <= memory["maxmemory"]
        assert evicted == 0
        assert held + forgotten == SPRAY, "every sprayed number is held in probation or counted forgotten"
        assert set(metrics_after) == set(series_before), "no new Prometheus series"
        assert metrics_after["fraudmesh_reputation_redis_evicted_keys"] == 0
    finally:
        producer.producer.flush(10)
        assert worker.process.stop() == 0, worker.process.tail()
