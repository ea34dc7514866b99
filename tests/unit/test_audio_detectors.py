"""Fingerprints, turn-taking and the synthetic-voice baseline on generated audio (no network)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadtest.audio import calls, phoneline, voices
from loadtest.audio.phoneline import LineCondition
from services.audio import behaviour, fingerprint
from services.audio.settings import DEFAULT_MODEL
from services.audio.synthetic import LfccLogisticDetector


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), st.integers(0, 103)), max_size=200))
def test_pair_kernel_matches_its_reference(points: list[tuple[int, int]]) -> None:
    ordered = sorted(set(points))
    peak_t = np.array([p[0] for p in ordered], dtype=np.int64)
    peak_f = np.array([p[1] for p in ordered], dtype=np.int64)
    got = fingerprint._pairs(peak_t, peak_f, 6)
    want = fingerprint.pairs_reference(peak_t, peak_f, 6)
    assert np.array_equal(got[0], want[0])
    assert np.array_equal(got[1], want[1])


def _index(recordings: list[np.ndarray]) -> dict[int, list[tuple[int, int]]]:
    index: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for number, audio in enumerate(recordings):
        fp = fingerprint.fingerprint(audio)
        for h, t in zip(fp.hashes.tolist(), fp.times.tolist(), strict=True):
            index[h].append((number, t))
    return index


def _best(index: dict[int, list[tuple[int, int]]], audio: np.ndarray) -> fingerprint.Match | None:
    hashes, starts, times = fingerprint.query_layout(fingerprint.fingerprint(audio))
    recs: list[int] = []
    ts: list[int] = []
    p_starts = [0]
    for h in hashes.tolist():
        recs.extend(r for r, _ in index.get(h, []))
        ts.extend(t for _, t in index.get(h, []))
        p_starts.append(len(recs))
    found = fingerprint.vote(
        starts,
        times,
        np.array(p_starts, dtype=np.int64),
        np.array(recs, dtype=np.int64),
        np.array(ts, dtype=np.int64),
    )
    return found[0] if found else None


def test_a_noisy_lossy_crop_matches_its_recording_and_another_script_does_not() -> None:
    rng = np.random.default_rng(5)
    recordings = [voices.render(voices.script(seed), "espeak:en-us") for seed in (11, 12, 13)]
    index = _index(recordings)
    for number, recording in enumerate(recordings):
        crop = calls.answered_segment(recording, rng, LineCondition(snr_db=10, loss=0.05), min_s=5, max_s=5)
        match = _best(index, crop)
        assert match is not None
        assert match.recording == number
        assert match.coverage >= 0.6
    other = phoneline.through_line(
        voices.render(voices.script(14), "espeak:en-us"), LineCondition(snr_db=30), rng
    )
    match = _best(index, other[: 10 * 8000])
    assert match is None or match.coverage < 0.6


def test_fingerprinting_is_far_faster_than_real_time() -> None:
    audio = voices.render(voices.script(21), "espeak:en-us")
    fingerprint.fingerprint(audio)
    import time

    started = time.perf_counter()
    fingerprint.fingerprint(audio)
    assert len(audio) / 8000 / (time.perf_counter() - started) > 20  # loose: shared CI cores


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_recording_that_plays_on_scores_as_a_bot_and_a_turn_taker_does_not(seed: int) -> None:
    rng = np.random.default_rng(seed)
    bot = behaviour.analyse(*calls.conversation(True, rng, seed))
    person = behaviour.analyse(*calls.conversation(False, rng, seed))
    assert bot.score is not None
    assert person.score is not None
    assert bot.score > 0.5 > person.score
    assert "BOT_BEHAVIOUR" in bot.reasons
    assert bot.talk_over > person.talk_over


def test_behaviour_abstains_without_a_callee_turn() -> None:
    caller = voices.render(voices.script(3), "espeak:en-us")
    result = behaviour.analyse(caller, np.zeros_like(caller))
    assert result.score is None
    assert result.abstain_reason == "no_callee_turn"


def test_the_shipped_synthetic_detector_scores_speech_and_abstains_on_little_or_poor_audio() -> None:
    detector = LfccLogisticDetector.from_path(DEFAULT_MODEL)
    rng = np.random.default_rng(2)
    speech = phoneline.through_line(
        voices.render(voices.script(4), "espeak:en-us"), LineCondition(snr_db=30), rng
    )
    scored = detector.score(speech)
    assert scored.score is not None
    assert 0.0 <= scored.score <= 1.0
    assert detector.score(speech[:4000]).abstain_reason == "too_little_speech"
    noisy = phoneline.through_line(
        voices.render(voices.script(4), "espeak:en-us"), LineCondition(snr_db=0), rng
    )
    assert detector.score(noisy).score is None
