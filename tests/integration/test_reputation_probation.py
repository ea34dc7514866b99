"""The probation tier and position idempotency of reputation's scripts, against the real Redis.

A number seen once is held in its slot's bounded probation bucket, promoted to full state by a second
call, a complaint or a verdict (carrying its first call and CDR totals over); a full bucket forgets
an entry, counted. Records fold once by position (redelivery) and by id (a resend as a new record).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aioredis
from redis.crc import key_slot

from services.common import keys
from services.common.featurestore import FeatureReader
from services.reputation.numbers import CdrUpdate, ComplaintUpdate, NumberStore, SetupUpdate, VerdictUpdate
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
def client(stack: Stack, loop: asyncio.AbstractEventLoop) -> Iterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(stack.settings.redis_url)
    yield client
    loop.run_until_complete(client.aclose())


@pytest.fixture(scope="module")
def sync(stack: Stack) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.settings.redis_url)
    yield client
    client.close()


def fresh() -> str:
    return "test" + uuid.uuid4().hex[:22]


def setups(sync: redis.Redis, number: str) -> int:
    return int(sync.hget(keys.number_key(number), "setups") or 0)


def test_a_number_seen_once_costs_no_state_until_its_second_call(
    client: aioredis.Redis, sync: redis.Redis, loop: asyncio.AbstractEventLoop
) -> None:
    store = NumberStore(client)
    caller, first_callee, second_callee = fresh(), fresh(), fresh()
    loop.run_until_complete(
        store.apply(
            [
                SetupUpdate(caller, first_callee, "t", "c1", T0, at=(2, 40)),
                CdrUpdate(caller, "t", "c1", T0, T0 + 30_000, True, 25_000, at=(2, 41)),
            ]
        )
    )
    assert not list(sync.scan_iter(match=f"fm:v1:{{{caller}}}:*", count=100_000)), "no per-number keys"
    assert sync.hexists(keys.probation_key(caller), keys.digest(caller))
    assert not sync.exists(keys.inbound_key(first_callee)), "a number seen once costs its callee nothing"
    assert 0 < sync.ttl(keys.probation_key(caller)) <= Retention().probation_ttl_s

    loop.run_until_complete(
        store.apply([SetupUpdate(caller, second_callee, "t", "c2", T0 + 60_000, at=(2, 50))])
    )
    raw: dict[bytes, bytes] = sync.hgetall(keys.number_key(caller))  # type: ignore[assignment]
    state = {k.decode(): v.decode() for k, v in raw.items()}
    assert state["setups"] == "2"
    assert state["first_seen_ms"] == str(T0)
    assert state["last_seen_ms"] == str(T0 + 60_000)
    assert (state["cdrs"], state["answered"], state["answered_ms"]) == ("1", "1", "25000")
    assert not sync.hexists(keys.probation_key(caller), keys.digest(caller)), "promoted, not held twice"
    assert sync.sismember(keys.outbound_key(caller), keys.digest(first_callee))
    assert sync.sismember(keys.outbound_key(caller), keys.digest(second_callee))
    assert sync.sismember(keys.inbound_key(second_callee), keys.digest(caller)), "from its promotion on"
    read = loop.run_until_complete(FeatureReader(client).read(caller, "", T0 + 61_000))
    assert read.calls_1h == 2
    assert read.setups == 2


def test_the_carriers_own_subscriber_gets_full_state_from_its_first_call(
    client: aioredis.Redis, sync: redis.Redis, loop: asyncio.AbstractEventLoop
) -> None:
    """An on-net call comes from an authenticated subscriber, never a sprayed number."""
    store = NumberStore(client)
    subscriber, relative = fresh(), fresh()
    first = SetupUpdate(subscriber, relative, "t", "c1", T0, at=(4, 1), on_net=True)
    assert loop.run_until_complete(store.apply([first])) == [True]
    assert setups(sync, subscriber) == 1
    assert sync.sismember(keys.inbound_key(relative), keys.digest(subscriber))


def test_a_complaint_or_a_verdict_promotes_a_number_in_probation(
    client: aioredis.Redis, sync: redis.Redis, loop: asyncio.AbstractEventLoop
) -> None:
    store = NumberStore(client)
    reported, heard = fresh(), fresh()
    loop.run_until_complete(
        store.apply(
            [
                SetupUpdate(reported, "", "t", "c1", T0, at=(1, 1)),
                SetupUpdate(heard, "", "t", "c2", T0, at=(1, 2)),
            ]
        )
    )
    assert setups(sync, reported) == setups(sync, heard) == 0
    loop.run_until_complete(
        store.apply(
            [
                ComplaintUpdate(reported, "t", "k1", T0 + 1, True, False, at=(0, 9)),
                VerdictUpdate(heard, "t", "s1", 0.9, None, (), at=(0, 4)),
            ]
        )
    )
    assert setups(sync, reported) == setups(sync, heard) == 1
    assert sync.hget(keys.number_key(reported), "complaints") == b"1"
    assert sync.hget(keys.number_key(heard), "synthetic") == b"0.9"


def test_redelivered_and_resent_records_count_once_in_both_tiers(
    client: aioredis.Redis, sync: redis.Redis, loop: asyncio.AbstractEventLoop
) -> None:
    store = NumberStore(client)
    caller = fresh()
    first = SetupUpdate(caller, "", "t", "c1", T0, at=(5, 100))
    assert loop.run_until_complete(store.apply([first, first])) == [True, False]
    resent = SetupUpdate(caller, "", "t", "c1", T0, at=(5, 101))
    assert loop.run_until_complete(store.apply([resent])) == [False]
    assert setups(sync, caller) == 0, "still one call: held in probation"
    second = [SetupUpdate(caller, "", "t", f"c{i}", T0 + i, at=(5, 100 + i)) for i in range(2, 6)]
    assert loop.run_until_complete(store.apply(second)) == [True] * 4
    assert loop.run_until_complete(store.apply([first, resent, *second])) == [False] * 6
    assert setups(sync, caller) == 5


def test_a_number_in_probation_reads_as_its_full_state_would(
    client: aioredis.Redis, loop: asyncio.AbstractEventLoop
) -> None:
    """The decision's one read sees a number's first call whichever tier holds it."""
    held, full, callee = fresh(), fresh(), fresh()
    tiered, untiered = NumberStore(client), NumberStore(client, Retention(probation=False))
    for store, caller in ((tiered, held), (untiered, full)):
        loop.run_until_complete(
            store.apply(
                [
                    SetupUpdate(caller, callee, "t", "c1", T0),
                    CdrUpdate(caller, "t", "c1", T0, T0 + 9_000, True, 8_000),
                ]
            )
        )
    reader = FeatureReader(client)
    for now in (T0 + 5_000, T0 + 2 * 3_600_000, T0 + 2 * 86_400_000):
        for other in (callee, fresh()):
            as_held = loop.run_until_complete(reader.read(held, other, now))
            as_full = loop.run_until_complete(reader.read(full, other, now))
            assert as_held == as_full, (now, other == callee)


def numbers_on_one_slot(count: int) -> list[str]:
    """``count`` pseudonym-like strings whose keys share a cluster slot (one probation bucket)."""
    by_slot: dict[int, list[str]] = {}
    while True:
        number = "test" + "".join(random.choices("abcdefghijklmnopqrstuvwxyz234567", k=22))
        slot = key_slot(number.encode())
        by_slot.setdefault(slot, []).append(number)
        if len(by_slot[slot]) == count:
            return by_slot[slot]


def test_a_full_bucket_forgets_an_entry_and_counts_it(
    client: aioredis.Redis, sync: redis.Redis, loop: asyncio.AbstractEventLoop
) -> None:
    numbers = numbers_on_one_slot(3)
    bucket = keys.probation_key(numbers[0])
    sync.delete(bucket)
    store = NumberStore(client, Retention(probation_per_slot=2))
    updates = [SetupUpdate(n, "", "t", f"c{i}", T0, at=(0, i)) for i, n in enumerate(numbers)]
    loop.run_until_complete(store.apply(updates[:2]))
    assert store.forgotten == 0
    loop.run_until_complete(store.apply(updates[2:]))
    assert store.forgotten == 1
    assert sync.hlen(bucket) == 2
    assert sync.hexists(bucket, keys.digest(numbers[2])), "the newcomer is held"
