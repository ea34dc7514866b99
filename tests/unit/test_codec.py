"""The strict protobuf codec: round trips, and typed errors for everything else."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraudmesh.v1 import call_pb2, events_pb2
from services.common.codec import DecodeError, ProtoCodec
from services.common.topics import CALLS_SETUP, TOPICS


def setup_event() -> events_pb2.CallSetupEvent:
    return events_pb2.CallSetupEvent(
        setup=call_pb2.CallSetup(call_id="c1", tenant="t", calling_number="+8613800138000")
    )


def test_round_trip() -> None:
    codec = CALLS_SETUP.codec()
    assert codec.decode(codec.encode(setup_event())) == setup_event()


def test_encoding_is_deterministic() -> None:
    codec = CALLS_SETUP.codec()
    assert codec.encode(setup_event()) == codec.encode(setup_event())


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (None, "empty_value"),
        (b"", "empty_value"),
        (b"\xff\xff\xff\xff", "decode_error"),
        (b"\x0a\x05abc", "decode_error"),
        (events_pb2.CallSetupEvent().SerializeToString() or b"\x0a\x00", "missing_field"),
        (
            events_pb2.CallSetupEvent(
                setup=call_pb2.CallSetup(call_id="c1", calling_number="+8613800138000")
            ).SerializeToString(),
            "missing_field",
        ),
    ],
)
def test_bad_bytes_raise_typed_errors(data: bytes | None, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        CALLS_SETUP.codec().decode(data)
    assert info.value.reason == reason


def test_a_withheld_caller_is_not_a_missing_field() -> None:
    withheld = events_pb2.CallSetupEvent(setup=call_pb2.CallSetup(call_id="c1", tenant="t"))
    assert CALLS_SETUP.codec().decode(withheld.SerializeToString()) == withheld


def test_encode_refuses_the_wrong_type() -> None:
    with pytest.raises(TypeError, match=r"expected fraudmesh\.v1\.CallSetupEvent"):
        CALLS_SETUP.codec().encode(events_pb2.Cdr())


def test_unknown_required_field_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="no field"):
        ProtoCodec(events_pb2.Cdr, ["nope"])


@given(st.binary(max_size=256))
def test_decode_never_raises_anything_but_decode_error(data: bytes) -> None:
    for topic in TOPICS:
        with contextlib.suppress(DecodeError):
            topic.codec().decode(data)
