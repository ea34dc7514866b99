"""Audio for the simulator's captured calls, rendered at replay time from the dataset's metadata.

A dataset's AudioSegmentMeta records carry no audio (datasets stay small and byte-identical per
seed); replay renders each one deterministically from (dataset seed, script id, voice id, call id):

- a call with a script id plays a recording: one fixed recording per script id (campaign
  robocalls' ``script-campaign-<n>``, and reminders' ``script-reminder``, an automated legitimate
  caller), cropped at a random answer point (5-30 s) through a random line condition; with a callee
  leg, the callee's replies go unanswered (the recording plays on);
- any other call is a conversation that takes turns, with a per-call script (impersonators'
  ``clone-<n>``: per victim), in the voice its voice id maps to.

Every voice is TTS (espeak-ng, flite when installed): the "human" voices too, since no real speech
is available offline. Media taps record both legs; honeypots (which never speak) only the caller's.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import multiprocessing
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from fraudmesh.v1 import dataset_pb2, events_pb2
from loadtest.audio import calls, phoneline, voices
from loadtest.audio.phoneline import RATE, Audio, LineCondition
from services.audio.segments import encode_pcmu
from services.common.topics import AUDIO_SEGMENTS
from training.dataset import read_records

RECORDING_SENTENCES = 8  # ≈ 35-40 s: longer than the longest crop, like a typical robocall message
CONVERSATION_S = (6.0, 15.0)
CAMPAIGN_VOICE = re.compile(r"tts-campaign-(\d+)")


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from its parts (the same on every machine and Python, unlike ``hash``)."""
    digest = hashlib.sha256("\x00".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@functools.cache
def engine_voices() -> tuple[str, ...]:
    """The voices rendering may use here: espeak-ng's, then flite's when flite is installed."""
    pool = [f"espeak:{v}" for v in voices.ESPEAK_VOICES]
    if voices.available("flite"):
        pool += [f"flite:{v}" for v in voices.FLITE_VOICES]
    return tuple(pool)


def voice_for(voice_id: str) -> str:
    """The engine voice a simulated voice id speaks with (campaign n → the n-th voice of the pool)."""
    pool = engine_voices()
    campaign = CAMPAIGN_VOICE.fullmatch(voice_id)
    index = int(campaign.group(1)) if campaign else stable_seed("voice", voice_id)
    return pool[index % len(pool)]


def line_condition(rng: np.random.Generator) -> LineCondition:
    """A random line between caller and tap: SNR 10-30 dB, loss 0-5 %, speed 0.98-1.02."""
    return LineCondition(
        snr_db=float(rng.uniform(10.0, 30.0)),
        loss=float(rng.uniform(0.0, 0.05)),
        speed=float(rng.uniform(0.98, 1.02)),
    )


@functools.lru_cache(maxsize=32)
def recording(seed: int, script_id: str, voice: str) -> Audio:
    """The one recording a script id plays in a dataset (rendered once per process)."""
    return voices.render(voices.script(stable_seed(seed, "script", script_id), RECORDING_SENTENCES), voice)


def _callee_leg(audio: Audio) -> Audio:
    """The callee's leg as the tap records it: local to the tap, so only the μ-law channel."""
    return phoneline.mulaw_round_trip(np.clip(audio, -1.0, 1.0).astype(np.float32))


def render_legs(meta: dataset_pb2.AudioSegmentMeta, seed: int) -> tuple[Audio, Audio | None]:
    """(caller leg, callee leg or None) for one captured call, deterministic for its inputs."""
    segment = meta.segment
    rng = np.random.default_rng(stable_seed(seed, "call", segment.call_id))
    condition = line_condition(rng)
    voice = voice_for(meta.voice_id)
    two_legs = segment.source != events_pb2.AUDIO_SOURCE_HONEYPOT
    if meta.script_id:
        caller = calls.answered_segment(recording(seed, meta.script_id, voice), rng, condition)
        if not two_legs:
            return caller, None
        replies = calls.callee_over_recording(len(caller), rng, stable_seed(seed, "reply", segment.call_id))
        return caller, _callee_leg(replies)
    if meta.voice_id.startswith("clone-"):
        script_seed = stable_seed(seed, "victim", meta.voice_id, segment.called_number)
    else:
        script_seed = stable_seed(seed, "script", segment.call_id)
    seconds = float(rng.uniform(*CONVERSATION_S))
    caller_clean, callee = calls.conversation(False, rng, script_seed, voice, seconds)
    caller = phoneline.through_line(caller_clean, dataclasses.replace(condition, speed=1.0), rng)
    return caller, (_callee_leg(callee) if two_legs else None)


def attach(meta: dataset_pb2.AudioSegmentMeta, seed: int) -> events_pb2.AudioSegment:
    """The metadata's AudioSegment with its μ-law legs filled in, ready for audio.segments.v1."""
    caller, callee = render_legs(meta, seed)
    segment = events_pb2.AudioSegment()
    segment.CopyFrom(meta.segment)
    del segment.legs[:]
    segment.encoding = events_pb2.AUDIO_ENCODING_PCMU
    segment.sample_rate_hz = RATE
    segment.legs.add(role=events_pb2.AUDIO_LEG_ROLE_CALLER, audio=encode_pcmu(caller))
    if callee is not None:
        segment.legs.add(role=events_pb2.AUDIO_LEG_ROLE_CALLEE, audio=encode_pcmu(callee))
    return segment


def captured(events: Path) -> list[dataset_pb2.AudioSegmentMeta]:
    """Every audio metadata record of an events file, in replay order."""
    return [r.audio for r in read_records(events) if r.WhichOneof("record") == "audio"]


def choose(
    metas: Sequence[dataset_pb2.AudioSegmentMeta], limit: int, seed: int
) -> list[dataset_pb2.AudioSegmentMeta]:
    """At most ``limit`` of them (a seeded uniform sample across the run, in replay order)."""
    if len(metas) <= limit:
        return list(metas)
    rng = np.random.default_rng(stable_seed(seed, "choose"))
    keep = np.sort(rng.choice(len(metas), limit, replace=False))
    return [metas[int(i)] for i in keep]


def _render_encoded(job: tuple[bytes, int]) -> tuple[str, bytes]:
    """Process-pool worker: serialized metadata → (segment id, encoded audio.segments.v1 value)."""
    meta = dataset_pb2.AudioSegmentMeta.FromString(job[0])
    segment = attach(meta, job[1])
    return segment.segment_id, AUDIO_SEGMENTS.codec().encode(segment)


def render_all(
    metas: Sequence[dataset_pb2.AudioSegmentMeta],
    seed: int,
    workers: int,
    progress: Callable[[int], None] | None = None,
) -> dict[str, bytes]:
    """Render every segment in ``workers`` processes: segment id → encoded AudioSegment."""
    jobs = [(m.SerializeToString(), seed) for m in metas]
    out: dict[str, bytes] = {}
    with ProcessPoolExecutor(max(1, workers), mp_context=multiprocessing.get_context("spawn")) as pool:
        for segment_id, value in pool.map(_render_encoded, jobs, chunksize=4):
            out[segment_id] = value
            if progress is not None:
                progress(len(out))
    return out
