"""OriginationService.Verify through real gRPC, with the real Redis, a real x5u HTTPS server and PKI.

Covers: a pre-seeded certificate verifies; a cache miss answers PENDING (degraded, not failed) and
the background fetch makes the next call VERIFIED; a second replica takes the chain from Redis
without touching the network; the same PASSporT through two replicas is a replay; a dead Redis
degrades (never fails) and opens the breaker; neighbor spoofing is dropped for a caller with
history; DNO; zero connections to a host off the allow-list; bad requests get INVALID_ARGUMENT.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fraudmesh.v1 import call_pb2, common_pb2, origination_pb2, origination_pb2_grpc, verdicts_pb2
from services.common import keys
from services.common.breaker import BreakerState
from services.common.pseudonym import Pseudonymizer
from services.common.settings import load
from services.origination.service import SERVICE_NAME, Origination, build, start
from services.origination.settings import OriginationSettings
from tests.integration.conftest import Stack
from tests.integration.origination_pki import (
    HOME_X5U,
    Pki,
    X5uServer,
    build_pki,
    loopback_fetcher,
    signed_setup,
    x5u_server,
)

pytestmark = pytest.mark.integration
VERIFIED = verdicts_pb2.SHAKEN_STATUS_VERIFIED


@pytest.fixture(scope="module")
def pki_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pki, bytes, Path]:
    folder = tmp_path_factory.mktemp("sti")
    pki, other_chain = build_pki(folder)
    (folder / "dno.txt").write_text("# test-only DNO list\n+861095588\n+86400*\n")
    return pki, other_chain, folder


@pytest.fixture(scope="module")
async def server(pki_files: tuple[Pki, bytes, Path]) -> AsyncIterator[X5uServer]:
    _pki, chain, folder = pki_files
    async with x5u_server(folder, chain) as state:
        yield state


def settings_for(stack: Stack, pki: Pki, folder: Path, **extra: str) -> OriginationSettings:
    env = {
        **stack.env,
        "FRAUDMESH_GRPC_PORT": "0",
        "FRAUDMESH_STI_TRUST_ANCHORS": str(pki.anchor_file),
        "FRAUDMESH_X5U_PREWARM_FILE": str(pki.prewarm_file),
        "FRAUDMESH_X5U_ALLOW_HOSTS": "cert.other.test,cert.home.test",
        "FRAUDMESH_DNO_FILE": str(folder / "dno.txt"),
        # the 3 ms production budget is a timing test on a loaded CI machine; these tests check logic
        "FRAUDMESH_REPLAY_TIMEOUT_S": "0.5",
        **extra,
    }
    return load(OriginationSettings, env)


@pytest.fixture(scope="module")
async def replicas(
    stack: Stack, pki_files: tuple[Pki, bytes, Path], server: X5uServer
) -> AsyncIterator[list[tuple[origination_pb2_grpc.OriginationServiceAsyncStub, Origination, int]]]:
    """Two replicas sharing the real Redis, each behind its own real gRPC server."""
    pki, _chain, folder = pki_files
    settings = settings_for(stack, pki, folder)
    started = []
    for _ in range(2):
        handle, core = await start(settings, build(settings, fetcher=loopback_fetcher(server)))
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{handle.port}")
        started.append((handle, core, channel))
    yield [(origination_pb2_grpc.OriginationServiceStub(ch), core, h.port) for h, core, ch in started]
    for handle, core, channel in started:
        await channel.close()
        await handle.stop(0.5)
        await core.redis.aclose()


async def verify(
    stub: origination_pb2_grpc.OriginationServiceAsyncStub, setup: call_pb2.CallSetup
) -> verdicts_pb2.OriginationVerdict:
    response = await stub.Verify(origination_pb2.VerifyRequest(setup=setup), timeout=2.0)
    return response.verdict


async def test_health_is_serving_after_prewarm(replicas: list[tuple[object, Origination, int]]) -> None:
    _stub, core, port = replicas[0]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        health: Any = health_pb2_grpc.HealthStub(channel)  # typeshed types only the sync stub
        reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=2.0)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert core.cache.get(HOME_X5U) is not None, "the provisioned certificate is warm before SERVING"


async def test_prewarmed_certificate_verifies(
    replicas: list[tuple[origination_pb2_grpc.OriginationServiceAsyncStub, Origination, int]],
    pki_files: tuple[Pki, bytes, Path],
) -> None:
    pki = pki_files[0]
    stub = replicas[0][0]
    verdict = await verify(stub, signed_setup(pki.home, HOME_X5U, attest="B"))
    assert verdict.shaken_status == VERIFIED
    assert verdict.attestation == common_pb2.ATTESTATION_B
    assert verdict.signer_ocn == "H001"
    assert verdict.origid
    assert "SHAKEN_ATTESTATION_B" in verdict.reason_codes
    assert not verdict.degraded


async def test_same_passport_at_two_replicas_is_a_replay(
    replicas: list[tuple[origination_pb2_grpc.OriginationServiceAsyncStub, Origination, int]],
    pki_files: tuple[Pki, bytes, Path],
) -> None:
    setup = signed_setup(pki_files[0].home, HOME_X5U)
    first = await verify(replicas[0][0], setup)
    again = await verify(replicas[1][0], setup)
    assert first.shaken_status == VERIFIED
    assert again.shaken_status == verdicts_pb2.SHAKEN_STATUS_FAILED
    assert again.reason_codes[0] == "SHAKEN_REPLAY"


async def test_cache_miss_is_pending_then_fetched_once_and_shared(
    replicas: list[tuple[origination_pb2_grpc.OriginationServiceAsyncStub, Origination, int]],
    pki_files: tuple[Pki, bytes, Path],
    server: X5uServer,
    redis_client: redis.Redis,
) -> None:
    pki = pki_files[0]
    (stub_a, core_a, _), (stub_b, core_b, _) = replicas
    before = server.connections
    started = time.perf_counter()
    pending = await verify(stub_a, signed_setup(pki.other, server.url))
    assert time.perf_counter() - started < 0.5, "a miss never waits for the fetch"
    assert pending.shaken_status == verdicts_pb2.SHAKEN_STATUS_PENDING
    assert pending.degraded
    for _ in range(100):
        if core_a.cache.get(server.url) is not None:
            break
        await asyncio.sleep(0.02)
    verdict = await verify(stub_a, signed_setup(pki.other, server.url))
    assert verdict.shaken_status == VERIFIED
    assert verdict.signer_ocn == "O002"
    assert server.connections == before + 1
    shared = keys.x5u_chain_key(server.url)
    assert 0 < redis_client.ttl(shared) <= 600, "the shared copy lives no longer than Cache-Control allows"
    # Replica B has never seen it: its miss is filled from Redis, not from the network.
    assert (
        await verify(stub_b, signed_setup(pki.other, server.url))
    ).shaken_status == verdicts_pb2.SHAKEN_STATUS_PENDING
    for _ in range(100):
        if core_b.cache.get(server.url) is not None:
            break
        await asyncio.sleep(0.02)
    assert (await verify(stub_b, signed_setup(pki.other, server.url))).shaken_status == VERIFIED
    assert server.connections == before + 1


async def test_off_allow_list_host_gets_zero_connections(
    replicas: list[tuple[origination_pb2_grpc.OriginationServiceAsyncStub, Origination, int]],
    pki_files: tuple[Pki, bytes, Path],
    server: X5uServer,
) -> None:
    pki = pki_files[0]
    stub = replicas[0][0]
    hostile = [
        f"https://evil.example:{server.port}/O002.pem",
        f"https://cert.other.test@evil.example:{server.port}/O002.pem",
        f"http://cert.other.test:{server.port}/O002.pem",
        f"https://cert.other.test:{server.port}/O002.pem?x=1",
        "https://169.254.169.254/latest/meta-data",
    ]
    before = server.connections
    for url in hostile:
        await verify(stub, signed_setup(pki.other, url))
    await asyncio.sleep(0.3)
    outcomes = [await verify(stub, signed_setup(pki.other, url)) for url in hostile]
    assert server.connections == before
    for verdict in outcomes:
        assert verdict.shaken_status == verdicts_pb2.SHAKEN_STATUS_FAILED, verdict


async def test_neighbor_spoofing_is_dropped_for_a_caller_with_history(
    replicas: list[tuple[origination_pb2_grpc.OriginationServiceAsyncStub, Origination, int]],
    redis_client: redis.Redis,
    stack: Stack,
) -> None:
    stub = replicas[0][0]
    suffix = uuid.uuid4().int % 9_000
    callee, established, newcomer = (f"+861381234{suffix + offset:04d}" for offset in range(3))
    pseudonym = Pseudonymizer(stack.settings.pseudonym_key)(established)
    old = int((time.time() - 30 * 86_400) * 1000)
    redis_client.hset(keys.number_key(pseudonym), "first_seen_ms", old)
    redis_client.expire(keys.number_key(pseudonym), 600)
    new_verdict = await verify(stub, _setup(newcomer, callee))
    old_verdict = await verify(stub, _setup(established, callee))
    assert "NEIGHBOR_SPOOFING" in new_verdict.reason_codes
    assert "NEIGHBOR_SPOOFING" not in old_verdict.reason_codes
    assert not old_verdict.degraded


async def test_verify_reads_presence_like_the_decision_does(
    replicas: list[tuple[origination_pb2_grpc.OriginationServiceAsyncStub, Origination, int]],
    redis_client: redis.Redis,
    stack: Stack,
) -> None:
    """Origination's Verify RPC proves an own number from the international gateway false from the
    subscriber's presence, says a roamer is roaming, and a mobile with none has no roaming indication."""
    stub = replicas[0][0]
    pseudonymize = Pseudonymizer(stack.settings.pseudonym_key)
    suffix = uuid.uuid4().int % 9_000
    home, roamer, unknown, callee = (f"+861381235{suffix + offset:04d}" for offset in range(4))
    now_ms = int(time.time() * 1000)
    for number, state in ((home, 1), (roamer, 2)):
        key = keys.presence_key(pseudonymize(number))
        redis_client.hset(
            key, mapping={"reg": state, "reg_ms": now_ms - 60_000, "cc": "FR" if state == 2 else ""}
        )
        redis_client.expire(key, 600)
    # the callee called the "home" subscriber before: a proven spoof of them impersonates a contact
    inbound = keys.inbound_key(pseudonymize(home))
    redis_client.sadd(inbound, keys.digest(pseudonymize(callee)))
    redis_client.expire(inbound, 600)

    def intl(caller: str) -> call_pb2.CallSetup:
        setup = _setup(caller, callee)
        setup.ingress_kind = common_pb2.INGRESS_KIND_INTERNATIONAL_GATEWAY
        return setup

    proven = await verify(stub, intl(home))
    assert {"ONNET_NUMBER_NOT_ROAMING", "IMPERSONATES_CONTACT"} <= set(proven.reason_codes)
    roaming = await verify(stub, intl(roamer))
    assert "ROAMING_VERIFIED" in roaming.reason_codes
    assert "ONNET_NUMBER_NOT_ROAMING" not in roaming.reason_codes
    nothing_known = await verify(stub, intl(unknown))
    assert "NO_ROAMING_INDICATION" in nothing_known.reason_codes
    assert "ONNET_NUMBER_NOT_ROAMING" not in nothing_known.reason_codes
    assert not nothing_known.degraded


def _setup(caller: str, callee: str) -> call_pb2.CallSetup:
    return call_pb2.CallSetup(
        call_id=f"it-{uuid.uuid4()}",
        tenant="demo-cn",
        calling_number=caller,
        called_number=callee,
        ingress_kind=common_pb2.INGRESS_KIND_DOMESTIC_INTERCONNECT,
    )


async def test_dno_listed_caller(
    replicas: list[tuple[origination_pb2_grpc.OriginationServiceAsyncStub, Origination, int]],
) -> None:
    stub = replicas[0][0]
    assert "DNO_LISTED" in (await verify(stub, _setup("+861095588", "+8613912345678"))).reason_codes
    assert "DNO_LISTED" in (await verify(stub, _setup("+864001234567", "+8613912345678"))).reason_codes
    assert "DNO_LISTED" not in (await verify(stub, _setup("+8613700001111", "+8613912345678"))).reason_codes


async def test_missing_setup_is_invalid_argument(
    replicas: list[tuple[origination_pb2_grpc.OriginationServiceAsyncStub, Origination, int]],
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await replicas[0][0].Verify(origination_pb2.VerifyRequest(), timeout=2.0)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_dead_redis_degrades_fast_and_opens_the_breaker(
    stack: Stack, pki_files: tuple[Pki, bytes, Path], server: X5uServer
) -> None:
    pki, _chain, folder = pki_files
    settings = settings_for(stack, pki, folder, FRAUDMESH_REDIS_URL="redis://127.0.0.1:1/0")
    dead = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.05, socket_timeout=0.05)
    core = build(settings, redis=dead, fetcher=loopback_fetcher(server))
    core.cache.warm_from_files([(HOME_X5U, folder / "home.pem")])
    for _ in range(settings.breaker_failures):
        verdict = await core.verify(signed_setup(pki.home, HOME_X5U))
        assert verdict.shaken_status == VERIFIED, "a dead Redis never fails a valid call"
        assert verdict.degraded
    assert core.breaker.state is BreakerState.OPEN
    attempts = 0
    real_set = dead.set

    async def counting_set(*args: Any, **kwargs: Any) -> Any:
        nonlocal attempts
        attempts += 1
        return await real_set(*args, **kwargs)

    dead.set = counting_set  # type: ignore[method-assign]
    for _ in range(3):
        verdict = await core.verify(signed_setup(pki.home, HOME_X5U))
        assert verdict.shaken_status == VERIFIED
        assert verdict.degraded
    assert attempts == 0, "while the breaker is open Redis is not even tried"
    await dead.aclose()
