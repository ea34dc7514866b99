"""The STI certificate store: chains fetched from x5u URLs, validated once at insert, served from memory.

A chain is validated against the configured STI-CA trust anchors when it enters the cache, so the
call path only looks it up (``CertificateCache.get`` never fetches) and checks what depends on the
PASSporT: validity at its ``iat`` (against the chain's precomputed validity window) and revocation
(against the current ``Revocations``, which can be replaced at any time).

Chain validation uses cryptography's Rust path validator (``x509.verification.PolicyBuilder`` with
a client verifier): it builds the path to an anchor and checks signatures, validity, basic
constraints, path length, CA key usage and name constraints with the WebPKI CA profile. The
end-entity profile is replaced by a SHAKEN one (ATIS-1000080): an SPC certificate has no
subjectAltName, so the WebPKI leaf profile cannot apply; instead the leaf must carry keyUsage
digitalSignature, must not be a CA, must hold a P-256 key, must be signed with ECDSA-SHA256, must
have no unknown critical extension and must carry an RFC 8226 TNAuthList with at least one SPC.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import ExtensionOID, SignatureAlgorithmOID

from services.origination.failures import Failure
from services.origination.fetch import FetchedChain, FetchError

__all__ = [
    "TNAUTHLIST_OID",
    "CachedChain",
    "CertificateCache",
    "CertificateError",
    "ChainFetcher",
    "ChainValidator",
    "Revocations",
    "TnAuthList",
    "decode_tnauthlist",
    "load_trust_anchors",
]

TNAUTHLIST_OID: Final = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.26")
MAX_INTERMEDIATES: Final = 3
MAX_SPC_LENGTH: Final = 32
MAX_TN_LENGTH: Final = 15

_SEQUENCE: Final = 0x30
_INTEGER: Final = 0x02
_IA5STRING: Final = 0x16
_TAG_SPC: Final = 0xA0
_TAG_RANGE: Final = 0xA1
_TAG_ONE: Final = 0xA2
_TN_CHARS: Final = frozenset(b"0123456789#*")
_LEAF_CRITICAL_OK: Final = frozenset({ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.KEY_USAGE, TNAUTHLIST_OID})


class CertificateError(ValueError):
    """A certificate chain was refused; ``failure`` says why, in the package's failure vocabulary."""

    def __init__(self, failure: Failure, detail: str) -> None:
        super().__init__(f"{failure.value}: {detail}")
        self.failure = failure


@dataclass(frozen=True, slots=True)
class TnAuthList:
    """The decoded RFC 8226 TNAuthList: service provider codes, single TNs and the number of ranges."""

    spcs: tuple[str, ...]
    tns: tuple[str, ...]
    ranges: int


def _der_read(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """The DER TLV at pos as (tag, content start, content end); rejects non-minimal or overlong lengths."""
    if pos + 2 > end:
        raise ValueError("truncated DER")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-byte DER tag")
    first = data[pos + 1]
    start = pos + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or start + count > end or data[start] == 0:
            raise ValueError("invalid DER length")
        length = int.from_bytes(data[start : start + count], "big")
        if length < 0x80:
            raise ValueError("non-minimal DER length")
        start += count
    if start + length > end:
        raise ValueError("truncated DER")
    return tag, start, start + length


def _ia5(data: bytes, pos: int, end: int, max_length: int) -> str:
    """The printable IA5String that exactly fills data[pos:end]."""
    tag, start, stop = _der_read(data, pos, end)
    if tag != _IA5STRING or stop != end:
        raise ValueError("expected one IA5String")
    raw = data[start:stop]
    if not 1 <= len(raw) <= max_length or any(not 0x21 <= byte <= 0x7E for byte in raw):
        raise ValueError("IA5String empty, too long or not printable")
    return raw.decode("ascii")


def _check_range(data: bytes, pos: int, end: int) -> None:
    """Check a TelephoneNumberRange body: SEQUENCE { start TelephoneNumber, count INTEGER (2..MAX) }."""
    tag, start, stop = _der_read(data, pos, end)
    if tag != _SEQUENCE or stop != end:
        raise ValueError("range is not one SEQUENCE")
    tag, tn_start, tn_end = _der_read(data, start, stop)
    if tag != _IA5STRING or not set(data[tn_start:tn_end]) <= _TN_CHARS or tn_start == tn_end:
        raise ValueError("range start is not a telephone number")
    tag, count_start, count_end = _der_read(data, tn_end, stop)
    if tag != _INTEGER or count_end != stop or count_start == count_end or data[count_start] & 0x80:
        raise ValueError("range count is not a positive INTEGER")


def decode_tnauthlist(der: bytes) -> TnAuthList:
    """Strictly decode an RFC 8226 TNAuthList extension value (EXPLICIT tags); ValueError if malformed."""
    tag, start, end = _der_read(der, 0, len(der))
    if tag != _SEQUENCE or end != len(der) or start == end:
        raise ValueError("TNAuthList is not one non-empty SEQUENCE")
    spcs: list[str] = []
    tns: list[str] = []
    ranges = 0
    pos = start
    while pos < end:
        tag, inner_start, inner_end = _der_read(der, pos, end)
        if tag == _TAG_SPC:
            spcs.append(_ia5(der, inner_start, inner_end, MAX_SPC_LENGTH))
        elif tag == _TAG_ONE:
            tn = _ia5(der, inner_start, inner_end, MAX_TN_LENGTH)
            if not set(tn.encode("ascii")) <= _TN_CHARS:
                raise ValueError("TNAuthList one entry is not a telephone number")
            tns.append(tn)
        elif tag == _TAG_RANGE:
            _check_range(der, inner_start, inner_end)
            ranges += 1
        else:
            raise ValueError(f"unknown TNAuthList entry tag 0x{tag:02x}")
        pos = inner_end
    return TnAuthList(tuple(spcs), tuple(tns), ranges)


def load_trust_anchors(paths: Iterable[Path]) -> tuple[x509.Certificate, ...]:
    """Load STI-CA root certificates from PEM files; each must be a CA. Raises ValueError otherwise."""
    anchors: list[x509.Certificate] = []
    for path in paths:
        for cert in x509.load_pem_x509_certificates(path.read_bytes()):
            try:
                constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
            except x509.ExtensionNotFound:
                raise ValueError(f"trust anchor in {path.name} has no basicConstraints") from None
            if not constraints.ca:
                raise ValueError(f"trust anchor in {path.name} is not a CA certificate")
            anchors.append(cert)
    if not anchors:
        raise ValueError("no trust anchors loaded")
    return tuple(anchors)


@dataclass(frozen=True, slots=True)
class CachedChain:
    """A validated x5u chain ready for the call path: key, SPCs, validity window, cache expiry.

    ``chain`` runs from the leaf to the trust anchor. ``not_before``/``not_after`` bound the period
    in which every certificate of the chain is valid (epoch seconds), ``expires_at`` is when the
    cache drops the entry (never after ``not_after``). ``revocation_keys`` are the (issuer DER,
    serial) pairs of every certificate below the anchor, for ``Revocations``.
    """

    x5u: str
    chain: tuple[x509.Certificate, ...]
    public_key: ec.EllipticCurvePublicKey
    spcs: tuple[str, ...]
    not_before: float
    not_after: float
    expires_at: float
    revocation_keys: tuple[tuple[bytes, int], ...]


class Revocations:
    """Revoked certificates by (issuer name DER, serial), loaded from CRLs whose signatures were checked."""

    __slots__ = ("_revoked",)

    def __init__(self, revoked: Iterable[tuple[bytes, int]] = ()) -> None:
        self._revoked = frozenset(revoked)

    @classmethod
    def from_crls(
        cls, crls: Iterable[x509.CertificateRevocationList], issuers: Sequence[x509.Certificate]
    ) -> Revocations:
        """Collect the revoked serials of CRLs, each verified against its issuer among ``issuers``."""
        revoked: set[tuple[bytes, int]] = set()
        for crl in crls:
            issuer_der = crl.issuer.public_bytes()
            signers = [cert for cert in issuers if cert.subject.public_bytes() == issuer_der]
            if not any(crl.is_signature_valid(cert.public_key()) for cert in signers):  # type: ignore[arg-type]
                raise ValueError("CRL signature does not verify against any configured issuer")
            revoked.update((issuer_der, entry.serial_number) for entry in crl)
        return cls(revoked)

    @classmethod
    def load(cls, paths: Iterable[Path], issuers: Sequence[x509.Certificate]) -> Revocations:
        """Load PEM or DER CRL files and verify each against ``issuers`` (anchors and STI-SubCAs)."""
        crls = []
        for path in paths:
            data = path.read_bytes()
            if data.lstrip().startswith(b"-----BEGIN"):
                crls.append(x509.load_pem_x509_crl(data))
            else:
                crls.append(x509.load_der_x509_crl(data))
        return cls.from_crls(crls, issuers)

    def is_revoked(self, chain: CachedChain) -> bool:
        """True if any certificate of the chain below its anchor is revoked."""
        revoked = self._revoked
        return bool(revoked) and any(key in revoked for key in chain.revocation_keys)

    def __len__(self) -> int:
        """The number of revoked certificates known."""
        return len(self._revoked)


def _require_digital_signature(
    _policy: verification.Policy, _cert: x509.Certificate, usage: x509.KeyUsage
) -> None:
    """SHAKEN leaf profile: the key must be usable for digital signatures."""
    if not usage.digital_signature:
        raise ValueError("leaf keyUsage lacks digitalSignature")


def _forbid_ca(
    _policy: verification.Policy, _cert: x509.Certificate, constraints: x509.BasicConstraints | None
) -> None:
    """SHAKEN leaf profile: an SPC certificate is never a CA."""
    if constraints is not None and constraints.ca:
        raise ValueError("leaf is a CA certificate")


_SHAKEN_LEAF_POLICY: Final = (
    verification.ExtensionPolicy.permit_all()
    .require_present(x509.KeyUsage, verification.Criticality.AGNOSTIC, _require_digital_signature)
    .may_be_present(x509.BasicConstraints, verification.Criticality.AGNOSTIC, _forbid_ca)
)


def _epoch(moment: datetime) -> float:
    """Seconds since the epoch of an aware datetime."""
    return moment.timestamp()


class ChainValidator:
    """Validates an x5u certificate list (leaf first) against the STI-CA trust anchors."""

    __slots__ = ("_anchors", "_store")

    def __init__(self, anchors: Sequence[x509.Certificate]) -> None:
        if not anchors:
            raise ValueError("at least one trust anchor is required")
        self._anchors = tuple(anchors)
        self._store = verification.Store(list(self._anchors))

    def validate(self, x5u: str, certificates: Sequence[x509.Certificate], now: float) -> CachedChain:
        """Validate the chain as of ``now`` and return it as a cache entry expiring at its notAfter."""
        if not certificates:
            raise CertificateError(Failure.CHAIN_INVALID, "no certificates")
        if len(certificates) > 1 + MAX_INTERMEDIATES:
            raise CertificateError(Failure.CHAIN_INVALID, "too many certificates")
        leaf = certificates[0]
        key, spcs = self._check_leaf(leaf)
        for cert in certificates:
            if now > _epoch(cert.not_valid_after_utc):
                raise CertificateError(Failure.CERT_EXPIRED, "a certificate of the chain has expired")
            if now < _epoch(cert.not_valid_before_utc):
                raise CertificateError(Failure.CERT_NOT_YET_VALID, "a certificate is not yet valid")
        verifier = (
            verification.PolicyBuilder()
            .store(self._store)
            .time(datetime.fromtimestamp(now, UTC))
            .max_chain_depth(MAX_INTERMEDIATES + 1)
            .extension_policies(
                ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(), ee_policy=_SHAKEN_LEAF_POLICY
            )
            .build_client_verifier()
        )
        try:
            chain = tuple(verifier.verify(leaf, list(certificates[1:])).chain)
        except verification.VerificationError as exc:
            raise CertificateError(Failure.CHAIN_INVALID, str(exc)) from None
        for cert in chain[:-1]:
            if cert.signature_algorithm_oid != SignatureAlgorithmOID.ECDSA_WITH_SHA256:
                raise CertificateError(Failure.CHAIN_INVALID, "certificate not signed with ECDSA-SHA256")
        not_before = max(_epoch(cert.not_valid_before_utc) for cert in chain)
        not_after = min(_epoch(cert.not_valid_after_utc) for cert in chain)
        return CachedChain(
            x5u=x5u,
            chain=chain,
            public_key=key,
            spcs=spcs,
            not_before=not_before,
            not_after=not_after,
            expires_at=not_after,
            revocation_keys=tuple((cert.issuer.public_bytes(), cert.serial_number) for cert in chain[:-1]),
        )

    @staticmethod
    def _check_leaf(leaf: x509.Certificate) -> tuple[ec.EllipticCurvePublicKey, tuple[str, ...]]:
        """The SHAKEN end-entity checks the path validator does not make: key, extensions, TNAuthList."""
        key = leaf.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
            raise CertificateError(Failure.BAD_LEAF, "leaf key is not a P-256 key")
        try:
            extensions = leaf.extensions
        except ValueError as exc:
            raise CertificateError(Failure.BAD_LEAF, f"leaf extensions unreadable: {exc}") from None
        for extension in extensions:
            if extension.critical and extension.oid not in _LEAF_CRITICAL_OK:
                raise CertificateError(Failure.BAD_LEAF, "leaf has an unknown critical extension")
        try:
            raw = extensions.get_extension_for_oid(TNAUTHLIST_OID).value
        except x509.ExtensionNotFound:
            raise CertificateError(Failure.NO_TNAUTHLIST, "leaf has no TNAuthList") from None
        if not isinstance(raw, x509.UnrecognizedExtension):
            raise CertificateError(Failure.BAD_TNAUTHLIST, "TNAuthList not readable as raw DER")
        try:
            tnauth = decode_tnauthlist(raw.value)
        except ValueError as exc:
            raise CertificateError(Failure.BAD_TNAUTHLIST, str(exc)) from None
        if not tnauth.spcs:
            raise CertificateError(Failure.BAD_TNAUTHLIST, "TNAuthList has no SPC")
        return key, tnauth.spcs


class ChainFetcher(Protocol):
    """Fetches the certificates behind an x5u URL (``fetch.X5uFetcher`` in production)."""

    def __call__(self, url: str) -> Awaitable[FetchedChain]:
        """Fetch and parse the chain at url, raising fetch.FetchError on any refusal."""
        ...


class CertificateCache:
    """x5u → validated chain; bounded LRU, Cache-Control max-age honoured but never past notAfter.

    ``get`` is the call path and never fetches. Misses are filled by ``fetch_in_background`` (which
    deduplicates in-flight URLs and bounds concurrency) or ``warm``; refused URLs are remembered
    for ``negative_ttl_s`` so a bad x5u neither triggers a fetch per call nor stays PENDING.
    """

    def __init__(
        self,
        validator: ChainValidator,
        fetcher: ChainFetcher | None = None,
        *,
        max_entries: int = 4096,
        default_ttl_s: float = 3600.0,
        min_ttl_s: float = 60.0,
        max_ttl_s: float = 86400.0,
        negative_ttl_s: float = 60.0,
        max_concurrent_fetches: int = 8,
        clock: Callable[[], float] = time.time,
        on_error: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        if max_entries < 1 or max_concurrent_fetches < 1:
            raise ValueError("max_entries and max_concurrent_fetches must be at least 1")
        if not 0 < min_ttl_s <= default_ttl_s <= max_ttl_s:
            raise ValueError("TTLs must satisfy 0 < min_ttl_s <= default_ttl_s <= max_ttl_s")
        self._validator = validator
        self._fetcher = fetcher
        self._max_entries = max_entries
        self._default_ttl = default_ttl_s
        self._min_ttl = min_ttl_s
        self._max_ttl = max_ttl_s
        self._negative_ttl = negative_ttl_s
        self._clock = clock
        self._on_error = on_error
        self._entries: OrderedDict[str, CachedChain] = OrderedDict()
        self._failures: OrderedDict[str, tuple[Failure, float]] = OrderedDict()
        self._in_flight: dict[str, asyncio.Task[CachedChain | None]] = {}
        self._semaphore = asyncio.Semaphore(max_concurrent_fetches)
        # Observers of what enters the cache (origination's certificate feed publishes both).
        self.on_cached: Callable[[CachedChain], None] | None = None
        self.on_refused: Callable[[str, Failure, float], None] | None = None

    def chains(self) -> list[CachedChain]:
        """Every chain held (expired ones included until touched), for publishing at start."""
        return list(self._entries.values())

    def __len__(self) -> int:
        """The number of cached chains (expired ones included until touched)."""
        return len(self._entries)

    def get(self, x5u: str, now: float | None = None) -> CachedChain | None:
        """The cached, unexpired chain for x5u, or None; never fetches (safe on the call path)."""
        entry = self._entries.get(x5u)
        if entry is None:
            return None
        if entry.expires_at <= (self._clock() if now is None else now):
            del self._entries[x5u]
            return None
        self._entries.move_to_end(x5u)
        return entry

    def failure(self, x5u: str, now: float | None = None) -> Failure | None:
        """Why x5u was recently refused (fetch or validation), or None if it was not."""
        found = self._failures.get(x5u)
        if found is None:
            return None
        if found[1] <= (self._clock() if now is None else now):
            del self._failures[x5u]
            return None
        return found[0]

    def insert(
        self,
        x5u: str,
        certificates: Sequence[x509.Certificate],
        max_age_s: int | None = None,
        now: float | None = None,
    ) -> CachedChain:
        """Validate and cache a chain; on refusal remember the failure and raise CertificateError."""
        now = self._clock() if now is None else now
        try:
            chain = self._validator.validate(x5u, certificates, now)
        except CertificateError as exc:
            self._remember_failure(x5u, exc.failure, now)
            raise
        ttl = self._default_ttl if max_age_s is None else min(max(max_age_s, self._min_ttl), self._max_ttl)
        chain = replace(chain, expires_at=min(now + ttl, chain.not_after))
        self._failures.pop(x5u, None)
        self._entries[x5u] = chain
        self._entries.move_to_end(x5u)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        if self.on_cached is not None:
            self.on_cached(chain)
        return chain

    async def fetch(self, x5u: str) -> CachedChain:
        """Fetch x5u with the injected fetcher and cache the result; raises FetchError/CertificateError."""
        if self._fetcher is None:
            raise RuntimeError("CertificateCache has no fetcher")
        async with self._semaphore:
            try:
                fetched = await self._fetcher(x5u)
            except FetchError:
                self._remember_failure(x5u, Failure.CERT_UNAVAILABLE, self._clock())
                raise
        return self.insert(x5u, fetched.certificates, fetched.max_age_s)

    async def warm(self, urls: Iterable[str]) -> dict[str, Failure | None]:
        """Fetch every URL (bounded concurrency) and report each one's failure, None when cached."""
        unique = list(dict.fromkeys(urls))
        results = await asyncio.gather(*(self._fetch_quietly(url) for url in unique))
        return {
            url: (None if result is not None else self.failure(url))
            for url, result in zip(unique, results, strict=True)
        }

    def fetch_in_background(self, x5u: str) -> bool:
        """Start fetching x5u on the running loop unless already in flight; True if a fetch started."""
        if self._fetcher is None or x5u in self._in_flight:
            return False
        task = asyncio.get_running_loop().create_task(self._fetch_quietly(x5u))
        self._in_flight[x5u] = task
        task.add_done_callback(lambda _task: self._in_flight.pop(x5u, None))
        return True

    async def _fetch_quietly(self, x5u: str) -> CachedChain | None:
        """fetch(), with every error recorded as a failure instead of raised (for background tasks)."""
        try:
            return await self.fetch(x5u)
        except (FetchError, CertificateError) as exc:
            self._report(x5u, exc)
        except Exception as exc:  # a background task must not die unobserved; report and remember
            self._remember_failure(x5u, Failure.CERT_UNAVAILABLE, self._clock())
            self._report(x5u, exc)
        return None

    def _report(self, x5u: str, exc: BaseException) -> None:
        """Hand an error to the injected observer (logs, metrics), if any."""
        if self._on_error is not None:
            self._on_error(x5u, exc)

    def _remember_failure(self, x5u: str, failure: Failure, now: float) -> None:
        """Record a refusal for the negative TTL, bounded like the positive entries."""
        self._entries.pop(x5u, None)
        self._failures[x5u] = (failure, now + self._negative_ttl)
        self._failures.move_to_end(x5u)
        while len(self._failures) > self._max_entries:
            self._failures.popitem(last=False)
        if self.on_refused is not None:
            self.on_refused(x5u, failure, now + self._negative_ttl)
