"""Presence proofs: only an own subscriber's number from off-net, only from known presence."""

from __future__ import annotations

import pytest

from services.common.reasons import Reason
from services.origination.presence import (
    ATTACHED_HOME,
    DETACHED,
    ROAMING,
    UNKNOWN,
    PresenceFacts,
    presence_proofs,
)

OFFNET = (Reason.ONNET_CLI_OFFNET_INGRESS, Reason.INTL_INGRESS_DOMESTIC_CLI)
NOW = 1_800_000_000_000
HOUR = 3_600_000


def test_a_subscriber_attached_at_home_cannot_call_from_the_international_gateway() -> None:
    assert presence_proofs(OFFNET, "c1", PresenceFacts(ATTACHED_HOME), NOW, 4 * HOUR) == (
        Reason.ONNET_NUMBER_NOT_ROAMING,
    )


PROOFS = {Reason.ONNET_NUMBER_NOT_ROAMING, Reason.CALLER_BUSY_ELSEWHERE, Reason.IMPERSONATES_CONTACT}


@pytest.mark.parametrize("state", [UNKNOWN, ROAMING, DETACHED])
@pytest.mark.parametrize("mobile", [False, True])
def test_unknown_roaming_or_detached_presence_proves_nothing(state: int, mobile: bool) -> None:
    codes = presence_proofs(OFFNET, "c1", PresenceFacts(state), NOW, 4 * HOUR, mobile=mobile)
    assert not set(codes) & PROOFS


def test_a_roaming_subscriber_over_the_international_gateway_is_a_verified_roamer() -> None:
    intl = (Reason.INTL_INGRESS_DOMESTIC_CLI,)
    assert presence_proofs(intl, "c1", PresenceFacts(ROAMING), NOW, 4 * HOUR, mobile=True) == (
        Reason.ROAMING_VERIFIED,
    )
    assert presence_proofs(OFFNET, "c1", PresenceFacts(ROAMING), NOW, 4 * HOUR) == (Reason.ROAMING_VERIFIED,)


@pytest.mark.parametrize("state", [UNKNOWN, DETACHED])
def test_a_domestic_mobile_not_known_to_roam_has_no_roaming_indication(state: int) -> None:
    intl = (Reason.INTL_INGRESS_DOMESTIC_CLI,)
    assert presence_proofs(intl, "c1", PresenceFacts(state), NOW, 4 * HOUR, mobile=True) == (
        Reason.NO_ROAMING_INDICATION,
    )
    # a fixed line does not roam the same way: the model weighs it, no label by rule
    assert presence_proofs(intl, "c1", PresenceFacts(state), NOW, 4 * HOUR, mobile=False) == ()
    # presence not read (Redis did not answer): unknown is not "not roaming"
    assert presence_proofs(intl, "c1", None, NOW, 4 * HOUR, mobile=True) == ()


def test_a_proof_replaces_the_roaming_facts() -> None:
    codes = presence_proofs(OFFNET, "c1", PresenceFacts(ATTACHED_HOME), NOW, 4 * HOUR, mobile=True)
    assert codes == (Reason.ONNET_NUMBER_NOT_ROAMING,)
    busy = PresenceFacts(ROAMING, "other-call", NOW - 60_000)
    assert presence_proofs(OFFNET, "c1", busy, NOW, 4 * HOUR, mobile=True) == (Reason.CALLER_BUSY_ELSEWHERE,)


def test_no_presence_read_or_no_offnet_finding_proves_nothing() -> None:
    assert presence_proofs(OFFNET, "c1", None, NOW, 4 * HOUR) == ()
    on_net = (Reason.SHAKEN_ATTESTATION_C,)
    assert presence_proofs(on_net, "c1", PresenceFacts(ATTACHED_HOME, "c0", NOW - 1000), NOW, 4 * HOUR) == ()


def test_another_call_in_progress_is_proof_but_this_call_stale_or_future_ones_are_not() -> None:
    busy = PresenceFacts(ROAMING, "other-call", NOW - 60_000)
    assert presence_proofs(OFFNET, "c1", busy, NOW, 4 * HOUR) == (Reason.CALLER_BUSY_ELSEWHERE,)
    roamer = (Reason.ROAMING_VERIFIED,)
    assert presence_proofs(OFFNET, "other-call", busy, NOW, 4 * HOUR) == roamer
    stale = PresenceFacts(ROAMING, "other-call", NOW - 5 * HOUR)
    assert presence_proofs(OFFNET, "c1", stale, NOW, 4 * HOUR) == roamer
    future = PresenceFacts(ROAMING, "other-call", NOW + 60_000)
    assert presence_proofs(OFFNET, "c1", future, NOW, 4 * HOUR) == roamer


def test_a_proven_spoof_of_a_known_contact_says_so() -> None:
    facts = PresenceFacts(ATTACHED_HOME, contacts=True)
    assert presence_proofs(OFFNET, "c1", facts, NOW, 4 * HOUR) == (
        Reason.ONNET_NUMBER_NOT_ROAMING,
        Reason.IMPERSONATES_CONTACT,
    )
    assert presence_proofs(OFFNET, "c1", PresenceFacts(ROAMING, contacts=True), NOW, 4 * HOUR) == (
        Reason.ROAMING_VERIFIED,
    )


def test_any_domestic_number_reported_at_home_cannot_call_from_abroad() -> None:
    # an MVNO or ported-in subscriber outside the own ranges: no ONNET finding, presence proves it
    intl = (Reason.INTL_INGRESS_DOMESTIC_CLI,)
    assert presence_proofs(intl, "c1", PresenceFacts(ATTACHED_HOME), NOW, 4 * HOUR, mobile=True) == (
        Reason.ONNET_NUMBER_NOT_ROAMING,
    )
    busy = PresenceFacts(ATTACHED_HOME, "other-call", NOW - 60_000, contacts=True)
    assert presence_proofs(intl, "c1", busy, NOW, 4 * HOUR, mobile=True) == (
        Reason.ONNET_NUMBER_NOT_ROAMING,
        Reason.CALLER_BUSY_ELSEWHERE,
        Reason.IMPERSONATES_CONTACT,
    )
    # off-net over a domestic VoIP peer: no finding to prove, nothing said
    assert (
        presence_proofs((Reason.SHAKEN_ATTESTATION_C,), "c1", PresenceFacts(ATTACHED_HOME), NOW, 4 * HOUR)
        == ()
    )
