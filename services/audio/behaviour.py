"""Bot behaviour from two legs: does the caller take turns with the callee, or play on regardless?

Voice activity per 20 ms frame on each leg (WebRTC VAD, mode 3 — the only mode that does not call
telephone-band noise speech), smoothed with a short hangover. From the two activity tracks:

- talk-over: the share of the callee's speech during which the caller also speaks;
- yielding: of the callee's turns that start while the caller speaks, the share after which the
  caller falls silent within ``YIELD_WINDOW_S`` (a person stops to listen; a recording does not);
- response latency: after a callee's turn ends, how long until the caller speaks again.

The score is a fixed logistic combination of these (weights set by hand on constructed calls and
checked by ``bench.audio``), with the reasons that pushed it up. Without a callee turn to react to
there is no evidence either way and the detector abstains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import webrtcvad  # type: ignore[import-untyped]

from services.audio.segments import Audio
from services.common.reasons import Reason

RATE = 8000
FRAME = 160  # 20 ms
FRAME_S = FRAME / RATE
HANGOVER = 8  # frames (160 ms) of activity kept after speech stops
MIN_TURN_S = 0.3
YIELD_WINDOW_S = 1.2
MIN_CALLER_SPEECH_S = 1.0

BoolArray = npt.NDArray[np.bool_]


def voice_activity(audio: Audio, mode: int = 3) -> BoolArray:
    """Per 20 ms frame: speech or not (WebRTC VAD on 16-bit PCM, with hangover)."""
    vad = webrtcvad.Vad(mode)
    n = len(audio) // FRAME
    pcm = np.clip(np.round(audio[: n * FRAME] * 32767), -32768, 32767).astype("<i2").tobytes()
    raw = np.fromiter(
        (vad.is_speech(pcm[i * FRAME * 2 : (i + 1) * FRAME * 2], RATE) for i in range(n)),
        dtype=np.bool_,
        count=n,
    )
    out = raw.copy()
    last = -HANGOVER - 1
    for i in range(n):
        if raw[i]:
            last = i
        elif i - last <= HANGOVER:
            out[i] = True
    return out


def runs(active: BoolArray, min_frames: int) -> list[tuple[int, int]]:
    """(start, stop) frame ranges of activity at least ``min_frames`` long."""
    padded = np.concatenate(([False], active, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= min_frames]


@dataclass(frozen=True)
class BehaviourResult:
    """The bot-behaviour score (None when abstaining), its measurements and reasons."""

    score: float | None
    talk_over: float = 0.0
    yield_rate: float | None = None
    latency_s: float | None = None
    callee_turns: int = 0
    reasons: tuple[str, ...] = ()
    abstain_reason: str = ""


def measure(caller_active: BoolArray, callee_active: BoolArray) -> BehaviourResult:
    """Turn-taking measurements and the score from two activity tracks."""
    n = min(len(caller_active), len(callee_active))
    a, b = caller_active[:n], callee_active[:n]
    turns = runs(b, round(MIN_TURN_S / FRAME_S))
    if a.sum() * FRAME_S < MIN_CALLER_SPEECH_S:
        return BehaviourResult(None, abstain_reason="caller_silent")
    if not turns:
        return BehaviourResult(None, abstain_reason="no_callee_turn")
    talk_over = float(np.sum(a & b)) / max(1, int(b.sum()))
    window = round(YIELD_WINDOW_S / FRAME_S)
    gap = round(0.3 / FRAME_S)
    interrupted = yielded = 0
    latencies: list[float] = []
    for start, stop in turns:
        if a[max(0, start - 2) : start + 1].any():
            interrupted += 1
            after = a[start : min(n, start + window + gap)]
            quiet = (
                np.convolve(~after, np.ones(gap, dtype=np.int64), mode="valid") if len(after) >= gap else None
            )
            if quiet is not None and bool(np.any(quiet >= gap)):
                yielded += 1
        if not a[max(0, stop - 2) : stop].any():
            following = np.flatnonzero(a[stop : min(n, stop + round(4.0 / FRAME_S))])
            if len(following):
                latencies.append(float(following[0]) * FRAME_S)
    yield_rate = yielded / interrupted if interrupted else None
    latency = float(np.median(latencies)) if latencies else None
    z = -2.0 + 5.0 * talk_over
    reasons: list[str] = []
    if talk_over >= 0.4:
        reasons.append("AUDIO_TALKS_OVER_CALLEE")
    if yield_rate is not None:
        z += 3.0 * (0.5 - yield_rate) * min(1.0, interrupted / 2)
        if yield_rate < 0.5 and interrupted >= 2:
            reasons.append("AUDIO_IGNORES_INTERRUPTIONS")
    if latency is not None and latency < 0.15:
        z += 0.5
    score = 1.0 / (1.0 + math.exp(-z))
    if score >= 0.5:
        reasons.insert(0, Reason.BOT_BEHAVIOUR)
    return BehaviourResult(
        score=score,
        talk_over=talk_over,
        yield_rate=yield_rate,
        latency_s=latency,
        callee_turns=len(turns),
        reasons=tuple(reasons),
    )


def analyse(caller: Audio, callee: Audio) -> BehaviourResult:
    """The bot-behaviour result of a two-leg segment."""
    return measure(voice_activity(caller), voice_activity(callee))
