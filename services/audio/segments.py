"""AudioSegment → checked 8 kHz float audio per leg, or a rejection with a stable reason.

Only 8 kHz narrowband is accepted (μ-law, A-law or 16-bit linear); anything longer than the
configured limit, empty, of another rate or encoding, or with more than two legs is rejected so the
agent can dead-letter it with the reason instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fraudmesh.v1 import events_pb2
from services.audio import g711

RATE = 8000

Audio = npt.NDArray[np.float32]


class RejectedSegmentError(Exception):
    """A segment that cannot be analysed; dead-lettered with ``reason``."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(detail)


@dataclass(frozen=True)
class Legs:
    """The caller's audio (always) and the callee's (when the tap captured both directions)."""

    caller: Audio
    callee: Audio | None

    @property
    def seconds(self) -> float:
        """Duration of the caller's leg."""
        return len(self.caller) / RATE


def _decode_leg(encoding: int, data: bytes) -> Audio:
    if encoding == events_pb2.AUDIO_ENCODING_PCMU:
        pcm = g711.ulaw_decode(data)
    elif encoding == events_pb2.AUDIO_ENCODING_PCMA:
        pcm = g711.alaw_decode(data)
    elif encoding == events_pb2.AUDIO_ENCODING_LINEAR16:
        if len(data) % 2:
            raise RejectedSegmentError("undecodable_audio", "LINEAR16 leg has an odd number of bytes")
        pcm = np.frombuffer(data, dtype="<i2")
    else:
        raise RejectedSegmentError("unsupported_encoding", f"encoding {encoding} is not supported")
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32)


def decode(segment: events_pb2.AudioSegment, max_seconds: float, min_seconds: float) -> Legs:
    """The segment's legs as float audio, checked against the limits."""
    if segment.sample_rate_hz not in (0, RATE):
        raise RejectedSegmentError("unsupported_sample_rate", f"{segment.sample_rate_hz} Hz (need 8000)")
    legs = list(segment.legs)
    if not legs:
        raise RejectedSegmentError("no_audio", "segment has no legs")
    if len(legs) > 2:
        raise RejectedSegmentError("too_many_legs", f"{len(legs)} legs (at most 2)")
    bytes_per_sample = 2 if segment.encoding == events_pb2.AUDIO_ENCODING_LINEAR16 else 1
    for leg in legs:
        seconds = len(leg.audio) / bytes_per_sample / RATE
        if seconds > max_seconds:
            raise RejectedSegmentError("segment_too_long", f"{seconds:.1f} s (limit {max_seconds:.0f} s)")
    callers = [leg for leg in legs if leg.role == events_pb2.AUDIO_LEG_ROLE_CALLER]
    callees = [leg for leg in legs if leg.role == events_pb2.AUDIO_LEG_ROLE_CALLEE]
    if len(legs) == 2 and (len(callers) != 1 or len(callees) != 1):
        raise RejectedSegmentError("ambiguous_legs", "two legs need one CALLER and one CALLEE role")
    caller_leg = callers[0] if callers else legs[0]
    if caller_leg.role == events_pb2.AUDIO_LEG_ROLE_CALLEE:
        raise RejectedSegmentError("no_caller_leg", "the only leg is the callee's")
    caller = _decode_leg(segment.encoding, caller_leg.audio)
    if len(caller) / RATE < min_seconds:
        raise RejectedSegmentError("segment_too_short", f"{len(caller) / RATE:.2f} s of caller audio")
    callee = _decode_leg(segment.encoding, callees[0].audio) if callees else None
    return Legs(caller=caller, callee=callee)


def encode_pcmu(audio: Audio) -> bytes:
    """Float audio in [-1, 1] → μ-law bytes (for producers, the simulator and tests)."""
    pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype(np.int16)
    return g711.ulaw_encode(pcm)
