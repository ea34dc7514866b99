"""Synthetic-voice detection: a pluggable interface and an honest baseline (LFCC + logistic regression).

The baseline summarises a leg's voiced frames by the mean and spread of 20 linear-frequency
cepstral coefficients and their deltas (LFCC keeps the high-frequency detail where vocoders leave
traces, which mel scales blur), scores them with a logistic regression, and maps the score through
Platt calibration fitted on held-out data. It abstains on too little speech or poor audio. It is a
side signal: the evaluation in ``bench.audio`` holds whole TTS engines and real speakers out of
training, and on unseen engines it is far weaker than on the ones it was trained on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from services.audio.behaviour import FRAME, voice_activity
from services.audio.segments import Audio

RATE = 8000
N_FFT = 256
HOP = 80
N_FILTERS = 20
N_CEPS = 20
MIN_SPEECH_S = 2.0
MIN_SNR_DB = 10.0
MAX_CLIPPED = 0.02

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SyntheticResult:
    """A calibrated probability that the voice is synthetic, or None with why it abstained."""

    score: float | None
    abstain_reason: str = ""


class SyntheticVoiceDetector(Protocol):
    """What the audio service needs from a synthetic-voice detector."""

    version: str

    def score(self, audio: Audio) -> SyntheticResult:
        """Score one leg of 8 kHz audio."""
        ...


def _linear_filterbank() -> FloatArray:
    bins = N_FFT // 2 + 1
    edges = np.linspace(0, bins - 1, N_FILTERS + 2)
    bank = np.zeros((N_FILTERS, bins))
    grid = np.arange(bins)
    for i in range(N_FILTERS):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        bank[i] = np.clip(np.minimum((grid - lo) / (mid - lo), (hi - grid) / (hi - mid)), 0, None)
    return bank


_BANK = _linear_filterbank()
_DCT = np.cos(np.pi / N_FILTERS * (np.arange(N_FILTERS)[None, :] + 0.5) * np.arange(N_CEPS)[:, None])
_WINDOW = np.hamming(160)


def lfcc(audio: Audio) -> FloatArray:
    """Frames x 20 LFCCs (20 ms Hamming frames every 10 ms, 20 linear triangular filters)."""
    if len(audio) < 160:
        return np.zeros((0, N_CEPS))
    frames = np.lib.stride_tricks.sliding_window_view(audio.astype(np.float64), 160)[::HOP] * _WINDOW
    power = np.abs(np.fft.rfft(frames, N_FFT, axis=1)) ** 2
    out: FloatArray = np.log(power @ _BANK.T + 1e-10) @ _DCT.T
    return out


def features(audio: Audio) -> tuple[FloatArray | None, str]:
    """The utterance-level feature vector of one leg, or None and why the audio is unusable."""
    active = voice_activity(audio)
    if active.sum() * FRAME / RATE < MIN_SPEECH_S:
        return None, "too_little_speech"
    if float(np.mean(np.abs(audio) > 0.99)) > MAX_CLIPPED:
        return None, "clipped"
    frames = len(audio) // FRAME
    energy = np.mean(audio[: frames * FRAME].reshape(frames, FRAME) ** 2, axis=1) + 1e-12
    if 10 * np.log10(np.percentile(energy, 95) / np.percentile(energy, 15)) < MIN_SNR_DB:
        return None, "poor_audio"  # loud frames barely above quiet ones: noise masks the voice
    ceps = lfcc(audio)
    frame_active = np.repeat(active, FRAME // HOP)[: len(ceps)]
    ceps = ceps[: len(frame_active)][frame_active[: len(ceps)]]
    if len(ceps) < 20:
        return None, "too_little_speech"
    ceps = ceps - ceps.mean(axis=0)  # cepstral mean normalisation: removes the channel's tilt
    delta = np.gradient(ceps, axis=0)
    return np.concatenate([ceps.std(axis=0), np.abs(delta).mean(axis=0), delta.std(axis=0)]), ""


@dataclass(frozen=True)
class LogisticModel:
    """Standardisation, logistic weights and Platt calibration, with how they were trained."""

    mean: FloatArray
    scale: FloatArray
    weights: FloatArray
    bias: float
    platt_a: float
    platt_b: float
    version: str
    card: dict[str, Any]

    def raw(self, x: FloatArray) -> FloatArray:
        """Logit before calibration."""
        return ((x - self.mean) / self.scale) @ self.weights + self.bias

    def probability(self, x: FloatArray) -> FloatArray:
        """Calibrated probability of synthetic speech."""
        return 1.0 / (1.0 + np.exp(-(self.platt_a * self.raw(x) + self.platt_b)))

    def save(self, path: Path) -> None:
        """Write the model as JSON (small enough for git)."""
        path.write_text(
            json.dumps(
                {
                    "version": self.version,
                    "mean": self.mean.round(6).tolist(),
                    "scale": self.scale.round(6).tolist(),
                    "weights": self.weights.round(6).tolist(),
                    "bias": round(self.bias, 6),
                    "platt": [round(self.platt_a, 6), round(self.platt_b, 6)],
                    "card": self.card,
                },
                indent=1,
            )
            + "\n"
        )

    @classmethod
    def load(cls, path: Path) -> LogisticModel:
        """Read a model written by ``save``."""
        doc = json.loads(path.read_text())
        return cls(
            mean=np.array(doc["mean"]),
            scale=np.array(doc["scale"]),
            weights=np.array(doc["weights"]),
            bias=float(doc["bias"]),
            platt_a=float(doc["platt"][0]),
            platt_b=float(doc["platt"][1]),
            version=str(doc["version"]),
            card=dict(doc.get("card", {})),
        )


def fit_logistic(x: FloatArray, y: FloatArray, l2: float = 1.0, steps: int = 50) -> tuple[FloatArray, float]:
    """L2-regularised logistic regression by Newton's method (weights, bias)."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(xb.shape[1])
    reg = np.full(xb.shape[1], l2)
    reg[-1] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(xb @ w)))
        grad = xb.T @ (p - y) + reg * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w[:-1], float(w[-1])


def train(
    x: FloatArray, y: FloatArray, x_cal: FloatArray, y_cal: FloatArray, version: str, card: dict[str, Any]
) -> LogisticModel:
    """Fit on (x, y), calibrate on the held-out (x_cal, y_cal)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-9
    weights, bias = fit_logistic((x - mean) / scale, y)
    logits = ((x_cal - mean) / scale) @ weights + bias
    a, b = fit_logistic(logits[:, None], y_cal, l2=1e-3)
    return LogisticModel(mean, scale, weights, bias, float(a[0]), b, version, card)


class LfccLogisticDetector:
    """The shipped baseline detector (see the module doc)."""

    def __init__(self, model: LogisticModel) -> None:
        self.model = model
        self.version = model.version

    @classmethod
    def from_path(cls, path: Path) -> LfccLogisticDetector:
        """Load the model file named by ``FRAUDMESH_SYNTHETIC_MODEL_PATH``."""
        return cls(LogisticModel.load(path))

    def score(self, audio: Audio) -> SyntheticResult:
        """Calibrated synthetic-voice probability, or an abstention."""
        x, why = features(audio)
        if x is None:
            return SyntheticResult(None, why)
        return SyntheticResult(float(self.model.probability(x[None, :])[0]))
