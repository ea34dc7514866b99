"""Replay-time audio for captured calls: deterministic rendering and voice mapping (no network)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from fraudmesh.v1 import dataset_pb2, events_pb2
from loadtest.audio import attach, calls, voices
from services.audio.segments import decode

needs_espeak = pytest.mark.skipif(not voices.available("espeak"), reason="espeak-ng is not installed")
SEED = 7


def _meta(
    call_id: str,
    script_id: str = "",
    voice_id: str = "human-subscriber-1",
    source: events_pb2.AudioSource.ValueType = events_pb2.AUDIO_SOURCE_MEDIA_TAP,
    called: str = "+8613800000001",
) -> dataset_pb2.AudioSegmentMeta:
    return dataset_pb2.AudioSegmentMeta(
        segment=events_pb2.AudioSegment(
            segment_id=f"segment-{call_id}",
            call_id=call_id,
            tenant="demo-cn",
            calling_number="+8617000000001",
            called_number=called,
            source=source,
            encoding=events_pb2.AUDIO_ENCODING_PCMU,
            sample_rate_hz=8000,
        ),
        script_id=script_id,
        voice_id=voice_id,
        synthetic_voice=bool(script_id),
    )


@pytest.fixture
def espeak_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Voices as on a machine without flite."""
    real = voices.available
    monkeypatch.setattr(voices, "available", lambda engine: engine != "flite" and real(engine))
    attach.engine_voices.cache_clear()
    yield
    attach.engine_voices.cache_clear()


def test_stable_seeds_depend_only_on_their_parts() -> None:
    assert attach.stable_seed(7, "call", "a") == attach.stable_seed(7, "call", "a")
    assert attach.stable_seed(7, "call", "a") != attach.stable_seed(8, "call", "a")
    assert 0 <= attach.stable_seed("x") < 2**63


@pytest.mark.usefixtures("espeak_only")
def test_voice_ids_map_onto_installed_engines_without_flite() -> None:
    pool = attach.engine_voices()
    assert pool == tuple(f"espeak:{v}" for v in voices.ESPEAK_VOICES)
    assert attach.voice_for("tts-campaign-0") == pool[0]
    assert attach.voice_for("tts-campaign-1") == pool[1]
    assert attach.voice_for(f"tts-campaign-{len(pool)}") == pool[0]
    for voice_id in ("clone-2765", "human-subscriber-3", "tts-standard"):
        assert attach.voice_for(voice_id) in pool
        assert attach.voice_for(voice_id) == attach.voice_for(voice_id)
    assert len({attach.voice_for(f"human-subscriber-{i}") for i in range(40)}) > 3


def test_choose_is_a_seeded_sample_in_replay_order() -> None:
    metas = [_meta(f"call-{i}") for i in range(50)]
    chosen = attach.choose(metas, 10, SEED)
    assert len(chosen) == 10
    order = [metas.index(m) for m in chosen]
    assert order == sorted(order)
    assert chosen == attach.choose(metas, 10, SEED)
    assert chosen != attach.choose(metas, 10, SEED + 1)
    assert attach.choose(metas, 100, SEED) == metas


@needs_espeak
def test_rendering_is_deterministic_per_seed_and_call() -> None:
    meta = _meta("call-1", "script-campaign-0", "tts-campaign-0")
    first = attach.attach(meta, SEED)
    assert first == attach.attach(meta, SEED)
    assert (
        first.legs[0].audio
        != attach.attach(_meta("call-2", "script-campaign-0", "tts-campaign-0"), SEED).legs[0].audio
    )
    assert first.legs[0].audio != attach.attach(meta, SEED + 1).legs[0].audio
    assert attach.recording(SEED, "script-campaign-0", "espeak:en-us") is attach.recording(
        SEED, "script-campaign-0", "espeak:en-us"
    )


@needs_espeak
def test_a_campaign_call_plays_a_crop_over_the_callee_and_honeypots_record_one_leg() -> None:
    tapped = attach.attach(_meta("call-1", "script-campaign-1", "tts-campaign-1"), SEED)
    assert [leg.role for leg in tapped.legs] == [
        events_pb2.AUDIO_LEG_ROLE_CALLER,
        events_pb2.AUDIO_LEG_ROLE_CALLEE,
    ]
    legs = decode(tapped, max_seconds=35, min_seconds=0.5)
    assert 5.0 * 0.97 <= legs.seconds <= 30.0 / 0.97
    assert legs.callee is not None
    assert len(legs.callee) == len(legs.caller)
    honeypot = attach.attach(
        _meta("call-1", "script-campaign-1", "tts-campaign-1", events_pb2.AUDIO_SOURCE_HONEYPOT), SEED
    )
    assert [leg.role for leg in honeypot.legs] == [events_pb2.AUDIO_LEG_ROLE_CALLER]
    assert honeypot.segment_id == "segment-call-1"
    assert honeypot.calling_number == "+8617000000001"


@needs_espeak
def test_people_and_impersonators_take_turns_with_scripts_of_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    person = attach.attach(_meta("call-3"), SEED)
    legs = decode(person, max_seconds=35, min_seconds=0.5)
    assert attach.CONVERSATION_S[0] <= legs.seconds <= attach.CONVERSATION_S[1] + 0.01
    assert legs.callee is not None
    scripts: list[tuple[bool, int]] = []
    real = calls.conversation

    def spy(bot: bool, rng: np.random.Generator, script_seed: int, voice: str, seconds: float) -> Any:
        scripts.append((bot, script_seed))
        return real(bot, rng, script_seed, voice, seconds)

    monkeypatch.setattr(calls, "conversation", spy)
    victim, other = "+8613800000009", "+8613800000010"
    for call_id, voice_id, called in (
        ("call-4", "clone-12", victim),
        ("call-5", "clone-12", victim),
        ("call-6", "clone-12", other),
        ("call-7", "human-subscriber-1", victim),
        ("call-8", "human-subscriber-1", victim),
    ):
        attach.render_legs(_meta(call_id, voice_id=voice_id, called=called), SEED)
    assert not any(bot for bot, _ in scripts)
    seeds = [seed for _, seed in scripts]
    assert seeds[0] == seeds[1]  # one script per victim
    assert len(set(seeds[1:])) == 4  # another victim, and each person's call, gets its own
