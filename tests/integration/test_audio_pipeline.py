"""The audio service end to end: segments through Kafka → audio worker → verdicts → reputation → Redis.

A campaign recording is played to 50 callees from 10 rotating numbers through the phone-line
simulator (random answer points, noise, μ-law, packet loss, small speed changes). The audio worker
must discover the campaign, reputation must link its numbers, and a later call from an unseen
number must read as a member of a large campaign. The same voice reading another script must not
join it; bad segments go to dlq.audio.v1; a segment delivered twice counts once. Replay renders a
simulated dataset's captured calls and publishes them; the worker answers each with a verdict.
"""

from __future__ import annotations

import asyncio
import random
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis

from fraudmesh.v1 import events_pb2
from loadtest import audiorun
from loadtest.audio import attach, calls, voices
from loadtest.audio.phoneline import LineCondition
from loadtest.audiorun import fresh_audio_store
from loadtest.kafkaio import SetupProducer, end_offsets, read_dead_letters, start_group_at_end
from loadtest.processes import REPO_ROOT, ServiceProcess
from loadtest.replay import ReplayConfig, replay
from loadtest.scenario import load
from loadtest.simulate import simulate, write_dataset
from services.common import keys
from services.common.featurestore import FeatureReader
from services.common.identity import attribute_record, withheld_key
from services.common.phone import normalize
from services.common.pseudonym import Pseudonymizer
from services.common.topics import AUDIO_SEGMENTS, AUDIO_VERDICTS, dead_letter_topic
from training.dataset import EVENTS, RecordWriter, read_records

from .conftest import Stack, Worker, _free_port
from .test_reputation_pipeline import fresh_cn_mobile, wait_for

pytestmark = pytest.mark.integration

VOICE = "espeak:en-us"


TEST_AUDIO_DB = 14  # the main job's audio index uses 15


@pytest.fixture(scope="module")
def audio_store(stack: Stack) -> tuple[str, redis.Redis]:
    """The audio index of this module's worker: a Redis database of its own, emptied first, so
    campaigns earlier runs left (the same TTS voices reading other scripts) cannot answer for these."""
    url, client = fresh_audio_store(stack.settings, TEST_AUDIO_DB)
    return url, client


@pytest.fixture(scope="module")
def audio_worker(stack: Stack, audio_store: tuple[str, redis.Redis]) -> Iterator[Worker]:
    """A real audio worker process in its own consumer group, starting at the topic's end."""
    app_id = f"fraudmesh-audio-test-{uuid.uuid4().hex[:8]}"
    start_group_at_end(stack.settings.kafka_bootstrap, app_id, AUDIO_SEGMENTS)
    port = _free_port()
    process = ServiceProcess(
        "services.audio",
        {
            **stack.env,
            "FRAUDMESH_APP_ID": app_id,
            "FRAUDMESH_METRICS_PORT": str(port),
            "FRAUDMESH_REDIS_URL": audio_store[0],
        },
        REPO_ROOT / ".stack" / "logs" / f"{app_id}.log",
    )
    time.sleep(0.5)
    if not process.alive():
        pytest.fail(f"audio worker exited at start:\n{process.tail()}")
    worker = Worker(process, port)
    yield worker
    code = process.stop()
    assert code == 0, f"audio worker did not stop cleanly (exit {code}):\n{process.tail()}"


def _send(producer: SetupProducer, pseudonymize: Pseudonymizer, record: events_pb2.AudioSegment) -> None:
    key = pseudonymize.kafka_key(attribute_record(record, "CN").key)
    producer.send_raw(AUDIO_SEGMENTS, key, AUDIO_SEGMENTS.codec().encode(record))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _metric(worker: Worker, name: str, labels: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=5) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith(f"{name}{{{labels}}}"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_rotating_campaign_is_recognised_and_linked_through_reputation(
    audio_worker: Worker,
    reputation_worker: Worker,
    producer: SetupProducer,
    redis_client: redis.Redis,
    audio_store: tuple[str, redis.Redis],
    pseudonymize: Pseudonymizer,
) -> None:
    audio_redis = audio_store[1]
    rng = np.random.default_rng(random.randrange(2**32))
    run = random.randrange(10**9)
    campaign = voices.render(voices.script(run), VOICE)
    other_script = voices.render(voices.script(run + 1), VOICE)
    numbers = [fresh_cn_mobile() for _ in range(10)]
    now = int(time.time() * 1000)
    first = None
    for i in range(50):
        condition = LineCondition(
            snr_db=float(rng.uniform(10, 30)),
            loss=float(rng.choice([0.0, 0.02, 0.05])),
            speed=float(rng.uniform(0.98, 1.02)),
        )
        record = calls.segment(
            f"seg-{run}-{i}",
            numbers[i % 10],
            fresh_cn_mobile(),
            calls.answered_segment(campaign, rng, condition),
            start_ms=now + i * 1000,
        )
        first = first or record
        _send(producer, pseudonymize, record)
    others = [fresh_cn_mobile() for _ in range(3)]
    for i in range(6):
        record = calls.segment(
            f"seg-{run}-other-{i}",
            others[i % 3],
            fresh_cn_mobile(),
            calls.answered_segment(other_script, rng, LineCondition(snr_db=25)),
            start_ms=now + 60_000 + i * 1000,
        )
        _send(producer, pseudonymize, record)
    assert first is not None
    _send(producer, pseudonymize, first)  # a redelivery: must count once
    producer.flush()

    reader = FeatureReader(redis_client)
    members = [pseudonymize(normalize(n, "CN").canonical) for n in numbers]

    def all_linked() -> bool:
        return all(reader.read_sync(p, "", now).campaign_numbers >= 10 for p in members)

    wait_for(all_linked, "all 10 rotating numbers linked to a 10-number campaign", audio_worker, 240)

    def resolve(campaign_id: str) -> str:
        """The campaign a possibly merged one lives on as (parts discovered apart merge)."""
        for _ in range(8):
            into = audio_redis.hget(keys.audio_campaign_key(campaign_id, "info"), "merged_into")
            if not into:
                break
            campaign_id = _text(into)
        return campaign_id

    def campaigns_of(pseudonym: str) -> set[str]:
        return {resolve(_text(m)) for m in redis_client.smembers(keys.campaigns_key(pseudonym))}

    # Every number ends up in one shared campaign, however its parts were first discovered.
    shared = set.intersection(*(campaigns_of(p) for p in members))
    assert shared, [campaigns_of(p) for p in members]

    def this_run() -> set[str]:  # resolved when asked: a later segment may merge parts discovered apart
        return set.union(*(campaigns_of(p) for p in members))

    campaign_id = max(shared, key=lambda c: audio_redis.zcard(keys.audio_campaign_key(c, "members")))
    info = audio_redis.hgetall(keys.audio_campaign_key(campaign_id, "info"))
    assert info[b"origin"] == b"discovered"
    assert b"merged_into" not in info
    assert audio_redis.zcard(keys.audio_campaign_key(campaign_id, "members")) >= 5
    assert audio_redis.ttl(keys.audio_campaign_key(campaign_id, "members")) > 0

    newcomer = fresh_cn_mobile()
    later = calls.segment(
        f"seg-{run}-newcomer",
        newcomer,
        fresh_cn_mobile(),
        calls.answered_segment(campaign, rng, LineCondition(snr_db=15, loss=0.02), min_s=6, max_s=10),
        start_ms=now + 120_000,
    )
    _send(producer, pseudonymize, later)
    producer.flush()
    newcomer_pseudonym = pseudonymize(normalize(newcomer, "CN").canonical)
    wait_for(
        lambda: reader.read_sync(newcomer_pseudonym, "", now).campaign_numbers >= 11,
        "an unseen number playing the campaign reads as a member of it",
        audio_worker,
        120,
    )
    read = reader.read_sync(newcomer_pseudonym, "", now)
    assert read.campaigns >= 1
    assert campaigns_of(newcomer_pseudonym) & this_run(), (
        "the newcomer is linked to this recording's campaign"
    )

    for other in others:
        assert not campaigns_of(pseudonymize(normalize(other, "CN").canonical)) & this_run()
    assert _metric(audio_worker, "fraudmesh_audio_segments_total", 'outcome="duplicate"') == 1.0
    assert reputation_worker.process.alive()


def test_bad_segments_are_dead_lettered_with_reasons(
    audio_worker: Worker, stack: Stack, producer: SetupProducer
) -> None:
    since = end_offsets(stack.settings.kafka_bootstrap, dead_letter_topic("audio"))
    tag = uuid.uuid4().hex[:8]
    tone = (0.3 * np.sin(np.arange(8000 * 40) * 2 * np.pi * 440 / 8000)).astype(np.float32)
    caller = fresh_cn_mobile()
    too_long = calls.segment(f"{tag}-long", caller, fresh_cn_mobile(), tone)
    wide = calls.segment(f"{tag}-wide", caller, fresh_cn_mobile(), tone[:8000])
    wide.sample_rate_hz = 16000
    invalid = calls.segment(f"{tag}-invalid", "call-me-maybe", fresh_cn_mobile(), tone[:8000])
    odd = calls.segment(f"{tag}-odd", caller, fresh_cn_mobile(), tone[:8000])
    odd.encoding = events_pb2.AUDIO_ENCODING_LINEAR16
    odd.legs[0].audio = odd.legs[0].audio[:-1]
    records = {
        f"{tag}-garbage".encode(): b"\x00\x01not a protobuf",
        **{
            f"{r.segment_id}".encode(): AUDIO_SEGMENTS.codec().encode(r)
            for r in (too_long, wide, invalid, odd)
        },
    }
    for key, value in records.items():
        producer.send_raw(AUDIO_SEGMENTS, key, value)
    producer.flush()
    letters = read_dead_letters(stack.settings.kafka_bootstrap, "audio", since, records, timeout_s=120)
    assert set(letters) == set(records), audio_worker.process.tail()
    reasons = {key.decode().split("-", 1)[1]: letter.reason for key, letter in letters.items()}
    assert reasons == {
        "garbage": "decode_error",
        "long": "segment_too_long",
        "wide": "unsupported_sample_rate",
        "invalid": "invalid_calling_number",
        "odd": "undecodable_audio",
    }
    assert all(letter.source_topic == AUDIO_SEGMENTS.name for letter in letters.values())


def test_a_withheld_callers_segment_is_judged_under_its_trunks_bucket(
    audio_worker: Worker,
    stack: Stack,
    producer: SetupProducer,
    pseudonymize: Pseudonymizer,
    audio_store: tuple[str, redis.Redis],
) -> None:
    tag = uuid.uuid4().hex[:8]
    tone = (0.3 * np.sin(np.arange(8000 * 3) * 2 * np.pi * 440 / 8000)).astype(np.float32)
    withheld = calls.segment(f"{tag}-withheld", "anonymous", fresh_cn_mobile(), tone)
    withheld.ingress_trunk_id = f"trunk-{tag}"
    since = end_offsets(stack.settings.kafka_bootstrap, AUDIO_VERDICTS)
    _send(producer, pseudonymize, withheld)
    producer.flush()
    verdicts = audiorun.read_verdicts(
        stack.settings.kafka_bootstrap, since, [withheld.segment_id], 120, audio_worker.process.alive
    )
    assert withheld.segment_id in verdicts, audio_worker.process.tail()
    verdict = verdicts[withheld.segment_id]
    assert (verdict.calling_number, verdict.ingress_trunk_id) == ("anonymous", f"trunk-{tag}")
    bucket = pseudonymize(withheld_key("demo-cn", f"trunk-{tag}"))
    assert audio_store[1].exists(keys.seen_key(bucket, "audio", "demo-cn", withheld.segment_id))


def test_replay_publishes_rendered_segments_that_the_worker_turns_into_verdicts(
    audio_worker: Worker, stack: Stack, pseudonymize: Pseudonymizer, tmp_path: Path
) -> None:
    simulated = tmp_path / "ci"
    write_dataset(simulate(load("ci")), simulated)
    records = [r for r in read_records(simulated / EVENTS) if r.WhichOneof("record") == "audio"]
    robocalls = [r for r in records if r.audio.script_id][:2]
    people = [r for r in records if not r.audio.script_id][:2]
    unrendered = next(r for r in records if r not in robocalls + people)
    dataset = tmp_path / "audio-only"
    dataset.mkdir()
    with RecordWriter(dataset / EVENTS) as events:
        for record in sorted([*robocalls, *people, unrendered], key=lambda r: r.time_ms):
            events.write(record)
    rendered = {
        r.audio.segment.segment_id: AUDIO_SEGMENTS.codec().encode(attach.attach(r.audio, 7))
        for r in robocalls + people
    }
    since = end_offsets(stack.settings.kafka_bootstrap, AUDIO_VERDICTS)
    config = ReplayConfig(
        bootstrap=stack.settings.kafka_bootstrap, pseudonymize=pseudonymize, speed=0, audio=rendered
    )
    stats = asyncio.run(replay(dataset, config))
    assert stats.audio_segments == len(rendered) == 4
    assert stats.published == {AUDIO_SEGMENTS.name: 4}
    assert stats.skipped_audio == 1
    verdicts = audiorun.read_verdicts(
        stack.settings.kafka_bootstrap, since, rendered, 120, audio_worker.process.alive
    )
    assert set(verdicts) == set(rendered), audio_worker.process.tail()
    for record in robocalls + people:
        verdict = verdicts[record.audio.segment.segment_id]
        assert verdict.calling_number == record.audio.segment.calling_number
        assert verdict.p_asserted_identity == record.audio.segment.p_asserted_identity
        assert verdict.ingress_trunk_id == record.audio.segment.ingress_trunk_id
        assert verdict.call_id == record.audio.segment.call_id
        two_legs = record.audio.segment.source == events_pb2.AUDIO_SOURCE_MEDIA_TAP
        assert verdict.HasField("bot_behaviour_score") or not two_legs
