"""Offline speech corpora for training and evaluating the audio detectors.

Real speech comes from Debian packages fetched with ``apt-get download`` and unpacked with
``dpkg-deb -x`` (no install): the Asterisk core sound prompts of four professional speakers (en,
fr, it, ru) and pocketsphinx's test recordings. Prompts are short, so each utterance joins a
speaker's prompts (files under 0.5 s dropped) into 4-8 s. Studio prompts are a confound: real
calls are not read in a studio, so "real" here also means "clean and well-recorded".
Synthetic speech is rendered by ``loadtest.audio.voices``.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import numpy as np

from loadtest.audio.phoneline import Audio, resample
from loadtest.audio.voices import read_wav, render

PACKAGES = (
    "asterisk-core-sounds-en-wav",
    "asterisk-core-sounds-fr-wav",
    "asterisk-core-sounds-it-wav",
    "asterisk-core-sounds-ru-wav",
    "pocketsphinx-testdata",
)
SPEAKERS = {
    "asterisk-en-allison": "en_US_f_Allison",
    "asterisk-fr-june": "fr_CA_f_June",
    "asterisk-it-carlo": "it_IT_m_Carlo",
    "asterisk-ru-ivr": "ru_RU_f_IvrvoiceRU",
}
SENTENCES = (
    "Your account has been temporarily limited, please confirm your details.",
    "We are calling about the recent order you placed with our online store.",
    "This is a reminder that your appointment is scheduled for tomorrow afternoon.",
    "Please hold while we connect you to the next available representative.",
    "A suspicious payment was attempted with your card in another country.",
    "Your parcel could not be delivered because the address was incomplete.",
    "To continue in English, press one. For other languages, press two.",
    "The balance on your loan is overdue and a late fee will be added.",
    "We detected a login to your account from a new device this morning.",
    "Thank you for being a valued customer for more than five years.",
    "Your prescription is ready to be collected at the pharmacy counter.",
    "The weather service has issued a warning for strong winds tonight.",
    "Our records show that you are eligible for a lower interest rate.",
    "Please say the reason for your call after the tone.",
    "We will send a verification code to the number on your file.",
    "If you did not authorise this transaction, stay on the line.",
)


def fetch(cache: Path) -> Path:
    """Download and unpack the corpus packages once; returns the unpacked root."""
    root = cache / "root"
    stamp = cache / ".unpacked"
    if stamp.exists():
        return root
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=debs, check=True, capture_output=True)  # noqa: S603, S607
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)  # noqa: S603, S607
    stamp.touch()
    return root


def _clips(root: Path, speaker: str) -> list[Audio]:
    if speaker == "pocketsphinx":
        out = []
        for raw in sorted((root / "usr/share/pocketsphinx/test/data").glob("*.raw")):
            samples = np.frombuffer(raw.read_bytes(), dtype="<i2").astype(np.float32) / 32768
            out.append(resample(samples, 16000))
        return out
    clips = []
    for path in sorted((root / "usr/share/asterisk/sounds" / SPEAKERS[speaker]).rglob("*.wav")):
        try:
            samples, rate = read_wav(path.read_bytes())
        except (ValueError, EOFError):
            continue
        if len(samples) >= 0.5 * rate:
            clips.append(resample(samples, rate))
    return clips


def real_utterances(root: Path, speaker: str, count: int, seed: int = 0) -> list[Audio]:
    """``count`` utterances of 4-8 s by one real speaker (joined prompts, 0.2-0.5 s pauses)."""
    clips = _clips(root, speaker)
    rng = random.Random(seed)
    out: list[Audio] = []
    if speaker == "pocketsphinx":
        for clip in clips:
            for start in range(0, max(1, len(clip) - 4 * 8000), 3 * 8000):
                out.append(clip[start : start + 8 * 8000])
        return out[:count]
    for _ in range(count):
        target = rng.uniform(4, 8) * 8000
        parts: list[Audio] = []
        length = 0
        while length < target:
            clip = rng.choice(clips)
            parts.extend([clip, np.zeros(int(rng.uniform(0.2, 0.5) * 8000), dtype=np.float32)])
            length += len(clip) + len(parts[-1])
        joined = np.concatenate(parts).astype(np.float32)
        out.append((joined * (0.7 / (np.max(np.abs(joined)) + 1e-9))).astype(np.float32))
    return out


def tts_utterances(voice: str, count: int, seed: int = 0) -> list[Audio]:
    """``count`` utterances of one or two sentences by a TTS voice."""
    rng = random.Random(seed)
    return [render(" ".join(rng.sample(SENTENCES, k=rng.choice((1, 2)))), voice) for _ in range(count)]
