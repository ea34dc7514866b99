"""DecisionService through real gRPC with the real Redis, Kafka and a real origination replica.

Emergency calls are ALLOW with Redis unreachable, with origination hung, with a broken policy
file and when scoring raises; the client deadline holds with Redis blackholed; shadow mode; hot
reload; audit records land on Kafka; redress (admin API) add → the next call is allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from confluent_kafka import TopicPartition
from cryptography.hazmat.primitives.serialization import Encoding

from fraudmesh.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    call_pb2,
    common_pb2,
    decision_pb2,
    decision_pb2_grpc,
    events_pb2,
)
from loadtest.kafkaio import end_offsets
from loadtest.mesh import wait_serving
from loadtest.processes import ServiceProcess
from services.common.kafka import make_consumer
from services.common.settings import load
from services.common.topics import CALLS_SETUP
from services.decision.policy import PolicyError, PolicyStore
from services.decision.service import REPO_ROOT, Running, start
from services.decision.settings import DecisionSettings
from services.origination.service import build as build_origination
from services.origination.service import start as start_origination
from services.origination.settings import OriginationSettings
from services.scoring.model import Scorer
from tests.integration.conftest import Stack, Worker, _free_port
from tests.integration.origination_pki import HOME_X5U, Pki, build_pki, signed_setup
from tests.tlsutil import issue_identity, make_ca
from training.synthetic import generate
from training.train import train

pytestmark = pytest.mark.integration
ALLOW, LABEL, BLOCK = common_pb2.ACTION_ALLOW, common_pb2.ACTION_LABEL, common_pb2.ACTION_BLOCK
TOKEN = secrets.token_hex(16)  # test-only admin token, made per run
SHIPPED_POLICY = yaml.safe_load((REPO_ROOT / "deploy" / "policy" / "default.yaml").read_text())


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model trained on synthetic rows at test time (the shipped default is tested elsewhere)."""
    folder = tmp_path_factory.mktemp("model") / "artifact"
    rows = generate(20_000, seed=3)
    train(
        rows.X, rows.y, rows.t_ms, rows.kinds, folder, manifest={"test": True}, trees=40, depth=4, threads=1
    )
    return folder


@pytest.fixture(scope="session")
def scorer(model_dir: Path) -> Scorer:
    return Scorer.load(model_dir)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return build_pki(tmp_path_factory.mktemp("sti-decision"))[0]


@pytest.fixture(scope="module")
async def origination_port(stack: Stack, pki: Pki) -> AsyncIterator[int]:
    env = {
        **stack.env,
        "FRAUDMESH_GRPC_PORT": "0",
        "FRAUDMESH_STI_TRUST_ANCHORS": str(pki.anchor_file),
        "FRAUDMESH_X5U_PREWARM_FILE": str(pki.prewarm_file),
        "FRAUDMESH_REPLAY_TIMEOUT_S": "0.5",  # logic, not timing, is under test here
    }
    settings = load(OriginationSettings, env)
    handle, core = await start_origination(settings, build_origination(settings))
    yield handle.port
    await handle.stop(0.5)
    await core.redis.aclose()


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    shutil.copy(REPO_ROOT / "deploy" / "policy" / "default.yaml", path)
    return path


def decision_settings(stack: Stack, policy: Path, origination: str, **extra: str) -> DecisionSettings:
    env = {
        **stack.env,
        "FRAUDMESH_GRPC_PORT": "0",
        "FRAUDMESH_ADMIN_PORT": "0",
        "FRAUDMESH_ADMIN_TOKEN": TOKEN,
        "FRAUDMESH_POLICY_FILE": str(policy),
        "FRAUDMESH_POLICY_CHECK_S": "0.05",
        "FRAUDMESH_ORIGINATION_TARGET": origination,
        "FRAUDMESH_ORIGINATION_TIMEOUT_S": "0.05",
        "FRAUDMESH_FEATURES_TIMEOUT_S": "0.05",
        **extra,
    }
    return load(DecisionSettings, env)


@contextlib.asynccontextmanager
async def running(settings: DecisionSettings, scorer: Scorer) -> AsyncIterator[tuple[Running, Any, Any]]:
    server = await start(settings, scorer=scorer)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    assert server.admin is not None
    admin_channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.admin.port}")
    try:
        yield (
            server,
            decision_pb2_grpc.DecisionServiceStub(channel),
            admin_pb2_grpc.AdminServiceStub(admin_channel),
        )
    finally:
        await channel.close()
        await admin_channel.close()
        await server.stop(0.5)


@contextlib.asynccontextmanager
async def blackhole() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never answers (a hung Redis or peer)."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()


def call(caller: str | None = None, callee: str = "+8613912345678", **fields: Any) -> call_pb2.CallSetup:
    setup = call_pb2.CallSetup(
        call_id=f"it-{uuid.uuid4()}",
        tenant="demo-cn",
        calling_number=caller or f"+86137{uuid.uuid4().int % 10**8:08d}",
        called_number=callee,
        ingress_kind=common_pb2.INGRESS_KIND_DOMESTIC_INTERCONNECT,
        **fields,
    )
    setup.event_time.GetCurrentTime()
    return setup


async def decide(
    stub: Any, setup: call_pb2.CallSetup, deadline_s: float = 2.0
) -> decision_pb2.DecideResponse:
    return await stub.Decide(decision_pb2.DecideRequest(setup=setup), timeout=deadline_s)  # type: ignore[no-any-return]


def edit(path: Path, *changes: tuple[str, str]) -> None:
    """Rewrite a policy file in place (each change must apply)."""
    text = path.read_text()
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)


BEARER = (("authorization", f"Bearer {TOKEN}"),)


async def test_decide_answers_with_versions_latency_and_origination(
    stack: Stack, scorer: Scorer, policy_file: Path, origination_port: int, pki: Pki
) -> None:
    settings = decision_settings(stack, policy_file, f"127.0.0.1:{origination_port}")
    async with running(settings, scorer) as (_server, stub, _admin):
        setup = signed_setup(pki.home, HOME_X5U)
        setup.event_time.GetCurrentTime()
        reply = await decide(stub, setup)
    decision = reply.decision
    assert decision.call_id == setup.call_id
    assert decision.action in (ALLOW, LABEL, common_pb2.ACTION_CHALLENGE, BLOCK)
    assert decision.model_version == scorer.version
    assert decision.policy_version == SHIPPED_POLICY["version"]
    assert decision.latency_us > 0
    assert not decision.degraded, decision.degraded_reasons
    assert reply.origination.shaken_status != 0


async def test_emergency_is_allowed_whatever_is_broken(
    stack: Stack, scorer: Scorer, policy_file: Path
) -> None:
    async with blackhole() as dead_port:
        settings = decision_settings(
            stack,
            policy_file,
            f"127.0.0.1:{dead_port}",  # origination hung
            FRAUDMESH_REDIS_URL=f"redis://127.0.0.1:{dead_port}/0",  # Redis blackholed
            FRAUDMESH_KAFKA_BOOTSTRAP="127.0.0.1:1",  # Kafka down: audit records queue and drop
        )
        async with running(settings, scorer) as (server, stub, _admin):
            edit(policy_file, ("version:", "thresholds: [this is not a policy\nversion:"))  # broken file
            await asyncio.sleep(0.2)
            for callee in ("110", "120", "119", "122"):
                reply = await decide(stub, call(callee=callee), deadline_s=0.5)
                assert reply.decision.action == ALLOW
                assert reply.decision.reason_codes == ["EMERGENCY_NUMBER"]
            assert server.decider.policies.last_error, "the broken file was seen and rejected"

            def explode(*_args: Any, **_kwargs: Any) -> Any:
                raise RuntimeError("scoring is broken")

            server.decider.scorer.score = explode  # type: ignore[method-assign]
            try:
                emergency = await decide(stub, call(callee="110"), deadline_s=0.5)
                ordinary = await decide(stub, call(), deadline_s=0.5)
            finally:
                del server.decider.scorer.score
    assert emergency.decision.action == ALLOW
    assert ordinary.decision.action == ALLOW
    assert "DECISION_ERROR" in ordinary.decision.degraded_reasons


async def test_deadline_holds_with_redis_blackholed_and_breaker_opens(
    stack: Stack, scorer: Scorer, policy_file: Path
) -> None:
    async with blackhole() as dead_port:
        settings = decision_settings(
            stack,
            policy_file,
            "",
            FRAUDMESH_REDIS_URL=f"redis://127.0.0.1:{dead_port}/0",
            FRAUDMESH_AUDIT_ENABLED="false",
        )
        async with running(settings, scorer) as (server, stub, _admin):
            replies = [await decide(stub, call(), deadline_s=0.25) for _ in range(12)]
            state = server.decider.breakers["redis"].state.name
    assert all(r.decision.action != BLOCK for r in replies), "a degraded decision never blocks"
    assert all(r.decision.degraded for r in replies)
    assert "REDIS_TIMEOUT" in replies[0].decision.degraded_reasons
    assert "REDIS_UNAVAILABLE" in replies[-1].decision.degraded_reasons, "the breaker stops trying"
    assert state == "OPEN"


async def test_redress_allow_list_shadow_mode_and_hot_reload(
    stack: Stack, scorer: Scorer, policy_file: Path, reputation_worker: Worker
) -> None:
    caller = f"+86137{uuid.uuid4().int % 10**8:08d}"
    settings = decision_settings(stack, policy_file, "")
    async with running(settings, scorer) as (_server, stub, admin):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await admin.Explain(admin_pb2.ExplainRequest(tenant="demo-cn", number=caller), timeout=2.0)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        deny = admin_pb2.PutListEntryRequest(
            tenant="demo-cn",
            number=caller,
            kind=admin_pb2.LIST_KIND_DENY,
            ttl_s=600,
            reason="test: confirmed fraud",
            actor="it",
        )
        await admin.PutListEntry(deny, metadata=BEARER, timeout=2.0)
        blocked = (await decide(stub, call(caller))).decision
        assert blocked.action == BLOCK
        assert blocked.reason_codes == ["DENY_LISTED", "EVIDENCE_PROOF"]
        assert blocked.sip.status_code == 603
        assert blocked.sip.reason_header == 'SIP;cause=603;text="Network Blocked"'
        assert blocked.sip.redress_contact

        allow = admin_pb2.PutListEntryRequest(
            tenant="demo-cn",
            number=caller,
            kind=admin_pb2.LIST_KIND_ALLOW,
            ttl_s=600,
            reason="redress ticket 42",
            actor="it",
        )
        await admin.PutListEntry(allow, metadata=BEARER, timeout=2.0)
        allowed = (await decide(stub, call(caller))).decision
        assert allowed.action == ALLOW
        assert allowed.reason_codes == ["ALLOW_LISTED"]

        removed = await admin.RemoveListEntry(
            admin_pb2.RemoveListEntryRequest(tenant="demo-cn", number=caller, kind=admin_pb2.LIST_KIND_ALLOW),
            metadata=BEARER,
            timeout=2.0,
        )
        assert removed.removed
        edit(policy_file, ("  demo-cn: {language: zh,", "  demo-cn: {language: zh, shadow: true,"))
        await asyncio.sleep(0.3)
        shadow = (await decide(stub, call(caller))).decision
        assert shadow.action == ALLOW
        assert shadow.shadow_action == BLOCK

        edit(
            policy_file,
            ("shadow: true,", "shadow: false,"),
            (
                "thresholds: {label: 0.60, challenge: 0.90, block: 0.98}",
                "thresholds: {label: 0.0, challenge: 1.01, block: 1.01}",
            ),
            (f'version: "{SHIPPED_POLICY["version"]}"', 'version: "it-reloaded"'),
        )
        await asyncio.sleep(0.3)
        reloaded = (await decide(stub, call())).decision
        assert reloaded.policy_version == "it-reloaded"
        assert reloaded.action == LABEL
        assert reloaded.label == "疑似诈骗"
        assert reloaded.reason_codes

        # Recent decisions are written by reputation as it folds the audit records (off the call path).
        deadline = time.monotonic() + 60
        while True:
            explained = await admin.Explain(
                admin_pb2.ExplainRequest(tenant="demo-cn", number=caller), metadata=BEARER, timeout=2.0
            )
            if len(explained.recent) >= 3 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    assert [e.kind for e in explained.entries] == [admin_pb2.LIST_KIND_DENY]
    assert explained.entries[0].reason == "test: confirmed fraud"
    assert [s.action for s in explained.recent] == [ALLOW, ALLOW, BLOCK]
    assert explained.recent[0].shadow_action == BLOCK
    assert caller not in str(explained), "the answer carries the pseudonym, never the number"


def test_broken_policy_at_start_is_fatal_and_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    shutil.copy(REPO_ROOT / "deploy" / "policy" / "default.yaml", path)
    path.write_text(path.read_text().replace("block: 0.98}", "block: 0.5}"))
    with pytest.raises(PolicyError, match="label <= challenge <= block"):
        PolicyStore(path)


@pytest.fixture
def audit_offsets(stack: Stack) -> dict[int, int]:
    return end_offsets(stack.settings.kafka_bootstrap, CALLS_SETUP)


async def test_audit_records_land_on_kafka(
    stack: Stack, scorer: Scorer, policy_file: Path, audit_offsets: dict[int, int]
) -> None:
    settings = decision_settings(stack, policy_file, "")
    setups = [call() for _ in range(5)]
    late = call()  # the switch gives up before the answer: the call still happened, so it is audited
    async with running(settings, scorer) as (_server, stub, _admin):
        for setup in setups:
            await decide(stub, setup)
        with contextlib.suppress(grpc.aio.AioRpcError):  # usually DEADLINE_EXCEEDED; either way audited
            await decide(stub, late, deadline_s=0.001)
        await asyncio.sleep(0.5)
    setups.append(late)
    wanted = {s.call_id for s in setups}
    found: dict[str, events_pb2.CallSetupEvent] = {}
    consumer = make_consumer(stack.settings.kafka_bootstrap, f"it-audit-{uuid.uuid4().hex[:8]}")
    consumer.assign([TopicPartition(CALLS_SETUP.name, p, o) for p, o in audit_offsets.items()])
    deadline = time.monotonic() + 30
    try:
        while wanted - set(found) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            record = CALLS_SETUP.codec().decode(message.value())
            if record.setup.call_id in wanted:
                found[record.setup.call_id] = record
    finally:
        consumer.close()
    assert set(found) == wanted
    for record in found.values():
        assert record.decision.call_id == record.setup.call_id
        assert record.decision.model_version == scorer.version


def test_two_worker_processes_share_the_port_and_drain_on_sigterm(stack: Stack, model_dir: Path) -> None:
    port = _free_port()
    env = {
        **stack.env,
        "FRAUDMESH_WORKERS": "2",
        "FRAUDMESH_GRPC_PORT": str(port),
        "FRAUDMESH_METRICS_PORT": "0",
        "FRAUDMESH_MODEL_PATH": str(model_dir),
        "FRAUDMESH_ORIGINATION_TARGET": "",
        "FRAUDMESH_AUDIT_ENABLED": "false",
    }
    process = ServiceProcess(
        "services.decision", env, REPO_ROOT / ".stack" / "logs" / f"decision-workers-{port}.log"
    )
    try:
        wait_serving(f"127.0.0.1:{port}", process=process)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub: Any = decision_pb2_grpc.DecisionServiceStub(channel)
            replies = [stub.Decide(decision_pb2.DecideRequest(setup=call()), timeout=5.0) for _ in range(20)]
        assert all(r.decision.model_version for r in replies)
    finally:
        code = process.stop()
    assert code == 0, process.tail()


async def test_decision_reaches_origination_only_with_its_client_certificate(
    stack: Stack, scorer: Scorer, policy_file: Path, pki: Pki, tmp_path: Path
) -> None:
    files = _tls_files(tmp_path, "origination", "decision", stranger=True)
    origination_env = {
        **stack.env,
        "FRAUDMESH_GRPC_PORT": "0",
        "FRAUDMESH_STI_TRUST_ANCHORS": str(pki.anchor_file),
        "FRAUDMESH_TLS_CERT_FILE": files["server.pem"],
        "FRAUDMESH_TLS_KEY_FILE": files["server.key"],
        "FRAUDMESH_TLS_CLIENT_CA_FILE": files["ca.pem"],
    }
    origination_settings = load(OriginationSettings, origination_env)
    handle, core = await start_origination(origination_settings, build_origination(origination_settings))
    target = f"localhost:{handle.port}"
    try:
        verdicts = {}
        for who in ("client", "stranger"):
            settings = decision_settings(
                stack,
                policy_file,
                target,
                FRAUDMESH_TLS_SERVER_CA_FILE=files["ca.pem"],
                FRAUDMESH_TLS_CLIENT_CERT_FILE=files[f"{who}.pem"],
                FRAUDMESH_TLS_CLIENT_KEY_FILE=files[f"{who}.key"],
                FRAUDMESH_AUDIT_ENABLED="false",
            )
            async with running(settings, scorer) as (_server, stub, _admin):
                verdicts[who] = await decide(stub, call())
    finally:
        await handle.stop(0.5)
        await core.redis.aclose()
    assert verdicts["client"].HasField("origination")
    assert not verdicts["client"].decision.degraded, verdicts["client"].decision.degraded_reasons
    assert not verdicts["stranger"].HasField("origination"), "a client certificate from another CA is refused"
    assert "ORIGINATION_UNAVAILABLE" in verdicts["stranger"].decision.degraded_reasons


async def test_late_calls_skip_dependencies_without_opening_the_breakers(
    stack: Stack, scorer: Scorer, policy_file: Path, origination_port: int
) -> None:
    settings = decision_settings(
        stack,
        policy_file,
        f"127.0.0.1:{origination_port}",
        FRAUDMESH_ORIGINATION_TIMEOUT_S="0.004",  # production sub-deadlines and breakers
        FRAUDMESH_FEATURES_TIMEOUT_S="0.004",
        FRAUDMESH_AUDIT_ENABLED="false",
    )
    async with running(settings, scorer) as (server, stub, _admin):
        decider = server.decider
        for _ in range(50):  # arriving with less left than the margin: skip, never charge
            outcome = await decider.decide(call(), 0.0003, record=False)
            assert {"REDIS_SKIPPED_LATE", "ORIGINATION_SKIPPED_LATE"} <= set(
                outcome.decision.degraded_reasons
            )
        for _ in range(50):  # a wait cut short by the client's deadline is not the dependency's fault
            await decider.decide(call(), 0.0009, record=False)
        assert all(breaker.allow() for breaker in decider.breakers.values()), "late calls opened a breaker"
        on_time = await decide(stub, call(), deadline_s=1.0)
    # Both breakers still closed: an on-time call waits for both dependencies (whether they answer
    # within 4 ms on a busy 2-core machine is timing, which never gates CI).
    tried = {"REDIS_UNAVAILABLE", "ORIGINATION_UNAVAILABLE", "REDIS_SKIPPED_LATE", "ORIGINATION_SKIPPED_LATE"}
    assert not tried & set(on_time.decision.degraded_reasons), on_time.decision.degraded_reasons


async def test_decide_stream_decides_concurrently_matches_call_ids_and_answers_bad_messages(
    stack: Stack, scorer: Scorer, policy_file: Path
) -> None:
    async with blackhole() as hung:
        settings = decision_settings(
            stack,
            policy_file,
            f"127.0.0.1:{hung}",  # origination hung: an ordinary call waits its whole sub-deadline
            FRAUDMESH_ORIGINATION_TIMEOUT_S="0.004",
            FRAUDMESH_FEATURES_TIMEOUT_S="0.004",
            FRAUDMESH_AUDIT_ENABLED="false",
        )
        async with running(settings, scorer) as (_server, stub, _admin):
            slow = call()
            emergency = call(callee="tel:110;phone-context=+86")
            ordinary = [call() for _ in range(150)]
            requests = [
                decision_pb2.DecideRequest(setup=slow),
                decision_pb2.DecideRequest(setup=emergency),
                decision_pb2.DecideRequest(),  # no setup, no call id
                *(
                    decision_pb2.DecideRequest(setup=setup, budget_ms=1 + i % 30)
                    for i, setup in enumerate(ordinary)
                ),
            ]

            async def send() -> AsyncIterator[decision_pb2.DecideRequest]:
                for request in requests:
                    yield request

            responses = [response async for response in stub.DecideStream(send(), timeout=10.0)]
    assert len(responses) == len(requests), "one response per message"
    ids = [response.decision.call_id for response in responses]
    assert sorted(i for i in ids if i) == sorted(r.setup.call_id for r in requests if r.setup.call_id)
    invalid = [response.decision for response in responses if not response.decision.call_id]
    assert len(invalid) == 1
    assert invalid[0].action == ALLOW
    assert list(invalid[0].degraded_reasons) == ["INVALID_REQUEST"]
    assert ids.index(emergency.call_id) < ids.index(slow.call_id), "decided concurrently, answered as done"
    by_id = {response.decision.call_id: response.decision for response in responses}
    assert by_id[emergency.call_id].reason_codes == ["EMERGENCY_NUMBER"]
    assert all(by_id[setup.call_id].degraded for setup in ordinary), "origination hung: every one degraded"


def _tls_files(
    tmp_path: Path, server_name: str, client_name: str, *, stranger: bool = False
) -> dict[str, str]:
    """A test CA, a server and a client certificate (and a stranger's from another CA), as files."""
    mesh_ca = make_ca("fraudmesh test mesh CA")
    issued = {
        "server": issue_identity(mesh_ca, server_name, server=True),
        "client": issue_identity(mesh_ca, client_name, server=False),
    }
    if stranger:
        issued["stranger"] = issue_identity(make_ca("some other CA"), client_name, server=False)
    contents = {"ca.pem": mesh_ca[0].public_bytes(Encoding.PEM)}
    for who, cert in issued.items():
        contents[f"{who}.pem"], contents[f"{who}.key"] = cert.cert, cert.key
    files = {}
    for name, data in contents.items():
        (tmp_path / name).write_bytes(data)
        files[name] = str(tmp_path / name)
    return files


async def test_admin_records_the_authenticated_principal_as_actor(
    stack: Stack, scorer: Scorer, policy_file: Path, tmp_path: Path
) -> None:
    caller = f"+86137{uuid.uuid4().int % 10**8:08d}"
    put = admin_pb2.PutListEntryRequest(
        tenant="demo-cn",
        number=caller,
        kind=admin_pb2.LIST_KIND_DENY,
        ttl_s=60,
        reason="t",
        actor="someone-else",
    )
    explain = admin_pb2.ExplainRequest(tenant="demo-cn", number=caller)
    settings = decision_settings(stack, policy_file, "", FRAUDMESH_AUDIT_ENABLED="false")
    async with running(settings, scorer) as (_server, _stub, admin):
        await admin.PutListEntry(put, metadata=BEARER, timeout=2.0)
        by_token = (await admin.Explain(explain, metadata=BEARER, timeout=2.0)).entries[0]
    assert by_token.actor == "token:admin", "the token's principal, not the client-supplied actor"
    assert by_token.on_behalf_of == "someone-else"

    files = _tls_files(tmp_path, "decision-admin", "noc-operator")
    settings = decision_settings(
        stack,
        policy_file,
        "",
        FRAUDMESH_AUDIT_ENABLED="false",
        FRAUDMESH_ADMIN_TOKEN=f"noc {TOKEN}\nbackup {secrets.token_hex(16)}",
        FRAUDMESH_ADMIN_TLS_CERT_FILE=files["server.pem"],
        FRAUDMESH_ADMIN_TLS_KEY_FILE=files["server.key"],
        FRAUDMESH_ADMIN_TLS_CLIENT_CA_FILE=files["ca.pem"],
    )
    server = await start(settings, scorer=scorer)
    pem = {name: Path(path).read_bytes() for name, path in files.items()}  # noqa: ASYNC240 - tiny test files
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pem["ca.pem"], private_key=pem["client.key"], certificate_chain=pem["client.pem"]
    )
    assert server.admin is not None
    channel = grpc.aio.secure_channel(f"localhost:{server.admin.port}", credentials)
    try:
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        await stub.PutListEntry(put, metadata=BEARER, timeout=2.0)
        by_cert = (await stub.Explain(explain, metadata=BEARER, timeout=2.0)).entries[0]
    finally:
        await channel.close()
        await server.stop(0.5)
    assert by_cert.actor == "cert:noc-operator"
