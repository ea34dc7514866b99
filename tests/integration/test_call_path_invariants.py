"""Call-path invariants, property-tested through real gRPC under every injected fault.

Hypothesis generates call setups — every emergency form (digits, +cc / IDD, tel: with and without
phone-context, sip:/sips:, percent escapes, urn:service:sos*, in the called number or the
Request-URI), PSAP callbacks, ordinary and garbage numbers and URIs, random and hostile Identity
headers (huge ``iat``, deep nesting, huge arrays, real signatures), unknown enum values — and sends
each to one of several real decision servers, all on production sub-deadlines (4 ms) and breakers (5):

* ``healthy``: the real local Redis and a real origination replica;
* ``redis_refused``: Redis at a closed port; ``redis_hung``: Redis at a port that accepts and never
  answers;
* ``origination_hung``: origination at such a port; ``origination_garbage``: a real gRPC server that
  answers Verify with random verdicts, random errors, or too late;
* ``scorer_raising``: the model raises on every call;
* ``policy_churn``: healthy dependencies while a task keeps swapping corrupted policy files in.

For every call: no Decide error; the answer arrives inside the client's deadline; every emergency
call and PSAP callback is ALLOW; a dependency that did not contribute left a degraded cause.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import shutil
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import grpc
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fraudmesh.v1 import (
    call_pb2,
    common_pb2,
    decision_pb2,
    decision_pb2_grpc,
    origination_pb2,
    origination_pb2_grpc,
    verdicts_pb2,
)
from services.common.emergency import is_emergency_call
from services.common.identity import attribute_setup
from services.common.phone import InvalidNumberError
from services.common.settings import load
from services.decision.service import REPO_ROOT, Running, start
from services.decision.settings import DecisionSettings
from services.origination.service import build as build_origination
from services.origination.service import start as start_origination
from services.origination.settings import OriginationSettings
from services.scoring.model import Scorer
from tests.integration.conftest import Stack
from tests.integration.origination_pki import HOME_X5U, Pki, signed_setup
from tests.integration.test_decision_service import blackhole, model_dir, pki, scorer
from tests.unit.test_emergency import emergency_forms, sos_urns

pytestmark = pytest.mark.integration
__all__ = ["model_dir", "pki", "scorer"]  # fixtures shared with test_decision_service

ALLOW = common_pb2.ACTION_ALLOW
PSAP = "+861066660110"
FAULTS = (
    "healthy",
    "redis_refused",
    "redis_hung",
    "origination_hung",
    "origination_garbage",
    "scorer_raising",
    "policy_churn",
)
REDIS_FAULTS = frozenset({"redis_refused", "redis_hung"})
ORIGINATION_FAULTS = frozenset({"origination_hung"})
EXAMPLES = 1000
KINDS: Final = ("emergency", "emergency_uri", "urn", "psap", "ordinary", "ordinary")
KIND_OF_ALLOW: Final = {"": "ordinary", "EMERGENCY_NUMBER": "emergency", "EMERGENCY_CALLBACK": "psap"}
"""The case kind that draws each expected answer (``must_allow``), for pairs the generator skipped."""


class GarbageOrigination(origination_pb2_grpc.OriginationServiceServicer):
    """A real origination endpoint that answers nonsense: random verdicts, random errors, or late."""

    def __init__(self) -> None:
        self._random = random.Random(13)

    async def Verify(
        self, request: origination_pb2.VerifyRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> origination_pb2.VerifyResponse:
        pick = self._random.random()
        if pick < 0.2:
            await context.abort(self._random.choice(list(grpc.StatusCode)[1:]), "garbage")
        if pick < 0.3:
            await asyncio.sleep(0.05)
        verdict = verdicts_pb2.OriginationVerdict(
            shaken_status=self._random.randint(-3, 40),  # type: ignore[arg-type]
            attestation=self._random.randint(-3, 40),  # type: ignore[arg-type]
            origid="x" * self._random.randint(0, 5000),
            signer_ocn="\x00\uffff" * self._random.randint(0, 10),
            reason_codes=self._random.sample(
                ["DNO_LISTED", "SHAKEN_REPLAY", "NOT_A_CODE", "", "x" * 300, "INVALID_CLI", "\x00"],
                self._random.randint(0, 5),
            ),
            degraded=self._random.random() < 0.5,
        )
        return origination_pb2.VerifyResponse(verdict=verdict)


@dataclass
class Mesh:
    """The decision servers under test, one per fault, and their client stubs."""

    servers: dict[str, Running]
    stubs: dict[str, Any]
    churn_policy: Path
    policy_version: str


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _corruptions(good: str) -> list[bytes]:
    data = yaml.safe_load(good)
    edits: list[Any] = [
        {**data, "tenants": ["demo-cn"]},
        {**data, "deny_action": ["BLOCK"]},
        {**data, "thresholds": {"label": 2, "challenge": 0, "block": "x"}},
        {**data, "psap_callback_numbers": "not a list"},
        {**data, "emergency_numbers": [{"nested": ["deep"]}]},
        ["a", "list", "is", "not", "a", "policy"],
    ]
    raw = [yaml.safe_dump(edit).encode() for edit in edits]
    return [
        *raw,
        good.encode()[: good.index("block: 0.98")],  # cut off mid-write
        good.encode() + b"\n\xff\xfe not utf-8",
        b"\x00" * 64,
        b"",
        b"version: [unclosed",
    ]


async def _churn(path: Path, good: str) -> None:
    """Keep swapping corrupted policies in (atomic renames, as a ConfigMap update does)."""
    pieces = _corruptions(good)
    step = 0
    while True:
        step += 1
        staging = path.with_suffix(f".{step}.tmp")
        staging.write_bytes(pieces[step % len(pieces)])
        staging.replace(path)
        await asyncio.sleep(0.015)


def _settings(stack: Stack, policy: Path, origination: str, **extra: str) -> DecisionSettings:
    """Production sub-deadlines and breakers: nothing here overrides them."""
    env = {
        **stack.env,
        "FRAUDMESH_GRPC_PORT": "0",
        "FRAUDMESH_POLICY_FILE": str(policy),
        "FRAUDMESH_POLICY_CHECK_S": "0.01",
        "FRAUDMESH_ORIGINATION_TARGET": origination,
        **extra,
    }
    return load(DecisionSettings, env)


@pytest.fixture(scope="module")
async def mesh(
    stack: Stack, scorer: Scorer, model_dir: Path, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Mesh]:
    folder = tmp_path_factory.mktemp("invariants")
    good = (REPO_ROOT / "deploy" / "policy" / "default.yaml").read_text()
    good = good.replace("psap_callback_numbers: []", f'psap_callback_numbers: ["{PSAP}"]')
    assert PSAP in good
    policy = folder / "policy.yaml"
    policy.write_text(good)
    churn_policy = folder / "churn.yaml"
    shutil.copy(policy, churn_policy)

    origination_settings = load(
        OriginationSettings,
        {
            **stack.env,
            "FRAUDMESH_GRPC_PORT": "0",
            "FRAUDMESH_STI_TRUST_ANCHORS": str(pki.anchor_file),
            "FRAUDMESH_X5U_PREWARM_FILE": str(pki.prewarm_file),
        },
    )
    origination, core = await start_origination(origination_settings, build_origination(origination_settings))
    garbage = grpc.aio.server()
    origination_pb2_grpc.add_OriginationServiceServicer_to_server(GarbageOrigination(), garbage)
    garbage_port = garbage.add_insecure_port("127.0.0.1:0")
    await garbage.start()
    healthy_origination = f"127.0.0.1:{origination.port}"

    async with contextlib.AsyncExitStack() as exits:
        redis_hung = await exits.enter_async_context(blackhole())
        origination_hung = await exits.enter_async_context(blackhole())
        raising = Scorer.load(model_dir)

        def explode(*_args: Any, **_kwargs: Any) -> Any:
            raise RuntimeError("scoring is broken")

        configs: dict[str, tuple[DecisionSettings, Scorer]] = {
            "healthy": (_settings(stack, policy, healthy_origination), scorer),
            "redis_refused": (
                _settings(
                    stack,
                    policy,
                    healthy_origination,
                    FRAUDMESH_REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0",
                ),
                scorer,
            ),
            "redis_hung": (
                _settings(
                    stack,
                    policy,
                    healthy_origination,
                    FRAUDMESH_REDIS_URL=f"redis://127.0.0.1:{redis_hung}/0",
                ),
                scorer,
            ),
            "origination_hung": (_settings(stack, policy, f"127.0.0.1:{origination_hung}"), scorer),
            "origination_garbage": (_settings(stack, policy, f"127.0.0.1:{garbage_port}"), scorer),
            "scorer_raising": (_settings(stack, policy, healthy_origination), raising),
            "policy_churn": (_settings(stack, churn_policy, healthy_origination), scorer),
        }
        servers: dict[str, Running] = {}
        channels: list[grpc.aio.Channel] = []
        stubs: dict[str, Any] = {}
        for name, (config, model) in configs.items():
            servers[name] = await start(config, scorer=model)
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{servers[name].port}")
            channels.append(channel)
            stubs[name] = decision_pb2_grpc.DecisionServiceStub(channel)
        raising.score = explode  # type: ignore[method-assign]  # after the warm-up call
        version = servers["healthy"].decider.policies.current().version
        churn = asyncio.create_task(_churn(churn_policy, good))
        try:
            yield Mesh(servers, stubs, churn_policy, version)
        finally:
            churn.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await churn
            for channel in channels:
                await channel.close()
            for server in servers.values():
                await server.stop(0.2)
            await garbage.stop(0)
            await origination.stop(0.2)
            await core.redis.aclose()


# ---- generated calls ---------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**400), max_value=10**400),
        st.floats(),
        st.text(max_size=20),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=6), inner, max_size=6)
    ),
    max_leaves=20,
)


@st.composite
def hostile_passports(draw: st.DrawFn) -> str:
    """Identity headers shaped like SHAKEN: valid-looking JOSE header, hostile claims, junk signature."""
    header = {"alg": "ES256", "typ": "passport", "ppt": "shaken", "x5u": HOME_X5U}
    claims: dict[str, Any] = {
        "attest": draw(st.sampled_from(["A", "B", "C", "Z", 1])),
        "dest": {"tn": [draw(st.sampled_from(["8613912345678", "x"]))]},
        "iat": draw(
            st.one_of(
                st.integers(min_value=-(10**400), max_value=10**400),
                st.just(int(time.time())),
                st.floats(),
                st.text(max_size=5),
            )
        ),
        "orig": {"tn": draw(st.sampled_from(["8613800138000", "", "1" * 40]))},
        "origid": str(uuid.uuid4()),
    }
    if draw(st.booleans()):
        claims[draw(st.sampled_from(["dest", "orig", "extra", "attest"]))] = draw(json_values)
    body = json.dumps(claims, separators=(",", ":"))
    if draw(st.booleans()):  # nesting far past any recursion limit, written out by hand
        depth = draw(st.sampled_from([50, 2_000, 100_000]))
        body = body[:-1] + ',"deep":' + "[" * depth + "1" + "]" * depth + "}"
    signature = _b64(draw(st.binary(min_size=0, max_size=80)))
    token = f"{_b64(json.dumps(header).encode())}.{_b64(body.encode())}.{signature}"
    params = draw(st.sampled_from([f";info=<{HOME_X5U}>;alg=ES256;ppt=shaken", "", ";info=<x>", ";ppt=div"]))
    return token + params


numbers = st.one_of(
    st.sampled_from(
        [
            "+8613800138000",
            "13800138000",
            "sip:+8613800138000@ims.example.net;user=phone",
            "tel:+1-650-253-0000",
            "sip:anonymous@anonymous.invalid",
            '"Anonymous" <sip:anonymous@anonymous.invalid>',
            "",
            "+86170" + "12345678",
            "+8610" + "9" * 40,
        ]
    ),
    st.text(max_size=40),
    st.text(alphabet="0123456789+-() .;:<>@=tesipurnv%", max_size=60),
)


@dataclass(frozen=True)
class Case:
    """One generated call: which server answers it, its setup, its deadline and what it must get."""

    fault: str
    setup: call_pb2.CallSetup
    deadline_s: float
    must_allow: str  # "" or the reason code an emergency / callback must carry

    def __repr__(self) -> str:  # shrunk examples stay readable
        return f"Case({self.fault}, must_allow={self.must_allow!r}, deadline={self.deadline_s}, {self.setup})"


@st.composite
def cases(draw: st.DrawFn, signed: list[str], fault: str = "", kind: str = "") -> Case:
    fault = fault or draw(st.sampled_from(FAULTS))
    kind = kind or draw(
        st.sampled_from(["emergency", "emergency_uri", "urn", "psap", "ordinary", "ordinary"])
    )
    tenant = "demo-cn"
    called = draw(numbers)
    request_uri = draw(st.one_of(st.just(""), numbers))
    calling = draw(numbers)
    pai = draw(st.one_of(st.just(""), numbers))
    must_allow = ""
    if kind in ("emergency", "emergency_uri"):
        form, region = draw(emergency_forms())
        tenant = {"CN": "demo-cn", "US": "demo-us"}.get(region, "")
        if not tenant:  # another region's numbers are emergencies for a tenant of that region only
            form, tenant = draw(
                st.sampled_from([("110", "demo-cn"), ("911", "demo-us"), ("tel:119", "demo-cn")])
            )
        if kind == "emergency":
            called = form
        else:
            request_uri = form
        must_allow = "EMERGENCY_NUMBER"
    elif kind == "urn":
        tenant = draw(st.sampled_from(["demo-cn", "demo-us", "", "unknown-tenant"]))
        urn = draw(sos_urns())
        called, request_uri = draw(st.sampled_from([(urn, request_uri), (called, urn)]))
        must_allow = "EMERGENCY_NUMBER"
    elif kind == "psap":
        presented = draw(
            st.sampled_from([PSAP, "010 6666 0110", "tel:+86-10-6666-0110", f"sip:{PSAP}@psap.example"])
        )
        if draw(st.booleans()):
            pai = presented
        else:
            pai, calling = "", presented
        called = draw(st.sampled_from(["+8613912345678", "13912345678"]))
        must_allow = "EMERGENCY_CALLBACK"
    headers = draw(
        st.lists(
            st.one_of(hostile_passports(), st.sampled_from(signed), st.text(max_size=100)),
            max_size=draw(st.sampled_from([0, 2, 40])),
        )
    )
    setup = call_pb2.CallSetup(
        call_id=f"inv-{uuid.uuid4()}",
        tenant=tenant,
        calling_number=calling,
        p_asserted_identity=pai,
        display_name=draw(st.text(max_size=30)),
        called_number=called,
        request_uri=request_uri,
        identity_headers=headers,
        ingress_trunk_id=draw(st.sampled_from(["trunk-ic-1", "", "x" * 500])),
        ingress_kind=draw(st.integers(min_value=-2, max_value=12)),  # type: ignore[arg-type]
        ingress_region=draw(st.sampled_from(["", "CN-BJ", "???"])),
        user_agent=draw(st.text(max_size=20)),
    )
    setup.diversions.add(
        number=draw(numbers), reason=draw(st.text(max_size=10)), counter=draw(st.integers(0, 2**32 - 1))
    )
    if draw(st.booleans()):
        setup.event_time.GetCurrentTime()
    if kind in ("psap", "ordinary"):  # a drawn number can happen to be "110": that case is another kind
        assume(not any(is_emergency_call(setup, region) for region in ("CN", "US")))
    # Seven servers, an origination replica and hypothesis share one interpreter (and, on a busy
    # 2-core machine, a fraction of a core), so the deadlines leave room for scheduling stalls; a
    # server that waited on a hung dependency would still miss every one of them. Tight deadlines
    # (calls too late to wait) are tested directly in test_decision_service.py.
    deadline = draw(st.sampled_from([1.0, 2.0]))
    return Case(fault, setup, deadline, must_allow)


# ---- the invariants ----------------------------------------------------------------------------


def _signed(pki: Pki) -> list[str]:
    return [signed_setup(pki.home, HOME_X5U).identity_headers[0] for _ in range(8)]


@pytest.fixture(scope="module")
def signed_headers(pki: Pki) -> list[str]:
    return _signed(pki)


async def _check(mesh: Mesh, case: Case) -> None:
    stub = mesh.stubs[case.fault]
    started = time.perf_counter()
    reply = await stub.Decide(decision_pb2.DecideRequest(setup=case.setup), timeout=case.deadline_s)
    elapsed = time.perf_counter() - started
    decision = reply.decision
    assert elapsed <= case.deadline_s, f"answered after {elapsed * 1000:.1f} ms"
    assert decision.call_id == case.setup.call_id
    assert decision.degraded == bool(decision.degraded_reasons)
    if case.must_allow:
        assert decision.action == ALLOW, (case, decision)
        assert list(decision.reason_codes) == [case.must_allow], (case, decision)
        return
    causes = set(decision.degraded_reasons)
    if case.fault == "scorer_raising":
        assert "DECISION_ERROR" in causes, causes
    if "DECISION_ERROR" in causes:
        assert decision.action == ALLOW
        return
    if not reply.HasField("origination"):
        assert any(cause.startswith("ORIGINATION_") for cause in causes), (case.fault, causes)
    if case.fault in ORIGINATION_FAULTS:
        assert any(cause.startswith("ORIGINATION_") for cause in causes), causes
    if case.fault in REDIS_FAULTS and _attributable(mesh.servers[case.fault], case.setup):
        assert any(cause.startswith("REDIS_") for cause in causes), causes
    if decision.action == common_pb2.ACTION_BLOCK:
        assert decision.sip.status_code >= 300
        assert decision.reason_codes


def _attributable(server: Running, setup: call_pb2.CallSetup) -> bool:
    try:
        attribute_setup(setup, server.decider.settings.region_for(setup.tenant))
    except InvalidNumberError:
        return False
    return True


async def test_call_path_invariants_hold_under_every_fault(mesh: Mesh, signed_headers: list[str]) -> None:
    loop = asyncio.get_running_loop()  # the servers' loop; hypothesis drives it from a thread

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
        derandomize=False,
    )
    @given(case=cases(signed_headers))
    def property_holds(case: Case) -> None:
        check(case)

    def check(case: Case) -> None:
        asyncio.run_coroutine_threadsafe(_check(mesh, case), loop).result(timeout=30)
        seen[(case.fault, case.must_allow)] += 1

    seen: Counter[tuple[str, str]] = Counter()
    await asyncio.to_thread(property_holds)
    # Hypothesis does not draw uniformly: a (fault, kind) pair it happened to skip is run on its own.
    for fault, label in [(f, k) for f in FAULTS for k in KIND_OF_ALLOW if not seen[(f, k)]]:

        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=cases(signed_headers, fault, KIND_OF_ALLOW[label]))
        def pair_holds(case: Case) -> None:
            check(case)

        await asyncio.to_thread(pair_holds)
    missing = [
        (fault, kind)
        for fault in FAULTS
        for kind in ("", "EMERGENCY_NUMBER", "EMERGENCY_CALLBACK")
        if not seen[(fault, kind)]
    ]
    assert not missing, f"the generator never reached {missing}"
    churn = mesh.servers["policy_churn"].decider.policies
    assert churn.current().version == mesh.policy_version, "no corrupted policy was ever applied"
    assert churn.last_error, "the corrupted files were seen and rejected"
