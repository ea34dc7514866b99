"""Decision verifies SHAKEN in-process, its certificates from origination's feed (issue 15).

Real Kafka (sti.certs.v1, sti.certs.misses.v1), real Redis, a real origination replica and real
decision processes (in this test process, on production sub-deadlines and breakers):

* a decision process started after origination published its certificates loads them: the first
  call verifies;
* a certificate origination publishes while decision runs reaches it: the next call verifies;
* an unknown certificate: the first call is PENDING, the miss reaches origination, which fetches
  the x5u and publishes the chain, and a later call verifies;
* a PASSporT presented to one decision process and then to another is a replay in the second;
* a Decide costs exactly one Redis command (one EVALSHA on the caller's slot), counted with MONITOR.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from fraudmesh.v1 import call_pb2, verdicts_pb2
from services.common.settings import load
from services.decision.decider import Outcome
from services.decision.service import REPO_ROOT, Running, start
from services.decision.settings import DecisionSettings
from services.origination.service import Origination
from services.origination.service import build as build_origination
from services.origination.service import start as start_origination
from services.origination.settings import OriginationSettings
from services.scoring.model import Scorer
from tests.integration.conftest import Stack
from tests.integration.origination_pki import (
    HOME_X5U,
    Pki,
    build_pki,
    loopback_fetcher,
    signed_setup,
    x5u_server,
)
from tests.integration.test_decision_service import model_dir, scorer

pytestmark = pytest.mark.integration
__all__ = ["model_dir", "scorer"]  # fixtures shared with test_decision_service

S = verdicts_pb2
BUDGET_S = 0.05  # the client's deadline; the sub-deadlines inside it stay at production values


@pytest.fixture(scope="module")
def pki_and_chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pki, bytes, Path]:
    folder = tmp_path_factory.mktemp("sti-inprocess")
    pki, other_chain = build_pki(folder)
    return pki, other_chain, folder


@contextlib.asynccontextmanager
async def origination(
    stack: Stack, pki: Pki, *, prewarm: bool = True, fetcher: object | None = None, hosts: str = ""
) -> AsyncIterator[Origination]:
    env = {
        **stack.env,
        "FRAUDMESH_GRPC_PORT": "0",
        "FRAUDMESH_STI_TRUST_ANCHORS": str(pki.anchor_file),
        "FRAUDMESH_X5U_ALLOW_HOSTS": hosts,
    }
    if prewarm:
        env["FRAUDMESH_X5U_PREWARM_FILE"] = str(pki.prewarm_file)
    settings = load(OriginationSettings, env)
    handle, core = await start_origination(settings, build_origination(settings, fetcher=fetcher))  # type: ignore[arg-type]
    try:
        yield core
    finally:
        await handle.stop(0.5)
        await core.redis.aclose()


@contextlib.asynccontextmanager
async def decision(stack: Stack, pki: Pki, scorer: Scorer, folder: Path) -> AsyncIterator[Running]:
    policy = folder / "policy.yaml"
    if not policy.exists():
        shutil.copy(REPO_ROOT / "deploy" / "policy" / "default.yaml", policy)
    env = {
        **stack.env,
        "FRAUDMESH_GRPC_PORT": "0",
        "FRAUDMESH_POLICY_FILE": str(policy),
        "FRAUDMESH_STI_TRUST_ANCHORS": str(pki.anchor_file),
        "FRAUDMESH_CERT_MISS_INTERVAL_S": "0.5",
    }
    server = await start(load(DecisionSettings, env), scorer=scorer)
    try:
        yield server
    finally:
        await server.stop(0.5)


async def decide(server: Running, setup: call_pb2.CallSetup) -> Outcome:
    return await server.decider.decide(setup, BUDGET_S, record=False)


async def verified_eventually(server: Running, make: object, timeout_s: float = 30.0) -> Outcome:
    """Decide fresh calls until one verifies (the certificate crossed Kafka), or fail with the last."""
    deadline = time.monotonic() + timeout_s
    while True:
        outcome = await decide(server, make())  # type: ignore[operator]
        assert outcome.origination is not None
        if outcome.origination.shaken_status == S.SHAKEN_STATUS_VERIFIED:
            return outcome
        if time.monotonic() > deadline:
            pytest.fail(f"never verified: {outcome.origination}")
        await asyncio.sleep(0.2)


async def test_a_decision_started_after_the_certificates_were_published_loads_them(
    stack: Stack, pki_and_chain: tuple[Pki, bytes, Path], scorer: Scorer
) -> None:
    pki, _, folder = pki_and_chain
    async with origination(stack, pki), decision(stack, pki, scorer, folder) as server:
        assert server.decider.local is not None
        assert server.decider.origination is None, "no Verify RPC when decision verifies in-process"
        assert server.decider.local.follower.chains.get(HOME_X5U) is not None
        outcome = await decide(server, signed_setup(pki.home, HOME_X5U))
        assert outcome.origination is not None
        assert outcome.origination.shaken_status == S.SHAKEN_STATUS_VERIFIED
        assert outcome.origination.signer_ocn == "H001"
        assert not outcome.decision.degraded, outcome.decision.degraded_reasons


async def test_an_unknown_certificate_is_fetched_by_origination_after_the_first_call(
    stack: Stack, pki_and_chain: tuple[Pki, bytes, Path], scorer: Scorer
) -> None:
    pki, other_chain, folder = pki_and_chain
    async with x5u_server(folder, other_chain) as x5u:
        fetcher = loopback_fetcher(x5u)
        async with (
            origination(stack, pki, prewarm=False, fetcher=fetcher, hosts="cert.other.test"),
            decision(stack, pki, scorer, folder) as server,
        ):
            first = await decide(server, signed_setup(pki.other, x5u.url))
            assert first.origination is not None
            assert first.origination.shaken_status == S.SHAKEN_STATUS_PENDING
            assert "ORIGINATION_DEGRADED" in first.decision.degraded_reasons
            verified = await verified_eventually(server, lambda: signed_setup(pki.other, x5u.url))
            assert verified.origination is not None
            assert verified.origination.signer_ocn == "O002"
            assert x5u.paths, "origination fetched the x5u the decision process reported"


async def test_a_certificate_published_while_decision_runs_reaches_it(
    stack: Stack, pki_and_chain: tuple[Pki, bytes, Path], scorer: Scorer
) -> None:
    pki, _, folder = pki_and_chain
    url = f"https://cert.home.test/H001-{uuid.uuid4().hex[:8]}.pem"  # nothing published it yet
    prewarm = folder / f"prewarm-{uuid.uuid4().hex[:8]}.txt"
    prewarm.write_text(f"{url} home.pem\n")
    async with decision(stack, pki, scorer, folder) as server:
        before = await decide(server, signed_setup(pki.home, url))
        assert before.origination is not None
        assert before.origination.shaken_status == S.SHAKEN_STATUS_PENDING
        async with origination(stack, dataclasses.replace(pki, prewarm_file=prewarm)):
            await verified_eventually(server, lambda: signed_setup(pki.home, url))


async def test_a_replay_is_caught_across_decision_processes(
    stack: Stack, pki_and_chain: tuple[Pki, bytes, Path], scorer: Scorer
) -> None:
    pki, _, folder = pki_and_chain
    setup = signed_setup(pki.home, HOME_X5U, caller="+8613800138011")
    async with (
        origination(stack, pki),
        decision(stack, pki, scorer, folder) as one,
        decision(stack, pki, scorer, folder) as two,
    ):
        first = await decide(one, setup)
        again = call_pb2.CallSetup()
        again.CopyFrom(setup)
        again.call_id = setup.call_id + "-replayed"
        second = await decide(two, again)
    assert first.origination is not None
    assert second.origination is not None
    assert first.origination.shaken_status == S.SHAKEN_STATUS_VERIFIED
    assert second.origination.shaken_status == S.SHAKEN_STATUS_FAILED
    assert "SHAKEN_REPLAY" in second.origination.reason_codes
    assert not second.decision.degraded, "Redis answered: the replay came from the shared marker"


async def test_one_decide_costs_exactly_one_redis_command(
    stack: Stack, pki_and_chain: tuple[Pki, bytes, Path], scorer: Scorer
) -> None:
    pki, _, folder = pki_and_chain
    caller = "+8613800138022"
    async with origination(stack, pki), decision(stack, pki, scorer, folder) as server:
        await decide(server, signed_setup(pki.home, HOME_X5U, caller=caller))  # connections warm
        pseudonym = server.decider.pseudonymize(caller)
        client = aioredis.Redis.from_url(stack.env["FRAUDMESH_REDIS_URL"])
        seen: list[tuple[str, str]] = []  # (client type: "lua" inside a script, the command)
        async with client.monitor() as monitor:
            await asyncio.sleep(0.2)  # MONITOR is registered before the call

            async def listen() -> None:
                async for command in monitor.listen():
                    seen.append((str(command.get("client_type", "")), str(command.get("command", ""))))

            listener = asyncio.create_task(listen())
            started = time.monotonic()
            outcome = await decide(server, signed_setup(pki.home, HOME_X5U, caller=caller))
            await asyncio.sleep(0.5)
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        await client.aclose()
        assert time.monotonic() - started < 30
    assert outcome.origination is not None
    assert outcome.origination.shaken_status == S.SHAKEN_STATUS_VERIFIED
    sent = [command for kind, command in seen if kind != "lua" and pseudonym in command]
    inside = [command for kind, command in seen if kind == "lua"]
    assert len(sent) == 1, sent
    assert sent[0].upper().startswith("EVALSHA"), sent
    assert f"{{{pseudonym}}}:replay:" in sent[0], "the replay marker rides the same script"
    slot = key_slot(f"{{{pseudonym}}}".encode())
    assert all(key_slot(key.encode()) == slot for key in sent[0].split() if key.startswith("fm:v1:")), sent
    assert any(command.upper().startswith("SET ") for command in inside), inside


def test_settings_without_trust_anchors_keep_the_verify_rpc(stack: Stack) -> None:
    settings = load(DecisionSettings, dict(stack.env))
    assert not settings.sti_trust_anchors
    assert dataclasses.replace(settings).origination_target  # remote mode stays the default
