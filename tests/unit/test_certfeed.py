"""The certificate feed's records and bounds, without a broker: what a sti.certs.v1 record means to a
reader (validated against the reader's own anchors, expiry, refusals, tombstones, hostile bytes),
the bounded copy the Verifier reads, and the once-per-interval miss filter."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509

from fraudmesh.v1 import events_pb2
from services.common.codec import DecodeError
from services.origination.certfeed import (
    FeedUpdate,
    FollowedChains,
    MissDeduper,
    chain_record,
    decode_chain_record,
    decode_miss,
    read_record,
    refusal_record,
)
from services.origination.certs import CachedChain, ChainValidator
from services.origination.failures import Failure
from tests.unit.vectors import simpki

START = datetime(2026, 1, 1, tzinfo=UTC)
END = START + timedelta(days=365)
NOW = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
X5U = "https://sti.feed.test/leaf.pem"


class Pki:
    """Two test-only roots, each with a SubCA and an SPC leaf: ``trusted`` and ``stranger``."""

    def __init__(self) -> None:
        self.root = simpki.issue(11, "f-root", None, START, END, ca=True)
        self.sub = simpki.issue(11, "f-sub", self.root, START, END, ca=True, path_length=0)
        self.leaf = simpki.issue(11, "f-leaf", self.sub, START, END, spcs=["F001"])
        self.other_root = simpki.issue(12, "f-other-root", None, START, END, ca=True)
        self.other_sub = simpki.issue(12, "f-other-sub", self.other_root, START, END, ca=True, path_length=0)
        self.other_leaf = simpki.issue(12, "f-other-leaf", self.other_sub, START, END, spcs=["F002"])

    def validator(self) -> ChainValidator:
        return ChainValidator([self.root.cert])

    def chain(self, x5u: str = X5U, expires_at: float = NOW + 600) -> CachedChain:
        """The trusted chain as origination's cache holds it (leaf, SubCA, root)."""
        held = self.validator().validate(x5u, [self.leaf.cert, self.sub.cert], NOW)
        return replace(held, expires_at=expires_at)

    def stranger_record(self, x5u: str = X5U) -> events_pb2.CertificateChain:
        """A well-formed record whose chain ends at a root this reader does not trust."""
        held = ChainValidator([self.other_root.cert]).validate(
            x5u, [self.other_leaf.cert, self.other_sub.cert], NOW
        )
        return chain_record(replace(held, expires_at=NOW + 600), int(NOW * 1000))


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


def encoded(record: events_pb2.CertificateChain) -> tuple[bytes, bytes]:
    return record.x5u.encode(), record.SerializeToString()


def test_a_chain_record_carries_the_chain_without_its_anchor(pki: Pki) -> None:
    record = chain_record(pki.chain(), int(NOW * 1000))
    certificates = x509.load_pem_x509_certificates(record.pem)
    assert certificates == [pki.leaf.cert, pki.sub.cert]
    assert record.expires_at_ms == int((NOW + 600) * 1000)
    assert not record.failure
    assert not record.refused_until_ms
    assert decode_chain_record(*encoded(record)) == record


def test_a_refusal_record_has_no_pem(pki: Pki) -> None:
    record = refusal_record(X5U, Failure.CHAIN_INVALID, NOW + 60, int(NOW * 1000))
    assert (record.failure, record.refused_until_ms, record.pem) == (
        "chain_invalid",
        int((NOW + 60) * 1000),
        b"",
    )
    assert decode_chain_record(*encoded(record)) == record


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (b"k", b"", "empty_value"),
        (b"k", b"\xff\xff\xff", "decode_error"),
        (b"", events_pb2.CertificateChain(pem=b"x", expires_at_ms=1).SerializeToString(), "missing_field"),
        (
            X5U.encode(),
            events_pb2.CertificateChain(x5u=X5U, expires_at_ms=1).SerializeToString(),
            "missing_field",
        ),
        (
            b"https://other.test/x.pem",
            events_pb2.CertificateChain(x5u=X5U, pem=b"x").SerializeToString(),
            "key_mismatch",
        ),
    ],
)
def test_unusable_chain_records_are_refused_with_a_reason(key: bytes, value: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_chain_record(key, value)
    assert caught.value.reason == reason


def test_a_miss_record_decodes_strictly() -> None:
    assert decode_miss(events_pb2.CertificateMiss(x5u=X5U, seen_ms=1).SerializeToString()) == X5U
    for value, reason in ((None, "empty_value"), (b"", "empty_value"), (b"\x0a\xff", "decode_error")):
        with pytest.raises(DecodeError) as caught:
            decode_miss(value)
        assert caught.value.reason == reason
    with pytest.raises(DecodeError, match="x5u"):
        decode_miss(events_pb2.CertificateMiss(seen_ms=5).SerializeToString())


def test_a_chain_is_validated_again_by_the_reader_and_keeps_origination_s_expiry(pki: Pki) -> None:
    update = read_record(*encoded(chain_record(pki.chain(), int(NOW * 1000))), pki.validator(), NOW)
    assert update.outcome == "loaded"
    assert update.chain is not None
    assert update.chain.spcs == ("F001",)
    assert update.chain.chain[-1] == pki.root.cert, "the path ends at the reader's own anchor"
    assert update.chain.expires_at == NOW + 600


def test_a_chain_under_an_untrusted_root_is_refused(pki: Pki) -> None:
    update = read_record(*encoded(pki.stranger_record()), pki.validator(), NOW)
    assert update == FeedUpdate("refused", X5U)


def test_expired_entries_are_ignored(pki: Pki) -> None:
    chain = read_record(*encoded(chain_record(pki.chain(expires_at=NOW - 1), 0)), pki.validator(), NOW)
    refusal = read_record(
        *encoded(refusal_record(X5U, Failure.CHAIN_INVALID, NOW - 1, 0)), pki.validator(), NOW
    )
    assert (chain.outcome, refusal.outcome) == ("expired", "expired")


def test_a_refusal_stands_until_its_time_and_an_unknown_failure_is_unavailable(pki: Pki) -> None:
    known = read_record(*encoded(refusal_record(X5U, Failure.BAD_LEAF, NOW + 60, 0)), pki.validator(), NOW)
    assert known == FeedUpdate("refusal", X5U, failure=Failure.BAD_LEAF, until=NOW + 60)
    odd = events_pb2.CertificateChain(
        x5u=X5U, failure="from_the_future", refused_until_ms=int(NOW * 1000) + 1
    )
    assert read_record(*encoded(odd), pki.validator(), NOW).failure is Failure.CERT_UNAVAILABLE


def test_a_tombstone_forgets_its_url(pki: Pki) -> None:
    assert read_record(X5U.encode(), None, pki.validator(), NOW) == FeedUpdate("forget", X5U)
    assert read_record(None, None, pki.validator(), NOW).outcome == "refused"


def test_a_pem_that_is_not_certificates_is_refused(pki: Pki) -> None:
    record = events_pb2.CertificateChain(
        x5u=X5U, pem=b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    )
    record.expires_at_ms = int((NOW + 60) * 1000)
    assert read_record(*encoded(record), pki.validator(), NOW).outcome == "refused"


def test_followed_chains_apply_what_records_mean(pki: Pki) -> None:
    chains = FollowedChains(8, clock=lambda: NOW)
    chains.apply(FeedUpdate("refusal", X5U, failure=Failure.CERT_UNAVAILABLE, until=NOW + 60))
    assert chains.get(X5U) is None
    assert chains.failure(X5U) is Failure.CERT_UNAVAILABLE
    chains.apply(FeedUpdate("loaded", X5U, pki.chain()))
    assert chains.get(X5U) is not None
    assert chains.failure(X5U) is None, "a validated chain replaces the refusal"
    chains.apply(FeedUpdate("refusal", X5U, failure=Failure.CERT_UNAVAILABLE, until=NOW + 60))
    assert chains.get(X5U) is not None, (
        "a later refusal (another replica's failed fetch) does not withdraw it"
    )
    chains.apply(FeedUpdate("refused", X5U))
    chains.apply(FeedUpdate("expired", X5U))
    assert chains.get(X5U) is not None, "a record this reader refused changes nothing"
    chains.apply(FeedUpdate("forget", X5U))
    assert chains.get(X5U) is None
    assert chains.failure(X5U) is None


def test_entries_lapse_at_their_expiry(pki: Pki) -> None:
    chains = FollowedChains(8, clock=lambda: NOW)
    chains.put(pki.chain(expires_at=NOW + 10))
    chains.put_refusal("https://sti.feed.test/bad.pem", Failure.CHAIN_INVALID, NOW + 5)
    assert chains.get(X5U, NOW + 9.9) is not None
    assert chains.get(X5U, NOW + 10) is None
    assert len(chains) == 0
    assert chains.failure("https://sti.feed.test/bad.pem", NOW + 4.9) is Failure.CHAIN_INVALID
    assert chains.failure("https://sti.feed.test/bad.pem", NOW + 5) is None


def test_a_full_copy_evicts_the_chain_expiring_first(pki: Pki) -> None:
    chains = FollowedChains(3, clock=lambda: NOW)
    base = pki.chain()
    for name, ttl in (("a", 300), ("b", 100), ("c", 200)):
        chains.put(replace(base, x5u=f"https://sti.feed.test/{name}.pem", expires_at=NOW + ttl))
    chains.put(replace(base, x5u="https://sti.feed.test/d.pem", expires_at=NOW + 400))
    held = {url for url in ("a", "b", "c", "d") if chains.get(f"https://sti.feed.test/{url}.pem")}
    assert held == {"a", "c", "d"}
    assert len(chains) == 3


def test_replacing_entries_keeps_the_bound_and_the_eviction_order(pki: Pki) -> None:
    chains = FollowedChains(4, clock=lambda: NOW)
    base = pki.chain()
    urls = [f"https://sti.feed.test/{n}.pem" for n in range(4)]
    for round_ in range(200):  # many re-publications must not mislead the eviction
        for position, url in enumerate(urls):
            chains.put(replace(base, x5u=url, expires_at=NOW + 1000 + round_ + position))
    assert len(chains) == 4
    chains.put(replace(base, x5u="https://sti.feed.test/new.pem", expires_at=NOW + 5000))
    assert chains.get(urls[0]) is None, "the one expiring first went"
    assert all(chains.get(url) is not None for url in urls[1:])


def test_refusals_are_bounded_oldest_first(pki: Pki) -> None:
    chains = FollowedChains(2, clock=lambda: NOW)
    for name in ("a", "b", "c"):
        chains.put_refusal(f"https://sti.feed.test/{name}.pem", Failure.CERT_UNAVAILABLE, NOW + 60)
    assert chains.refusals() == 2
    assert chains.failure("https://sti.feed.test/a.pem") is None
    assert chains.failure("https://sti.feed.test/c.pem") is Failure.CERT_UNAVAILABLE


def test_followed_chains_need_room_for_one() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        FollowedChains(0)


def test_a_miss_passes_once_per_interval() -> None:
    now = [100.0]
    deduper = MissDeduper(30.0, clock=lambda: now[0])
    assert deduper.first(X5U)
    assert not deduper.first(X5U)
    assert deduper.first("https://sti.feed.test/other.pem"), "each URL has its own interval"
    now[0] += 29.9
    assert not deduper.first(X5U)
    now[0] += 0.1
    assert deduper.first(X5U)


def test_the_miss_filter_is_bounded() -> None:
    deduper = MissDeduper(30.0, clock=lambda: 0.0, limit=3)
    for n in range(10):
        assert deduper.first(f"https://sti.feed.test/{n}.pem")
        assert len(deduper) <= 3
