"""Call setups produced with confluent-kafka are folded into Redis by a real faust worker.

Exercised at the process boundaries only: records into Kafka, state out of Redis, dead letters
out of Kafka, metrics out of HTTP.
"""

from __future__ import annotations

import random
import time
import urllib.request
from collections.abc import Callable

import pytest
import redis

from fraudmesh.v1 import events_pb2
from loadtest.kafkaio import SetupProducer, call_setup, end_offsets, read_dead_letters
from services.common import keys
from services.common.phone import normalize
from services.common.pseudonym import Pseudonymizer
from services.common.topics import CALLS_SETUP, dead_letter_topic

from .conftest import Stack, Worker

pytestmark = pytest.mark.integration

WAIT_S = 90.0


def fresh_cn_mobile() -> str:
    """A valid CN mobile number nobody else in this run uses."""
    while True:
        number = "139" + f"{random.randrange(10**8):08d}"
        if normalize(number, "CN").valid:
            return number


def wait_for(condition: Callable[[], bool], what: str, worker: Worker, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        if not worker.process.alive():
            pytest.fail(f"worker died while waiting for {what}:\n{worker.process.tail()}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; worker log tail:\n{worker.process.tail()}")


def setups_of(client: redis.Redis, pseudonym: str) -> int:
    return int(client.hget(keys.number_key(pseudonym), "setups") or 0)


def test_call_setup_lands_in_redis(
    reputation_worker: Worker, producer: SetupProducer, redis_client: redis.Redis, pseudonymize: Pseudonymizer
) -> None:
    caller = fresh_cn_mobile()
    event_ms = int(time.time() * 1000) - 5000
    producer.send(call_setup(caller, fresh_cn_mobile(), event_ms=event_ms))
    producer.flush()
    pseudonym = pseudonymize(normalize(caller, "CN").canonical)
    held = keys.probation_key(pseudonym), keys.digest(pseudonym)

    wait_for(lambda: redis_client.hexists(*held), "the first call held in probation", reputation_worker)
    assert not redis_client.exists(keys.number_key(pseudonym)), "a number seen once costs no full state"

    producer.send(call_setup(caller, fresh_cn_mobile(), event_ms=event_ms + 1000))
    producer.flush()
    wait_for(lambda: setups_of(redis_client, pseudonym) == 2, "the number promoted", reputation_worker)
    state = redis_client.hgetall(keys.number_key(pseudonym))
    assert int(state[b"first_seen_ms"]) == event_ms
    assert int(state[b"last_seen_ms"]) == event_ms + 1000
    assert not redis_client.hexists(*held)
    assert 0 < redis_client.ttl(keys.number_key(pseudonym)) <= 35 * 86_400


def test_duplicate_event_counts_once(
    reputation_worker: Worker, producer: SetupProducer, redis_client: redis.Redis, pseudonymize: Pseudonymizer
) -> None:
    caller = fresh_cn_mobile()
    first = call_setup(caller, fresh_cn_mobile())
    for _ in range(3):
        producer.send(first)
    producer.send(call_setup(caller, fresh_cn_mobile()))
    producer.flush()
    pseudonym = pseudonymize(normalize(caller, "CN").canonical)

    # Same key → same partition → in order: once the second call is counted, all copies were seen.
    wait_for(lambda: setups_of(redis_client, pseudonym) >= 2, "both calls counted", reputation_worker)
    time.sleep(1.0)
    assert setups_of(redis_client, pseudonym) == 2


def test_the_same_number_in_other_formats_is_the_same_caller(
    reputation_worker: Worker, producer: SetupProducer, redis_client: redis.Redis, pseudonymize: Pseudonymizer
) -> None:
    caller = fresh_cn_mobile()
    for presented in (caller, "+86" + caller, "0086 " + caller, f"sip:+86{caller}@sbc.example;user=phone"):
        producer.send(call_setup(presented, fresh_cn_mobile()))
    producer.flush()
    pseudonym = pseudonymize(normalize(caller, "CN").canonical)
    wait_for(lambda: setups_of(redis_client, pseudonym) == 4, "four setups for one caller", reputation_worker)


def test_poison_records_go_to_the_dead_letter_topic_with_a_reason(
    reputation_worker: Worker, stack: Stack, producer: SetupProducer
) -> None:
    since = end_offsets(stack.settings.kafka_bootstrap, dead_letter_topic("reputation"))
    tag = f"poison-{random.randrange(10**9)}"
    garbage = b"\xff\xfe definitely not protobuf"
    bad_number = call_setup("call-me-maybe", fresh_cn_mobile())
    no_call_id = events_pb2.CallSetupEvent()
    no_call_id.setup.tenant = "demo-cn"
    no_call_id.setup.calling_number = fresh_cn_mobile()
    records = {
        f"{tag}-garbage".encode(): garbage,
        f"{tag}-number".encode(): CALLS_SETUP.codec().encode(bad_number),
        f"{tag}-missing".encode(): no_call_id.SerializeToString(),
    }
    for key, value in records.items():
        producer.send_raw(CALLS_SETUP, key, value)
    producer.flush()

    ours = read_dead_letters(stack.settings.kafka_bootstrap, "reputation", since, records, timeout_s=WAIT_S)
    assert set(ours) == set(records), reputation_worker.process.tail()
    assert ours[f"{tag}-garbage".encode()].reason == "decode_error"
    assert ours[f"{tag}-number".encode()].reason == "invalid_calling_number"
    assert ours[f"{tag}-missing".encode()].reason == "missing_field"
    for key, letter in ours.items():
        assert letter.consumer == "reputation"
        assert letter.source_topic == CALLS_SETUP.name
        assert letter.source_offset >= 0
        assert letter.value == records[key]
        assert letter.error_type
    assert no_call_id.setup.calling_number not in ours[f"{tag}-missing".encode()].detail


def test_keys_are_pseudonymous_and_all_expire(
    reputation_worker: Worker, producer: SetupProducer, redis_client: redis.Redis, pseudonymize: Pseudonymizer
) -> None:
    caller = fresh_cn_mobile()
    for _ in range(2):
        producer.send(call_setup(caller, fresh_cn_mobile()))
    producer.flush()
    pseudonym = pseudonymize(normalize(caller, "CN").canonical)
    wait_for(lambda: setups_of(redis_client, pseudonym) == 2, "the setups in Redis", reputation_worker)

    written = [
        key.decode() for key in redis_client.scan_iter(match=f"fm:v1:{{{pseudonym}}}:*", count=100_000)
    ]
    assert keys.number_key(pseudonym) in written
    assert not any(":seen:" in key for key in written), "idempotency costs no key per event"
    for key in written:
        assert caller not in key
        assert caller[3:] not in key
        assert redis_client.ttl(key) > 0, f"{key} has no TTL"


def test_worker_exports_prometheus_metrics(reputation_worker: Worker, producer: SetupProducer) -> None:
    producer.send(call_setup(fresh_cn_mobile(), fresh_cn_mobile()))
    producer.flush()

    def applied_metric_present() -> bool:
        url = f"http://127.0.0.1:{reputation_worker.metrics_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body = response.read().decode()
        except OSError:
            return False
        return 'fraudmesh_reputation_events_total{outcome="applied",topic="calls.setup.v1"}' in body

    wait_for(applied_metric_present, "the applied-events metric", reputation_worker)
