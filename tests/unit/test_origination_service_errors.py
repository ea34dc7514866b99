"""Verify RPC parts fail independently: one Identity header can never hide a DNO-listed caller.

Issue 13 item 3: a PASSporT with a huge ``iat`` made verification raise, the handler answered
UNSPECIFIED/degraded and the caller-ID findings computed after it were lost. Now the header is a
typed failure, and should any part still raise (injected faults below), the others' findings stay
in the verdict, which is marked degraded, and the error is logged and counted. In-process on the
production core with Redis down (no network).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from prometheus_client import REGISTRY

from fraudmesh.v1 import call_pb2, origination_pb2, verdicts_pb2
from fuzz.inprocess import REDIS_DOWN, InProcessContext, build_core, call_verify
from fuzz.passports import BASE_TIME, DNO_NUMBER, VALID_X5U, FuzzPki
from services.origination.callerid import TenantRules
from services.origination.passport import Verifier
from services.origination.service import Origination, OriginationServicer
from tests.unit.vectors import simpki

S = verdicts_pb2
PKI = FuzzPki(seed=11)
FAR_CALLEE = "+14155550123"  # no neighbor-spoofing finding, so Redis (down here) is not asked about history


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    yield running
    running.close()


@pytest.fixture(scope="module")
def core(loop: asyncio.AbstractEventLoop) -> Iterator[Origination]:
    built = build_core(PKI, Path(tempfile.mkdtemp(prefix="origination-errors-")), REDIS_DOWN)
    yield built
    loop.run_until_complete(built.redis.aclose())


def signed(orig: str, iat: str = str(BASE_TIME), dest: str = FAR_CALLEE) -> str:
    claims = (
        f'{{"attest":"A","dest":{{"tn":["{dest[1:]}"]}},"iat":{iat},"orig":{{"tn":"{orig[1:]}"}},'
        '"origid":"123e4567-e89b-12d3-a456-426655440000"}'
    ).encode()
    return simpki.identity(simpki.jws(PKI.leaf.key, simpki.shaken_header(VALID_X5U), claims), VALID_X5U)


def setup(*headers: str, calling: str = DNO_NUMBER) -> call_pb2.CallSetup:
    built = call_pb2.CallSetup(
        call_id="errors",
        tenant="t",
        calling_number=calling,
        called_number=FAR_CALLEE,
        identity_headers=headers,
    )
    built.event_time.seconds = BASE_TIME
    return built


def rpc(loop: asyncio.AbstractEventLoop, core: Origination, call: call_pb2.CallSetup) -> S.OriginationVerdict:
    request = origination_pb2.VerifyRequest(setup=call)
    return loop.run_until_complete(call_verify(OriginationServicer(core), request, InProcessContext()))


def internal_errors(part: str) -> float:
    return REGISTRY.get_sample_value("fraudmesh_origination_internal_errors_total", {"part": part}) or 0.0


def test_a_huge_iat_beside_a_dno_listed_caller_is_a_typed_failure_and_the_caller_stays_listed(
    loop: asyncio.AbstractEventLoop, core: Origination, caplog: pytest.LogCaptureFixture
) -> None:
    before = internal_errors("verification")
    with caplog.at_level(logging.ERROR, logger="services.origination"):
        verdict = rpc(loop, core, setup(signed(DNO_NUMBER, iat="9" * 400)))
    assert verdict.shaken_status == S.SHAKEN_STATUS_FAILED
    assert list(verdict.reason_codes) == ["SHAKEN_SIGNATURE_INVALID", "DNO_LISTED"]
    assert not verdict.degraded
    assert internal_errors("verification") == before
    assert not caplog.records


def test_the_same_caller_with_a_valid_passport_verifies_and_is_still_listed(
    loop: asyncio.AbstractEventLoop, core: Origination
) -> None:
    verdict = rpc(loop, core, setup(signed(DNO_NUMBER)))
    assert verdict.shaken_status == S.SHAKEN_STATUS_VERIFIED
    assert "DNO_LISTED" in verdict.reason_codes
    assert verdict.degraded, "Redis is down here: the replay check fell back to the replica's memory"


class ExplodingVerifier(Verifier):
    """A verifier with a bug: raises what the huge-iat PASSporT used to raise."""

    def verify(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        raise OverflowError("int too large to convert to float")


def test_a_verifier_that_raises_leaves_the_caller_id_findings_in_a_degraded_verdict(
    loop: asyncio.AbstractEventLoop, core: Origination, caplog: pytest.LogCaptureFixture
) -> None:
    broken = dataclasses.replace(core, verifier=ExplodingVerifier(core.cache, None))
    before = internal_errors("verification")
    with caplog.at_level(logging.ERROR, logger="services.origination"):
        verdict = rpc(loop, broken, setup(signed(DNO_NUMBER)))
    assert verdict.shaken_status == S.SHAKEN_STATUS_UNSPECIFIED
    assert list(verdict.reason_codes) == ["DEGRADED_ORIGINATION", "DNO_LISTED"]
    assert verdict.degraded
    assert internal_errors("verification") == before + 1
    assert [record.exc_info[0] for record in caplog.records if record.exc_info] == [OverflowError]


class ExplodingRules:
    """Caller-ID rules whose lookup has a bug."""

    def get(self, tenant: str) -> TenantRules:
        raise KeyError(tenant)


def test_caller_id_checks_that_raise_leave_the_shaken_outcome(
    loop: asyncio.AbstractEventLoop, core: Origination, caplog: pytest.LogCaptureFixture
) -> None:
    broken = dataclasses.replace(core, rules=ExplodingRules())  # type: ignore[arg-type]
    before = internal_errors("caller_id")
    with caplog.at_level(logging.ERROR, logger="services.origination"):
        verdict = rpc(loop, broken, setup(signed(DNO_NUMBER, iat=str(BASE_TIME + 1))))
    assert verdict.shaken_status == S.SHAKEN_STATUS_VERIFIED
    assert verdict.signer_ocn == "F001"
    assert "DNO_LISTED" not in verdict.reason_codes
    assert verdict.degraded
    assert internal_errors("caller_id") == before + 1
    assert caplog.records


def test_a_replay_check_that_raises_answers_as_if_redis_had_not(
    loop: asyncio.AbstractEventLoop, core: Origination, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def first_seen(*_args: object) -> NoReturn:
        raise RuntimeError("bug in the replay guard")

    monkeypatch.setattr(core.replay, "first_seen", first_seen)
    before = internal_errors("redis_checks")
    verdict = rpc(loop, core, setup(signed(DNO_NUMBER, iat=str(BASE_TIME + 2))))
    assert verdict.shaken_status == S.SHAKEN_STATUS_VERIFIED
    assert "DNO_LISTED" in verdict.reason_codes
    assert verdict.degraded
    assert internal_errors("redis_checks") == before + 1


def test_when_the_whole_core_raises_the_handler_still_answers_with_caller_id_findings(
    loop: asyncio.AbstractEventLoop, core: Origination, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def verify(_setup: object) -> NoReturn:
        raise RuntimeError("bug in the verdict assembly")

    broken = dataclasses.replace(core)
    monkeypatch.setattr(broken, "verify", verify)
    before = internal_errors("verify")
    verdict = rpc(loop, broken, setup(signed(DNO_NUMBER)))
    assert verdict.shaken_status == S.SHAKEN_STATUS_UNSPECIFIED
    assert list(verdict.reason_codes) == ["DEGRADED_ORIGINATION", "DNO_LISTED"]
    assert verdict.degraded
    assert internal_errors("verify") == before + 1
