"""Strict STIR/SHAKEN verification of a call's Identity headers (RFC 8224, 8225, 8588, ATIS-1000074).

``parse_passport`` turns one Identity header value into a typed ``Passport`` or raises
``PassportError`` (never anything else): full form ``<jws>;info=<x5u>;alg=ES256;ppt=shaken``, at
most 4 KiB of ASCII; strict unpadded canonical base64url; JSON objects without duplicate members
(NaN/Infinity refused); header ``alg`` ES256 (``none``, HS*, RS*, ES384 and everything else
refused, as is an ``alg`` parameter other than ES256), ``typ`` "passport", ``ppt`` equal to the
``ppt`` parameter, no ``crit``, ``x5u`` an https URL equal to ``info``; SHAKEN claims ``attest``
A/B/C, ``orig.tn`` and ``dest.tn`` (a list) as digit strings, integer ``iat``, UUID ``origid``;
a 64-byte r||s signature with 1 <= r, s < n (P-256). Unknown header and claim members are ignored.
A carrier's header part is identical on every call it signs, so its checks are memoised.

The compact form (empty claims part, RFC 8224 section 7) is refused as UNSUPPORTED with
``CompactFormError`` once its header has passed: its claims would be rebuilt from the SIP request,
but a SHAKEN PASSporT's ``attest`` and ``origid`` appear nowhere in SIP, so ATIS-1000074 requires
the full form.

``Verifier.verify`` checks a CallSetup's headers, in this order for each SHAKEN PASSporT: parse,
``iat`` within the freshness window either way (60 s by default, the boundary included), ``orig``
equal to the calling number (P-Asserted-Identity, else From) and the called number among ``dest``
(both compared as E.164 digits without '+', or national digits for short codes), the certificate
(only from the cache: a miss answers PENDING and asks ``on_miss`` to fetch; a recently refused
x5u answers FAILED with the refusal), the chain's validity at ``iat``, revocation, optional
expected SPCs, the ES256 signature over the received base64url bytes (canonical JSON is not
required), and finally replay: the same signature (keyed by r and the low-s form of s, so the
malleated twin (r, n-s) counts as the same) seen within the freshness window is a replay. Only
PASSporTs that pass every cheap check can trigger a certificate fetch, and only verified ones
enter the replay store.

Bounds (every input gets a verdict; nothing here raises anything but ``PassportError``, which
``verify`` turns into a FAILED or UNSUPPORTED result): at most ``MAX_IDENTITY_HEADERS`` (8) Identity
headers per call (more: FAILED ``too_many_headers`` without parsing any), each at most
``MAX_HEADER_BYTES`` (4 KiB, so a JSON part is under 3 KiB decoded; more: ``oversize``) of ASCII.
Each JSON part: nesting at most ``MAX_JSON_DEPTH`` (16) objects/arrays deep, at most
``MAX_JSON_ITEMS`` (128) members in any one object or array, integers within I-JSON's
+-(2**53 - 1) (RFC 7493 section 2.2; so no bigint and no ``int()`` digit-limit error can reach the
checks) and finite floats only (``1e400`` is refused like NaN); over any of these: ``bad_json``.
``dest.tn`` holds at most ``MAX_DEST_TNS`` (32) numbers, ``x5u`` at most 1 KiB. Booleans are
never accepted where an integer is (``iat``), and claims of the wrong JSON type (a list for
``attest``) are ``bad_claims``/``bad_attest``, never a TypeError.

Headers are chosen by their ``ppt`` parameter. Several SHAKEN PASSporTs: the best outcome wins
(VERIFIED with the highest attestation, else PENDING, else the first FAILED, else UNSUPPORTED).
``ppt=div`` (RFC 8946) is handled minimally: div PASSporTs are only consulted when the called
number is not in the SHAKEN PASSporT's ``dest``; each fresh, verified div PASSporT with the same
``orig`` whose ``div.tn`` is already reachable makes its ``dest`` reachable, and the call verifies
(flagged ``diverted``) if the called number becomes reachable. Div PASSporTs without a SHAKEN one,
other ``ppt`` values and headers without ``ppt`` are UNSUPPORTED.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import heapq
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeAlias
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from fraudmesh.v1 import call_pb2, common_pb2, verdicts_pb2
from services.common.phone import InvalidNumberError, e164_digits, normalize
from services.origination.callerid import presented_caller
from services.origination.certs import CachedChain, Revocations
from services.origination.failures import REASON_CODE, UNSUPPORTED, VERIFIER_ERROR_CODE, Failure

__all__ = [
    "DEFAULT_FRESHNESS_S",
    "MAX_HEADER_BYTES",
    "MAX_IDENTITY_HEADERS",
    "MAX_JSON_DEPTH",
    "MAX_JSON_INT",
    "MAX_JSON_ITEMS",
    "P256_ORDER",
    "VERIFICATION_ERROR",
    "ChainSource",
    "CompactFormError",
    "IdentityHeader",
    "MemoryReplayStore",
    "Passport",
    "PassportError",
    "ReplayStore",
    "ShakenResult",
    "ShakenStatus",
    "Verifier",
    "parse_passport",
    "replay_key",
    "split_identity",
    "tn_digits",
]

ShakenStatus: TypeAlias = verdicts_pb2.ShakenStatus.ValueType
AttestationValue: TypeAlias = common_pb2.Attestation.ValueType

P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
MAX_HEADER_BYTES: Final = 4096
MAX_IDENTITY_HEADERS: Final = 8
MAX_DEST_TNS: Final = 32
MAX_JSON_DEPTH: Final = 16
MAX_JSON_ITEMS: Final = 128
MAX_JSON_INT: Final = 2**53 - 1
DEFAULT_FRESHNESS_S: Final = 60

ABSENT: Final = verdicts_pb2.SHAKEN_STATUS_ABSENT
VERIFIED: Final = verdicts_pb2.SHAKEN_STATUS_VERIFIED
FAILED: Final = verdicts_pb2.SHAKEN_STATUS_FAILED
PENDING: Final = verdicts_pb2.SHAKEN_STATUS_PENDING
UNSUPPORTED_STATUS: Final = verdicts_pb2.SHAKEN_STATUS_UNSUPPORTED

ATTESTATIONS: Final[dict[str, AttestationValue]] = {
    "A": common_pb2.ATTESTATION_A,
    "B": common_pb2.ATTESTATION_B,
    "C": common_pb2.ATTESTATION_C,
}
_ATTESTATION_REASONS: Final[dict[str, tuple[str, ...]]] = {
    "A": (),
    "B": ("SHAKEN_ATTESTATION_B",),
    "C": ("SHAKEN_ATTESTATION_C",),
}
_PPTS: Final = frozenset({"shaken", "div"})

_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
_B64URL_VALUE: Final = {
    char: value
    for value, char in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
}
_TN: Final = re.compile(r"[0-9]{1,20}")
_UUID: Final = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_PARAM_NAME: Final = r"[A-Za-z0-9.!%*_+`'~-]+"
_PARAM_VALUE: Final = r"<[^<>\s]*>|\"[^\"\\\r\n]*\"|[A-Za-z0-9.!%*_+`'~:/\[\]-]+"
_PARAM: Final = re.compile(rf"[ \t]*;[ \t]*({_PARAM_NAME})(?:[ \t]*=[ \t]*({_PARAM_VALUE}))?[ \t]*")
_JSON_STRUCTURE: Final = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},]', re.DOTALL)
_ECDSA_SHA256: Final = ec.ECDSA(hashes.SHA256())


class PassportError(ValueError):
    """An Identity header that cannot be verified; ``failure`` says why, ``status`` FAILED or UNSUPPORTED."""

    def __init__(self, failure: Failure, detail: str = "") -> None:
        super().__init__(f"{failure.value}: {detail}" if detail else failure.value)
        self.failure = failure

    @property
    def status(self) -> ShakenStatus:
        """UNSUPPORTED for kinds this verifier does not handle, FAILED for everything else."""
        return UNSUPPORTED_STATUS if self.failure in UNSUPPORTED else FAILED


class CompactFormError(PassportError):
    """A compact-form PASSporT (empty claims): SHAKEN claims cannot be rebuilt from SIP, so not verified."""

    def __init__(self) -> None:
        super().__init__(Failure.COMPACT_FORM, "compact form cannot carry SHAKEN attest/origid")


@dataclass(frozen=True, slots=True)
class IdentityHeader:
    """An Identity header value split into its JWS and parameters (names lower-cased, info unbracketed)."""

    jws: str
    info: str
    alg: str | None
    ppt: str | None


@dataclass(frozen=True, slots=True)
class Passport:
    """A parsed, structurally valid SHAKEN or div PASSporT; signature not yet checked."""

    ppt: str
    x5u: str
    iat: int
    orig_tn: str
    dest_tns: tuple[str, ...]
    attest: str | None
    origid: str | None
    div_tn: str | None
    signing_input: bytes
    r: int
    s: int


def split_identity(value: str) -> IdentityHeader:
    """Split an RFC 8224 Identity header value into JWS and parameters; raises PassportError."""
    if len(value) > MAX_HEADER_BYTES:
        raise PassportError(Failure.OVERSIZE, "Identity header over 4 KiB")
    if not value.isascii():
        raise PassportError(Failure.MALFORMED, "non-ASCII Identity header")
    text = value.strip(" \t")
    jws = text.partition(";")[0].rstrip(" \t")
    info, alg, ppt = _identity_params(text[len(jws) :])
    return IdentityHeader(jws=jws, info=info, alg=alg, ppt=ppt)


@functools.lru_cache(maxsize=1024)
def _identity_params(text: str) -> tuple[str, str | None, str | None]:
    """(info URI, alg, ppt) of the parameter part of an Identity header; raises PassportError.

    Memoised: a carrier sends the same parameters (``;info=<x5u>;alg=ES256;ppt=shaken``) on every
    call it signs, so the grammar runs once per carrier (errors are not cached and re-raise).
    """
    params: dict[str, str | None] = {}
    pos = 0
    while pos < len(text):
        match = _PARAM.match(text, pos)
        if match is None or match.end() == pos:
            raise PassportError(Failure.BAD_PARAMS, "unparseable Identity parameters")
        name = match.group(1).lower()
        if name in params:
            raise PassportError(Failure.BAD_PARAMS, f"duplicate parameter {name}")
        params[name] = match.group(2)
        pos = match.end()
    info = params.get("info")
    if info is None or not (info.startswith("<") and info.endswith(">")) or len(info) < 3:
        raise PassportError(Failure.BAD_PARAMS, "info parameter missing or not <URI>")
    alg = _unquote(params.get("alg"))
    if "alg" in params and alg != "ES256":
        raise PassportError(Failure.BAD_ALG, "alg parameter is not ES256")
    ppt = _unquote(params.get("ppt"))
    if "ppt" in params and not ppt:
        raise PassportError(Failure.BAD_PARAMS, "empty ppt parameter")
    return info[1:-1], alg, ppt


def _unquote(value: str | None) -> str | None:
    """A parameter value without its surrounding double quotes."""
    if value is not None and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _b64url_decode(text: str) -> bytes:
    """Strict base64url: URL-safe alphabet, no padding, canonical trailing bits."""
    if len(text) % 4 == 1 or _B64URL.fullmatch(text) is None:
        raise PassportError(Failure.BAD_BASE64, "not unpadded base64url")
    tail = len(text) % 4
    if tail and _B64URL_VALUE[text[-1]] & (0b1111 if tail == 2 else 0b11):
        raise PassportError(Failure.BAD_BASE64, "non-canonical base64url")  # unused trailing bits set
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _DuplicateKeyError(ValueError):
    """Raised inside json.loads when an object repeats a member name."""


class _JsonLimitError(ValueError):
    """Raised when a JSON part exceeds a bound (depth, members, number range)."""


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json object_pairs_hook refusing duplicate member names (RFC 7515 section 5.2 requires it)."""
    result: dict[str, Any] = {}
    for key, item in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = item
    return result


def _refuse_constant(name: str) -> Any:
    """json parse_constant refusing NaN and Infinity, which are not JSON."""
    raise ValueError(f"non-JSON constant {name}")


def _bounded_int(text: str) -> int:
    """json parse_int keeping integers within I-JSON's exact range (no bigints, no digit-limit error)."""
    if len(text) > 17:  # 2**53 has 16 digits, plus an optional sign
        raise _JsonLimitError("integer out of range")
    value = int(text)
    if not -MAX_JSON_INT <= value <= MAX_JSON_INT:
        raise _JsonLimitError("integer out of range")
    return value


def _finite_float(text: str) -> float:
    """json parse_float refusing numbers that overflow to infinity (``1e400``)."""
    value = float(text)
    if not math.isfinite(value):
        raise _JsonLimitError("number out of range")
    return value


_JSON: Final = json.JSONDecoder(
    object_pairs_hook=_unique_object,
    parse_constant=_refuse_constant,
    parse_int=_bounded_int,
    parse_float=_finite_float,
)


def _check_json_limits(text: str) -> None:
    """Refuse JSON nested deeper than MAX_JSON_DEPTH or with more than MAX_JSON_ITEMS in one container.

    Counting brackets and commas bounds both from above, so ordinary PASSporTs (depth 3, a handful
    of members) pass on three ``str.count`` calls; only text that could exceed a bound is scanned.
    """
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH and text.count(",") < MAX_JSON_ITEMS:
        return
    items: list[int] = []
    for match in _JSON_STRUCTURE.finditer(text):
        symbol = match.group()
        if symbol in ("[", "{"):
            items.append(1)
            if len(items) > MAX_JSON_DEPTH:
                raise _JsonLimitError("JSON nested too deep")
        elif symbol in ("]", "}"):
            if items:
                items.pop()
        elif symbol == "," and items:
            items[-1] += 1
            if items[-1] > MAX_JSON_ITEMS:
                raise _JsonLimitError("too many members in one JSON object or array")


def _json_object(part: str) -> dict[str, Any]:
    """Decode one base64url JWS part to a JSON object within the bounds; PassportError for anything else."""
    raw = _b64url_decode(part)
    try:
        text = raw.decode("utf-8")
        _check_json_limits(text)
        value = _JSON.decode(text)
    except _DuplicateKeyError:
        raise PassportError(Failure.DUPLICATE_KEY, "duplicate JSON member") from None
    except _JsonLimitError as exc:
        raise PassportError(Failure.BAD_JSON, str(exc)) from None
    except (ValueError, RecursionError):
        raise PassportError(Failure.BAD_JSON, "not JSON") from None
    if not isinstance(value, dict):
        raise PassportError(Failure.BAD_JSON, "not a JSON object")
    return value


def _tn(value: object) -> str:
    """A telephone number claim: ASCII digits only (RFC 8224 section 8.3 canonical form)."""
    if not isinstance(value, str) or _TN.fullmatch(value) is None:
        raise PassportError(Failure.BAD_CLAIMS, "tn is not a digit string")
    return value


def _tn_object(claims: dict[str, Any], name: str) -> object:
    """The ``tn`` member of the orig/dest/div claim object; PassportError if missing."""
    value = claims.get(name)
    if not isinstance(value, dict) or "tn" not in value:
        raise PassportError(Failure.BAD_CLAIMS, f"{name} claim missing or without tn")
    return value["tn"]


@functools.lru_cache(maxsize=1024)
def _check_header(part: str, info: str, ppt: str | None) -> str:
    """Validate the JOSE header against RFC 8225 and the Identity parameters; return x5u.

    Memoised: a carrier's header part is the same on every call it signs.
    """
    header = _json_object(part)
    if "crit" in header:
        raise PassportError(Failure.BAD_HEADER, "crit header parameter not supported")
    if header.get("alg") != "ES256":
        raise PassportError(Failure.BAD_ALG, "alg is not ES256")
    if header.get("typ") != "passport":
        raise PassportError(Failure.BAD_TYP, "typ is not passport")
    if header.get("ppt") != ppt:
        raise PassportError(Failure.BAD_PPT, "header ppt differs from the ppt parameter")
    x5u = header.get("x5u")
    if not isinstance(x5u, str) or len(x5u) > 1024:
        raise PassportError(Failure.BAD_X5U, "x5u missing or too long")
    try:
        scheme = urlsplit(x5u).scheme
    except ValueError:
        raise PassportError(Failure.BAD_X5U, "x5u unparseable") from None
    if scheme != "https":
        raise PassportError(Failure.BAD_X5U, "x5u is not https")
    if x5u != info:
        raise PassportError(Failure.INFO_MISMATCH, "x5u differs from the info parameter")
    return x5u


def _signature(part: str) -> tuple[int, int]:
    """Decode the ES256 signature into (r, s), checking length and range."""
    raw = _b64url_decode(part)
    if len(raw) != 64:
        raise PassportError(Failure.SIG_LENGTH, "ES256 signature is not 64 bytes")
    r = int.from_bytes(raw[:32], "big")
    s = int.from_bytes(raw[32:], "big")
    if not (1 <= r < P256_ORDER and 1 <= s < P256_ORDER):
        raise PassportError(Failure.SIG_RANGE, "r or s outside [1, n)")
    return r, s


def parse_passport(value: str) -> Passport:
    """Parse and structurally validate one Identity header value; raises only PassportError."""
    return _parse(split_identity(value))


def _parse(identity: IdentityHeader) -> Passport:
    """Parse and validate the JWS of a split Identity header (see parse_passport)."""
    if identity.ppt not in _PPTS:
        raise PassportError(Failure.UNKNOWN_PPT, "ppt is neither shaken nor div")
    parts = identity.jws.split(".")
    if len(parts) != 3 or not parts[0]:
        raise PassportError(Failure.MALFORMED, "JWS is not header.claims.signature")
    x5u = _check_header(parts[0], identity.info, identity.ppt)
    if not parts[1]:
        raise CompactFormError()
    claims = _json_object(parts[1])
    iat = claims.get("iat")
    if type(iat) is not int or not 0 <= iat <= MAX_JSON_INT:
        raise PassportError(Failure.BAD_CLAIMS, "iat is not a non-negative integer below 2**53")
    orig_tn = _tn(_tn_object(claims, "orig"))
    dest = _tn_object(claims, "dest")
    if not isinstance(dest, list) or not 1 <= len(dest) <= MAX_DEST_TNS:
        raise PassportError(Failure.BAD_CLAIMS, "dest.tn is not a non-empty list")
    dest_tns = tuple(_tn(tn) for tn in dest)
    attest: str | None = None
    origid: str | None = None
    div_tn: str | None = None
    if identity.ppt == "shaken":
        attest = claims.get("attest")
        if not isinstance(attest, str) or attest not in ATTESTATIONS:
            raise PassportError(Failure.BAD_ATTEST, "attest is not A, B or C")
        origid = claims.get("origid")
        if not isinstance(origid, str) or _UUID.fullmatch(origid) is None:
            raise PassportError(Failure.BAD_ORIGID, "origid is not a UUID")
    else:
        div_tn = _tn(_tn_object(claims, "div"))
    r, s = _signature(parts[2])
    return Passport(
        ppt=identity.ppt,
        x5u=x5u,
        iat=iat,
        orig_tn=orig_tn,
        dest_tns=dest_tns,
        attest=attest,
        origid=origid,
        div_tn=div_tn,
        signing_input=f"{parts[0]}.{parts[1]}".encode("ascii"),
        r=r,
        s=s,
    )


def tn_digits(raw: str, region: str) -> str | None:
    """A SIP number as PASSporT TN digits: E.164 without '+', national digits for short codes.

    A number already in international form takes the RFC 8224 canonical form directly (no
    numbering-plan lookup: ~1 µs instead of ~30 µs); national forms go through ``normalize``.
    """
    international = e164_digits(raw)
    if international is not None:
        return international
    try:
        number = normalize(raw, region, allow_unallocated=True)
    except InvalidNumberError:
        return None
    if number.e164 is not None:
        return number.e164[1:]
    return number.canonical.partition(":")[2]


def replay_key(passport: Passport) -> bytes:
    """128-bit replay key of a PASSporT's signature; (r, s) and its malleated twin (r, n-s) collide."""
    low_s = min(passport.s, P256_ORDER - passport.s)
    return hashlib.sha256(passport.r.to_bytes(32, "big") + low_s.to_bytes(32, "big")).digest()[:16]


class ReplayStore(Protocol):
    """Remembers PASSporT replay keys until they expire; a Redis ``SET NX EXAT`` fits the same contract."""

    def add_if_absent(self, key: bytes, expires_at: float, now: float) -> bool:
        """Record key until expires_at; True if it was new, False if already present (a replay)."""
        ...


class MemoryReplayStore:
    """Bounded in-process replay set with per-key expiry; when full, the soonest-expiring key goes first."""

    __slots__ = ("_expiry", "_heap", "_max_entries")

    def __init__(self, max_entries: int = 1_000_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._expiry: dict[bytes, float] = {}
        self._heap: list[tuple[float, bytes]] = []

    def __len__(self) -> int:
        """The number of keys held (expired ones are dropped lazily)."""
        return len(self._expiry)

    def add_if_absent(self, key: bytes, expires_at: float, now: float) -> bool:
        """Record key until expires_at; True if it was new, False if already present (a replay)."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            del self._expiry[heapq.heappop(heap)[1]]
        if key in self._expiry:
            return False
        if len(self._expiry) >= self._max_entries:
            del self._expiry[heapq.heappop(heap)[1]]
        self._expiry[key] = expires_at
        heapq.heappush(heap, (expires_at, key))
        return True


class ChainSource(Protocol):
    """Where the verifier looks certificates up without fetching (``certs.CertificateCache``)."""

    def get(self, x5u: str, now: float | None = None) -> CachedChain | None:
        """The validated chain for x5u, or None when not cached."""
        ...

    def failure(self, x5u: str, now: float | None = None) -> Failure | None:
        """Why x5u was recently refused, or None."""
        ...


@dataclass(frozen=True, slots=True)
class ShakenResult:
    """The outcome of verifying a call's Identity headers, ready for an OriginationVerdict.

    ``attestation``, ``origid`` and ``signer_ocn`` are set only when VERIFIED. ``failure`` says why
    a result is FAILED or UNSUPPORTED. ``replay_key``/``replay_expires_at`` are set when VERIFIED,
    so a service with a shared (e.g. Redis) replay store can check them itself.
    """

    status: ShakenStatus
    reason_codes: tuple[str, ...] = ()
    failure: Failure | None = None
    attestation: AttestationValue = common_pb2.ATTESTATION_UNSPECIFIED
    origid: str = ""
    signer_ocn: str = ""
    x5u: str = ""
    diverted: bool = False
    replay_key: bytes | None = None
    replay_expires_at: float = 0.0

    def as_replay(self) -> ShakenResult:
        """This result turned into the FAILED replay outcome (for an external replay store's verdict)."""
        return _failed(Failure.REPLAY, self.x5u)


_ABSENT_RESULT: Final = ShakenResult(ABSENT, ("SHAKEN_ABSENT",))
VERIFICATION_ERROR: Final = ShakenResult(verdicts_pb2.SHAKEN_STATUS_UNSPECIFIED, (VERIFIER_ERROR_CODE,))
"""What stands in for a verification that raised unexpectedly: unverified (not failed) and degraded."""


def _failed(failure: Failure, x5u: str = "") -> ShakenResult:
    """The result for a PASSporT rejected for failure."""
    if failure in UNSUPPORTED:
        return ShakenResult(UNSUPPORTED_STATUS, (REASON_CODE[failure],), failure, x5u=x5u)
    return ShakenResult(FAILED, (REASON_CODE[failure],), failure, x5u=x5u)


def _pending(x5u: str) -> ShakenResult:
    """The result while x5u's certificate is being fetched."""
    return ShakenResult(PENDING, x5u=x5u)


def _rank(result: ShakenResult) -> tuple[int, int]:
    """Sort key for choosing among several SHAKEN PASSporTs' outcomes (lower is better)."""
    order = {VERIFIED: 0, PENDING: 1, FAILED: 2, UNSUPPORTED_STATUS: 3}
    attestation = result.attestation if result.status == VERIFIED else 0
    return order.get(result.status, 4), attestation


class Verifier:
    """Verifies the STIR/SHAKEN Identity headers of call setups against a certificate cache."""

    __slots__ = ("_chains", "_clock", "_freshness", "_on_miss", "_replay", "revocations")

    def __init__(
        self,
        chains: ChainSource,
        replay: ReplayStore | None,
        *,
        freshness_s: int = DEFAULT_FRESHNESS_S,
        revocations: Revocations | None = None,
        on_miss: Callable[[str], object] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Configure the verifier; ``replay=None`` leaves replay checks to the caller (see ShakenResult)."""
        if freshness_s < 1:
            raise ValueError("freshness_s must be at least 1")
        self._chains = chains
        self._replay = replay
        self._freshness = freshness_s
        self.revocations = revocations if revocations is not None else Revocations()
        self._on_miss = on_miss
        self._clock = clock

    def verify(
        self,
        setup: call_pb2.CallSetup,
        region: str,
        *,
        now: float | None = None,
        expected_spcs: frozenset[str] | None = None,
    ) -> ShakenResult:
        """Verify a call's Identity headers; ``region`` is the tenant's default region for its numbers."""
        headers = setup.identity_headers
        if not headers:
            return _ABSENT_RESULT
        if len(headers) > MAX_IDENTITY_HEADERS:
            return _failed(Failure.TOO_MANY_HEADERS)
        now = self._clock() if now is None else now
        candidates: list[ShakenResult | Passport] = []
        divs: list[IdentityHeader] = []
        others: list[Failure] = []
        for value in headers:
            try:
                identity = split_identity(value)
                if identity.ppt == "div":
                    divs.append(identity)
                    continue
                if identity.ppt != "shaken":
                    others.append(Failure.UNKNOWN_PPT)
                    continue
                candidates.append(_parse(identity))
            except PassportError as exc:
                candidates.append(_failed(exc.failure))
        if not candidates:
            return _failed(Failure.DIV_WITHOUT_SHAKEN if divs else others[0])
        caller = tn_digits(presented_caller(setup), region)
        callee = tn_digits(setup.called_number, region)
        results = [
            candidate
            if isinstance(candidate, ShakenResult)
            else self._verify_shaken(candidate, caller, callee, divs, now, expected_spcs)
            for candidate in candidates
        ]
        return min(results, key=_rank) if len(results) > 1 else results[0]

    def _fresh(self, iat: int, now: float) -> Failure | None:
        """STALE_IAT/FUTURE_IAT when iat is outside the window around now (boundary included)."""
        if now - iat > self._freshness:
            return Failure.STALE_IAT
        if iat - now > self._freshness:
            return Failure.FUTURE_IAT
        return None

    def _chain(self, x5u: str, now: float) -> CachedChain | Failure | None:
        """The cached chain, a recent refusal, or None after asking for a fetch."""
        chain = self._chains.get(x5u, now)
        if chain is not None:
            return chain
        failure = self._chains.failure(x5u, now)
        if failure is not None:
            return failure
        if self._on_miss is not None:
            self._on_miss(x5u)
        return None

    def _authenticate(
        self, passport: Passport, now: float, expected_spcs: frozenset[str] | None
    ) -> CachedChain | Failure | None:
        """Check certificate, validity at iat, revocation, SPC and signature; None while pending."""
        chain = self._chain(passport.x5u, now)
        if chain is None or isinstance(chain, Failure):
            return chain
        if passport.iat < chain.not_before:
            return Failure.CERT_NOT_YET_VALID_AT_IAT
        if passport.iat > chain.not_after:
            return Failure.CERT_EXPIRED_AT_IAT
        if self.revocations.is_revoked(chain):
            return Failure.CERT_REVOKED
        if expected_spcs is not None and expected_spcs.isdisjoint(chain.spcs):
            return Failure.SPC_MISMATCH
        signature = encode_dss_signature(passport.r, passport.s)
        try:
            chain.public_key.verify(signature, passport.signing_input, _ECDSA_SHA256)
        except InvalidSignature:
            return Failure.SIG_INVALID
        return chain

    def _verify_shaken(
        self,
        passport: Passport,
        caller: str | None,
        callee: str | None,
        divs: Sequence[IdentityHeader],
        now: float,
        expected_spcs: frozenset[str] | None,
    ) -> ShakenResult:
        """Verify one parsed SHAKEN PASSporT in the documented order."""
        x5u = passport.x5u
        failure = self._fresh(passport.iat, now)
        if failure is not None:
            return _failed(failure, x5u)
        if caller is None or passport.orig_tn != caller:
            return _failed(Failure.ORIG_MISMATCH, x5u)
        diverted = callee is None or callee not in passport.dest_tns
        if diverted:
            outcome = self._follow_divs(passport, callee, divs, now)
            if outcome is not None:
                return outcome
        chain = self._authenticate(passport, now, expected_spcs)
        if chain is None:
            return _pending(x5u)
        if isinstance(chain, Failure):
            return _failed(chain, x5u)
        key = replay_key(passport)
        expires_at = float(passport.iat + self._freshness + 1)
        if self._replay is not None and not self._replay.add_if_absent(key, expires_at, now):
            return _failed(Failure.REPLAY, x5u)
        attest = passport.attest
        assert attest is not None, "parse_passport sets attest on every SHAKEN PASSporT"
        return ShakenResult(
            VERIFIED,
            _ATTESTATION_REASONS[attest],
            attestation=ATTESTATIONS[attest],
            origid=passport.origid or "",
            signer_ocn=chain.spcs[0],
            x5u=x5u,
            diverted=diverted,
            replay_key=key,
            replay_expires_at=expires_at,
        )

    def _follow_divs(
        self, shaken: Passport, callee: str | None, divs: Sequence[IdentityHeader], now: float
    ) -> ShakenResult | None:
        """None when verified div PASSporTs lead from the SHAKEN dest to the callee, else the outcome."""
        if not divs or callee is None:
            return _failed(Failure.DEST_MISMATCH, shaken.x5u)
        parsed: list[Passport] = []
        for identity in divs:
            try:
                div = _parse(identity)
            except PassportError:
                continue
            if div.orig_tn == shaken.orig_tn and self._fresh(div.iat, now) is None:
                parsed.append(div)
        reachable = set(shaken.dest_tns)
        pending = False
        progress = True
        while progress and callee not in reachable:
            progress = False
            for div in [div for div in parsed if div.div_tn in reachable]:
                parsed.remove(div)
                chain = self._authenticate(div, now, None)
                if chain is None:
                    pending = True
                elif not isinstance(chain, Failure):
                    reachable.update(div.dest_tns)
                    progress = True
        if callee in reachable:
            return None
        return _pending(shaken.x5u) if pending else _failed(Failure.DIV_MISMATCH, shaken.x5u)
