"""The attestation statistics agent as a real process: calls.setup.v1 on Kafka → verify → Redis.

A caller's verified/unsigned/failed calls are counted once each (a duplicate delivery counts once),
under the identity the call is attributed to (PAI over From; a withheld caller in its trunk's
bucket), a trunk that starts presenting the tenant's own numbers shows an on-net surge, and a
record that does not decode lands on dlq.origination.v1 with its reason.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis.asyncio as aioredis

from fraudmesh.v1 import common_pb2, events_pb2
from loadtest.kafkaio import SetupProducer, end_offsets, read_dead_letters, start_group_at_end
from loadtest.processes import REPO_ROOT, ServiceProcess
from services.common.identity import withheld_key
from services.common.pseudonym import Pseudonymizer
from services.common.topics import CALLS_SETUP, dead_letter_topic
from services.origination.stats import AttestationStore, Counts, Outcome
from tests.integration.conftest import Stack, _free_port
from tests.integration.origination_pki import HOME_X5U, Pki, build_pki, signed_setup

pytestmark = pytest.mark.integration
WAIT_S = 60.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return build_pki(tmp_path_factory.mktemp("sti-stats"))[0]


@pytest.fixture(scope="module")
def agent(stack: Stack, pki: Pki) -> Iterator[ServiceProcess]:
    app_id = f"fraudmesh-origination-stats-test-{uuid.uuid4().hex[:8]}"
    start_group_at_end(stack.settings.kafka_bootstrap, app_id, CALLS_SETUP)
    env = {
        **stack.env,
        "FRAUDMESH_STATS_APP_ID": app_id,
        "FRAUDMESH_METRICS_PORT": str(_free_port()),
        "FRAUDMESH_STI_TRUST_ANCHORS": str(pki.anchor_file),
        "FRAUDMESH_X5U_PREWARM_FILE": str(pki.prewarm_file),
    }
    process = ServiceProcess(
        "services.origination", env, REPO_ROOT / ".stack" / "logs" / f"{app_id}.log", ["stats"]
    )
    time.sleep(0.5)
    if not process.alive():
        pytest.fail(f"stats agent exited at start:\n{process.tail()}")
    yield process
    code = process.stop()
    assert code == 0, f"stats agent did not stop cleanly (exit {code}):\n{process.tail()}"


@pytest.fixture(scope="module")
async def store(stack: Stack) -> AsyncIterator[AttestationStore]:
    client = aioredis.Redis.from_url(stack.settings.redis_url)
    yield AttestationStore(client, marker_ttl_s=3600, stats_ttl_s=7200)
    await client.aclose()


def event(setup: object) -> events_pb2.CallSetupEvent:
    record = events_pb2.CallSetupEvent()
    record.setup.CopyFrom(setup)  # type: ignore[arg-type]
    record.setup.event_time.FromMilliseconds(int(time.time() * 1000))
    return record


async def wait_counts(
    read: Callable[[], object], done: Callable[[Counts], bool], agent: ServiceProcess
) -> Counts:
    deadline = time.monotonic() + WAIT_S
    while True:
        counts = await read()  # type: ignore[misc]
        if done(counts):
            return counts  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            pytest.fail(f"statistics never reached the expected counts: {counts}\n{agent.tail()}")
        await asyncio.sleep(0.2)


def fresh_caller() -> str:
    return f"+86137{uuid.uuid4().int % 10**8:08d}"


async def test_caller_outcomes_are_counted_once(
    agent: ServiceProcess,
    producer: SetupProducer,
    store: AttestationStore,
    pki: Pki,
    pseudonymize: Pseudonymizer,
) -> None:
    caller = fresh_caller()
    verified = [event(signed_setup(pki.home, HOME_X5U, caller=caller, attest=a)) for a in ("A", "A", "C")]
    unsigned = event(signed_setup(pki.home, HOME_X5U, caller=caller))
    del unsigned.setup.identity_headers[:]
    forged = event(signed_setup(pki.other, HOME_X5U, caller=caller))  # signed with the wrong key
    for record in (*verified, unsigned, forged, verified[0]):  # the first again: a redelivery
        producer.send(record)
    producer.flush()
    pseudonym = pseudonymize(caller)
    counts = await wait_counts(
        lambda: store.number_counts(pseudonym, int(time.time() * 1000)),
        lambda c: c.day[Outcome.CALLS] >= 5,
        agent,
    )
    await asyncio.sleep(1.0)  # give a double count the chance to show
    counts = await store.number_counts(pseudonym, int(time.time() * 1000))
    assert counts.day[Outcome.CALLS] == 5
    assert counts.day[Outcome.ATTEST_A] == 2
    assert counts.day[Outcome.ATTEST_C] == 1
    assert counts.day[Outcome.UNSIGNED] == 1
    assert counts.day[Outcome.FAILED] == 1
    assert counts.share(Outcome.UNSIGNED) == pytest.approx(0.2)


async def test_trunk_starting_to_present_onnet_numbers_surges(
    agent: ServiceProcess, producer: SetupProducer, store: AttestationStore, pki: Pki
) -> None:
    trunk = f"ic-{uuid.uuid4().hex[:8]}"
    for _ in range(25):  # the tenant's own subscriber range (+86138) arriving from an interconnect
        setup = signed_setup(pki.home, HOME_X5U, caller=f"+86138{uuid.uuid4().int % 10**8:08d}", trunk=trunk)
        setup.ingress_kind = common_pb2.INGRESS_KIND_DOMESTIC_INTERCONNECT
        producer.send(event(setup))
    producer.flush()
    counts = await wait_counts(
        lambda: store.trunk_counts("demo-cn", trunk, int(time.time() * 1000)),
        lambda c: c.hour[Outcome.CALLS] >= 25,
        agent,
    )
    assert counts.hour[Outcome.ONNET_OFFNET] == 25
    assert counts.onnet_surge()


async def test_callers_are_counted_under_their_attributed_identity(
    agent: ServiceProcess,
    producer: SetupProducer,
    store: AttestationStore,
    pki: Pki,
    pseudonymize: Pseudonymizer,
) -> None:
    trunk = f"ic-{uuid.uuid4().hex[:8]}"
    caller = fresh_caller()
    asserted = signed_setup(pki.home, HOME_X5U, caller=caller, trunk=trunk)  # signed for the PAI
    asserted.p_asserted_identity = f"<sip:{caller}@ims.example;user=phone>"
    asserted.calling_number = "010 8888 6666"  # the PBX's main number in From
    withheld = [signed_setup(pki.home, HOME_X5U, caller=caller, trunk=trunk) for _ in range(2)]
    for setup in withheld:
        del setup.identity_headers[:]
        setup.calling_number = '"Anonymous" <sip:anonymous@anonymous.invalid>'
    for setup in (asserted, *withheld):
        producer.send(event(setup))
    producer.flush()
    by_pai = await wait_counts(
        lambda: store.number_counts(pseudonymize(caller), int(time.time() * 1000)),
        lambda c: c.day[Outcome.CALLS] >= 1,
        agent,
    )
    assert by_pai.day[Outcome.ATTEST_A] == 1
    bucket = pseudonymize(withheld_key("demo-cn", trunk))
    in_bucket = await wait_counts(
        lambda: store.number_counts(bucket, int(time.time() * 1000)),
        lambda c: c.day[Outcome.CALLS] >= 2,
        agent,
    )
    assert in_bucket.day[Outcome.UNSIGNED] == 2
    trunk_counts = await wait_counts(
        lambda: store.trunk_counts("demo-cn", trunk, int(time.time() * 1000)),
        lambda c: c.day[Outcome.CALLS] >= 3,
        agent,
    )
    assert trunk_counts.day[Outcome.WITHHELD] == 2
    assert (await store.number_counts(pseudonymize("+861088886666"), int(time.time() * 1000))).day[
        Outcome.CALLS
    ] == 0


async def test_undecodable_setup_is_dead_lettered(
    agent: ServiceProcess, producer: SetupProducer, stack: Stack
) -> None:
    since = end_offsets(stack.settings.kafka_bootstrap, dead_letter_topic("origination"))
    key = f"poison-{uuid.uuid4().hex}".encode()
    producer.send_raw(CALLS_SETUP, key, b"\xff\xfe not protobuf")
    producer.flush()
    letters = read_dead_letters(stack.settings.kafka_bootstrap, "origination", since, [key], timeout_s=WAIT_S)
    assert letters[key].reason == "decode_error", agent.tail()
    assert letters[key].consumer == "origination"
