"""PASSporT parsing and verification: tampering, alg confusion, freshness, TNs, replay, div, fuzzing."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudmesh.v1 import call_pb2, common_pb2, verdicts_pb2
from loadtest.stipki import CarrierSpec, SigningCarrier, StiPki, build_pki
from services.common.reasons import Reason
from services.origination.callerid import CallerIdResult
from services.origination.certs import CertificateCache, ChainValidator, Revocations
from services.origination.failures import REASON_CODE, UNSUPPORTED, Failure
from services.origination.passport import (
    MAX_HEADER_BYTES,
    MAX_JSON_DEPTH,
    MAX_JSON_INT,
    MAX_JSON_ITEMS,
    P256_ORDER,
    CompactFormError,
    MemoryReplayStore,
    PassportError,
    ShakenResult,
    Verifier,
    parse_passport,
    replay_key,
    split_identity,
    tn_digits,
)
from services.origination.verdict import origination_verdict
from tests.unit.vectors import simpki
from tests.unit.vectors.simpki import Issued, b64url, b64url_decode, identity, jws

S = verdicts_pb2
NOW = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())
START = datetime(2026, 1, 1, tzinfo=UTC)
CALLER = "+8613800138000"
CALLEE = "+8613900139000"
OTHER = "+8613700137000"
FORWARD = "+8615000150000"
FINAL = "+8615800158000"
ORIGID = "7b0c9a1e-2d3f-4a5b-8c6d-7e8f9a0b1c2d"


class Sim:
    """A test-only simpki chain with signing carriers for PASSporTs stipki cannot produce."""

    def __init__(self) -> None:
        end = START + timedelta(days=365)
        self.root = simpki.issue(1, "t-root", None, START, end, ca=True)
        sub = simpki.issue(1, "t-sub", self.root, START, end, ca=True, path_length=0)
        self.sub = sub
        self.leaves: dict[str, Issued] = {
            name: simpki.issue(1, name, sub, START, end, spcs=[spc])
            for name, spc in [("signer", "S001"), ("div1", "D001"), ("div2", "D002")]
        }

    @staticmethod
    def x5u(name: str) -> str:
        return f"https://sti.simpki.test/{name}.pem"

    def chain(self, name: str) -> list[x509.Certificate]:
        return [self.leaves[name].cert, self.sub.cert]

    def shaken(self, claims: dict[str, Any] | bytes, name: str = "signer", **header: Any) -> str:
        """Signed by leaf name; info follows a string x5u override, else the leaf's own x5u."""
        header_json = simpki.shaken_header(self.x5u(name), **header)
        info = header_json["x5u"] if isinstance(header_json.get("x5u"), str) else self.x5u(name)
        return identity(jws(self.leaves[name].key, header_json, claims), info)

    def div(self, name: str, diverted_from: str, dest: str, iat: int = NOW, orig: str = CALLER) -> str:
        header = {"alg": "ES256", "ppt": "div", "typ": "passport", "x5u": self.x5u(name)}
        claims = simpki.div_claims(orig[1:], [dest[1:]], diverted_from[1:], iat)
        return identity(jws(self.leaves[name].key, header, claims), self.x5u(name), ppt="div")


@pytest.fixture(scope="module")
def pki() -> StiPki:
    return build_pki(99, [CarrierSpec("home", "H001", True)], START)


@pytest.fixture(scope="module")
def home(pki: StiPki) -> SigningCarrier:
    return pki.carriers["home"]


@pytest.fixture(scope="module")
def sim() -> Sim:
    return Sim()


@pytest.fixture
def cache(pki: StiPki, home: SigningCarrier, sim: Sim) -> CertificateCache:
    chains = CertificateCache(ChainValidator([pki.root, sim.root.cert]), clock=lambda: float(NOW))
    chains.insert(home.x5u, x509.load_pem_x509_certificates(home.chain_pem))
    for name in sim.leaves:
        chains.insert(sim.x5u(name), sim.chain(name))
    return chains


@pytest.fixture
def verifier(cache: CertificateCache) -> Verifier:
    return Verifier(cache, MemoryReplayStore(), clock=lambda: float(NOW))


def sign(
    home: SigningCarrier, attest: str = "A", dest: list[str] | None = None, iat: int = NOW, orig: str = CALLER
) -> str:
    return home.identity_header(orig, dest or [CALLEE], iat, attest, ORIGID)


def setup(*headers: str, calling: str = CALLER, pai: str = "", called: str = CALLEE) -> call_pb2.CallSetup:
    return call_pb2.CallSetup(
        calling_number=calling, p_asserted_identity=pai, called_number=called, identity_headers=list(headers)
    )


def parts(header: str) -> tuple[list[str], str]:
    token, _, params = header.partition(";")
    return token.split("."), ";" + params


def rebuild(header: str, index: int, part: str) -> str:
    pieces, tail = parts(header)
    pieces[index] = part
    return ".".join(pieces) + tail


def failure_of(result: ShakenResult) -> Failure | None:
    return result.failure


# --- the happy path and the verdict ---


def test_valid_passport_verifies_with_attestation_origid_and_signer(
    verifier: Verifier, home: SigningCarrier
) -> None:
    result = verifier.verify(setup(sign(home)), "CN")
    assert result.status == S.SHAKEN_STATUS_VERIFIED
    assert result.attestation == common_pb2.ATTESTATION_A
    assert result.origid == ORIGID
    assert result.signer_ocn == "H001"
    assert result.reason_codes == ()
    assert result.failure is None
    assert result.replay_key is not None
    assert result.replay_expires_at == NOW + 61


@pytest.mark.parametrize(
    ("attest", "attestation", "codes"),
    [
        ("A", common_pb2.ATTESTATION_A, ()),
        ("B", common_pb2.ATTESTATION_B, ("SHAKEN_ATTESTATION_B",)),
        ("C", common_pb2.ATTESTATION_C, ("SHAKEN_ATTESTATION_C",)),
    ],
)
def test_attestation_levels(
    verifier: Verifier, home: SigningCarrier, attest: str, attestation: int, codes: tuple[str, ...]
) -> None:
    result = verifier.verify(setup(sign(home, attest)), "CN")
    assert (result.status, result.attestation, result.reason_codes) == (
        S.SHAKEN_STATUS_VERIFIED,
        attestation,
        codes,
    )


def test_absent_without_identity_headers(verifier: Verifier) -> None:
    result = verifier.verify(setup(), "CN")
    assert (result.status, result.reason_codes) == (S.SHAKEN_STATUS_ABSENT, ("SHAKEN_ABSENT",))


def test_verdict_merges_reason_codes_once_and_marks_pending_degraded(
    verifier: Verifier, home: SigningCarrier
) -> None:
    shaken = verifier.verify(setup(sign(home, "C")), "CN")
    caller_id = CallerIdResult((Reason.SHAKEN_ATTESTATION_C, Reason.RISKY_RANGE), None, None, withheld=False)
    verdict = origination_verdict(shaken, caller_id)
    assert list(verdict.reason_codes) == ["SHAKEN_ATTESTATION_C", "RISKY_RANGE"]
    assert (verdict.shaken_status, verdict.attestation, verdict.origid, verdict.signer_ocn) == (
        S.SHAKEN_STATUS_VERIFIED,
        common_pb2.ATTESTATION_C,
        ORIGID,
        "H001",
    )
    assert not verdict.degraded
    pending = origination_verdict(ShakenResult(S.SHAKEN_STATUS_PENDING), caller_id)
    assert pending.degraded


def test_failure_vocabulary_maps_to_known_reason_codes() -> None:
    from services.common.reasons import REASONS

    assert set(REASON_CODE.values()) <= set(REASONS)
    assert set(REASON_CODE) | UNSUPPORTED == set(Failure)
    assert len({f.value for f in Failure}) == len(Failure)


# --- tampering ---


def test_every_signature_byte_tampered_fails(verifier: Verifier, home: SigningCarrier) -> None:
    header = sign(home)
    signature = b64url_decode(parts(header)[0][2])
    for index in range(64):
        for mask in (0x01, 0x80):
            tampered = bytearray(signature)
            tampered[index] ^= mask
            result = verifier.verify(setup(rebuild(header, 2, b64url(bytes(tampered)))), "CN")
            assert result.status == S.SHAKEN_STATUS_FAILED, (index, mask)
            assert result.failure in (Failure.SIG_INVALID, Failure.SIG_RANGE), (index, mask)
    assert verifier.verify(setup(header), "CN").status == S.SHAKEN_STATUS_VERIFIED


@pytest.mark.parametrize(
    "change",
    [
        {"attest": "A"},
        {"origid": "00000000-0000-4000-8000-000000000000"},
        {"iat": NOW - 1},
        {"dest": {"tn": [CALLEE[1:], OTHER[1:]]}},
        {"extra": "claim"},
    ],
    ids=["attest", "origid", "iat", "dest", "extra"],
)
def test_claims_changed_without_resigning_fail_the_signature(
    verifier: Verifier, home: SigningCarrier, change: dict[str, Any]
) -> None:
    header = sign(home, "B")
    claims = simpki.canonical({**simpki.shaken_claims(CALLER[1:], [CALLEE[1:]], NOW, "B", ORIGID), **change})
    result = verifier.verify(setup(rebuild(header, 1, b64url(claims))), "CN")
    assert (result.status, result.failure) == (S.SHAKEN_STATUS_FAILED, Failure.SIG_INVALID)


def test_signature_is_checked_over_received_bytes_not_canonical_json(verifier: Verifier, sim: Sim) -> None:
    claims = (
        f'{{"origid":"{ORIGID}",  "iat":{NOW},"orig":{{"tn":"{CALLER[1:]}"}},'
        f'\n"dest":{{"tn":["{CALLEE[1:]}"]}},"attest":"A"}}'
    ).encode()
    assert verifier.verify(setup(sim.shaken(claims)), "CN").status == S.SHAKEN_STATUS_VERIFIED


def test_signature_from_another_carrier_key_fails(verifier: Verifier, sim: Sim, home: SigningCarrier) -> None:
    header = sim.shaken(simpki.shaken_claims(CALLER[1:], [CALLEE[1:]], NOW, origid=ORIGID), x5u=home.x5u)
    result = verifier.verify(setup(header), "CN")
    assert (result.status, result.failure) == (S.SHAKEN_STATUS_FAILED, Failure.SIG_INVALID)


# --- algorithm confusion and header checks ---


@pytest.mark.parametrize(
    "alg", ["none", "None", "HS256", "HS512", "RS256", "PS256", "ES384", "ES512", "es256", ""]
)
def test_alg_confusion_refused_before_any_key_use(verifier: Verifier, home: SigningCarrier, alg: str) -> None:
    header_json = simpki.shaken_header(home.x5u, alg=alg)
    claims = simpki.shaken_claims(CALLER[1:], [CALLEE[1:]], NOW, origid=ORIGID)
    signing_input = f"{b64url(simpki.canonical(header_json))}.{b64url(simpki.canonical(claims))}"
    secret = home.certificate.public_bytes(serialization.Encoding.PEM)
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    header = identity(f"{signing_input}.{b64url(mac)}", home.x5u)
    result = verifier.verify(setup(header), "CN")
    assert (result.status, result.failure) == (S.SHAKEN_STATUS_FAILED, Failure.BAD_ALG)


def test_alg_missing_from_header_is_refused(verifier: Verifier, sim: Sim) -> None:
    header = sim.shaken(simpki.shaken_claims(CALLER[1:], [CALLEE[1:]], NOW), alg=None)
    assert verifier.verify(setup(header), "CN").failure == Failure.BAD_ALG


def test_alg_parameter_is_optional_but_must_be_es256(verifier: Verifier, home: SigningCarrier) -> None:
    header = sign(home)
    assert verifier.verify(setup(header.replace(";alg=ES256", "")), "CN").status == S.SHAKEN_STATUS_VERIFIED
    assert verifier.verify(setup(header.replace(";alg=ES256", ";alg=none")), "CN").failure == Failure.BAD_ALG


@pytest.mark.parametrize(
    ("override", "failure"),
    [
        ({"typ": None}, Failure.BAD_TYP),
        ({"typ": "JWT"}, Failure.BAD_TYP),
        ({"typ": "PASSPORT"}, Failure.BAD_TYP),
        ({"ppt": None}, Failure.BAD_PPT),
        ({"ppt": "div"}, Failure.BAD_PPT),
        ({"x5u": None}, Failure.BAD_X5U),
        ({"x5u": 7}, Failure.BAD_X5U),
        ({"crit": ["ppt"]}, Failure.BAD_HEADER),
    ],
)
def test_header_member_checks(
    verifier: Verifier, sim: Sim, override: dict[str, Any], failure: Failure
) -> None:
    header = sim.shaken(simpki.shaken_claims(CALLER[1:], [CALLEE[1:]], NOW), **override)
    result = verifier.verify(setup(header), "CN")
    assert (result.status, result.failure) == (S.SHAKEN_STATUS_FAILED, failure)


def test_unknown_header_members_are_ignored(verifier: Verifier, sim: Sim) -> None:
    header = sim.shaken(simpki.shaken_claims(CALLER[1:], [CALLEE[1:]], NOW), kid="k1", x5c=["AAAA"])
    assert verifier.verify(setup(header), "CN").status == S.SHAKEN_STATUS_VERIFIED


def test_x5u_must_equal_info_and_be_https(home: SigningCarrier) -> None:
    header = sign(home)
    with pytest.raises(PassportError) as raised:
        parse_passport(header.replace("info=<https://", "info=<https://x."))
    assert raised.value.failure == Failure.INFO_MISMATCH


@pytest.mark.parametrize(
    ("claims_override", "failure"),
    [
        ({"attest": "D"}, Failure.BAD_ATTEST),
        ({"attest": None}, Failure.BAD_ATTEST),
        ({"attest": "a"}, Failure.BAD_ATTEST),
        ({"origid": None}, Failure.BAD_ORIGID),
        ({"origid": "not-a-uuid"}, Failure.BAD_ORIGID),
        ({"origid": 12}, Failure.BAD_ORIGID),
        ({"iat": None}, Failure.BAD_CLAIMS),
        ({"iat": float(NOW)}, Failure.BAD_CLAIMS),
        ({"iat": True}, Failure.BAD_CLAIMS),
        ({"iat": -1}, Failure.BAD_CLAIMS),
        ({"iat": str(NOW)}, Failure.BAD_CLAIMS),
        ({"orig": None}, Failure.BAD_CLAIMS),
        ({"orig": {"uri": "sip:a@b"}}, Failure.BAD_CLAIMS),
        ({"orig": {"tn": "+8613800138000"}}, Failure.BAD_CLAIMS),
        ({"orig": {"tn": 8613800138000}}, Failure.BAD_CLAIMS),
        ({"dest": {"tn": CALLEE[1:]}}, Failure.BAD_CLAIMS),
        ({"dest": {"tn": []}}, Failure.BAD_CLAIMS),
        ({"dest": {"tn": [CALLEE[1:]] * 33}}, Failure.BAD_CLAIMS),
        ({"dest": {"tn": [CALLEE[1:], None]}}, Failure.BAD_CLAIMS),
        ({"dest": ["x"]}, Failure.BAD_CLAIMS),
    ],
)
def test_claim_checks(
    verifier: Verifier, sim: Sim, claims_override: dict[str, Any], failure: Failure
) -> None:
    claims = simpki.override(
        simpki.shaken_claims(CALLER[1:], [CALLEE[1:]], NOW, origid=ORIGID), claims_override
    )
    result = verifier.verify(setup(sim.shaken(claims)), "CN")
    assert (result.status, result.failure) == (S.SHAKEN_STATUS_FAILED, failure)


# --- encoding ---


def test_duplicate_json_keys_refused_in_header_and_claims(verifier: Verifier, sim: Sim) -> None:
    claims = simpki.canonical(simpki.shaken_claims(CALLER[1:], [CALLEE[1:]], NOW, "C"))
    duplicated = claims[:-1] + b',"attest":"A"}'
    assert verifier.verify(setup(sim.shaken(duplicated)), "CN").failure == Failure.DUPLICATE_KEY
    nested = claims.replace(b'"orig":{', b'"orig":{"tn":"1",')
    assert verifier.verify(setup(sim.shaken(nested)), "CN").failure == Failure.DUPLICATE_KEY
    x5u = sim.x5u("signer")
    header_json = f'{{"alg":"none","alg":"ES256","ppt":"shaken","typ":"passport","x5u":"{x5u}"}}'.encode()
    token = jws(sim.leaves["signer"].key, header_json, claims)
    assert verifier.verify(setup(identity(token, x5u)), "CN").failure == Failure.DUPLICATE_KEY


@pytest.mark.parametrize(
    ("claims_json", "failure"),
    [
        (b"[]", Failure.BAD_JSON),
        (b'"string"', Failure.BAD_JSON),
        (b"null", Failure.BAD_JSON),
        (b"{", Failure.BAD_JSON),
        (b'{"iat":NaN}', Failure.BAD_JSON),
        (b'{"a":Infinity}', Failure.BAD_JSON),
        (b"\xef\xbb\xbf{}", Failure.BAD_JSON),
        (b'{"a":"\xff"}', Failure.BAD_JSON),
        (b"[" * 2000, Failure.BAD_JSON),
        (b"{} {}", Failure.BAD_JSON),
    ],
)
def test_malformed_json_refused(home: SigningCarrier, claims_json: bytes, failure: Failure) -> None:
    with pytest.raises(PassportError) as raised:
        parse_passport(rebuild(sign(home), 1, b64url(claims_json)))
    assert raised.value.failure == failure


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p + "=",
        lambda p: p + "==",
        lambda p: p[:3] + "+" + p[4:],
        lambda p: p[:3] + "/" + p[4:],
        lambda p: p[:3] + " " + p[4:],
        lambda p: p[:3] + "!" + p[4:],
        lambda p: p + "A" * ((1 - len(p)) % 4 or 4),
    ],
    ids=["pad1", "pad2", "plus", "slash", "space", "bang", "length_mod_4_is_1"],
)
def test_bad_base64url_refused(home: SigningCarrier, mutate: Callable[[str], str]) -> None:
    header = sign(home)
    with pytest.raises(PassportError) as raised:
        parse_passport(rebuild(header, 1, mutate(parts(header)[0][1])))
    assert raised.value.failure == Failure.BAD_BASE64


def test_non_canonical_base64url_trailing_bits_refused(home: SigningCarrier) -> None:
    header = sign(home)
    signature = parts(header)[0][2]
    assert len(signature) == 86
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    sibling = alphabet[last ^ 0x01]
    with pytest.raises(PassportError) as raised:
        parse_passport(rebuild(header, 2, signature[:-1] + sibling))
    assert raised.value.failure == Failure.BAD_BASE64


def test_signature_length_and_range(verifier: Verifier, home: SigningCarrier) -> None:
    header = sign(home)
    raw = b64url_decode(parts(header)[0][2])
    r, s = raw[:32], raw[32:]
    n = P256_ORDER.to_bytes(32, "big")
    cases = {
        b"": Failure.SIG_LENGTH,
        raw[:63]: Failure.SIG_LENGTH,
        raw + b"\x00": Failure.SIG_LENGTH,
        bytes(32) + s: Failure.SIG_RANGE,
        r + bytes(32): Failure.SIG_RANGE,
        n + s: Failure.SIG_RANGE,
        r + n: Failure.SIG_RANGE,
        b"\xff" * 32 + s: Failure.SIG_RANGE,
        (P256_ORDER - 1).to_bytes(32, "big") + s: Failure.SIG_INVALID,
        (1).to_bytes(32, "big") + (1).to_bytes(32, "big"): Failure.SIG_INVALID,
    }
    for signature, failure in cases.items():
        assert verifier.verify(setup(rebuild(header, 2, b64url(signature))), "CN").failure == failure


def test_size_cap_is_4_kib(verifier: Verifier, home: SigningCarrier) -> None:
    header = sign(home)
    padded = header + ";pad=" + "x" * (MAX_HEADER_BYTES - len(header) - 5)
    assert len(padded) == MAX_HEADER_BYTES
    assert verifier.verify(setup(padded), "CN").status == S.SHAKEN_STATUS_VERIFIED
    result = verifier.verify(setup(padded + "x"), "CN")
    assert (result.status, result.failure) == (S.SHAKEN_STATUS_FAILED, Failure.OVERSIZE)


@pytest.mark.parametrize(
    ("transform", "ok"),
    [
        (lambda h: h.replace(";ppt=shaken", ';ppt="shaken"'), True),
        (lambda h: h.replace(";ppt=shaken", ";PPT=shaken"), True),
        (lambda h: h.replace(";", " ; "), True),
        (lambda h: " " + h + " ", True),
        (lambda h: h + ";x-vendor", True),
        (lambda h: h + ";ppt=shaken", False),
        (lambda h: h.replace(";info=<", ";info="), False),
        (lambda h: h.replace(">;", ";"), False),
        (lambda h: h + ";", False),
        (lambda h: h + ";a=b c", False),
        (lambda h: h.replace(";ppt=shaken", ";ppt="), False),
        (lambda h: h.partition(";")[0], False),
        (lambda h: h.replace(";", ";\u00e9=1;", 1), False),
    ],
    ids=[
        "quoted_ppt",
        "param_case",
        "spaces",
        "outer_spaces",
        "valueless_param",
        "duplicate_param",
        "info_unbracketed",
        "info_unterminated",
        "trailing_semicolon",
        "space_in_value",
        "empty_ppt",
        "no_params",
        "non_ascii",
    ],
)
def test_identity_parameter_grammar(
    verifier: Verifier, home: SigningCarrier, transform: Callable[[str], str], ok: bool
) -> None:
    result = verifier.verify(setup(transform(sign(home))), "CN")
    if ok:
        assert result.status == S.SHAKEN_STATUS_VERIFIED
    else:
        assert result.status == S.SHAKEN_STATUS_FAILED
        assert result.failure in (
            Failure.BAD_PARAMS,
            Failure.MALFORMED,
            Failure.BAD_X5U,
            Failure.INFO_MISMATCH,
        )


def test_split_identity_exposes_parameters(home: SigningCarrier) -> None:
    split = split_identity(sign(home))
    assert (split.info, split.alg, split.ppt) == (home.x5u, "ES256", "shaken")
    assert split.jws.count(".") == 2


# --- freshness ---


@pytest.mark.parametrize(
    ("age", "failure"),
    [
        (-61, Failure.FUTURE_IAT),
        (-60.5, Failure.FUTURE_IAT),
        (-60, None),
        (0, None),
        (60, None),
        (60.5, Failure.STALE_IAT),
        (61, Failure.STALE_IAT),
        (3600, Failure.STALE_IAT),
    ],
)
def test_iat_window_boundaries_both_ways(
    cache: CertificateCache, home: SigningCarrier, age: float, failure: Failure | None
) -> None:
    verifier = Verifier(cache, MemoryReplayStore())
    result = verifier.verify(setup(sign(home, iat=NOW)), "CN", now=NOW + age)
    assert result.failure == failure
    assert result.status == (S.SHAKEN_STATUS_VERIFIED if failure is None else S.SHAKEN_STATUS_FAILED)


def test_freshness_window_is_configurable(cache: CertificateCache, home: SigningCarrier) -> None:
    verifier = Verifier(cache, None, freshness_s=10)
    assert verifier.verify(setup(sign(home)), "CN", now=NOW + 10).status == S.SHAKEN_STATUS_VERIFIED
    assert verifier.verify(setup(sign(home)), "CN", now=NOW + 11).failure == Failure.STALE_IAT
    with pytest.raises(ValueError, match="freshness_s"):
        Verifier(cache, None, freshness_s=0)


# --- calling and called number ---


@pytest.mark.parametrize(
    ("calling", "pai", "failure"),
    [
        (CALLER, "", None),
        ("13800138000", "", None),
        ("008613800138000", "", None),
        (f"sip:{CALLER}@gw.example;user=phone", "", None),
        (f"tel:{CALLER}", "", None),
        (OTHER, CALLER, None),
        ("anonymous", f"<sip:{CALLER}@carrier.example>", None),
        (CALLER, OTHER, Failure.ORIG_MISMATCH),
        (CALLER, f"<tel:{OTHER}>", Failure.ORIG_MISMATCH),
        (OTHER, "", Failure.ORIG_MISMATCH),
        ("anonymous", "", Failure.ORIG_MISMATCH),
        ("", "", Failure.ORIG_MISMATCH),
    ],
    ids=[
        "e164",
        "national",
        "idd",
        "sip_uri",
        "tel_uri",
        "pai_wins_over_from",
        "pai_with_anonymous_from",
        "pai_mismatch_beats_matching_from",
        "pai_tel_mismatch",
        "from_mismatch",
        "anonymous",
        "empty",
    ],
)
def test_orig_is_pai_else_from(
    verifier: Verifier, home: SigningCarrier, calling: str, pai: str, failure: Failure | None
) -> None:
    assert verifier.verify(setup(sign(home), calling=calling, pai=pai), "CN").failure == failure


@pytest.mark.parametrize(
    ("dest", "called", "failure"),
    [
        ([CALLEE], CALLEE, None),
        ([OTHER, FORWARD, CALLEE], CALLEE, None),
        ([CALLEE, OTHER], "13900139000", None),
        ([CALLEE], f"sip:{CALLEE}@home.example", None),
        (["110"], "110", None),
        ([OTHER, FORWARD], CALLEE, Failure.DEST_MISMATCH),
        ([CALLEE], "", Failure.DEST_MISMATCH),
        ([CALLEE], "not a number", Failure.DEST_MISMATCH),
    ],
    ids=[
        "single",
        "third_of_three",
        "national_called",
        "sip_called",
        "short_code",
        "absent",
        "empty",
        "garbage",
    ],
)
def test_dest_must_include_the_called_number(
    verifier: Verifier, home: SigningCarrier, dest: list[str], called: str, failure: Failure | None
) -> None:
    assert verifier.verify(setup(sign(home, dest=dest), called=called), "CN").failure == failure


def test_tn_digits_canonical_forms() -> None:
    assert tn_digits("013800138000", "CN") == tn_digits("+86 138 0013 8000", "CN") == "8613800138000"
    assert tn_digits("110", "CN") == "110"
    assert tn_digits("garbage", "CN") is None
    with pytest.raises(ValueError, match="unknown default region"):
        tn_digits("110", "XX")


# --- replay ---


def test_replay_within_window_is_refused(verifier: Verifier, home: SigningCarrier) -> None:
    header = sign(home)
    assert verifier.verify(setup(header), "CN").status == S.SHAKEN_STATUS_VERIFIED
    again = verifier.verify(setup(header), "CN", now=NOW + 30)
    assert (again.status, again.failure, again.reason_codes) == (
        S.SHAKEN_STATUS_FAILED,
        Failure.REPLAY,
        ("SHAKEN_REPLAY",),
    )
    assert verifier.verify(setup(sign(home, iat=NOW + 1)), "CN").status == S.SHAKEN_STATUS_VERIFIED


def test_malleated_signature_counts_as_the_same_passport(verifier: Verifier, home: SigningCarrier) -> None:
    header = sign(home)
    raw = b64url_decode(parts(header)[0][2])
    r, s = raw[:32], int.from_bytes(raw[32:], "big")
    twin = rebuild(header, 2, b64url(r + (P256_ORDER - s).to_bytes(32, "big")))
    assert replay_key(parse_passport(twin)) == replay_key(parse_passport(header))
    assert verifier.verify(setup(twin), "CN").status == S.SHAKEN_STATUS_VERIFIED
    assert verifier.verify(setup(header), "CN").failure == Failure.REPLAY


def test_failed_passports_do_not_poison_the_replay_store(verifier: Verifier, home: SigningCarrier) -> None:
    header = sign(home)
    assert verifier.verify(setup(header, calling=OTHER), "CN").failure == Failure.ORIG_MISMATCH
    assert verifier.verify(setup(header), "CN").status == S.SHAKEN_STATUS_VERIFIED


def test_external_replay_store_path(cache: CertificateCache, home: SigningCarrier) -> None:
    verifier = Verifier(cache, None)
    header = sign(home)
    first = verifier.verify(setup(header), "CN", now=NOW)
    second = verifier.verify(setup(header), "CN", now=NOW)
    assert first.status == second.status == S.SHAKEN_STATUS_VERIFIED
    assert first.replay_key is not None
    assert first.replay_key == second.replay_key
    store = MemoryReplayStore()
    assert store.add_if_absent(first.replay_key, first.replay_expires_at, NOW)
    assert not store.add_if_absent(first.replay_key, second.replay_expires_at, NOW)
    replayed = second.as_replay()
    assert (replayed.status, replayed.failure, replayed.attestation) == (
        S.SHAKEN_STATUS_FAILED,
        Failure.REPLAY,
        common_pb2.ATTESTATION_UNSPECIFIED,
    )


def test_memory_replay_store_expires_and_stays_bounded() -> None:
    store = MemoryReplayStore(max_entries=3)
    assert store.add_if_absent(b"a", 100.0, 0.0)
    assert not store.add_if_absent(b"a", 100.0, 99.0)
    assert store.add_if_absent(b"a", 200.0, 100.0)
    for key, expiry in [(b"b", 150.0), (b"c", 300.0), (b"d", 400.0)]:
        assert store.add_if_absent(key, expiry, 101.0)
    assert len(store) == 3
    assert store.add_if_absent(b"b", 500.0, 102.0)
    assert not store.add_if_absent(b"d", 400.0, 102.0)
    with pytest.raises(ValueError, match="max_entries"):
        MemoryReplayStore(0)


# --- several headers, compact form, div, unsupported ---


def test_multiple_shaken_headers_best_outcome_wins(verifier: Verifier, home: SigningCarrier) -> None:
    c, a = sign(home, "C"), sign(home, "A", iat=NOW - 1)
    result = verifier.verify(setup(c, a), "CN")
    assert (result.status, result.attestation) == (S.SHAKEN_STATUS_VERIFIED, common_pb2.ATTESTATION_A)
    broken = rebuild(sign(home, iat=NOW - 2), 2, b64url(bytes(64)))
    assert verifier.verify(setup(broken), "CN").failure == Failure.SIG_RANGE
    assert verifier.verify(setup(broken, "garbage"), "CN").failure == Failure.SIG_RANGE


def test_pending_beats_failed_and_asks_for_the_certificate(cache: CertificateCache, sim: Sim) -> None:
    misses: list[str] = []
    verifier = Verifier(cache, MemoryReplayStore(), on_miss=misses.append, clock=lambda: float(NOW))
    uncached = "https://sti.simpki.test/unknown.pem"
    header = sim.shaken(simpki.shaken_claims(CALLER[1:], [CALLEE[1:]], NOW), x5u=uncached)
    result = verifier.verify(setup("x.y.z;info=<https://a.test/>;ppt=shaken", header), "CN")
    assert (result.status, result.reason_codes, result.attestation) == (
        S.SHAKEN_STATUS_PENDING,
        (),
        common_pb2.ATTESTATION_UNSPECIFIED,
    )
    assert misses == [uncached]


def test_claims_checks_run_before_any_fetch(cache: CertificateCache, sim: Sim) -> None:
    misses: list[str] = []
    verifier = Verifier(cache, None, on_miss=misses.append, clock=lambda: float(NOW))
    uncached = "https://sti.simpki.test/unknown.pem"
    header = sim.shaken(simpki.shaken_claims(CALLER[1:], [CALLEE[1:]], NOW), x5u=uncached)
    assert verifier.verify(setup(header), "CN", now=NOW + 600).failure == Failure.STALE_IAT
    assert verifier.verify(setup(header, calling=OTHER), "CN").failure == Failure.ORIG_MISMATCH
    assert verifier.verify(setup(header, called=OTHER), "CN").failure == Failure.DEST_MISMATCH
    assert misses == []
    assert verifier.verify(setup(header), "CN").status == S.SHAKEN_STATUS_PENDING
    assert misses == [uncached]


def test_compact_form_is_unsupported_with_a_typed_error(verifier: Verifier, home: SigningCarrier) -> None:
    compact = rebuild(sign(home), 1, "")
    with pytest.raises(CompactFormError) as raised:
        parse_passport(compact)
    assert raised.value.failure == Failure.COMPACT_FORM
    assert raised.value.status == S.SHAKEN_STATUS_UNSUPPORTED
    result = verifier.verify(setup(compact), "CN")
    assert (result.status, result.failure, result.reason_codes) == (
        S.SHAKEN_STATUS_UNSUPPORTED,
        Failure.COMPACT_FORM,
        ("SHAKEN_UNSUPPORTED",),
    )
    both = verifier.verify(setup(compact, sign(home)), "CN")
    assert both.status == S.SHAKEN_STATUS_VERIFIED


def test_compact_form_with_bad_alg_is_failed_not_unsupported(home: SigningCarrier) -> None:
    compact = rebuild(sign(home), 1, "")
    bad_header = b64url(simpki.canonical(simpki.shaken_header(home.x5u, alg="none")))
    with pytest.raises(PassportError) as raised:
        parse_passport(rebuild(compact, 0, bad_header))
    assert raised.value.failure == Failure.BAD_ALG


@pytest.mark.parametrize(
    ("ppt", "failure"),
    [("rph", Failure.UNKNOWN_PPT), (None, Failure.UNKNOWN_PPT), ("div", Failure.DIV_WITHOUT_SHAKEN)],
)
def test_non_shaken_headers_alone_are_unsupported(
    verifier: Verifier, home: SigningCarrier, ppt: str | None, failure: Failure
) -> None:
    token = sign(home).partition(";")[0]
    result = verifier.verify(setup(identity(token, home.x5u, ppt=ppt)), "CN")
    assert (result.status, result.failure, result.reason_codes) == (
        S.SHAKEN_STATUS_UNSUPPORTED,
        failure,
        ("SHAKEN_UNSUPPORTED",),
    )


def test_div_links_a_diverted_call(verifier: Verifier, home: SigningCarrier, sim: Sim) -> None:
    shaken = sign(home)
    div = sim.div("div1", CALLEE, FORWARD)
    result = verifier.verify(setup(shaken, div, called=FORWARD), "CN")
    assert (result.status, result.attestation, result.diverted, result.signer_ocn) == (
        S.SHAKEN_STATUS_VERIFIED,
        common_pb2.ATTESTATION_A,
        True,
        "H001",
    )


def test_div_chain_of_two_hops_in_any_order(verifier: Verifier, home: SigningCarrier, sim: Sim) -> None:
    hops = [sim.div("div2", FORWARD, FINAL), sim.div("div1", CALLEE, FORWARD)]
    result = verifier.verify(setup(sign(home), *hops, called=FINAL), "CN")
    assert (result.status, result.diverted) == (S.SHAKEN_STATUS_VERIFIED, True)


@pytest.mark.parametrize(
    "div_args",
    [
        {"name": "div1", "diverted_from": OTHER, "dest": FORWARD},
        {"name": "div1", "diverted_from": CALLEE, "dest": FORWARD, "orig": OTHER},
        {"name": "div1", "diverted_from": CALLEE, "dest": FORWARD, "iat": NOW - 120},
        {"name": "div1", "diverted_from": CALLEE, "dest": FINAL},
    ],
    ids=["wrong_diverting_number", "other_orig", "stale", "other_target"],
)
def test_div_that_does_not_link_fails(
    verifier: Verifier, home: SigningCarrier, sim: Sim, div_args: dict[str, Any]
) -> None:
    result = verifier.verify(setup(sign(home), sim.div(**div_args), called=FORWARD), "CN")
    assert (result.status, result.failure) == (S.SHAKEN_STATUS_FAILED, Failure.DIV_MISMATCH)


def test_div_with_bad_signature_does_not_link(verifier: Verifier, home: SigningCarrier, sim: Sim) -> None:
    div = rebuild(sim.div("div1", CALLEE, FORWARD), 2, b64url((1).to_bytes(32, "big") * 2))
    result = verifier.verify(setup(sign(home), div, called=FORWARD), "CN")
    assert result.failure == Failure.DIV_MISMATCH


def test_div_with_uncached_certificate_is_pending(
    cache: CertificateCache, home: SigningCarrier, sim: Sim
) -> None:
    misses: list[str] = []
    verifier = Verifier(cache, MemoryReplayStore(), on_miss=misses.append, clock=lambda: float(NOW))
    x5u = "https://sti.simpki.test/uncached-div.pem"
    div = sim.div("div1", CALLEE, FORWARD)
    token = jws(
        sim.leaves["div1"].key,
        {"alg": "ES256", "ppt": "div", "typ": "passport", "x5u": x5u},
        simpki.div_claims(CALLER[1:], [FORWARD[1:]], CALLEE[1:], NOW),
    )
    div = identity(token, x5u, ppt="div")
    result = verifier.verify(setup(sign(home), div, called=FORWARD), "CN")
    assert result.status == S.SHAKEN_STATUS_PENDING
    assert misses == [x5u]


def test_too_many_identity_headers(verifier: Verifier, home: SigningCarrier) -> None:
    result = verifier.verify(setup(*[sign(home)] * 9), "CN")
    assert (result.status, result.failure) == (S.SHAKEN_STATUS_FAILED, Failure.TOO_MANY_HEADERS)


# --- certificate-dependent outcomes ---


def test_negatively_cached_certificate_fails_without_refetch(
    cache: CertificateCache, home: SigningCarrier
) -> None:
    misses: list[str] = []
    header = sign(home)
    other_root = simpki.issue(5, "other-root", None, START, START + timedelta(days=90), ca=True)
    fresh = CertificateCache(ChainValidator([other_root.cert]), clock=lambda: float(NOW))
    with pytest.raises(ValueError, match="chain_invalid"):
        fresh.insert(home.x5u, x509.load_pem_x509_certificates(home.chain_pem))
    verifier = Verifier(fresh, None, on_miss=misses.append, clock=lambda: float(NOW))
    result = verifier.verify(setup(header), "CN")
    assert (result.status, result.failure) == (S.SHAKEN_STATUS_FAILED, Failure.CHAIN_INVALID)
    assert misses == []


def test_expected_spcs(verifier: Verifier, home: SigningCarrier) -> None:
    header = sign(home)
    assert (
        verifier.verify(setup(header), "CN", expected_spcs=frozenset({"X999"})).failure
        == Failure.SPC_MISMATCH
    )
    result = verifier.verify(setup(header), "CN", expected_spcs=frozenset({"H001", "X999"}))
    assert result.status == S.SHAKEN_STATUS_VERIFIED


def test_revocations_can_be_swapped_at_runtime(verifier: Verifier, sim: Sim) -> None:
    claims = simpki.shaken_claims(CALLER[1:], [CALLEE[1:]], NOW, origid=ORIGID)
    header = sim.shaken(claims)
    revoked = simpki.crl(sim.sub, [sim.leaves["signer"].cert.serial_number], START)
    verifier.revocations = Revocations.from_crls([revoked], [sim.sub.cert])
    assert verifier.verify(setup(header), "CN").failure == Failure.CERT_REVOKED
    verifier.revocations = Revocations()
    assert verifier.verify(setup(header), "CN").status == S.SHAKEN_STATUS_VERIFIED


# --- bounds: numeric extremes, wrong JSON types, depth and width ---


def raw_claims(**raw: str) -> bytes:
    """Canonical SHAKEN claims with members replaced by raw JSON text (numbers json.dumps cannot write)."""
    members = {
        key: json.dumps(value, separators=(",", ":"))
        for key, value in simpki.shaken_claims(CALLER[1:], [CALLEE[1:]], NOW, origid=ORIGID).items()
    }
    members.update(raw)
    return ("{" + ",".join(f'"{key}":{value}' for key, value in sorted(members.items())) + "}").encode()


@pytest.mark.parametrize(
    ("iat", "failure"),
    [
        ("9" * 400, Failure.BAD_JSON),
        ("-" + "9" * 400, Failure.BAD_JSON),
        (str(2**53), Failure.BAD_JSON),
        (str(2**63), Failure.BAD_JSON),
        (str(2**53 - 1), Failure.FUTURE_IAT),
        ("0", Failure.STALE_IAT),
        ("-1", Failure.BAD_CLAIMS),
        ("true", Failure.BAD_CLAIMS),
        ("false", Failure.BAD_CLAIMS),
        (f"{NOW}.0", Failure.BAD_CLAIMS),
        (f"{NOW}e0", Failure.BAD_CLAIMS),
        ("1e400", Failure.BAD_JSON),
        ("-1e400", Failure.BAD_JSON),
        ("NaN", Failure.BAD_JSON),
        ("-Infinity", Failure.BAD_JSON),
        ('"NaN"', Failure.BAD_CLAIMS),
        ('"inf"', Failure.BAD_CLAIMS),
        ("null", Failure.BAD_CLAIMS),
        ("[1]", Failure.BAD_CLAIMS),
        ("{}", Failure.BAD_CLAIMS),
    ],
)
def test_iat_numeric_extremes_are_typed_failures(
    verifier: Verifier, sim: Sim, iat: str, failure: Failure
) -> None:
    result = verifier.verify(setup(sim.shaken(raw_claims(iat=iat))), "CN")
    assert (result.status, result.failure) == (S.SHAKEN_STATUS_FAILED, failure)


@pytest.mark.parametrize(
    ("member", "value", "failure"),
    [
        ("attest", '["A"]', Failure.BAD_ATTEST),
        ("attest", '{"A":1}', Failure.BAD_ATTEST),
        ("attest", "1", Failure.BAD_ATTEST),
        ("attest", "true", Failure.BAD_ATTEST),
        ("origid", '["x"]', Failure.BAD_ORIGID),
        ("orig", '{"tn":["8613800138000"]}', Failure.BAD_CLAIMS),
        ("orig", '{"tn":{"a":1}}', Failure.BAD_CLAIMS),
        ("dest", '{"tn":[["8613900139000"]]}', Failure.BAD_CLAIMS),
        ("dest", '{"tn":[8613900139000]}', Failure.BAD_CLAIMS),
        ("dest", '{"tn":{"8613900139000":1}}', Failure.BAD_CLAIMS),
        ("x-vendor", str(2**53), Failure.BAD_JSON),
        ("x-vendor", "1e999", Failure.BAD_JSON),
    ],
)
def test_claims_of_the_wrong_json_type_are_typed_failures(
    verifier: Verifier, sim: Sim, member: str, value: str, failure: Failure
) -> None:
    result = verifier.verify(setup(sim.shaken(raw_claims(**{member: value}))), "CN")
    assert (result.status, result.failure) == (S.SHAKEN_STATUS_FAILED, failure)


def test_unknown_members_within_the_bounds_are_ignored(verifier: Verifier, sim: Sim) -> None:
    inside = {
        "deep": "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1),
        "wide": "[" + ",".join(["0"] * MAX_JSON_ITEMS) + "]",
        "big": str(MAX_JSON_INT),
        "small": str(-MAX_JSON_INT),
        "float": "1.7976931348623157e308",
        "text": '"\\u00e9\\ud800[{,\\"é"',
    }
    for member, value in inside.items():
        result = verifier.verify(setup(sim.shaken(raw_claims(**{member: value}))), "CN")
        assert result.status == S.SHAKEN_STATUS_VERIFIED, member


@pytest.mark.parametrize(
    "value",
    [
        "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH,
        '{"a":' * MAX_JSON_DEPTH + "1" + "}" * MAX_JSON_DEPTH,
        "[" * 2000,
        "[" + ",".join(["0"] * (MAX_JSON_ITEMS + 1)) + "]",
        "{" + ",".join(f'"k{i}":0' for i in range(MAX_JSON_ITEMS + 1)) + "}",
    ],
    ids=["array_depth", "object_depth", "unclosed_2000", "array_width", "object_width"],
)
def test_json_over_the_depth_and_width_bounds_is_refused(verifier: Verifier, sim: Sim, value: str) -> None:
    result = verifier.verify(setup(sim.shaken(raw_claims(x=value))), "CN")
    assert (result.status, result.failure) == (S.SHAKEN_STATUS_FAILED, Failure.BAD_JSON)


def test_bounds_in_the_jose_header_too(verifier: Verifier, sim: Sim) -> None:
    x5u = sim.x5u("signer")
    claims = simpki.canonical(simpki.shaken_claims(CALLER[1:], [CALLEE[1:]], NOW, origid=ORIGID))
    for extra in ('"kid":' + "9" * 300, '"kid":' + "[" * 20 + "]" * 20, '"kid":1e400'):
        header_json = f'{{"alg":"ES256",{extra},"ppt":"shaken","typ":"passport","x5u":"{x5u}"}}'.encode()
        token = jws(sim.leaves["signer"].key, header_json, claims)
        assert verifier.verify(setup(identity(token, x5u)), "CN").failure == Failure.BAD_JSON


def test_a_crafted_header_beside_a_valid_one_cannot_crash_verification(
    verifier: Verifier, sim: Sim, home: SigningCarrier
) -> None:
    hostile = sim.shaken(raw_claims(iat="9" * 600))
    result = verifier.verify(setup(hostile, sign(home)), "CN")
    assert result.status == S.SHAKEN_STATUS_VERIFIED
    alone = verifier.verify(setup(hostile), "CN")
    assert (alone.status, alone.failure) == (S.SHAKEN_STATUS_FAILED, Failure.BAD_JSON)


# --- fuzzing: only typed errors, never a hang ---

VALID_FOR_FUZZ = (
    "eyJhbGciOiJFUzI1NiIsInBwdCI6InNoYWtlbiIsInR5cCI6InBhc3Nwb3J0IiwieDV1IjoiaHR0cHM6Ly9hLnRlc3QveC5wZW0ifQ"
    ".eyJhdHRlc3QiOiJBIn0.AAAA;info=<https://a.test/x.pem>;alg=ES256;ppt=shaken"
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=1000)
@given(st.text(max_size=600))
def test_parser_on_arbitrary_text_raises_only_passport_error(text: str) -> None:
    with contextlib.suppress(PassportError):
        parse_passport(text)


@settings(max_examples=400, deadline=1000)
@given(st.lists(st.tuples(st.integers(0, len(VALID_FOR_FUZZ)), st.text(max_size=4)), max_size=6))
def test_parser_on_mutated_headers_raises_only_passport_error(edits: list[tuple[int, str]]) -> None:
    text = VALID_FOR_FUZZ
    for position, insert in edits:
        text = text[:position] + insert + text[position + 1 :]
    with contextlib.suppress(PassportError):
        parse_passport(text)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=1000)
@given(
    st.dictionaries(st.sampled_from(["alg", "typ", "ppt", "x5u", "crit", "kid"]), JSON_VALUES, max_size=6),
    st.dictionaries(
        st.sampled_from(["attest", "dest", "iat", "orig", "origid", "div"]), JSON_VALUES, max_size=6
    ),
    st.binary(max_size=80),
)
def test_parser_on_arbitrary_json_raises_only_passport_error(
    header: dict[str, Any], claims: dict[str, Any], signature: bytes
) -> None:
    x5u = "https://a.test/x.pem"
    token = f"{b64url(simpki.canonical(header))}.{b64url(simpki.canonical(claims))}.{b64url(signature)}"
    with contextlib.suppress(PassportError):
        parse_passport(identity(token, x5u))


@settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(max_size=300) | st.just(VALID_FOR_FUZZ), max_size=10), st.text(max_size=30))
def test_verify_never_raises_on_hostile_calls(verifier: Verifier, headers: list[str], calling: str) -> None:
    result = verifier.verify(setup(*headers, calling=calling), "CN")
    expected = (
        {S.SHAKEN_STATUS_ABSENT}
        if not headers
        else {S.SHAKEN_STATUS_FAILED, S.SHAKEN_STATUS_UNSUPPORTED, S.SHAKEN_STATUS_PENDING}
    )
    assert result.status in expected
