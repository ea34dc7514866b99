"""G.711 against audioop, segment decoding and its rejection reasons."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraudmesh.v1 import events_pb2
from loadtest.audio import calls
from services.audio import g711
from services.audio.segments import RejectedSegmentError, decode

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


def test_g711_matches_audioop_on_every_sample() -> None:
    pcm = np.arange(-32768, 32768, dtype=np.int16)
    assert g711.ulaw_encode(pcm) == audioop.lin2ulaw(pcm.tobytes(), 2)
    assert g711.alaw_encode(pcm) == audioop.lin2alaw(pcm.tobytes(), 2)
    every = bytes(range(256))
    assert g711.ulaw_decode(every).tobytes() == audioop.ulaw2lin(every, 2)
    assert g711.alaw_decode(every).tobytes() == audioop.alaw2lin(every, 2)


@given(st.binary(min_size=2, max_size=400).filter(lambda b: len(b) % 2 == 0))
def test_ulaw_round_trip_is_audioops(data: bytes) -> None:
    pcm = np.frombuffer(data, dtype="<i2")
    assert g711.ulaw_decode(g711.ulaw_encode(pcm)).tobytes() == audioop.ulaw2lin(audioop.lin2ulaw(data, 2), 2)


def _tone(seconds: float) -> np.ndarray:
    return (0.3 * np.sin(np.arange(int(8000 * seconds)) * 2 * np.pi * 440 / 8000)).astype(np.float32)


def test_two_legs_decode_to_caller_and_callee() -> None:
    record = calls.segment("s", "+8613900000001", "+8613900000002", _tone(2), _tone(1))
    legs = decode(record, max_seconds=35, min_seconds=0.5)
    assert legs.seconds == pytest.approx(2.0)
    assert legs.callee is not None
    assert len(legs.callee) == 8000
    assert np.max(np.abs(legs.caller - _tone(2))) < 0.02


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda r: setattr(r, "sample_rate_hz", 16000), "unsupported_sample_rate"),
        (lambda r: r.ClearField("legs"), "no_audio"),
        (lambda r: setattr(r, "encoding", 99), "unsupported_encoding"),
        (lambda r: r.legs.add(role=events_pb2.AUDIO_LEG_ROLE_CALLER), "ambiguous_legs"),
        (lambda r: setattr(r.legs[0], "audio", r.legs[0].audio * 20), "segment_too_long"),
        (lambda r: setattr(r.legs[0], "audio", r.legs[0].audio[:1000]), "segment_too_short"),
    ],
)
def test_bad_segments_are_rejected_with_a_reason(change: object, reason: str) -> None:
    record = calls.segment("s", "+8613900000001", "+8613900000002", _tone(2))
    change(record)  # type: ignore[operator]
    with pytest.raises(RejectedSegmentError) as caught:
        decode(record, max_seconds=35, min_seconds=0.5)
    assert caught.value.reason == reason
