"""Subscriber presence: reports on ``subscribers.presence.v1`` change what the decision's one read returns.

At the process boundaries: records into Kafka, folded by a real reputation worker, read back with the
decision's own round trip (READ_CALL: features, list entries and a replay marker in one script);
dead letters out of Kafka. The ordering, TTL and redelivery rules are also driven straight through
the production scripts against the real Redis, with hypothesis choosing the delivery order.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aioredis
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudmesh.v1 import events_pb2
from loadtest.kafkaio import SetupProducer, end_offsets, read_dead_letters
from services.common import keys
from services.common.featurestore import READ_CALL, CallRead, Presence, call_request, parse_call
from services.common.phone import normalize
from services.common.pseudonym import Pseudonymizer
from services.common.topics import SUBSCRIBERS_PRESENCE, dead_letter_topic
from services.decision import lists
from services.reputation.numbers import NumberStore, PresenceUpdate
from services.reputation.scripts import Retention

from .conftest import Stack, Worker
from .test_reputation_pipeline import WAIT_S, fresh_cn_mobile, wait_for

pytestmark = pytest.mark.integration

TENANT = "demo-cn"
HOME = events_pb2.PRESENCE_STATE_ATTACHED_HOME
ROAMING = events_pb2.PRESENCE_STATE_ROAMING
DETACHED = events_pb2.PRESENCE_STATE_DETACHED
IN_CALL = events_pb2.PRESENCE_STATE_IN_CALL
CALL_ENDED = events_pb2.PRESENCE_STATE_CALL_ENDED
UNKNOWN = Presence(state=0, since_ms=0, country="", call_id="", call_ms=0)
T0 = 1_800_000_000_000


def decision_read(client: redis.Redis, pseudonym: str, now_ms: int) -> CallRead:
    """The decision's one round trip for a call presenting this number, with a replay marker asked."""
    script_keys, args = call_request(pseudonym, "", now_ms, lists.lookup_fields(TENANT), os.urandom(16), 5)
    return parse_call(client.register_script(READ_CALL)(keys=script_keys, args=args), now_ms)


def presence_of(client: redis.Redis, pseudonym: str) -> Presence:
    return decision_read(client, pseudonym, int(time.time() * 1000)).features.presence


# Through the real worker.


class Subscriber:
    """One fresh home subscriber and its presence reports."""

    def __init__(self, producer: SetupProducer, pseudonymize: Pseudonymizer) -> None:
        self.number = "+86" + fresh_cn_mobile()
        self.canonical = normalize(self.number, "CN").canonical
        self.pseudonym = pseudonymize(self.canonical)
        self.key = pseudonymize.kafka_key(self.canonical)
        self.producer = producer

    def report(
        self,
        state: events_pb2.PresenceState.ValueType,
        t_ms: int,
        country: str = "",
        call_id: str = "",
        event_id: str = "",
    ) -> str:
        event_id = event_id or uuid.uuid4().hex
        record = events_pb2.SubscriberPresence(
            event_id=event_id,
            tenant=TENANT,
            number=self.number,
            state=state,
            country=country,
            call_id=call_id,
            event_time=Timestamp(seconds=t_ms // 1000, nanos=t_ms % 1000 * 1_000_000),
        )
        self.producer.send_raw(SUBSCRIBERS_PRESENCE, self.key, SUBSCRIBERS_PRESENCE.codec().encode(record))
        return event_id


@pytest.fixture
def subscriber(producer: SetupProducer, pseudonymize: Pseudonymizer) -> Subscriber:
    return Subscriber(producer, pseudonymize)


def test_reports_through_the_worker_change_what_the_decision_reads(
    reputation_worker: Worker, subscriber: Subscriber, redis_client: redis.Redis
) -> None:
    t = int(time.time() * 1000) - 60_000
    before = decision_read(redis_client, subscriber.pseudonym, t + 60_000)
    assert before.features.presence == UNKNOWN
    assert before.replayed is False  # the rest of the one round trip: the replay marker, the lists
    assert before.list_values == [None] * 4

    subscriber.report(HOME, t)
    subscriber.producer.flush()
    wait_for(
        lambda: presence_of(redis_client, subscriber.pseudonym).state == 1, "attached home", reputation_worker
    )
    assert presence_of(redis_client, subscriber.pseudonym) == Presence(1, t, "", "", 0)

    subscriber.report(ROAMING, t + 1_000, country="fr")
    subscriber.report(IN_CALL, t + 2_000, call_id="leg-1")
    subscriber.producer.flush()
    wait_for(
        lambda: presence_of(redis_client, subscriber.pseudonym).call_id != "", "the call", reputation_worker
    )
    assert presence_of(redis_client, subscriber.pseudonym) == Presence(2, t + 1_000, "FR", "leg-1", t + 2_000)

    subscriber.report(CALL_ENDED, t + 3_000, call_id="leg-1")
    subscriber.producer.flush()
    wait_for(
        lambda: presence_of(redis_client, subscriber.pseudonym).call_id == "",
        "the call's end",
        reputation_worker,
    )
    assert presence_of(redis_client, subscriber.pseudonym) == Presence(2, t + 1_000, "FR", "", t + 3_000)
    assert 0 < redis_client.ttl(keys.presence_key(subscriber.pseudonym)) <= 3 * 3_600


def test_older_reports_delivered_after_newer_ones_change_nothing(
    reputation_worker: Worker, subscriber: Subscriber, redis_client: redis.Redis
) -> None:
    t = int(time.time() * 1000) - 600_000
    subscriber.report(ROAMING, t + 10_000, country="FR")
    subscriber.report(HOME, t)  # older registration
    subscriber.report(IN_CALL, t + 20_000, call_id="leg-2")
    subscriber.report(IN_CALL, t + 5_000, call_id="leg-1")  # older call start
    subscriber.report(CALL_ENDED, t + 30_000, call_id="leg-0")  # names another call: leg-2 goes on
    subscriber.report(CALL_ENDED, t + 15_000, call_id="leg-2")  # older than leg-2's start
    subscriber.report(CALL_ENDED, t + 60_000, call_id="leg-3")  # a call's end before its start
    subscriber.report(IN_CALL, t + 50_000, call_id="leg-3")
    subscriber.producer.flush()
    # One partition per subscriber: once leg-3's start is folded, everything before it was too.
    wait_for(
        lambda: redis_client.exists(keys.seen_key(subscriber.pseudonym, "call-end", TENANT, "leg-3")) == 1,
        "leg-3's end",
        reputation_worker,
    )
    subscriber.report(DETACHED, t + 70_000)
    subscriber.producer.flush()
    wait_for(
        lambda: presence_of(redis_client, subscriber.pseudonym).state == 3, "detached", reputation_worker
    )
    assert presence_of(redis_client, subscriber.pseudonym) == Presence(3, t + 70_000, "", "leg-2", t + 20_000)


def test_a_redelivered_report_counts_once(
    reputation_worker: Worker, subscriber: Subscriber, redis_client: redis.Redis
) -> None:
    t = int(time.time() * 1000) - 60_000
    home = subscriber.report(HOME, t)
    subscriber.report(ROAMING, t, country="ES")  # same time: the later report wins
    for _ in range(2):
        subscriber.report(HOME, t, event_id=home)  # redelivered: would win again if applied
    subscriber.report(IN_CALL, t, call_id="sentinel")
    subscriber.producer.flush()
    wait_for(
        lambda: presence_of(redis_client, subscriber.pseudonym).call_id != "",
        "the sentinel",
        reputation_worker,
    )
    assert presence_of(redis_client, subscriber.pseudonym) == Presence(2, t, "ES", "sentinel", t)


def test_bad_presence_records_go_to_the_dead_letter_topic_with_a_reason(
    reputation_worker: Worker, stack: Stack, producer: SetupProducer
) -> None:
    since = end_offsets(stack.settings.kafka_bootstrap, dead_letter_topic("reputation"))
    tag = f"presence-{random.randrange(10**9)}"

    def record(**fields: object) -> bytes:
        base: dict[str, object] = {
            "event_id": tag,
            "tenant": TENANT,
            "number": "+8613912345678",
            "state": HOME,
        }
        return events_pb2.SubscriberPresence(**{**base, **fields}).SerializeToString()  # type: ignore[arg-type]

    records = {
        "decode_error": b"\xff\xfe not a presence record",
        "missing_field": record(number=""),
        "invalid_number": record(number="anonymous"),
        "invalid_presence_state": record(state=events_pb2.PRESENCE_STATE_UNSPECIFIED),
        "missing_call_id": record(state=IN_CALL),
    }
    for reason, value in records.items():
        producer.send_raw(SUBSCRIBERS_PRESENCE, f"{tag}-{reason}".encode(), value)
    producer.flush()

    wanted = [f"{tag}-{reason}".encode() for reason in records]
    letters = read_dead_letters(stack.settings.kafka_bootstrap, "reputation", since, wanted, timeout_s=WAIT_S)
    assert set(letters) == set(wanted), reputation_worker.process.tail()
    for reason, value in records.items():
        letter = letters[f"{tag}-{reason}".encode()]
        assert (letter.reason, letter.source_topic, letter.value) == (
            reason,
            SUBSCRIBERS_PRESENCE.name,
            value,
        )
        assert "13912345678" not in letter.detail


# Straight through the production scripts.


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def client(stack: Stack, loop: asyncio.AbstractEventLoop) -> Iterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(stack.settings.redis_url)
    yield client
    loop.run_until_complete(client.aclose())


def fresh() -> str:
    return "test" + uuid.uuid4().hex[:22]


def update(number: str, state: int, t_ms: int, call_id: str = "", country: str = "") -> PresenceUpdate:
    return PresenceUpdate(number, TENANT, uuid.uuid4().hex, t_ms, state, country, call_id)


def test_a_never_reported_or_expired_subscriber_reads_unknown(
    client: aioredis.Redis, loop: asyncio.AbstractEventLoop, redis_client: redis.Redis
) -> None:
    assert presence_of(redis_client, fresh()) == UNKNOWN
    store = NumberStore(client, Retention(presence_ttl_s=1))
    number = fresh()
    loop.run_until_complete(store.apply([update(number, HOME, T0), update(number, IN_CALL, T0, "leg")]))
    assert presence_of(redis_client, number) == Presence(1, T0, "", "leg", T0)
    deadline = time.monotonic() + 3.0
    while redis_client.exists(keys.presence_key(number)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert presence_of(redis_client, number) == UNKNOWN


def test_only_a_report_that_changes_the_presence_renews_its_ttl(
    client: aioredis.Redis, loop: asyncio.AbstractEventLoop, redis_client: redis.Redis
) -> None:
    store = NumberStore(client, Retention(presence_ttl_s=3_600))
    number = fresh()
    key = keys.presence_key(number)
    loop.run_until_complete(store.apply([update(number, HOME, T0)]))
    assert 3_590_000 < redis_client.pttl(key) <= 3_600_000
    redis_client.pexpire(key, 5_000)
    stale = [update(number, ROAMING, T0 - 1, country="FR"), update(number, CALL_ENDED, T0, "not-held")]
    assert loop.run_until_complete(store.apply(stale)) == [True, True]  # folded (not duplicates), no change
    assert redis_client.pttl(key) <= 5_000
    loop.run_until_complete(store.apply([update(number, HOME, T0 + 3_240_000)]))  # periodic re-registration
    assert redis_client.pttl(key) > 3_590_000
    assert presence_of(redis_client, number) == Presence(1, T0 + 3_240_000, "", "", 0)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[PresenceUpdate], Presence]:
    """A subscriber's reports with distinct times (registrations; calls one after another, the last
    maybe still going), and the presence they describe at the end."""
    number = fresh()
    times = iter(sorted(draw(st.sets(st.integers(0, 10**7), min_size=12, max_size=12))))
    registrations = [
        (draw(st.sampled_from([HOME, ROAMING, DETACHED])), T0 + next(times))
        for _ in range(draw(st.integers(0, 4)))
    ]
    reports = [
        update(number, state, t, country="NL" if state == ROAMING else "") for state, t in registrations
    ]
    call, call_ms = "", 0
    calls = draw(st.integers(0, 3))
    for i in range(calls):
        start = T0 + next(times)
        reports.append(update(number, IN_CALL, start, f"leg-{i}"))
        call, call_ms = f"leg-{i}", start
        if i < calls - 1 or draw(st.booleans()):
            end = T0 + next(times)
            reports.append(update(number, CALL_ENDED, end, f"leg-{i}"))
            call, call_ms = "", end
    state, since = registrations[-1] if registrations else (0, 0)
    return reports, Presence(state, since, "NL" if state == ROAMING else "", call, call_ms)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories(), data=st.data())
def test_any_delivery_order_reads_as_the_history_describes(
    client: aioredis.Redis,
    loop: asyncio.AbstractEventLoop,
    redis_client: redis.Redis,
    history: tuple[list[PresenceUpdate], Presence],
    data: st.DataObject,
) -> None:
    reports, truth = history
    delivered = data.draw(st.permutations(reports))
    store = NumberStore(client)
    for report in delivered:  # one at a time, each its own batch, as a worker may see them
        loop.run_until_complete(store.apply([report]))
    assert loop.run_until_complete(store.apply(delivered)) == [False] * len(delivered)
    if not reports:
        assert presence_of(redis_client, fresh()) == UNKNOWN
        return
    read = presence_of(redis_client, reports[0].number)
    assert (read.state, read.since_ms, read.country, read.call_id) == (
        truth.state,
        truth.since_ms,
        truth.country,
        truth.call_id,
    )
    if truth.call_id:
        assert read.call_ms == truth.call_ms
