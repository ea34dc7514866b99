"""The reputation read covers the schema: every hash field is read and parsed, every feature filled.

Adding a reputation or audio feature touches ``services.common.featurestore`` (and the fold that
computes its state); these tests fail on the step that was forgotten, without Redis.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from services.common import features
from services.common.featurestore import (
    NUM_FIELDS,
    PRESENCE_FIELDS,
    READ_CALL,
    READ_FEATURES,
    RINGS,
    Presence,
    ReputationRead,
    fill,
    parse,
)

RING_FIELDS = (
    "calls_1m",
    "calls_1h",
    "calls_24h",
    "complaints_30d",
    "complaints_7d",
    "fraud_complaints_30d",
    "honeypot_hits_30d",
)
TAIL_FIELDS = ("distinct_1h", "distinct_24h", "callee_called_caller", "caller_called_callee")
NOW_MS = 1_800_000_000_000


# A roaming subscriber in an on-net call: every presence position distinct and recognisable.
PRESENCE_REPLY = [b"2", b"1799999000000", b"FR", b"call-7@switch", b"1799999500000"]
PRESENCE = Presence(
    state=2, since_ms=1_799_999_000_000, country="FR", call_id="call-7@switch", call_ms=1_799_999_500_000
)
NO_PRESENCE = Presence(state=0, since_ms=0, country="", call_id="", call_ms=0)


def _reply() -> list[bytes]:
    """A read script reply whose every feature position holds a different non-zero value."""
    width = len(NUM_FIELDS) + len(RINGS) + len(TAIL_FIELDS)
    return [str(100 + i).encode() for i in range(width)] + PRESENCE_REPLY + [b""]


def test_the_script_reads_every_hash_field_into_a_record_field() -> None:
    for script in (READ_FEATURES, READ_CALL):
        assert f"local NUM_FIELDS = {{{', '.join(repr(name) for name in NUM_FIELDS)}}}" in script
        assert f"local PRESENCE_FIELDS = {{{', '.join(repr(name) for name in PRESENCE_FIELDS)}}}" in script
    record_fields = [f.name for f in dataclasses.fields(ReputationRead)]
    assert record_fields == ["seen", *NUM_FIELDS, *RING_FIELDS, *TAIL_FIELDS, "presence"]
    assert len(RINGS) == len(RING_FIELDS)
    assert [f.name for f in dataclasses.fields(Presence)] == [
        "state",
        "since_ms",
        "country",
        "call_id",
        "call_ms",
    ]
    assert len(PRESENCE_FIELDS) == len(dataclasses.fields(Presence))


def test_parse_puts_each_reply_position_in_its_own_field() -> None:
    reply = _reply()
    read = parse(reply, NOW_MS)
    assert read.seen
    positions = [*NUM_FIELDS, *RING_FIELDS, *TAIL_FIELDS]
    for name, raw in zip(positions, reply[: -len(PRESENCE_FIELDS) - 1], strict=True):
        value = getattr(read, name)
        assert value == (bool(int(raw)) if isinstance(value, bool) else int(raw)), name
    assert read.presence == PRESENCE


def _with_presence(values: list[bytes | str | None]) -> Presence:
    return parse([*_reply()[: -len(PRESENCE_FIELDS) - 1], *values, b""], NOW_MS).presence


def test_presence_without_a_report_reads_unknown() -> None:
    assert _with_presence([None] * len(PRESENCE_FIELDS)) == NO_PRESENCE
    assert _with_presence([b""] * len(PRESENCE_FIELDS)) == NO_PRESENCE


def test_presence_states_parse_as_reported() -> None:
    home = _with_presence([b"1", b"1000", b"", b"", b""])
    assert home == Presence(state=1, since_ms=1000, country="", call_id="", call_ms=0)
    detached = _with_presence(["3", "2000", "", "", ""])  # a client that decodes replies
    assert detached == Presence(state=3, since_ms=2000, country="", call_id="", call_ms=0)


def test_a_call_without_a_registration_is_read_with_state_unknown() -> None:
    presence = _with_presence([None, None, None, b"c-1", b"5000"])
    assert presence == Presence(state=0, since_ms=0, country="", call_id="c-1", call_ms=5000)


def test_an_ended_call_reads_as_none_with_its_end_time() -> None:
    presence = _with_presence([b"1", b"1000", b"", b"", b"6000"])
    assert (presence.call_id, presence.call_ms) == ("", 6000)


def test_presence_values_outside_the_contract_read_unknown() -> None:
    assert _with_presence([b"7", b"1000", b"FR", b"", b""]) == NO_PRESENCE
    assert _with_presence([b"1", b"1000", b"FR", b"", b""]).country == ""  # a country only when roaming


def test_fill_writes_every_reputation_and_audio_feature_and_nothing_else() -> None:
    vector = features.empty_vector()
    fill(vector, parse(_reply(), NOW_MS), NOW_MS)
    filled = {features.NAMES[i] for i in np.flatnonzero(~np.isnan(vector))}
    wanted = {f.name for f in (*features.by_source(features.REP), *features.by_source(features.AUD))}
    assert filled == wanted


def test_a_number_never_seen_reads_as_zero_counts_not_unknown() -> None:
    read = parse(
        [b""] * len(NUM_FIELDS)
        + [b"0"] * (len(RINGS) + len(TAIL_FIELDS))
        + [b""] * (len(PRESENCE_FIELDS) + 1),
        NOW_MS,
    )
    assert not read.seen
    assert read.presence == NO_PRESENCE
    vector = features.empty_vector()
    fill(vector, read, NOW_MS)
    assert vector[features.INDEX["number_age_s"]] == 0.0
    assert vector[features.INDEX["calls_24h"]] == 0.0
    assert np.isnan(vector[features.INDEX["answer_ratio"]])
    assert np.isnan(vector[features.INDEX["synthetic_voice"]])
