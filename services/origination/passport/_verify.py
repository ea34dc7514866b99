"""``Verifier``: a call's Identity headers checked in the documented order, and its ``ShakenResult``."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Final, NamedTuple, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from fraudmesh.v1 import call_pb2, common_pb2, verdicts_pb2
from services.common.identity import presented_caller
from services.common.reasons import Reason
from services.origination.certs import CachedChain, Revocations
from services.origination.failures import REASON_CODE, UNSUPPORTED, VERIFIER_ERROR_CODE, Failure
from services.origination.passport._errors import (
    ABSENT,
    ATTESTATIONS,
    DEFAULT_FRESHNESS_S,
    FAILED,
    MAX_IDENTITY_HEADERS,
    PENDING,
    UNSUPPORTED_STATUS,
    VERIFIED,
    AttestationValue,
    PassportError,
    ShakenStatus,
)
from services.origination.passport._parse import (
    IdentityHeader,
    Passport,
    parse_identity,
    parse_jws,
    split_fields,
    tn_digits,
)
from services.origination.passport._replay import ReplayStore, replay_key

_ATTESTATION_REASONS: Final[dict[str, tuple[Reason, ...]]] = {
    "A": (),
    "B": (Reason.SHAKEN_ATTESTATION_B,),
    "C": (Reason.SHAKEN_ATTESTATION_C,),
}
_ECDSA_PREHASHED: Final = ec.ECDSA(Prehashed(hashes.SHA256()))
"""ES256 over a SHA-256 digest taken by hashlib: ~3 µs a call cheaper here than letting
``cryptography`` hash (it sets up a hash context per call); the check is the same."""


class ChainSource(Protocol):
    """Where the verifier looks certificates up without fetching (``certs.CertificateCache``)."""

    def get(self, x5u: str, now: float | None = None) -> CachedChain | None:
        """The validated chain for x5u, or None when not cached."""
        ...

    def failure(self, x5u: str, now: float | None = None) -> Failure | None:
        """Why x5u was recently refused, or None."""
        ...


class ShakenResult(NamedTuple):
    """The outcome of verifying a call's Identity headers, ready for an OriginationVerdict.

    ``attestation``, ``origid`` and ``signer_ocn`` are set only when VERIFIED. ``failure`` says why
    a result is FAILED or UNSUPPORTED. ``replay_key``/``replay_expires_at`` are set when VERIFIED,
    so a service with a shared (e.g. Redis) replay store can check them itself. A named tuple, as
    ``Passport``: one is built per call on the call path.
    """

    status: ShakenStatus
    reason_codes: tuple[Reason, ...] = ()
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


_ABSENT_RESULT: Final = ShakenResult(ABSENT, (Reason.SHAKEN_ABSENT,))
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
                jws, info, alg, ppt = split_fields(value)
                if ppt == "shaken":
                    candidates.append(parse_jws(jws, info, ppt))
                elif ppt == "div":
                    divs.append(IdentityHeader(jws, info, alg, ppt))
                else:
                    others.append(Failure.UNKNOWN_PPT)
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
        der = encode_dss_signature(passport.r, passport.s)
        try:
            chain.public_key.verify(der, hashlib.sha256(passport.signing_input).digest(), _ECDSA_PREHASHED)
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
                div = parse_identity(identity)
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
