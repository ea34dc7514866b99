"""Constructed calls for tests and benchmarks: campaign segments and two-leg conversations.

A robocall's caller leg is a recording that plays on whatever the callee says; a person's caller
leg speaks a sentence, waits for the callee's reply, answers after a human latency, and stops
when interrupted. Both are built from TTS so the turn-taking, not the voice, is what differs.
Constructed conversations are a simplification of real ones (no backchannel, no crosstalk echo).
"""

from __future__ import annotations

import re

import numpy as np

from fraudmesh.v1 import events_pb2
from loadtest.audio import phoneline, voices
from loadtest.audio.phoneline import RATE, Audio, LineCondition
from services.audio.segments import encode_pcmu


def answered_segment(
    recording: Audio,
    rng: np.random.Generator,
    condition: LineCondition,
    min_s: float = 5.0,
    max_s: float = 30.0,
) -> Audio:
    """What a callee's tap captures: the recording from a random answer point, through the line."""
    total = len(recording) / RATE
    length = float(rng.uniform(min_s, min(max_s, max(min_s, total))))
    start = float(rng.uniform(0, max(0.0, total - length)))
    return phoneline.through_line(phoneline.crop(recording, start, length), condition, rng)


def _place(track: Audio, clip: Audio, at: int) -> int:
    if at >= len(track):
        return at
    end = min(len(track), at + len(clip))
    track[at:end] += clip[: end - at]
    return end


def callee_voice_name() -> str:
    """The voice every constructed callee speaks with (flite when installed, else espeak)."""
    return "flite:kal" if voices.available("flite") else "espeak:en-us+f2"


def callee_over_recording(samples: int, rng: np.random.Generator, reply_seed: int) -> Audio:
    """A callee's leg while a recording plays: short replies every few seconds, never answered."""
    callee = np.zeros(samples, dtype=np.float32)
    voice = callee_voice_name()
    at = int(rng.uniform(1.0, 3.0) * RATE)
    k = 0
    while at < samples - RATE:
        end = _place(callee, voices.render(voices.reply(reply_seed * 31 + k), voice), at)
        at = end + int(rng.uniform(1.5, 4.0) * RATE)
        k += 1
    return callee


def conversation(
    bot: bool, rng: np.random.Generator, script_seed: int, voice: str = "espeak:en-us", seconds: float = 20.0
) -> tuple[Audio, Audio]:
    """(caller leg, callee leg) of a constructed call; ``bot`` plays on, otherwise takes turns."""
    n = int(seconds * RATE)
    caller = np.zeros(n, dtype=np.float32)
    callee = np.zeros(n, dtype=np.float32)
    callee_voice = callee_voice_name()
    sentences = [s for s in re.split(r"(?<=[.?!])\s+", voices.script(script_seed, sentences=8)) if s]
    if bot:
        recording = voices.render(" ".join(sentences), voice)
        _place(caller, recording, int(rng.uniform(0.2, 1.0) * RATE))
        return caller, callee_over_recording(n, rng, script_seed)
    at = int(rng.uniform(0.2, 1.0) * RATE)
    for k, sentence in enumerate(sentences):
        if at >= n - RATE:
            break
        speech = voices.render(sentence, voice)
        if rng.random() < 0.35 and len(speech) > 1.5 * RATE:
            cut = int(rng.uniform(0.8, len(speech) / RATE - 0.5) * RATE)
            stop = int(rng.uniform(0.15, 0.5) * RATE)
            _place(caller, speech[: cut + stop], at)
            at += cut
        else:
            at = _place(caller, speech, at)
            at += int(rng.uniform(0.2, 0.8) * RATE)
        at = _place(callee, voices.render(voices.reply(script_seed * 31 + k), callee_voice), at)
        at += int(rng.uniform(0.25, 0.9) * RATE)
    return caller, callee


def segment(
    segment_id: str,
    calling: str,
    called: str,
    caller_leg: Audio,
    callee_leg: Audio | None = None,
    tenant: str = "demo-cn",
    start_ms: int | None = None,
) -> events_pb2.AudioSegment:
    """An audio.segments.v1 record carrying μ-law legs, as a media tap would publish it."""
    record = events_pb2.AudioSegment(
        segment_id=segment_id,
        call_id=f"call-{segment_id}",
        tenant=tenant,
        calling_number=calling,
        called_number=called,
        source=events_pb2.AUDIO_SOURCE_MEDIA_TAP,
        encoding=events_pb2.AUDIO_ENCODING_PCMU,
        sample_rate_hz=RATE,
    )
    record.legs.add(role=events_pb2.AUDIO_LEG_ROLE_CALLER, audio=encode_pcmu(caller_leg))
    if callee_leg is not None:
        record.legs.add(role=events_pb2.AUDIO_LEG_ROLE_CALLEE, audio=encode_pcmu(callee_leg))
    if start_ms is not None:
        record.start_time.FromMilliseconds(start_ms)
    return record
