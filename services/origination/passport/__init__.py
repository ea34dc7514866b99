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

What lives where: ``_errors`` holds ``PassportError``, ``CompactFormError``, the bounds and the SHAKEN
statuses; ``_parse`` the Identity header grammar, the bounded JSON and base64url decoding and
``parse_passport``; ``_replay`` the replay key and stores; ``_verify`` ``Verifier`` and ``ShakenResult``.
"""

from services.origination.passport._errors import (
    DEFAULT_FRESHNESS_S,
    MAX_HEADER_BYTES,
    MAX_IDENTITY_HEADERS,
    MAX_JSON_DEPTH,
    MAX_JSON_INT,
    MAX_JSON_ITEMS,
    P256_ORDER,
    PENDING,
    CompactFormError,
    PassportError,
    ShakenStatus,
)
from services.origination.passport._parse import (
    IdentityHeader,
    Passport,
    parse_passport,
    split_identity,
    tn_digits,
)
from services.origination.passport._replay import MemoryReplayStore, ReplayStore, replay_key
from services.origination.passport._verify import VERIFICATION_ERROR, ChainSource, ShakenResult, Verifier

__all__ = [
    "DEFAULT_FRESHNESS_S",
    "MAX_HEADER_BYTES",
    "MAX_IDENTITY_HEADERS",
    "MAX_JSON_DEPTH",
    "MAX_JSON_INT",
    "MAX_JSON_ITEMS",
    "P256_ORDER",
    "PENDING",
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
