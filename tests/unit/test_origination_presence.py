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


@pytest.mark.parametrize("state", [UNKNOWN, ROAMING, DETACHED])
def test_unknown_roaming_or_detached_presence_proves_nothing(state: int) -> None:
    assert presence_proofs(OFFNET, "c1", PresenceFacts(state), NOW, 4 * HOUR) == ()


def test_no_presence_read_or_no_offnet_finding_proves_nothing() -> None:
    assert presence_proofs(OFFNET, "c1", None, NOW, 4 * HOUR) == ()
    on_net = (Reason.SHAKEN_ATTESTATION_C,)
    assert presence_proofs(on_net, "c1", PresenceFacts(ATTACHED_HOME, "c0", NOW - 1000), NOW, 4 * HOUR) == ()


def test_another_call_in_progress_is_proof_but_this_call_stale_or_future_ones_are_not() -> None:
    busy = PresenceFacts(ROAMING, "other-call", NOW - 60_000)
    assert presence_proofs(OFFNET, "c1", busy, NOW, 4 * HOUR) == (Reason.CALLER_BUSY_ELSEWHERE,)
    assert presence_proofs(OFFNET, "other-call", busy, NOW, 4 * HOUR) == ()
    stale = PresenceFacts(ROAMING, "other-call", NOW - 5 * HOUR)
    assert presence_proofs(OFFNET, "c1", stale, NOW, 4 * HOUR) == ()
    future = PresenceFacts(ROAMING, "other-call", NOW + 60_000)
    assert presence_proofs(OFFNET, "c1", future, NOW, 4 * HOUR) == ()


def test_a_proven_spoof_of_a_known_contact_says_so() -> None:
    facts = PresenceFacts(ATTACHED_HOME, contacts=True)
    assert presence_proofs(OFFNET, "c1", facts, NOW, 4 * HOUR) == (
        Reason.ONNET_NUMBER_NOT_ROAMING,
        Reason.IMPERSONATES_CONTACT,
    )
    assert presence_proofs(OFFNET, "c1", PresenceFacts(ROAMING, contacts=True), NOW, 4 * HOUR) == ()
