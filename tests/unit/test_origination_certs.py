"""The STI certificate store: TNAuthList decoding, chain validation, revocation and the x5u cache."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from loadtest.stipki import CarrierSpec, StiPki, build_pki
from services.origination.certs import (
    CertificateCache,
    CertificateError,
    ChainValidator,
    Revocations,
    TnAuthList,
    decode_tnauthlist,
    load_trust_anchors,
)
from services.origination.failures import Failure
from services.origination.fetch import FetchedChain, FetchError, FetchRefusal
from tests.unit.vectors import simpki
from tests.unit.vectors.simpki import Issued
from training.pki import tnauthlist_spcs

START = datetime(2026, 1, 1, tzinfo=UTC)
END = START + timedelta(days=365)
NOW = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
X5U = "https://sti.simpki.test/leaf.pem"


class Pki:
    """A test-only root → SubCA (pathlen 0) chain plus helpers to issue leaves under it."""

    def __init__(self) -> None:
        self.root = simpki.issue(3, "c-root", None, START, END, ca=True)
        self.sub = simpki.issue(3, "c-sub", self.root, START, END, ca=True, path_length=0)

    def leaf(
        self,
        label: str = "leaf",
        issuer: Issued | None = None,
        nb: datetime = START,
        na: datetime = END,
        **kwargs: Any,
    ) -> Issued:
        kwargs.setdefault("spcs", ["L001"])
        return simpki.issue(3, label, issuer or self.sub, nb, na, **kwargs)

    def chain(self, leaf: Issued, *extra: Issued) -> list[x509.Certificate]:
        return [leaf.cert, *(cert.cert for cert in extra), self.sub.cert]


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


@pytest.fixture(scope="module")
def validator(pki: Pki) -> ChainValidator:
    return ChainValidator([pki.root.cert])


# --- TNAuthList ---


def test_tnauthlist_decodes_spcs_tns_and_ranges() -> None:
    assert decode_tnauthlist(simpki.tnauthlist_der(["H001"])) == TnAuthList(("H001",), (), 0)
    assert decode_tnauthlist(simpki.tnauthlist_der(["A1", "B2"], ["12025550123"])) == TnAuthList(
        ("A1", "B2"), ("12025550123",), 0
    )
    tn_range = b"\xa1\x11\x30\x0f\x16\x0a1202555010\x02\x01\x64"
    der = bytes([0x30, len(tn_range)]) + tn_range
    assert decode_tnauthlist(der) == TnAuthList((), (), 1)


def test_tnauthlist_matches_the_simulator_decoder() -> None:
    pki = build_pki(5, [CarrierSpec("home", "H001", True), CarrierSpec("peer", "9Z9Z", True)], START)
    for carrier in pki.carriers.values():
        ext = carrier.certificate.extensions.get_extension_for_oid(simpki.TNAUTHLIST_OID).value
        assert isinstance(ext, x509.UnrecognizedExtension)
        assert list(decode_tnauthlist(ext.value).spcs) == tnauthlist_spcs(carrier.certificate)


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x30",
        b"\x30\x00",
        b"\x31\x08\xa0\x06\x16\x04H001",
        b"\x30\x08\xa0\x06\x16\x04H001\x00",
        b"\x30\x09\xa0\x06\x16\x04H001",
        b"\x30\x81\x08\xa0\x06\x16\x04H001",
        b"\x30\x80\xa0\x06\x16\x04H001\x00\x00",
        b"\x30\x84\xff\xff\xff\xff",
        b"\x30\x08\xa3\x06\x16\x04H001",
        b"\x30\x08\xa0\x06\x0c\x04H001",
        b"\x30\x04\xa0\x02\x16\x00",
        b"\x30\x08\xa0\x06\x16\x04H\x00\x01\x02",
        b"\x30\x08\xa0\x06\x16\x04H 01",
        b"\x30\x09\xa0\x07\x16\x04H001\x00",
        b"\x30\x0c\xa2\x0a\x16\x08123a5678",
        b"\x30\x26\xa0\x24\x16\x22" + b"A" * 34,
        b"\x30\x08\xa1\x06\x16\x04H001",
        b"\x30\x1f\x30\x08\xa0\x06\x16\x04H001",
    ],
)
def test_tnauthlist_malformed_is_value_error(der: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any malformation, one exception type
        decode_tnauthlist(der)


@settings(max_examples=500, deadline=500)
@given(st.binary(max_size=64))
def test_tnauthlist_decoder_never_raises_anything_else(data: bytes) -> None:
    try:
        result = decode_tnauthlist(data)
    except ValueError:
        return
    assert all(spc.isprintable() for spc in result.spcs)


# --- chain validation ---


def test_valid_chain_becomes_a_cache_entry(pki: Pki, validator: ChainValidator) -> None:
    leaf = pki.leaf()
    entry = validator.validate(X5U, pki.chain(leaf), NOW)
    assert entry.spcs == ("L001",)
    assert [c.subject for c in entry.chain] == [
        leaf.cert.subject,
        pki.sub.cert.subject,
        pki.root.cert.subject,
    ]
    assert (entry.not_before, entry.not_after, entry.expires_at) == (
        START.timestamp(),
        END.timestamp(),
        END.timestamp(),
    )
    assert entry.revocation_keys == (
        (pki.sub.cert.subject.public_bytes(), leaf.cert.serial_number),
        (pki.root.cert.subject.public_bytes(), pki.sub.cert.serial_number),
    )


def test_stipki_chain_validates() -> None:
    sti: StiPki = build_pki(6, [CarrierSpec("home", "H001", True)], START)
    carrier = sti.carriers["home"]
    entry = ChainValidator(sti.trust_anchors()).validate(
        carrier.x5u, x509.load_pem_x509_certificates(carrier.chain_pem), NOW
    )
    assert entry.spcs == ("H001",)


def test_validity_window_is_the_intersection_of_the_chain(pki: Pki, validator: ChainValidator) -> None:
    leaf = pki.leaf("short", nb=START + timedelta(days=10), na=START + timedelta(days=100))
    entry = validator.validate(X5U, pki.chain(leaf), NOW)
    assert (entry.not_before, entry.not_after) == (
        (START + timedelta(days=10)).timestamp(),
        (START + timedelta(days=100)).timestamp(),
    )


def failure_of(validator: ChainValidator, chain: list[x509.Certificate], now: float = NOW) -> Failure:
    with pytest.raises(CertificateError) as raised:
        validator.validate(X5U, chain, now)
    return raised.value.failure


def test_untrusted_root(pki: Pki) -> None:
    other = simpki.issue(3, "c-other-root", None, START, END, ca=True)
    assert failure_of(ChainValidator([other.cert]), pki.chain(pki.leaf())) == Failure.CHAIN_INVALID


def test_self_issued_lookalike_root_is_not_trusted(pki: Pki, validator: ChainValidator) -> None:
    fake_root = simpki.issue(4, "c-root", None, START, END, ca=True)
    fake_sub = simpki.issue(4, "c-sub", fake_root, START, END, ca=True, path_length=0)
    leaf = simpki.issue(4, "leaf", fake_sub, START, END, spcs=["L001"])
    assert failure_of(validator, [leaf.cert, fake_sub.cert]) == Failure.CHAIN_INVALID


def test_missing_intermediate(pki: Pki, validator: ChainValidator) -> None:
    assert failure_of(validator, [pki.leaf().cert]) == Failure.CHAIN_INVALID


def test_empty_and_overlong_chains(pki: Pki, validator: ChainValidator) -> None:
    assert failure_of(validator, []) == Failure.CHAIN_INVALID
    assert failure_of(validator, [pki.leaf().cert] + [pki.sub.cert] * 4) == Failure.CHAIN_INVALID


def test_leaf_directly_under_the_root_is_accepted(pki: Pki, validator: ChainValidator) -> None:
    leaf = pki.leaf("under-root", issuer=pki.root)
    assert validator.validate(X5U, [leaf.cert], NOW).spcs == ("L001",)


@pytest.mark.parametrize(
    ("now", "failure"),
    [(START.timestamp() - 1, Failure.CERT_NOT_YET_VALID), (END.timestamp() + 1, Failure.CERT_EXPIRED)],
)
def test_chain_must_be_valid_when_inserted(
    pki: Pki, validator: ChainValidator, now: float, failure: Failure
) -> None:
    assert failure_of(validator, pki.chain(pki.leaf()), now) == failure


def test_expired_intermediate(pki: Pki) -> None:
    root = simpki.issue(8, "x-root", None, START, END, ca=True)
    sub = simpki.issue(8, "x-sub", root, START, START + timedelta(days=30), ca=True, path_length=0)
    leaf = simpki.issue(8, "x-leaf", sub, START, END, spcs=["L001"])
    assert failure_of(ChainValidator([root.cert]), [leaf.cert, sub.cert]) == Failure.CERT_EXPIRED


@pytest.mark.parametrize(
    ("kwargs", "failure"),
    [
        ({"spcs": None}, Failure.NO_TNAUTHLIST),
        ({"spcs": None, "tnauthlist": simpki.tnauthlist_der([], ["8613800138000"])}, Failure.BAD_TNAUTHLIST),
        ({"spcs": None, "tnauthlist": b"\x30\x03\x02\x01\x01"}, Failure.BAD_TNAUTHLIST),
        ({"curve": ec.SECP384R1()}, Failure.BAD_LEAF),
        ({"unknown_critical": True}, Failure.BAD_LEAF),
        ({"leaf_ca": True}, Failure.CHAIN_INVALID),
        ({"digital_signature": False}, Failure.CHAIN_INVALID),
    ],
    ids=[
        "no_tnauthlist",
        "no_spc",
        "bad_der",
        "p384_key",
        "unknown_critical",
        "ca_leaf",
        "no_digital_signature",
    ],
)
def test_shaken_leaf_profile(
    pki: Pki, validator: ChainValidator, kwargs: dict[str, Any], failure: Failure
) -> None:
    leaf = pki.leaf(f"profile-{failure.value}-{sorted(kwargs)}", **kwargs)
    assert failure_of(validator, pki.chain(leaf)) == failure


def test_leaf_signed_with_sha384_is_refused(pki: Pki, validator: ChainValidator) -> None:
    leaf = pki.leaf("sha384", hash_algorithm=hashes.SHA384())
    assert failure_of(validator, pki.chain(leaf)) == Failure.CHAIN_INVALID


def test_path_length_and_ca_flags_are_enforced(pki: Pki, validator: ChainValidator) -> None:
    sub2 = simpki.issue(3, "c-sub2", pki.sub, START, END, ca=True, path_length=0)
    leaf = simpki.issue(3, "deep", sub2, START, END, spcs=["L001"])
    assert failure_of(validator, [leaf.cert, sub2.cert, pki.sub.cert]) == Failure.CHAIN_INVALID
    not_ca = pki.leaf("not-a-ca")
    under_leaf = simpki.issue(3, "under-leaf", not_ca, START, END, spcs=["L001"])
    assert failure_of(validator, [under_leaf.cert, not_ca.cert, pki.sub.cert]) == Failure.CHAIN_INVALID


def test_chain_validator_needs_anchors() -> None:
    with pytest.raises(ValueError, match="trust anchor"):
        ChainValidator([])


def test_load_trust_anchors(tmp_path: Path, pki: Pki) -> None:
    good = tmp_path / "root.pem"
    good.write_bytes(pki.root.cert.public_bytes(serialization.Encoding.PEM))
    assert load_trust_anchors([good]) == (pki.root.cert,)
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(pki.leaf().cert.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(ValueError, match="not a CA"):
        load_trust_anchors([good, leaf])
    with pytest.raises(ValueError, match="no trust anchors"):
        load_trust_anchors([])


# --- revocation ---


def test_revocations_from_crl_files(tmp_path: Path, pki: Pki, validator: ChainValidator) -> None:
    revoked_leaf = pki.leaf("to-revoke")
    kept_leaf = pki.leaf("to-keep")
    crl = simpki.crl(pki.sub, [revoked_leaf.cert.serial_number], START)
    pem = tmp_path / "sub.crl.pem"
    pem.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    der = tmp_path / "sub.crl"
    der.write_bytes(crl.public_bytes(serialization.Encoding.DER))
    for path in (pem, der):
        revocations = Revocations.load([path], [pki.root.cert, pki.sub.cert])
        assert len(revocations) == 1
        assert revocations.is_revoked(validator.validate(X5U, pki.chain(revoked_leaf), NOW))
        assert not revocations.is_revoked(validator.validate(X5U, pki.chain(kept_leaf), NOW))


def test_revoked_intermediate_revokes_every_leaf_under_it(pki: Pki, validator: ChainValidator) -> None:
    crl = simpki.crl(pki.root, [pki.sub.cert.serial_number], START)
    revocations = Revocations.from_crls([crl], [pki.root.cert])
    assert revocations.is_revoked(validator.validate(X5U, pki.chain(pki.leaf()), NOW))


def test_same_serial_from_another_issuer_is_not_revoked(pki: Pki, validator: ChainValidator) -> None:
    leaf = pki.leaf()
    other = simpki.issue(3, "c-other-ca", None, START, END, ca=True)
    crl = simpki.crl(other, [leaf.cert.serial_number], START)
    revocations = Revocations.from_crls([crl], [other.cert])
    assert not revocations.is_revoked(validator.validate(X5U, pki.chain(leaf), NOW))


def test_crl_must_verify_against_a_configured_issuer(pki: Pki) -> None:
    forged_issuer = simpki.issue(99, "c-sub", None, START, END, ca=True)
    forged = simpki.crl(forged_issuer, [1], START)
    with pytest.raises(ValueError, match="CRL signature"):
        Revocations.from_crls([forged], [pki.root.cert, pki.sub.cert])
    with pytest.raises(ValueError, match="CRL signature"):
        Revocations.from_crls([simpki.crl(pki.sub, [1], START)], [pki.root.cert])


# --- the cache ---


class FakeFetcher:
    """An in-memory ChainFetcher recording calls; can fail, block or raise unexpectedly."""

    def __init__(self, chains: dict[str, list[x509.Certificate]], max_age: int | None = None) -> None:
        self.chains = chains
        self.max_age = max_age
        self.calls: list[str] = []
        self.gate: asyncio.Event | None = None
        self.active = 0
        self.peak = 0

    async def __call__(self, url: str) -> FetchedChain:
        self.calls.append(url)
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if url.endswith("boom.pem"):
                raise RuntimeError("unexpected")
            if url not in self.chains:
                raise FetchError(FetchRefusal.HTTP_STATUS, "404")
            return FetchedChain(url, tuple(self.chains[url]), self.max_age)
        finally:
            self.active -= 1


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_get_never_fetches(pki: Pki, validator: ChainValidator) -> None:
    fetcher = FakeFetcher({X5U: pki.chain(pki.leaf())})
    cache = CertificateCache(validator, fetcher, clock=Clock(NOW))
    assert cache.get(X5U) is None
    assert cache.failure(X5U) is None
    assert fetcher.calls == []


@pytest.mark.parametrize(
    ("max_age", "ttl"),
    [(None, 3600.0), (0, 60.0), (30, 60.0), (600, 600.0), (10**9, 86400.0)],
)
def test_expiry_honours_max_age_within_bounds(
    pki: Pki, validator: ChainValidator, max_age: int | None, ttl: float
) -> None:
    clock = Clock(NOW)
    cache = CertificateCache(validator, clock=clock)
    entry = cache.insert(X5U, pki.chain(pki.leaf()), max_age)
    assert entry.expires_at == NOW + ttl
    clock.now = NOW + ttl - 1
    assert cache.get(X5U) is entry
    clock.now = NOW + ttl
    assert cache.get(X5U) is None
    assert len(cache) == 0


def test_expiry_never_past_not_after(pki: Pki, validator: ChainValidator) -> None:
    not_after = datetime.fromtimestamp(NOW + 120, UTC)
    leaf = pki.leaf("ends-soon", na=not_after)
    cache = CertificateCache(validator, clock=Clock(NOW))
    assert cache.insert(X5U, pki.chain(leaf), 86400).expires_at == not_after.timestamp()


def test_lru_bound(pki: Pki, validator: ChainValidator) -> None:
    chain = pki.chain(pki.leaf())
    cache = CertificateCache(validator, max_entries=2, clock=Clock(NOW))
    cache.insert("https://a.test/a.pem", chain)
    cache.insert("https://a.test/b.pem", chain)
    assert cache.get("https://a.test/a.pem") is not None
    cache.insert("https://a.test/c.pem", chain)
    assert len(cache) == 2
    assert cache.get("https://a.test/b.pem") is None
    assert cache.get("https://a.test/a.pem") is not None
    assert cache.get("https://a.test/c.pem") is not None


def test_refusals_are_remembered_briefly(pki: Pki, validator: ChainValidator) -> None:
    clock = Clock(NOW)
    cache = CertificateCache(validator, negative_ttl_s=30, clock=clock)
    with pytest.raises(CertificateError):
        cache.insert(X5U, [pki.leaf().cert])
    assert cache.failure(X5U) == Failure.CHAIN_INVALID
    assert cache.get(X5U) is None
    clock.now = NOW + 30
    assert cache.failure(X5U) is None
    with pytest.raises(CertificateError):
        cache.insert(X5U, [pki.leaf().cert])
    cache.insert(X5U, pki.chain(pki.leaf()))
    assert cache.failure(X5U) is None


def test_a_refused_replacement_evicts_the_old_entry(pki: Pki, validator: ChainValidator) -> None:
    cache = CertificateCache(validator, clock=Clock(NOW))
    cache.insert(X5U, pki.chain(pki.leaf()))
    with pytest.raises(CertificateError):
        cache.insert(X5U, [pki.leaf().cert])
    assert cache.get(X5U) is None


def test_cache_argument_checks(validator: ChainValidator) -> None:
    with pytest.raises(ValueError, match="max_entries"):
        CertificateCache(validator, max_entries=0)
    with pytest.raises(ValueError, match="TTLs"):
        CertificateCache(validator, min_ttl_s=10, default_ttl_s=5)


async def test_fetch_in_background_fills_the_cache_once(pki: Pki, validator: ChainValidator) -> None:
    fetcher = FakeFetcher({X5U: pki.chain(pki.leaf())}, max_age=300)
    fetcher.gate = asyncio.Event()
    cache = CertificateCache(validator, fetcher, clock=Clock(NOW))
    assert cache.fetch_in_background(X5U)
    assert not cache.fetch_in_background(X5U)
    await asyncio.sleep(0)
    fetcher.gate.set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert fetcher.calls == [X5U]
    entry = cache.get(X5U)
    assert entry is not None
    assert entry.expires_at == NOW + 300


async def test_background_failures_are_remembered_and_reported(pki: Pki, validator: ChainValidator) -> None:
    errors: list[tuple[str, type[BaseException]]] = []
    bad_chain = "https://a.test/bad.pem"
    fetcher = FakeFetcher({bad_chain: [pki.leaf().cert]})
    cache = CertificateCache(
        validator, fetcher, clock=Clock(NOW), on_error=lambda url, exc: errors.append((url, type(exc)))
    )
    urls = ["https://a.test/missing.pem", "https://a.test/boom.pem", bad_chain]
    for url in urls:
        assert cache.fetch_in_background(url)
    for _ in range(20):
        await asyncio.sleep(0)
    assert [cache.failure(url) for url in urls] == [
        Failure.CERT_UNAVAILABLE,
        Failure.CERT_UNAVAILABLE,
        Failure.CHAIN_INVALID,
    ]
    assert errors == [(urls[0], FetchError), (urls[1], RuntimeError), (urls[2], CertificateError)]


async def test_warm_reports_each_url_and_bounds_concurrency(pki: Pki, validator: ChainValidator) -> None:
    chain = pki.chain(pki.leaf())
    good = [f"https://a.test/{i}.pem" for i in range(5)]
    fetcher = FakeFetcher(dict.fromkeys(good, chain))
    cache = CertificateCache(validator, fetcher, max_concurrent_fetches=2, clock=Clock(NOW))
    results = await cache.warm([*good, "https://a.test/missing.pem", good[0]])
    assert results == {**dict.fromkeys(good), "https://a.test/missing.pem": Failure.CERT_UNAVAILABLE}
    assert fetcher.peak <= 2
    assert all(cache.get(url) is not None for url in good)


async def test_no_fetcher(validator: ChainValidator) -> None:
    cache = CertificateCache(validator)
    assert not cache.fetch_in_background(X5U)
    with pytest.raises(RuntimeError, match="no fetcher"):
        await cache.fetch(X5U)
