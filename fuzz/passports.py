"""Hostile but plausible call setups for the origination fuzz targets and robustness property tests.

A ``Choices`` source drives ``CaseBuilder``: atheris' FuzzedDataProvider in fuzz/verifier.py and
fuzz/verify_handler.py, hypothesis in tests/unit/test_origination_robustness.py. Choice 0 is always
the well-formed value, so an empty input is a correctly signed SHAKEN call that verifies, and the
fuzzer mutates from there. Headers are really signed, by a test chain whose keys are drawn at
start (tests/unit/vectors/simpki with a random seed), so the certificate, signature, replay and
div paths are reached, not only the parser. Mutations cover numeric extremes (hundreds of digits,
the I-JSON edges 2**53 - 1 / 2**53, 2**63, negatives, floats, ``1e400``, NaN/Infinity literals and
strings, booleans where integers belong), claims of the wrong JSON type, huge arrays, deep nesting,
duplicate members, non-ASCII, bad base64, bad signatures, oversized headers and too many headers.

``check_result`` and ``check_verdict`` are the oracles: a well-typed answer for every input,
VERIFIED only when some header carries an untouched signature of the trusted key, and the DNO
finding present whatever the Identity headers say.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from google.protobuf.timestamp_pb2 import Timestamp

from fraudmesh.v1 import call_pb2, common_pb2, verdicts_pb2
from services.common.reasons import REASONS
from services.origination.certs import CertificateCache, CertificateError, ChainValidator
from services.origination.failures import REASON_CODE
from services.origination.passport import P256_ORDER, ShakenResult
from tests.unit.vectors import simpki

__all__ = [
    "BASE_TIME",
    "DNO_NUMBER",
    "MISSING_X5U",
    "NEGATIVE_TTL_S",
    "REFUSED_X5U",
    "REGION",
    "VALID_X5U",
    "Case",
    "CaseBuilder",
    "Choices",
    "FuzzPki",
    "ProviderChoices",
    "check_result",
    "check_verdict",
]

BASE_TIME: Final = 1_767_225_600  # 2026-01-01T00:00:00Z; every case's clock is BASE_TIME + 0..255 s
NEGATIVE_TTL_S: Final = 3600.0  # REFUSED_X5U stays refused over every case's clock
REGION: Final = "US"
CALLER: Final = "+12025550100"
CALLEE: Final = "+12025550101"
FORWARD: Final = "+12025550102"
OTHER: Final = "+13105550123"
DNO_NUMBER: Final = "+12025550199"
ORIGID: Final = "123e4567-e89b-12d3-a456-426655440000"
VALID_X5U: Final = "https://cert.fuzz.invalid/F001.pem"
MISSING_X5U: Final = "https://cert.fuzz.invalid/missing.pem"
REFUSED_X5U: Final = "https://cert.fuzz.invalid/refused.pem"

_ES256: Final = ec.ECDSA(hashes.SHA256())
_STATUSES: Final = frozenset(
    {
        verdicts_pb2.SHAKEN_STATUS_ABSENT,
        verdicts_pb2.SHAKEN_STATUS_VERIFIED,
        verdicts_pb2.SHAKEN_STATUS_FAILED,
        verdicts_pb2.SHAKEN_STATUS_PENDING,
        verdicts_pb2.SHAKEN_STATUS_UNSUPPORTED,
    }
)
_HEADER_COUNTS: Final = (1, 2, 0, 3, 1, 4, 5, 6, 7, 8, 9, 12, 40, 1000)
_B64_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_NON_BASE64: Final = ("=", "+", "/", " ", "!", "\x00", "é", "\u202e", "%")
_IAT_EXTREMES: Final = (
    str(2**53 - 1),
    str(2**53),
    str(-(2**53) + 1),
    str(2**63),
    str(-(2**63)),
    "-1",
    "-0",
    "0",
    "1e400",
    "-1e400",
    "1e-400",
    "NaN",
    "Infinity",
    "-Infinity",
    '"NaN"',
    '"inf"',
    "true",
    "false",
    "null",
    "[]",
    "{}",
    '""',
)
_NUMBER_EXTREMES: Final = (
    *_IAT_EXTREMES,
    "1.7976931348623157e308",
    "5e-324",
    "-0.0",
    "0.1e1",
    "1E+2",
    "01",
    "+1",
    ".5",
    "1.",
    "0x10",
)


class Choices(Protocol):
    """Where a case's decisions come from: fuzzer bytes or a hypothesis draw."""

    def pick(self, options: int) -> int:
        """An index in [0, options); 0 is the well-formed choice."""
        ...

    def number(self, low: int, high: int) -> int:
        """An integer in [low, high]."""
        ...

    def text(self, max_length: int) -> str:
        """Arbitrary text of at most max_length characters."""
        ...


class _Provider(Protocol):
    """The part of atheris.FuzzedDataProvider the builder uses."""

    def ConsumeIntInRange(self, low: int, high: int) -> int:  # noqa: N802 - atheris' name
        """An integer in [low, high] (low when the data is used up)."""
        ...

    def ConsumeUnicodeNoSurrogates(self, count: int) -> str:  # noqa: N802 - atheris' name
        """Up to count characters without surrogates."""
        ...


class ProviderChoices:
    """Choices read from an atheris FuzzedDataProvider (an exhausted provider answers 0: well formed)."""

    __slots__ = ("_provider",)

    def __init__(self, provider: _Provider) -> None:
        self._provider = provider

    def pick(self, options: int) -> int:
        """An index in [0, options)."""
        return self._provider.ConsumeIntInRange(0, options - 1)

    def number(self, low: int, high: int) -> int:
        """An integer in [low, high]."""
        return self._provider.ConsumeIntInRange(low, high)

    def text(self, max_length: int) -> str:
        """Arbitrary text of at most max_length characters."""
        return self._provider.ConsumeUnicodeNoSurrogates(self._provider.ConsumeIntInRange(0, max_length))


def _b64url(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _der_signature(signature: bytes) -> tuple[int, int]:
    """(r, s) of a 64-byte r||s signature."""
    return int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")


class FuzzPki:
    """A root, an STI-SubCA and one SPC leaf (``F001``), with keys drawn at start; plus an untrusted signer.

    Signatures are memoised per signing input (bounded), so an input the fuzzer repeats presents
    the same PASSporT again, as a replaying attacker would.
    """

    def __init__(self, seed: int | None = None, max_signatures: int = 4096) -> None:
        seed = secrets.randbits(64) if seed is None else seed
        start = datetime.fromtimestamp(BASE_TIME, UTC) - timedelta(days=1)
        end = start + timedelta(days=31)
        self.root = simpki.issue(seed, "fuzz-root", None, start, end, ca=True)
        self.sub = simpki.issue(seed, "fuzz-sub", self.root, start, end, ca=True, path_length=0)
        self.leaf = simpki.issue(seed, "fuzz-spc", self.sub, start, end, spcs=["F001"])
        self.untrusted = simpki.derive_key(seed, "fuzz-untrusted")
        self._signatures: OrderedDict[tuple[bool, bytes], bytes] = OrderedDict()
        self._max_signatures = max_signatures

    @property
    def anchors(self) -> list[x509.Certificate]:
        """The trust anchors: only the root."""
        return [self.root.cert]

    @property
    def chain(self) -> list[x509.Certificate]:
        """What VALID_X5U serves: leaf, then the STI-SubCA."""
        return [self.leaf.cert, self.sub.cert]

    def anchor_pem(self) -> bytes:
        """The root as PEM, for a service's trust-anchor file."""
        return self.root.pem.encode("ascii")

    def seed_cache(self, cache: CertificateCache) -> None:
        """Cache VALID_X5U's chain and remember REFUSED_X5U as refused (a chain without its SubCA)."""
        cache.insert(VALID_X5U, self.chain, max_age_s=86_400, now=float(BASE_TIME))
        with contextlib.suppress(CertificateError):  # refused, and so remembered as refused
            cache.insert(REFUSED_X5U, [self.leaf.cert], now=float(BASE_TIME))

    def cache(self) -> CertificateCache:
        """A certificate cache on the cases' clock, seeded (see seed_cache)."""
        cache = CertificateCache(
            ChainValidator(self.anchors), negative_ttl_s=NEGATIVE_TTL_S, clock=lambda: float(BASE_TIME)
        )
        self.seed_cache(cache)
        return cache

    def sign(self, signing_input: bytes, *, trusted: bool = True) -> bytes:
        """The 64-byte r||s ES256 signature of signing_input by the leaf (or the untrusted key)."""
        key = (trusted, signing_input)
        found = self._signatures.get(key)
        if found is not None:
            return found
        private = self.leaf.key if trusted else self.untrusted
        r, s = decode_dss_signature(private.sign(signing_input, _ES256))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        self._signatures[key] = signature
        if len(self._signatures) > self._max_signatures:
            self._signatures.popitem(last=False)
        return signature


@dataclass(frozen=True, slots=True)
class Case:
    """One generated call: the setup, its clock, and what the oracles may expect of it."""

    setup: call_pb2.CallSetup
    now: float
    authentic: bool
    dno_caller: bool


def _json_object(members: Sequence[tuple[str, str]], layout: int) -> str:
    """A JSON object from (name, raw JSON value) pairs, compact or with whitespace."""
    colon, comma = ((":", ","), (": ", ", "), (" :\t", "\n,\r\n"))[layout]
    return "{" + comma.join(f"{json.dumps(name)}{colon}{value}" for name, value in members) + "}"


class CaseBuilder:
    """Builds call setups with signed, mutated Identity headers from a stream of Choices."""

    def __init__(self, pki: FuzzPki) -> None:
        self._pki = pki

    def case(self, choices: Choices) -> Case:
        """One call setup; choices of 0 throughout give a valid SHAKEN call that verifies."""
        now = BASE_TIME + choices.number(0, 255)
        caller_kind = choices.pick(7)
        calling, pai = (
            (CALLER, ""),
            (DNO_NUMBER, ""),
            (OTHER, CALLER),
            ("sip:anonymous@anonymous.invalid", ""),
            (CALLER, "sip:" + CALLER[1:] + "@carrier.example;user=phone"),
            (OTHER, ""),
            ("", ""),
        )[caller_kind]
        if caller_kind == 6:
            calling = choices.text(40)
        called_kind = choices.pick(4)
        called = (CALLEE, FORWARD, "")[called_kind] if called_kind < 3 else choices.text(40)
        orig = CALLER[1:] if caller_kind in (0, 2, 4) else DNO_NUMBER[1:] if caller_kind == 1 else OTHER[1:]
        count = _HEADER_COUNTS[choices.pick(len(_HEADER_COUNTS))]
        headers: list[str] = []
        authentic = False
        for _ in range(count if count <= 12 else 1):
            header, ok = self._header(choices, orig, now, headers)
            headers.append(header)
            authentic = authentic or ok
        if count > 12:  # many headers: one generated, repeated (the count check comes before any parse)
            headers *= count
        setup = call_pb2.CallSetup(
            call_id=f"fuzz-{now}",
            event_time=Timestamp(seconds=now),
            tenant="fuzz",
            calling_number=calling,
            p_asserted_identity=pai,
            called_number=called,
            identity_headers=headers,
            ingress_trunk_id="fuzz-trunk",
            ingress_kind=common_pb2.IngressKind.ValueType(choices.pick(5)),
        )
        return Case(setup, float(now), authentic, dno_caller=caller_kind == 1)

    def _header(self, choices: Choices, orig: str, now: int, earlier: list[str]) -> tuple[str, bool]:
        """One Identity header value and whether it carries an untouched trusted signature."""
        kind = choices.pick(11)
        if kind == 1:
            return self._passport(choices, "div", orig, now)
        if kind == 2:
            return choices.text(600), False
        if kind == 6 and earlier:
            return earlier[choices.number(0, len(earlier) - 1)], False
        header, ok = self._passport(choices, "shaken", orig, now)
        jws_end = header.find(";")
        jws_end = len(header) if jws_end < 0 else jws_end
        if kind == 3:  # oversized
            return header + ";pad=" + "x" * choices.number(4096, 9000), False
        if kind == 4 and jws_end:  # non-ASCII inside
            at = choices.number(0, len(header) - 1)
            return header[:at] + choices.text(3) + "é" + header[at:], False
        if kind == 5 and jws_end:  # bad base64 in the JWS
            at = choices.number(0, jws_end - 1)
            return header[:at] + _NON_BASE64[choices.pick(len(_NON_BASE64))] + header[at + 1 :], False
        if kind == 7:  # truncated: some cuts (trailing parameters) still verify
            return header[: choices.number(0, len(header))], ok
        if kind == 8:  # duplicated parameters or JWS parts
            return header + header[jws_end:], False
        if kind == 9:  # surrounding whitespace and case changes the grammar allows
            return " \t" + header.replace(";ppt=", ";PPT=") + " ", ok
        if kind == 10:  # compact form: the claims part left out
            first, _, rest = header.partition(".")
            return f"{first}..{rest.partition('.')[2]}", False
        return header, ok

    def _passport(self, choices: Choices, ppt: str, orig: str, now: int) -> tuple[str, bool]:
        """A signed PASSporT (header.claims.signature;params) with mutated header, claims, signature."""
        x5u = (VALID_X5U, MISSING_X5U, REFUSED_X5U, VALID_X5U + choices.text(8))[choices.pick(4)]
        header = self._jose_header(choices, ppt, x5u)
        claims = self._claims(choices, ppt, orig, now)
        signing_input = f"{_b64url(header.encode())}.{_b64url(claims.encode())}"
        signature, authentic = self._signature(choices, signing_input.encode("ascii"))
        params = self._params(choices, ppt, x5u)
        return f"{signing_input}.{signature}{params}", authentic

    def _jose_header(self, choices: Choices, ppt: str, x5u: str) -> str:
        """The JOSE header JSON: alg, ppt, typ, x5u, with one mutation when chosen."""
        members = [
            ("alg", '"ES256"'),
            ("ppt", json.dumps(ppt)),
            ("typ", '"passport"'),
            ("x5u", json.dumps(x5u)),
        ]
        mutation = choices.pick(10)
        if mutation == 1:
            alg = ('"none"', '"HS256"', '"ES384"', '["ES256"]', "null", '"es256"', "256")[choices.pick(7)]
            members[0] = ("alg", alg)
        elif mutation == 2:
            members[2] = ("typ", ('"JWT"', '"PASSPORT"', "1", '["passport"]')[choices.pick(4)])
        elif mutation == 3:
            members[1] = ("ppt", ('"div"', '"rcd"', '""', "null", '{"a":1}')[choices.pick(5)])
        elif mutation == 4:
            other = ('"http://cert.fuzz.invalid/a.pem"', "1", '"' + "https://a/" + "x" * 1100 + '"', '["a"]')
            members[3] = ("x5u", other[choices.pick(len(other))])
        elif mutation == 5:
            members.append(("crit", '["x"]'))
        elif mutation == 6:
            members.append(("kid", self._extreme(choices)))
        elif mutation == 7:
            members.append(("alg", '"none"'))
        elif mutation == 8:
            del members[choices.pick(4)]
        elif mutation == 9:
            members.reverse()
        return _json_object(members, choices.pick(3))

    def _claims(self, choices: Choices, ppt: str, orig: str, now: int) -> str:
        """The claims JSON: SHAKEN (attest, dest, iat, orig, origid) or div, each member mutable."""
        callee = (CALLEE if ppt == "shaken" else FORWARD)[1:]
        members: list[tuple[str, str]] = []
        if ppt == "shaken":
            attest = ('"A"', '"B"', '"C"', '["A"]', '{"A":1}', "1", '"D"', "true", "")[choices.pick(9)]
            if attest:
                members.append(("attest", attest))
        dest = choices.pick(8)
        if dest < 7:
            members.append(("dest", self._dest(choices, dest, callee)))
        iat = self._iat(choices, now)
        if iat:
            members.append(("iat", iat))
        tn = (
            f'{{"tn":"{orig}"}}',
            f'{{"tn":"{OTHER[1:]}"}}',
            f'{{"tn":{orig}}}',
            '{"uri":"sip:a@b"}',
            '"x"',
            "",
        )
        chosen = tn[choices.pick(len(tn))]
        if chosen:
            members.append(("orig", chosen))
        if ppt == "shaken":
            origid = (json.dumps(ORIGID), json.dumps(choices.text(40)), "123", '["x"]', "")[choices.pick(5)]
            if origid:
                members.append(("origid", origid))
        else:
            div = (f'{{"tn":"{CALLEE[1:]}"}}', f'{{"tn":"{OTHER[1:]}"}}', "[]", "")[choices.pick(4)]
            if div:
                members.append(("div", div))
        extra = choices.pick(11)
        if extra:
            members.append(self._extra(choices, extra))
        return _json_object(members, choices.pick(3))

    @staticmethod
    def _dest(choices: Choices, kind: int, callee: str) -> str:
        """The dest claim: the callee, a forward target, huge or empty arrays, wrong types."""
        if kind == 2:
            return '{"tn":[' + ",".join([f'"{callee}"'] * choices.number(2, 400)) + "]}"
        return (
            f'{{"tn":["{callee}"]}}',
            f'{{"tn":["{FORWARD[1:]}","{callee}"]}}',
            "",
            '{"tn":[]}',
            f'{{"tn":"{callee}"}}',
            f'{{"tn":[{callee}]}}',
            f'{{"tn":[["{callee}"]]}}',
        )[kind]

    def _iat(self, choices: Choices, now: int) -> str:
        """The iat claim: now, near now, or a numeric extreme ("" leaves it out)."""
        kind = choices.pick(8)
        if kind == 1:
            return str(now + choices.number(-90, 90))
        if kind == 2:
            return "9" * choices.number(17, 2500)
        if kind == 3:
            return ("-", "")[choices.pick(2)] + "1" * choices.number(4300, 5000)  # int() digit limit
        if kind == 4:
            return _IAT_EXTREMES[choices.pick(len(_IAT_EXTREMES))]
        if kind == 5:
            return (f"{now}.5", f"{now}e0", f"{now}.0", f'"{now}"', f"[{now}]")[choices.pick(5)]
        if kind == 6:
            return ""
        if kind == 7:
            return str(now - choices.number(0, 2**40))
        return str(now)

    def _extreme(self, choices: Choices) -> str:
        """A JSON value from the numeric extremes, or a long digit string."""
        if choices.pick(4) == 3:
            return "9" * choices.number(17, 2000)
        return _NUMBER_EXTREMES[choices.pick(len(_NUMBER_EXTREMES))]

    def _extra(self, choices: Choices, kind: int) -> tuple[str, str]:
        """One unknown claim: deep nesting, huge arrays and objects, duplicates, odd strings, extremes."""
        if kind == 1:
            depth = choices.number(1, 2000)
            return "x", "[" * depth + ("]" * depth if choices.pick(2) == 0 else "")
        if kind == 2:
            return "x", "[" + ",".join(["0"] * choices.number(1, 2000)) + "]"
        if kind == 3:
            return "x", "{" + ",".join(f'"k{i}":{i}' for i in range(choices.number(1, 500))) + "}"
        if kind == 4:
            return ("iat", "attest", "orig", "dest")[choices.pick(4)], '"duplicate"'
        if kind == 5:
            return "x", json.dumps(choices.text(60), ensure_ascii=choices.pick(2) == 0)
        if kind == 6:
            return "x", '"\\ud800\\udfff\\u0000\\"\\\\[{,"'
        if kind == 7:
            return "x", self._extreme(choices)
        if kind == 8:
            depth = choices.number(1, 800)
            return "x", '{"a":' * depth + "1" + "}" * depth
        if kind == 9:
            return "x", '"' + "\\" * choices.number(0, 50) + '"'
        return choices.text(12), choices.text(30)

    def _signature(self, choices: Choices, signing_input: bytes) -> tuple[str, bool]:
        """The base64url signature part and whether it is an untouched trusted signature."""
        kind = choices.pick(9)
        signature = self._pki.sign(signing_input, trusted=kind != 7)
        r, s = _der_signature(signature)
        if kind == 1:  # the malleated twin (r, n - s) is just as valid
            return _b64url(r.to_bytes(32, "big") + (P256_ORDER - s).to_bytes(32, "big")), True
        if kind == 2:
            at = choices.number(0, 63)
            flipped = bytearray(signature)
            flipped[at] ^= choices.number(1, 255)
            return _b64url(bytes(flipped)), False
        if kind == 3:
            return _b64url(bytes(32) + signature[32:]), False
        if kind == 4:
            return _b64url(signature[:32] + P256_ORDER.to_bytes(32, "big")), False
        if kind == 5:
            return _b64url(signature[: choices.number(0, 63)]), False
        if kind == 6:  # non-canonical: one of the 4 unused trailing bits set
            text = _b64url(signature)
            return text[:-1] + _B64_ALPHABET[_B64_ALPHABET.index(text[-1]) | choices.number(1, 15)], False
        if kind == 8:
            return _b64url(signature + bytes(choices.number(1, 8))), False
        return _b64url(signature), kind != 7

    @staticmethod
    def _params(choices: Choices, ppt: str, x5u: str) -> str:
        """The Identity header parameters, well formed or not."""
        kind = choices.pick(10)
        if kind == 8:
            extra = "".join(f";x{i}=1" for i in range(choices.number(1, 300)))
            return f";info=<{x5u}>;alg=ES256;ppt={ppt}{extra}"
        return (
            f";info=<{x5u}>;alg=ES256;ppt={ppt}",
            f";info=<{x5u}>;ppt={ppt}",
            f";info=<{x5u}>;alg=ES384;ppt={ppt}",
            f';info=<{x5u}>;alg=ES256;ppt="{ppt}"',
            f";info=<{MISSING_X5U}>;alg=ES256;ppt={ppt}",
            f";alg=ES256;ppt={ppt}",
            f";info=<{x5u}>;alg=ES256;ppt={ppt};ppt={ppt}",
            f";info=<{x5u}>;alg=ES256",
            "",
            f" ; info = <{x5u}> ;\talg = ES256 ; ppt = {ppt} ",
        )[kind]


def check_result(result: ShakenResult, case: Case) -> None:
    """The Verifier oracle: a well-typed outcome, and VERIFIED only for an authentic header."""
    if not isinstance(result, ShakenResult):
        raise AssertionError(f"verify returned {type(result).__name__}")
    if result.status not in _STATUSES:
        raise AssertionError(f"unexpected status {result.status}")
    if (result.status == verdicts_pb2.SHAKEN_STATUS_ABSENT) != (not case.setup.identity_headers):
        raise AssertionError("ABSENT exactly when there is no Identity header")
    failed = result.status in (verdicts_pb2.SHAKEN_STATUS_FAILED, verdicts_pb2.SHAKEN_STATUS_UNSUPPORTED)
    if failed != (result.failure is not None):
        raise AssertionError(f"status {result.status} with failure {result.failure}")
    if result.failure is not None and REASON_CODE[result.failure] not in result.reason_codes:
        raise AssertionError("a failure without its reason code")
    if result.status == verdicts_pb2.SHAKEN_STATUS_VERIFIED and not case.authentic:
        raise AssertionError("verified without an authentic signature")


def check_verdict(verdict: verdicts_pb2.OriginationVerdict, case: Case) -> None:
    """The Verify RPC oracle: typed verdict, known codes, the DNO finding kept, VERIFIED only if authentic."""
    if verdict.shaken_status not in _STATUSES:
        raise AssertionError(f"unexpected SHAKEN status {verdict.shaken_status} (an internal error?)")
    unknown = set(verdict.reason_codes) - set(REASONS)
    if unknown:
        raise AssertionError(f"undocumented reason codes {sorted(unknown)}")
    if case.dno_caller and "DNO_LISTED" not in verdict.reason_codes:
        raise AssertionError("a DNO-listed caller lost its DNO_LISTED finding")
    if verdict.shaken_status == verdicts_pb2.SHAKEN_STATUS_VERIFIED and not case.authentic:
        raise AssertionError("verified without an authentic signature")
