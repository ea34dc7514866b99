"""CDRs, complaints and audio verdicts through Kafka into Redis; restarts; a spray of numbers.

Records go in with confluent-kafka, state comes out of Redis through the one-round-trip read, dead
letters out of the DLQ topic, metric series out of /metrics.
"""

from __future__ import annotations

import random
import secrets
import signal
import time
import urllib.request
import uuid

import pytest
import redis
from google.protobuf.timestamp_pb2 import Timestamp

from fraudmesh.v1 import events_pb2
from loadtest.kafkaio import SetupProducer, call_setup, end_offsets, read_dead_letters
from services.common import keys
from services.common.featurestore import FeatureReader
from services.common.phone import normalize
from services.common.pseudonym import Pseudonymizer
from services.common.settings import Secret
from services.common.topics import AUDIO_VERDICTS, CALLS_CDR, COMPLAINTS, dead_letter_topic

from .conftest import Stack, Worker, start_reputation_worker
from .test_reputation_pipeline import fresh_cn_mobile, wait_for

pytestmark = pytest.mark.integration


def stamp(ms: int) -> Timestamp:
    out = Timestamp()
    out.FromMilliseconds(ms)
    return out


def test_cdrs_complaints_and_verdicts_become_features(
    reputation_worker: Worker, producer: SetupProducer, redis_client: redis.Redis, pseudonymize: Pseudonymizer
) -> None:
    caller = fresh_cn_mobile()
    e164 = normalize(caller, "CN").canonical
    key = pseudonymize.kafka_key(e164)
    now = int(time.time() * 1000)
    for i in range(4):
        cdr = events_pb2.Cdr(
            call_id=f"cdr-{caller}-{i}",
            tenant="demo-cn",
            calling_number=e164,
            called_number="+8613900000000",
            answered=i < 2,
            setup_time=stamp(now - 60_000 + i * 10_000),
            end_time=stamp(now - 55_000 + i * 10_000),
            duration_ms=4_000 if i < 2 else 0,
        )
        producer.send_raw(CALLS_CDR, key, CALLS_CDR.codec().encode(cdr))
    complaint = events_pb2.Complaint(
        complaint_id=f"complaint-{caller}",
        tenant="demo-cn",
        reported_number=caller,
        category=events_pb2.COMPLAINT_CATEGORY_FRAUD,
        channel=events_pb2.COMPLAINT_CHANNEL_HONEYPOT,
        event_time=stamp(now),
    )
    for _ in range(2):
        producer.send_raw(COMPLAINTS, key, COMPLAINTS.codec().encode(complaint))
    verdict = events_pb2.AudioVerdict(
        segment_id=f"seg-{caller}",
        tenant="demo-cn",
        calling_number=e164,
        campaign_ids=["campaign-stream-test"],
        synthetic_voice_score=0.93,
        event_time=stamp(now),
    )
    producer.send_raw(AUDIO_VERDICTS, key, AUDIO_VERDICTS.codec().encode(verdict))
    producer.flush()
    reader = FeatureReader(redis_client)
    pseudonym = pseudonymize(e164)

    def folded() -> bool:
        read = reader.read_sync(pseudonym, "", now)
        return read.cdrs == 4 and read.complaints_30d >= 1 and read.campaigns == 1

    wait_for(folded, "CDRs, complaint and verdict in Redis", reputation_worker)
    time.sleep(0.5)
    read = reader.read_sync(pseudonym, "", now)
    assert (read.cdrs, read.answered, read.short) == (4, 2, 2)
    assert (read.complaints_30d, read.fraud_complaints_30d, read.honeypot_hits_30d) == (1, 1, 1)
    assert read.synthetic == pytest.approx(0.93)
    assert read.campaigns == 1


def test_malformed_cdrs_and_verdicts_are_dead_lettered(
    reputation_worker: Worker, stack: Stack, producer: SetupProducer
) -> None:
    since = end_offsets(stack.settings.kafka_bootstrap, dead_letter_topic("reputation"))
    tag = f"bad-{uuid.uuid4().hex[:8]}"
    records = {
        f"{tag}-cdr".encode(): (CALLS_CDR, b"\x00\x01garbage"),
        f"{tag}-verdict".encode(): (
            AUDIO_VERDICTS,
            AUDIO_VERDICTS.codec().encode(
                events_pb2.AudioVerdict(segment_id="s", tenant="demo-cn", calling_number="not a number")
            ),
        ),
        f"{tag}-complaint".encode(): (
            COMPLAINTS,
            COMPLAINTS.codec().encode(
                events_pb2.Complaint(complaint_id="k", tenant="demo-cn", reported_number="not a number")
            ),
        ),
    }
    for key, (topic, value) in records.items():
        producer.send_raw(topic, key, value)
    producer.flush()
    letters = read_dead_letters(stack.settings.kafka_bootstrap, "reputation", since, records, timeout_s=90)
    assert set(letters) == set(records), reputation_worker.process.tail()
    assert letters[f"{tag}-cdr".encode()].reason == "decode_error"
    assert letters[f"{tag}-verdict".encode()].reason == "invalid_calling_number"
    assert letters[f"{tag}-complaint".encode()].reason == "invalid_reported_number"
    assert letters[f"{tag}-verdict".encode()].source_topic == AUDIO_VERDICTS.name


def test_a_worker_killed_mid_stream_loses_and_doubles_nothing(stack: Stack, producer: SetupProducer) -> None:
    key_hex = secrets.token_hex(32)
    own = Pseudonymizer(Secret(bytes.fromhex(key_hex)))
    app_id = f"fraudmesh-reputation-restart-{uuid.uuid4().hex[:8]}"
    callers = [fresh_cn_mobile() for _ in range(40)]
    expected = {c: 0 for c in callers}
    worker = start_reputation_worker(stack, app_id, {"FRAUDMESH_PSEUDONYM_KEY": key_hex})
    client = redis.Redis.from_url(stack.settings.redis_url)
    try:
        for _ in range(60_000):
            caller = random.choice(callers)
            expected[caller] += 1
            producer.send(call_setup(caller, fresh_cn_mobile()))
        producer.flush()
        # Kill it mid-stream: as soon as it has folded something (it folds ~15k setups/s).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            client.hget(keys.number_key(own(normalize(c, "CN").canonical)), "setups") for c in callers[:5]
        ):
            time.sleep(0.01)
        worker.process.process.send_signal(signal.SIGKILL)
        worker.process.process.wait(10)
    finally:
        worker.process.stop()
    counted_before = sum(
        int(client.hget(keys.number_key(own(normalize(c, "CN").canonical)), "setups") or 0) for c in callers
    )
    assert counted_before < sum(expected.values()), "the worker finished before it was killed; kill it sooner"
    restarted = start_reputation_worker(stack, app_id, {"FRAUDMESH_PSEUDONYM_KEY": key_hex}, new_group=False)
    try:

        def all_counted() -> bool:
            return all(
                int(client.hget(keys.number_key(own(normalize(c, "CN").canonical)), "setups") or 0) >= n
                for c, n in expected.items()
            )

        wait_for(all_counted, "every setup counted after the restart", restarted, timeout_s=180)
        time.sleep(1.0)
        for caller, n in expected.items():
            assert (
                int(client.hget(keys.number_key(own(normalize(caller, "CN").canonical)), "setups") or 0) == n
            )
    finally:
        assert restarted.process.stop() == 0


def test_a_spray_of_random_numbers_stays_bounded(
    reputation_worker: Worker, stack: Stack, producer: SetupProducer
) -> None:
    def series() -> int:
        url = f"http://127.0.0.1:{reputation_worker.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return sum(1 for line in response.read().decode().splitlines() if line.startswith("fraudmesh_"))

    producer.send(call_setup(fresh_cn_mobile(), fresh_cn_mobile()))
    producer.flush()
    time.sleep(2)
    before = series()
    sprayed = [f"+86139{random.randrange(10**8):08d}" for _ in range(5_000)]
    for number in sprayed:
        producer.send(call_setup(number, fresh_cn_mobile()))
    producer.flush()
    client = redis.Redis.from_url(stack.settings.redis_url)
    pseudonymize = Pseudonymizer(stack.settings.pseudonym_key)
    sample = random.sample(sprayed, 20)
    # partitions progress independently: wait for every sampled number, not just the last one sent
    held = [(keys.probation_key(p), keys.digest(p)) for p in map(pseudonymize, [*sample, sprayed[-1]])]
    wait_for(lambda: all(client.hexists(*h) for h in held), "the spray folded in", reputation_worker)
    assert series() == before
    info = client.info("memory")
    assert info["maxmemory"] > 0
    assert info["used_memory"] < info["maxmemory"]
    for number in sample:
        pseudonym = pseudonymize(number)
        assert not client.exists(keys.number_key(pseudonym)), "a number seen once costs no full state"
        assert client.ttl(keys.probation_key(pseudonym)) > 0
