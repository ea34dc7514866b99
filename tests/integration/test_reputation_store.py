"""Reputation's Redis state against the real Redis: window arithmetic, idempotency, the one read.

The window tests drive the production Lua scripts with hypothesis-generated event times (in any
order) and compare what the one-round-trip read returns with a brute-force count.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common import features, keys
from services.common.featurestore import FeatureReader, fill
from services.common.recent import DECISIONS_TTL_S, RECENT_DECISIONS
from services.common.windows import CALLS_1H, CALLS_1M, CALLS_24H, COMPLAINTS_30D, DAY, Window
from services.reputation.numbers import (
    CdrUpdate,
    ComplaintUpdate,
    NumberStore,
    SetupUpdate,
    Update,
    VerdictUpdate,
)
from services.reputation.scripts import Retention

from .conftest import Stack

pytestmark = pytest.mark.integration

T0 = 1_800_000_000_000


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def clients(stack: Stack, loop: asyncio.AbstractEventLoop) -> Iterator[tuple[NumberStore, FeatureReader]]:
    client = aioredis.Redis.from_url(stack.settings.redis_url)
    # Full state from the first event: these tests are about the windows and folds themselves (the
    # probation tier has its own tests below).
    yield NumberStore(client, Retention(probation=False)), FeatureReader(client)
    loop.run_until_complete(client.aclose())


def fresh() -> str:
    return "test" + uuid.uuid4().hex[:22]


def brute_force(times: list[int], now: int, window: Window) -> int:
    """Events whose bucket lies in the last ``slots`` buckets up to now's bucket."""
    high = now // window.bucket_ms
    return sum(1 for t in times if high - window.slots < t // window.bucket_ms <= high)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=2 * DAY), min_size=1, max_size=40),
    query_after=st.integers(min_value=0, max_value=DAY),
)
def test_call_windows_match_a_brute_force_count(
    clients: tuple[NumberStore, FeatureReader],
    loop: asyncio.AbstractEventLoop,
    offsets: list[int],
    query_after: int,
) -> None:
    store, reader = clients
    caller = fresh()
    times = [T0 + offset for offset in offsets]
    updates = [SetupUpdate(caller, "", "t", f"call-{i}", t) for i, t in enumerate(times)]
    loop.run_until_complete(store.apply(updates))
    now = max(times) + query_after
    read = loop.run_until_complete(reader.read(caller, "", now))
    assert read.calls_1m == brute_force(times, now, CALLS_1M)
    assert read.calls_1h == brute_force(times, now, CALLS_1H)
    assert read.calls_24h == brute_force(times, now, CALLS_24H)
    assert read.setups == len(times)
    assert read.first_seen_ms == min(times)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offsets=st.lists(st.integers(min_value=0, max_value=60 * DAY), min_size=1, max_size=30))
def test_complaint_windows_match_a_brute_force_count(
    clients: tuple[NumberStore, FeatureReader], loop: asyncio.AbstractEventLoop, offsets: list[int]
) -> None:
    store, reader = clients
    number = fresh()
    times = [T0 + offset for offset in offsets]
    updates = [ComplaintUpdate(number, "t", f"k{i}", t, i % 2 == 0, False) for i, t in enumerate(times)]
    loop.run_until_complete(store.apply(updates))
    now = max(times)
    read = loop.run_until_complete(reader.read(number, "", now))
    assert read.complaints_30d == brute_force(times, now, COMPLAINTS_30D)
    assert read.complaints_7d == brute_force(times, now, Window("ca", DAY, 7))
    fraud = [t for i, t in enumerate(times) if i % 2 == 0]
    assert read.fraud_complaints_30d == brute_force(fraud, now, COMPLAINTS_30D)


def test_every_update_is_idempotent(
    clients: tuple[NumberStore, FeatureReader], loop: asyncio.AbstractEventLoop
) -> None:
    store, reader = clients
    a, b = fresh(), fresh()
    batch: list[Update] = [
        SetupUpdate(a, b, "t", "c1", T0, at=(3, 10)),
        CdrUpdate(a, "t", "c1", T0, T0 + 30_000, True, 25_000, at=(3, 7)),
        ComplaintUpdate(a, "t", "k1", T0 + 60_000, True, True, at=(3, 2)),
        VerdictUpdate(a, "t", "s1", 0.7, 0.9, ("campaign-x",), at=(3, 5)),
    ]
    assert loop.run_until_complete(store.apply(batch)) == [True, True, True, True]
    before = loop.run_until_complete(reader.read(a, b, T0 + 120_000))
    # Redelivered (same positions), and resent as new records (later offsets, same event ids).
    resent: list[Update] = [
        dataclasses.replace(u, at=(3, 100 + i))  # type: ignore[arg-type]
        for i, u in enumerate(batch)
    ]
    assert loop.run_until_complete(store.apply(batch + batch + resent)) == [False] * 12
    after = loop.run_until_complete(reader.read(a, b, T0 + 120_000))
    assert before == after


def test_the_one_read_fills_the_vector(
    clients: tuple[NumberStore, FeatureReader], loop: asyncio.AbstractEventLoop
) -> None:
    store, reader = clients
    caller, callee, friend = fresh(), fresh(), fresh()
    updates: list[Update] = []
    callees = [callee] + [fresh() for _ in range(19)]
    for i in range(20):
        t = T0 + i * 2_000
        updates.append(SetupUpdate(caller, callees[i], "t", f"c{i}", t))
        updates.append(
            CdrUpdate(caller, "t", f"c{i}", t, t + 8_000, i % 4 == 0, 5_000 if i % 8 == 0 else 60_000)
        )
    updates.append(SetupUpdate(friend, caller, "t", "f1", T0))
    updates.append(ComplaintUpdate(caller, "t", "k1", T0 + 50_000, False, False))
    updates.append(VerdictUpdate(caller, "t", "seg", 0.25, None, ("campaign-y",)))
    loop.run_until_complete(store.apply(updates))
    now = T0 + 60_000
    vector = features.empty_vector()
    fill(vector, loop.run_until_complete(reader.read(caller, friend, now)), now)
    value = {name: float(vector[i]) for name, i in features.INDEX.items()}
    assert value["number_age_s"] == 60.0
    assert value["setups_total"] == 20
    assert value["calls_1h"] == value["calls_24h"] == 20
    assert 18 <= value["distinct_callees_24h"] <= 22
    assert value["answer_ratio"] == pytest.approx(5 / 20)
    assert value["short_call_ratio"] == pytest.approx(3 / 5)
    assert value["mean_answered_s"] == pytest.approx((3 * 5 + 2 * 60) / 5)
    assert value["max_concurrent"] >= 4
    assert value["complaints_7d"] == 1
    assert value["callee_called_caller"] == 1.0
    assert value["caller_called_callee"] == 0.0
    assert value["campaigns"] == 1
    assert value["synthetic_voice"] == pytest.approx(0.25)
    assert math.isnan(value["bot_behaviour"])
    for name in ("ingress_kind", "shaken_status", "attestation"):
        assert math.isnan(value[name])


def test_a_never_seen_number_reads_as_zero_not_missing(
    clients: tuple[NumberStore, FeatureReader], loop: asyncio.AbstractEventLoop
) -> None:
    _store, reader = clients
    read = loop.run_until_complete(reader.read(fresh(), fresh(), T0))
    assert not read.seen
    vector = features.empty_vector()
    fill(vector, read, T0)
    assert vector[features.INDEX["calls_24h"]] == 0
    assert vector[features.INDEX["number_age_s"]] == 0
    assert np.isnan(vector[features.INDEX["answer_ratio"]])


def test_campaign_risk_reaches_a_freshly_rotated_number(
    clients: tuple[NumberStore, FeatureReader], loop: asyncio.AbstractEventLoop
) -> None:
    store, reader = clients
    campaign = f"campaign-{uuid.uuid4().hex[:8]}"
    pool = [fresh() for _ in range(5)]
    for i, number in enumerate(pool):
        loop.run_until_complete(
            store.apply([VerdictUpdate(number, "t", f"seg-{campaign}-{i}", 0.9, None, (campaign,))])
        )
    newest = loop.run_until_complete(reader.read(pool[-1], "", T0))
    assert newest.campaign_numbers == 5
    assert newest.campaigns == 1


def test_early_members_read_the_size_the_campaign_grew_to(
    clients: tuple[NumberStore, FeatureReader], loop: asyncio.AbstractEventLoop
) -> None:
    """The first number of a campaign reads its current size, not the size when it was linked."""
    store, reader = clients
    campaign = f"campaign-{uuid.uuid4().hex[:8]}"
    pool = [fresh() for _ in range(12)]
    for i, number in enumerate(pool):
        loop.run_until_complete(
            store.apply([VerdictUpdate(number, "t", f"seg-{campaign}-{i}", None, None, (campaign,))])
        )
    sizes = [loop.run_until_complete(reader.read(n, "", T0)).campaign_numbers for n in pool]
    assert sizes == [12] * 12


def test_numbers_heard_before_discovery_are_linked_by_the_discovering_verdict(
    clients: tuple[NumberStore, FeatureReader], loop: asyncio.AbstractEventLoop
) -> None:
    store, reader = clients
    campaign = f"campaign-{uuid.uuid4().hex[:8]}"
    earlier = [fresh() for _ in range(4)]
    for i, number in enumerate(earlier):  # their setups are known; their audio matched no campaign yet
        loop.run_until_complete(store.apply([SetupUpdate(number, fresh(), "t", f"c-{campaign}-{i}", T0)]))
    never_seen = fresh()
    discoverer = fresh()
    update = VerdictUpdate(
        discoverer, "t", f"seg-{campaign}", None, None, (campaign,), (*earlier, never_seen)
    )
    loop.run_until_complete(store.apply([update]))
    for number in [*earlier, discoverer]:
        read = loop.run_until_complete(reader.read(number, "", T0))
        assert (read.campaigns, read.campaign_numbers) == (1, 6)
    assert not loop.run_until_complete(reader.read(never_seen, "", T0)).seen, "no state for unknown numbers"


def test_a_merged_campaign_hands_its_numbers_to_the_older_one(
    clients: tuple[NumberStore, FeatureReader], loop: asyncio.AbstractEventLoop
) -> None:
    """Parts discovered apart: once a verdict names both, every number reads the joined size."""
    store, reader = clients
    older, newer = (f"campaign-{uuid.uuid4().hex[:8]}" for _ in range(2))
    first, second = [fresh() for _ in range(4)], [fresh() for _ in range(3)]

    def verdict(number: str, tag: str, ids: tuple[str, ...]) -> None:
        loop.run_until_complete(store.apply([VerdictUpdate(number, "t", f"seg-{tag}", None, None, ids)]))

    for i, number in enumerate(first):
        verdict(number, f"{older}-{i}", (older,))
    for i, number in enumerate(second):
        verdict(number, f"{newer}-{i}", (newer,))
    joiner = fresh()
    verdict(joiner, "join", (older, newer))
    late = fresh()
    verdict(late, "late", (newer,))  # a verdict still naming the merged id links to the older one
    for number in [*first, *second, joiner, late]:
        assert loop.run_until_complete(reader.read(number, "", T0)).campaign_numbers == 9
    assert loop.run_until_complete(
        store.apply([VerdictUpdate(late, "t", "seg-late", None, None, (newer,))])
    ) == [False]


def test_every_key_expires_and_none_holds_a_number(
    stack: Stack, clients: tuple[NumberStore, FeatureReader], loop: asyncio.AbstractEventLoop
) -> None:
    store, _reader = clients
    a, b = fresh(), fresh()
    loop.run_until_complete(
        store.apply(
            [
                SetupUpdate(a, b, "t", "c1", T0),
                CdrUpdate(a, "t", "c1", T0, T0 + 1000, True, 1000),
                ComplaintUpdate(a, "t", "k", T0, True, True),
                VerdictUpdate(a, "t", "s", 0.5, 0.5, ("campaign-z",)),
            ]
        )
    )
    plain = redis.Redis.from_url(stack.settings.redis_url)
    written = list(plain.scan_iter(match=f"fm:v1:{{{a}}}:*", count=100_000)) + list(
        plain.scan_iter(match=f"fm:v1:{{{b}}}:*", count=100_000)
    )
    written += [
        key("campaign-z").encode()
        for key in (keys.campaign_members_key, keys.campaign_numbers_key, keys.campaign_meta_key)
    ]
    assert len(written) >= 8
    for key in written:
        assert plain.ttl(key) > 0, key


def test_the_recent_decisions_list_counts_each_audit_record_once_capped_and_with_a_ttl(
    clients: tuple[NumberStore, FeatureReader], loop: asyncio.AbstractEventLoop, stack: Stack
) -> None:
    store, _ = clients
    caller = fresh()
    updates = [
        SetupUpdate(caller, "", "t", f"call-{i}", T0 + i, summary=f'{{"call_id": "call-{i}"}}')
        for i in range(RECENT_DECISIONS + 5)
    ]
    loop.run_until_complete(store.apply(updates[:1]))
    loop.run_until_complete(store.apply(updates[:1]))  # the same record delivered again
    sync = redis.Redis.from_url(stack.settings.redis_url)
    try:
        assert sync.lrange(keys.decisions_key(caller), 0, -1) == [b'{"call_id": "call-0"}']
        loop.run_until_complete(store.apply(updates))
        held = sync.lrange(keys.decisions_key(caller), 0, -1)
        assert len(held) == RECENT_DECISIONS
        assert held[0] == f'{{"call_id": "call-{RECENT_DECISIONS + 4}"}}'.encode()
        assert 0 < sync.ttl(keys.decisions_key(caller)) <= DECISIONS_TTL_S
        loop.run_until_complete(store.apply([SetupUpdate(caller, "", "t", "no-decision", T0)]))
        assert len(sync.lrange(keys.decisions_key(caller), 0, -1)) == RECENT_DECISIONS
    finally:
        sync.close()
