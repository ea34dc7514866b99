"""Property tests: for any Identity header list and claims, verification and the Verify RPC answer.

Two generators: hypothesis driving the fuzz targets' ``CaseBuilder`` (signed, mutated PASSporTs;
shrinking goes towards the well-formed call) and a free one of raw JSON values (numeric extremes,
wrong types, nesting) in every claim and header member, signed so the signature path is reached.
The RPC runs in-process on the production core with Redis down (the replica-memory fallback): no
network.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudmesh.v1 import call_pb2, origination_pb2, verdicts_pb2
from fuzz.inprocess import REDIS_DOWN, ErrorLog, InProcessContext, build_core, call_verify
from fuzz.passports import (
    BASE_TIME,
    REGION,
    VALID_X5U,
    Case,
    CaseBuilder,
    FuzzPki,
    check_result,
    check_verdict,
)
from services.origination.passport import MemoryReplayStore, PassportError, Verifier, parse_passport
from services.origination.service import Origination, OriginationServicer
from tests.unit.vectors.simpki import b64url

S = verdicts_pb2
ANSWERS = {
    S.SHAKEN_STATUS_FAILED,
    S.SHAKEN_STATUS_UNSUPPORTED,
    S.SHAKEN_STATUS_PENDING,
    S.SHAKEN_STATUS_VERIFIED,
}
SLOW_FIXTURES = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
PKI = FuzzPki(seed=7)
BUILDER = CaseBuilder(PKI)


class DataChoices:
    """CaseBuilder choices drawn by hypothesis (0, the well-formed choice, is what it shrinks to)."""

    def __init__(self, data: st.DataObject) -> None:
        self._data = data

    def pick(self, options: int) -> int:
        return self._data.draw(st.integers(0, options - 1))

    def number(self, low: int, high: int) -> int:
        return self._data.draw(st.integers(low, high))

    def text(self, max_length: int) -> str:
        return self._data.draw(st.text(max_size=max_length))


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    return Verifier(PKI.cache(), MemoryReplayStore(10_000), on_miss=lambda _x5u: None)


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    yield running
    running.close()


@pytest.fixture(scope="module")
def core(loop: asyncio.AbstractEventLoop) -> Iterator[Origination]:
    built = build_core(PKI, Path(tempfile.mkdtemp(prefix="origination-robustness-")), REDIS_DOWN)
    yield built
    loop.run_until_complete(built.redis.aclose())


@pytest.fixture(scope="module")
def errors() -> Iterator[ErrorLog]:
    log = ErrorLog().attach()
    yield log
    log.detach()


def verify_rpc(
    loop: asyncio.AbstractEventLoop, core: Origination, setup: call_pb2.CallSetup
) -> S.OriginationVerdict:
    request = origination_pb2.VerifyRequest(setup=setup)
    return loop.run_until_complete(call_verify(OriginationServicer(core), request, InProcessContext()))


def test_the_all_zero_case_is_a_valid_signed_call() -> None:
    class Zero:
        def pick(self, options: int) -> int:
            return 0

        def number(self, low: int, high: int) -> int:
            return low

        def text(self, max_length: int) -> str:
            return ""

    case = BUILDER.case(Zero())
    result = Verifier(PKI.cache(), MemoryReplayStore()).verify(case.setup, REGION, now=case.now)
    assert result.status == S.SHAKEN_STATUS_VERIFIED
    assert case.authentic
    assert result.x5u == VALID_X5U


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_verify_answers_every_generated_call(verifier: Verifier, data: st.DataObject) -> None:
    case = BUILDER.case(DataChoices(data))
    for header in case.setup.identity_headers[:16]:
        with contextlib.suppress(PassportError):
            parse_passport(header)
    check_result(verifier.verify(case.setup, REGION, now=case.now), case)


# --- a free generator: any JSON value in any member ---

NUMBER_TEXT = st.one_of(
    st.integers().map(str),
    st.integers(17, 4400).map(lambda digits: "9" * digits),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "-0", "1E+999", str(2**53)]),
)
SCALAR_TEXT = st.one_of(
    NUMBER_TEXT,
    st.sampled_from(["true", "false", "null"]),
    st.text(max_size=30).map(json.dumps),
    st.text(max_size=30).map(lambda text: json.dumps(text, ensure_ascii=False)),
)


def _array(items: list[str]) -> str:
    return "[" + ",".join(items) + "]"


def _object(members: dict[str, str]) -> str:
    return "{" + ",".join(f"{json.dumps(name)}:{value}" for name, value in members.items()) + "}"


JSON_TEXT = st.one_of(
    st.recursive(
        SCALAR_TEXT,
        lambda children: st.one_of(
            st.lists(children, max_size=6).map(_array),
            st.dictionaries(st.text(max_size=6), children, max_size=6).map(_object),
        ),
        max_leaves=10,
    ),
    st.integers(1, 2000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(1, 1500).map(lambda width: _array(["0"] * width)),
)


def _member(valid: str) -> st.SearchStrategy[str | None]:
    """The valid raw value, any JSON value, or None (member left out)."""
    return st.one_of(st.just(valid), JSON_TEXT, st.none())


CLAIMS = st.fixed_dictionaries(
    {
        "attest": _member('"A"'),
        "dest": _member('{"tn":["12025550101"]}'),
        "iat": _member(str(BASE_TIME)),
        "orig": _member('{"tn":"12025550100"}'),
        "origid": _member('"123e4567-e89b-12d3-a456-426655440000"'),
    }
)
HEADER = st.fixed_dictionaries(
    {
        "alg": _member('"ES256"'),
        "ppt": _member('"shaken"'),
        "typ": _member('"passport"'),
        "x5u": _member(json.dumps(VALID_X5U)),
    }
)
EXTRA = st.dictionaries(st.text(max_size=8), JSON_TEXT, max_size=4)


def signed_header(header: dict[str, str | None], claims: dict[str, str | None], extra: dict[str, str]) -> str:
    header_json = _object({k: v for k, v in header.items() if v is not None})
    claims_json = _object({**{k: v for k, v in claims.items() if v is not None}, **extra})
    signing_input = f"{b64url(header_json.encode())}.{b64url(claims_json.encode())}"
    signature = b64url(PKI.sign(signing_input.encode()))
    return f"{signing_input}.{signature};info=<{VALID_X5U}>;alg=ES256;ppt=shaken"


JWS_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.;=<>"
IDENTITY_HEADERS = st.lists(
    st.one_of(
        st.builds(signed_header, HEADER, CLAIMS, EXTRA),
        st.text(max_size=200),
        st.text(
            alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.;=<>", max_size=300
        ),
    ),
    max_size=12,
)


def call(headers: list[str], calling: str = "+12025550100") -> call_pb2.CallSetup:
    return call_pb2.CallSetup(
        tenant="fuzz", calling_number=calling, called_number="+12025550101", identity_headers=headers
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(IDENTITY_HEADERS)
def test_verify_never_raises_for_any_header_list_and_claims(verifier: Verifier, headers: list[str]) -> None:
    setup = call(headers)
    for header in headers:
        with contextlib.suppress(PassportError):
            parse_passport(header)
    result = verifier.verify(setup, REGION, now=float(BASE_TIME))
    assert result.status in (ANSWERS if headers else {S.SHAKEN_STATUS_ABSENT})
    assert (result.failure is not None) == (
        result.status in (S.SHAKEN_STATUS_FAILED, S.SHAKEN_STATUS_UNSUPPORTED)
    )


# --- the Verify RPC on the production core (Redis down: the replica's memory answers) ---


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.data())
def test_verify_rpc_answers_every_generated_call_and_keeps_caller_id_findings(
    loop: asyncio.AbstractEventLoop, core: Origination, errors: ErrorLog, data: st.DataObject
) -> None:
    case = BUILDER.case(DataChoices(data))
    verdict = verify_rpc(loop, core, case.setup)
    errors.raise_if_any()
    check_verdict(verdict, case)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(IDENTITY_HEADERS)
def test_a_dno_listed_caller_stays_listed_whatever_its_identity_headers(
    loop: asyncio.AbstractEventLoop, core: Origination, errors: ErrorLog, headers: list[str]
) -> None:
    setup = call(headers, calling="+12025550199")
    setup.event_time.seconds = BASE_TIME
    verdict = verify_rpc(loop, core, setup)
    errors.raise_if_any()
    check_verdict(verdict, Case(setup, float(BASE_TIME), authentic=True, dno_caller=True))
    assert verdict.shaken_status in (ANSWERS if headers else {S.SHAKEN_STATUS_ABSENT})
