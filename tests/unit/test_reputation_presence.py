"""Presence records → updates: the subscriber's number as decision keys it, bad records dead-lettered."""

from __future__ import annotations

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from fraudmesh.v1 import events_pb2
from services.common.codec import DecodeError
from services.common.phone import normalize
from services.common.pseudonym import Pseudonymizer
from services.common.settings import load
from services.common.topics import SUBSCRIBERS_PRESENCE
from services.reputation.folding import Folding, RejectedRecordError
from services.reputation.numbers import PresenceUpdate
from services.reputation.settings import ReputationSettings

KEY = "ab" * 32
NUMBER = "+8613812345678"
T_MS = 1_800_000_000_000


@pytest.fixture(scope="module")
def folding() -> Folding:
    return Folding(load(ReputationSettings, {"FRAUDMESH_PSEUDONYM_KEY": KEY}))


def record(
    state: events_pb2.PresenceState.ValueType,
    number: str = NUMBER,
    country: str = "",
    call_id: str = "",
    t_ms: int = T_MS,
) -> bytes:
    presence = events_pb2.SubscriberPresence(
        event_id="e1", tenant="demo-cn", number=number, state=state, country=country, call_id=call_id
    )
    if t_ms:
        presence.event_time.CopyFrom(Timestamp(seconds=t_ms // 1000, nanos=t_ms % 1000 * 1_000_000))
    return SUBSCRIBERS_PRESENCE.codec().encode(presence)


def fold(folding: Folding, value: bytes, fallback_ms: int = 0) -> PresenceUpdate:
    update = folding.presence(value, fallback_ms)
    assert isinstance(update, PresenceUpdate)
    return update


def test_a_report_is_folded_under_the_number_decision_reads(folding: Folding) -> None:
    expected = Pseudonymizer(load(ReputationSettings, {"FRAUDMESH_PSEUDONYM_KEY": KEY}).pseudonym_key)(
        normalize(NUMBER, "CN").canonical
    )
    for presented in (NUMBER, "13812345678", "0086 138 1234 5678"):
        update = fold(folding, record(events_pb2.PRESENCE_STATE_ATTACHED_HOME, number=presented))
        assert update == PresenceUpdate(
            expected, "demo-cn", "e1", T_MS, events_pb2.PRESENCE_STATE_ATTACHED_HOME
        )


def test_roaming_keeps_its_country_and_other_states_drop_it(folding: Folding) -> None:
    assert fold(folding, record(events_pb2.PRESENCE_STATE_ROAMING, country="fr")).country == "FR"
    assert fold(folding, record(events_pb2.PRESENCE_STATE_ATTACHED_HOME, country="FR")).country == ""


@pytest.mark.parametrize("country", ["", "France", "F1", "+33"])
def test_roaming_with_a_bad_country_is_still_roaming(folding: Folding, country: str) -> None:
    """Dropping it would leave the subscriber "at home", which proofs would trust."""
    update = fold(folding, record(events_pb2.PRESENCE_STATE_ROAMING, country=country))
    assert (update.state, update.country) == (events_pb2.PRESENCE_STATE_ROAMING, "")


def test_call_events_carry_their_call_id_and_registrations_none(folding: Folding) -> None:
    assert fold(folding, record(events_pb2.PRESENCE_STATE_IN_CALL, call_id="c-9")).call_id == "c-9"
    assert fold(folding, record(events_pb2.PRESENCE_STATE_CALL_ENDED, call_id="c-9")).call_id == "c-9"
    assert fold(folding, record(events_pb2.PRESENCE_STATE_DETACHED, call_id="c-9")).call_id == ""


def test_without_an_event_time_the_record_time_is_used(folding: Folding) -> None:
    assert fold(folding, record(events_pb2.PRESENCE_STATE_DETACHED, t_ms=0), fallback_ms=42).t_ms == 42


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (record(events_pb2.PRESENCE_STATE_UNSPECIFIED), "invalid_presence_state"),
        (record(events_pb2.PresenceState.ValueType(99)), "invalid_presence_state"),
        (record(events_pb2.PRESENCE_STATE_IN_CALL), "missing_call_id"),
        (record(events_pb2.PRESENCE_STATE_CALL_ENDED), "missing_call_id"),
        (record(events_pb2.PRESENCE_STATE_ATTACHED_HOME, number="anonymous"), "invalid_number"),
    ],
)
def test_records_that_cannot_be_folded_name_their_reason(folding: Folding, value: bytes, reason: str) -> None:
    with pytest.raises(RejectedRecordError) as caught:
        folding.presence(value, 0)
    assert caught.value.reason == reason
    assert "8613812345678" not in caught.value.detail


def test_a_record_without_its_identity_fields_does_not_decode(folding: Folding) -> None:
    no_number = events_pb2.SubscriberPresence(
        event_id="e1", tenant="demo-cn", state=events_pb2.PRESENCE_STATE_ATTACHED_HOME
    )
    value = no_number.SerializeToString()
    with pytest.raises(DecodeError) as caught:
        folding.presence(value, 0)
    assert caught.value.reason == "missing_field"
