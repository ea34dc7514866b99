"""Strict parsing of one Identity header into a ``Passport``: the header grammar, bounded JSON, base64url."""

from __future__ import annotations

import binascii
import functools
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Final, NamedTuple
from urllib.parse import urlsplit

from services.common.phone import MAX_DIGITS, InvalidNumberError, e164_digits, normalize
from services.origination.failures import Failure
from services.origination.passport._errors import (
    ATTESTATIONS,
    MAX_DEST_TNS,
    MAX_HEADER_BYTES,
    MAX_JSON_DEPTH,
    MAX_JSON_INT,
    MAX_JSON_ITEMS,
    P256_ORDER,
    CompactFormError,
    PassportError,
)

_PPTS: Final = frozenset({"shaken", "div"})

_TO_STANDARD_B64: Final = bytes.maketrans(b"-_+/=", b"+/!!!")
"""base64url to the standard alphabet; ``+``, ``/`` and ``=`` (not base64url) become ``!``, which
strict decoding refuses."""
_B64_PADDING: Final = (b"", b"", b"==", b"=")
_B64URL_VALUE: Final = {
    char: value
    for value, char in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
}
_MAX_TN_DIGITS: Final = 20
_ZERO_32: Final = bytes(32)
_ORDER_BYTES: Final = P256_ORDER.to_bytes(32, "big")
_UUID: Final = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_PARAM_NAME: Final = r"[A-Za-z0-9.!%*_+`'~-]+"
_PARAM_VALUE: Final = r"<[^<>\s]*>|\"[^\"\\\r\n]*\"|[A-Za-z0-9.!%*_+`'~:/\[\]-]+"
_PARAM: Final = re.compile(rf"[ \t]*;[ \t]*({_PARAM_NAME})(?:[ \t]*=[ \t]*({_PARAM_VALUE}))?[ \t]*")
_JSON_STRUCTURE: Final = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},]', re.DOTALL)


@dataclass(frozen=True, slots=True)
class IdentityHeader:
    """An Identity header value split into its JWS and parameters (names lower-cased, info unbracketed)."""

    jws: str
    info: str
    alg: str | None
    ppt: str | None


class Passport(NamedTuple):
    """A parsed, structurally valid SHAKEN or div PASSporT; signature not yet checked.

    A named tuple rather than a frozen dataclass: one is built per call on the call path, and a
    tuple is built in about a third of the time a frozen dataclass's ``object.__setattr__`` calls take.
    ``signature`` is the 64-byte r||s as sent (r and s checked within [1, n)).
    """

    ppt: str
    x5u: str
    iat: int
    orig_tn: str
    dest_tns: tuple[str, ...]
    attest: str | None
    origid: str | None
    div_tn: str | None
    signing_input: bytes
    signature: bytes

    @property
    def r(self) -> int:
        """The signature's r."""
        return int.from_bytes(self.signature[:32], "big")

    @property
    def s(self) -> int:
        """The signature's s."""
        return int.from_bytes(self.signature[32:], "big")


def split_identity(value: str) -> IdentityHeader:
    """Split an RFC 8224 Identity header value into JWS and parameters; raises PassportError."""
    return IdentityHeader(*split_fields(value))


def split_fields(value: str) -> tuple[str, str, str | None, str | None]:
    """``split_identity`` as a plain (jws, info, alg, ppt) tuple, for the call path; raises PassportError."""
    if len(value) > MAX_HEADER_BYTES:
        raise PassportError(Failure.OVERSIZE, "Identity header over 4 KiB")
    if not value.isascii():
        raise PassportError(Failure.MALFORMED, "non-ASCII Identity header")
    text = value.strip(" \t")
    jws = text.partition(";")[0].rstrip(" \t")
    info, alg, ppt = _identity_params(text[len(jws) :])
    return jws, info, alg, ppt


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
    """Strict base64url: URL-safe alphabet, no padding, canonical trailing bits.

    The text is mapped to the standard alphabet and decoded by ``binascii`` in strict mode, which
    refuses any other character, so no regex pass over the text is needed.
    """
    tail = len(text) % 4
    if tail == 1 or not text.isascii():
        raise PassportError(Failure.BAD_BASE64, "not unpadded base64url")
    standard = text.encode("ascii").translate(_TO_STANDARD_B64) + _B64_PADDING[tail]
    try:
        raw = binascii.a2b_base64(standard, strict_mode=True)
    except binascii.Error:
        raise PassportError(Failure.BAD_BASE64, "not unpadded base64url") from None
    if tail and _B64URL_VALUE[text[-1]] & (0b1111 if tail == 2 else 0b11):
        raise PassportError(Failure.BAD_BASE64, "non-canonical base64url")  # unused trailing bits set
    return raw


class _DuplicateKeyError(ValueError):
    """Raised inside json.loads when an object repeats a member name."""


class _JsonLimitError(ValueError):
    """Raised when a JSON part exceeds a bound (depth, members, number range)."""


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json object_pairs_hook refusing duplicate member names (RFC 7515 section 5.2 requires it)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKeyError("duplicate member name")
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
    """A telephone number claim: 1 to 20 ASCII digits (RFC 8224 section 8.3 canonical form)."""
    if not (isinstance(value, str) and len(value) <= _MAX_TN_DIGITS and value.isascii() and value.isdigit()):
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


def _signature(part: str) -> bytes:
    """Decode the ES256 signature (r||s), checking its length and that r and s lie in [1, n).

    Fixed-width big-endian byte strings compare as their numbers do, so the range check needs no
    integer conversion.
    """
    raw = _b64url_decode(part)
    if len(raw) != 64:
        raise PassportError(Failure.SIG_LENGTH, "ES256 signature is not 64 bytes")
    r, s = raw[:32], raw[32:]
    if not (_ZERO_32 < r < _ORDER_BYTES and _ZERO_32 < s < _ORDER_BYTES):
        raise PassportError(Failure.SIG_RANGE, "r or s outside [1, n)")
    return raw


def parse_passport(value: str) -> Passport:
    """Parse and structurally validate one Identity header value; raises only PassportError."""
    jws, info, _alg, ppt = split_fields(value)
    return parse_jws(jws, info, ppt)


def parse_identity(identity: IdentityHeader) -> Passport:
    """Parse and validate the JWS of a split Identity header (see parse_passport)."""
    return parse_jws(identity.jws, identity.info, identity.ppt)


def parse_jws(jws: str, info: str, ppt: str | None) -> Passport:
    """``parse_identity`` on the fields of ``split_fields``; raises only PassportError."""
    if ppt not in _PPTS:
        raise PassportError(Failure.UNKNOWN_PPT, "ppt is neither shaken nor div")
    parts = jws.split(".")
    if len(parts) != 3 or not parts[0]:
        raise PassportError(Failure.MALFORMED, "JWS is not header.claims.signature")
    header, payload, signature = parts
    x5u = _check_header(header, info, ppt)
    if not payload:
        raise CompactFormError()
    claims = _json_object(payload)
    iat = claims.get("iat")
    if type(iat) is not int or not 0 <= iat <= MAX_JSON_INT:
        raise PassportError(Failure.BAD_CLAIMS, "iat is not a non-negative integer below 2**53")
    orig_tn = _tn(_tn_object(claims, "orig"))
    dest = _tn_object(claims, "dest")
    if not isinstance(dest, list) or not 1 <= len(dest) <= MAX_DEST_TNS:
        raise PassportError(Failure.BAD_CLAIMS, "dest.tn is not a non-empty list")
    dest_tns = tuple([_tn(tn) for tn in dest])
    attest: str | None = None
    origid: str | None = None
    div_tn: str | None = None
    if ppt == "shaken":
        attest = claims.get("attest")
        if not isinstance(attest, str) or attest not in ATTESTATIONS:
            raise PassportError(Failure.BAD_ATTEST, "attest is not A, B or C")
        origid = claims.get("origid")
        if not isinstance(origid, str) or _UUID.fullmatch(origid) is None:
            raise PassportError(Failure.BAD_ORIGID, "origid is not a UUID")
    else:
        div_tn = _tn(_tn_object(claims, "div"))
    return Passport(
        ppt=ppt,
        x5u=x5u,
        iat=iat,
        orig_tn=orig_tn,
        dest_tns=dest_tns,
        attest=attest,
        origid=origid,
        div_tn=div_tn,
        signing_input=jws[: len(header) + 1 + len(payload)].encode("ascii"),
        signature=_signature(signature),
    )


def tn_digits(raw: str, region: str) -> str | None:
    """A SIP number as PASSporT TN digits: E.164 without '+', national digits for short codes.

    A number already in international form takes the RFC 8224 canonical form directly (no
    numbering-plan lookup: ~1 µs instead of ~30 µs); national forms go through ``normalize``. A
    plain ``+digits`` number (the usual SIP form) is taken as is, which is what ``e164_digits`` does.
    """
    digits = raw[1:]
    if raw[:1] == "+" and len(digits) <= MAX_DIGITS and digits.isascii() and digits.isdigit():
        return digits
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
