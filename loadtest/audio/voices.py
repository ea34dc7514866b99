"""Voices that read scripts, offline: espeak-ng and flite (Debian), piper when installed.

``render(text, voice)`` returns 8 kHz float32 audio in [-1, 1]. Voices are named
``engine:voice`` (``espeak:en-us``, ``espeak:en-us+m3``, ``flite:slt``, ``piper:joe``). Scripts are
generated from a seed so tests and benchmarks never ship audio files.
"""

from __future__ import annotations

import functools
import io
import random
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.audio.phoneline import Audio, resample

ESPEAK_VOICES = ("en-us", "en-us+m3", "en-us+f2", "en-gb", "en-us+m7", "en-gb-x-rp+f4")
FLITE_VOICES = ("kal", "awb", "rms", "slt")


class VoiceUnavailableError(RuntimeError):
    """The engine for a voice is not installed on this machine."""


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """PCM16 mono/stereo WAV bytes → float samples (first channel) and rate."""
    with wave.open(io.BytesIO(data)) as wav:
        rate = wav.getframerate()
        channels = wav.getnchannels()
        if wav.getsampwidth() != 2:
            raise ValueError("only 16-bit WAV is supported")
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return frames[::channels].astype(np.float32) / 32768.0, rate


def available(engine: str) -> bool:
    """Whether an engine can be used here."""
    if engine == "espeak":
        return shutil.which("espeak-ng") is not None
    if engine == "flite":
        return shutil.which("flite") is not None
    if engine == "piper":
        try:
            import piper  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
        except ImportError:
            return False
        return True
    return False


def _run(argv: list[str], text: str) -> bytes:
    done = subprocess.run(argv, input=text.encode(), capture_output=True, check=False, timeout=60)  # noqa: S603
    if done.returncode != 0 or not done.stdout:
        raise RuntimeError(f"{argv[0]} failed: {done.stderr.decode(errors='replace')[:200]}")
    return done.stdout


@functools.lru_cache(maxsize=512)
def render(text: str, voice: str, rate_wpm: int = 165) -> Audio:
    """Speak ``text`` with ``voice`` (``engine:name``) → 8 kHz float32."""
    engine, _, name = voice.partition(":")
    if not available(engine):
        raise VoiceUnavailableError(voice)
    if engine == "espeak":
        raw = _run(["espeak-ng", "-v", name, "-s", str(rate_wpm), "--stdout"], text)
    elif engine == "flite":
        raw = _flite(text, name)
    elif engine == "piper":
        raw = _piper(text, name)
    else:
        raise VoiceUnavailableError(voice)
    samples, rate = read_wav(raw)
    out = resample(samples, rate)
    peak = float(np.max(np.abs(out))) + 1e-9
    return (out * (0.7 / peak)).astype(np.float32)


def _flite(text: str, name: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        done = subprocess.run(  # noqa: S603
            ["flite", "-voice", name, "-t", text, "-o", str(out)],  # noqa: S607
            capture_output=True,
            check=False,
            timeout=120,
        )
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"flite failed: {done.stderr.decode(errors='replace')[:200]}")
        return out.read_bytes()


def _piper(text: str, name: str) -> bytes:  # pragma: no cover - only where piper is installed
    from piper import PiperVoice  # type: ignore[import-not-found,unused-ignore]

    voice = _piper_voice(name)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        voice.synthesize_wav(text, wav)
    del PiperVoice
    return buffer.getvalue()


@functools.lru_cache(maxsize=4)
def _piper_voice(name: str) -> Any:  # pragma: no cover - only where piper is installed
    import importlib.resources

    from piper import PiperVoice  # type: ignore[import-not-found,unused-ignore]

    package = f"{name}_us_piper_voice"
    data = importlib.resources.files(package) / "data"
    model = next(str(p) for p in data.iterdir() if str(p).endswith(".onnx"))
    return PiperVoice.load(model)


_SUBJECTS = (
    "the tax office",
    "your bank's security team",
    "the social insurance bureau",
    "your electricity company",
    "the customs clearance centre",
    "the police cybercrime unit",
    "your mobile network operator",
    "the parcel delivery service",
    "the immigration department",
    "your health insurer",
    "the court clerk",
    "the student loan agency",
    "your credit card issuer",
    "the water utility",
    "the pension fund",
    "the vehicle registration office",
    "an online shopping platform",
    "the lottery commission",
)
_EVENTS = (
    "detected unusual activity on",
    "frozen",
    "suspended",
    "flagged for review",
    "found a problem with",
    "received a complaint about",
    "scheduled the closure of",
    "approved a refund for",
    "blocked a payment from",
    "opened an investigation into",
    "noticed a duplicate charge on",
    "marked as overdue",
)
_OBJECTS = (
    "your savings account",
    "your identity card",
    "your parcel from overseas",
    "your monthly bill",
    "your insurance policy",
    "your phone line",
    "your travel visa",
    "your pension payments",
    "your driving licence",
    "your loan application",
    "your online store order",
    "your prize claim",
)
_ASKS = (
    "press {n} to speak with an officer",
    "stay on the line for verification",
    "have your bank card ready",
    "say your full name after the tone",
    "transfer the balance to the protected account",
    "call back before {hour} o'clock today",
    "do not tell anyone about this call",
    "confirm the code we send by text message",
    "visit the nearest branch with {n} documents",
    "install the support application we recommend",
)
_WHEN = (
    "today",
    "within {n} hours",
    "by tomorrow morning",
    "this evening",
    "before the weekend",
    "immediately",
)


def script(seed: int, sentences: int = 6) -> str:
    """A robocall script; texts of different seeds share words but not sentences (same seed, same text)."""
    rng = random.Random(seed)

    def fill(template: str) -> str:
        return template.format(n=rng.randint(2, 9), hour=rng.randint(1, 11))

    parts = [f"Hello, this is {rng.choice(_SUBJECTS)} with case number {rng.randint(10000, 99999)}."]
    for _ in range(sentences - 1):
        amount = rng.randint(120, 9800)
        parts.append(
            rng.choice(
                (
                    f"We have {rng.choice(_EVENTS)} {rng.choice(_OBJECTS)} {fill(rng.choice(_WHEN))}.",
                    f"A charge of {amount} dollars on {rng.choice(_OBJECTS)} needs your attention.",
                    f"To avoid penalties, please {fill(rng.choice(_ASKS))}.",
                    f"{rng.choice(_SUBJECTS).capitalize()} has {rng.choice(_EVENTS)} {rng.choice(_OBJECTS)}.",
                    f"Your reference is {rng.randint(100, 999)} {rng.randint(100, 999)}, "
                    f"so please {fill(rng.choice(_ASKS))}.",
                )
            )
        )
    return " ".join(parts)


def reply(seed: int) -> str:
    """Something a callee says: short, varied."""
    rng = random.Random(seed)
    return rng.choice(
        (
            "Hello? Who is this?",
            "Sorry, I can't hear you very well.",
            "I don't have an account with you.",
            "Wait, what is this about?",
            "No thanks, please remove my number.",
            "Can you repeat that please?",
            "Hold on, let me get a pen.",
            "Is this a real person?",
            "Yes, speaking.",
            "I'm busy right now, call me later.",
        )
    )
