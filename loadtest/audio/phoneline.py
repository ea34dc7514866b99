"""A phone-line simulator: what happens to a recording between a robocaller and a media tap.

Band-pass to the telephone band, optional speed change (a re-clocked or time-stretched playout),
gain, additive noise at a target SNR, G.711 μ-law round trip and packet loss in 20 ms packets
(zero-filled, no concealment: the worst case). All randomness comes from the caller's Generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from services.audio import g711

RATE = 8000
PACKET = 160  # 20 ms at 8 kHz

Audio = npt.NDArray[np.float32]


def fft_length(n: int) -> int:
    """The smallest length >= n with no prime factor above 7 (FFTs of such lengths are fast)."""
    best = 1 << max(0, (n - 1).bit_length())
    for f7 in (1, 7, 49):
        for f5 in (1, 5, 25, 125):
            for f3 in (1, 3, 9, 27, 81):
                m = f7 * f5 * f3
                if m >= best:
                    continue
                candidate = m << max(0, (-(-n // m) - 1).bit_length())
                best = min(best, candidate)
    return best


def resample(x: npt.NDArray[np.floating], rate_in: int, rate_out: int = RATE) -> Audio:
    """Band-limited resampling by FFT, zero-padded to a fast FFT length (exact ratio kept)."""
    if rate_in == rate_out:
        return x.astype(np.float32)
    common = math.gcd(rate_in, rate_out)
    step_in, step_out = rate_in // common, rate_out // common
    blocks = fft_length(-(-len(x) // step_in))
    n_in, n_out = step_in * blocks, step_out * blocks
    spectrum = np.fft.rfft(x, n_in)
    keep = min(len(spectrum), n_out // 2 + 1)
    out = np.fft.irfft(spectrum[:keep], n_out) * (n_out / n_in)
    return out[: round(len(x) * rate_out / rate_in)].astype(np.float32)


def band_pass(x: Audio, low_hz: float = 300.0, high_hz: float = 3400.0) -> Audio:
    """The telephone band, with raised-cosine edges 100 Hz wide."""
    n = fft_length(len(x))
    spectrum = np.fft.rfft(x, n)
    freqs = np.fft.rfftfreq(n, 1.0 / RATE)
    gain = np.ones_like(freqs)
    gain[freqs < low_hz - 100] = 0.0
    gain[freqs > high_hz + 100] = 0.0
    lo = (freqs >= low_hz - 100) & (freqs < low_hz)
    gain[lo] = 0.5 - 0.5 * np.cos(np.pi * (freqs[lo] - (low_hz - 100)) / 100)
    hi = (freqs > high_hz) & (freqs <= high_hz + 100)
    gain[hi] = 0.5 + 0.5 * np.cos(np.pi * (freqs[hi] - high_hz) / 100)
    return np.fft.irfft(spectrum * gain, n)[: len(x)].astype(np.float32)


def change_speed(x: Audio, factor: float) -> Audio:
    """Play ``factor`` times faster (tempo and pitch together, like a re-clocked playout)."""
    if factor == 1.0:
        return x
    n_out = round(len(x) / factor)
    positions = np.arange(n_out) * factor
    out: Audio = np.interp(positions, np.arange(len(x)), x).astype(np.float32)
    return out


def add_noise(x: Audio, snr_db: float, rng: np.random.Generator) -> Audio:
    """Telephone-band noise at ``snr_db`` below the speech's active power."""
    active = x[np.abs(x) > 0.02 * (np.max(np.abs(x)) + 1e-9)]
    power = float(np.mean(active**2)) if len(active) else float(np.mean(x**2))
    noise = band_pass(rng.standard_normal(len(x)).astype(np.float32))
    noise *= np.sqrt(power / (float(np.mean(noise**2)) + 1e-12) / 10 ** (snr_db / 10))
    return (x + noise).astype(np.float32)


def mulaw_round_trip(x: Audio) -> Audio:
    """Through a G.711 μ-law channel and back (clipping at full scale)."""
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)
    return (g711.ulaw_decode(g711.ulaw_encode(pcm)).astype(np.float32) / 32768).astype(np.float32)


def drop_packets(x: Audio, loss: float, rng: np.random.Generator, burst: float = 0.3) -> Audio:
    """Zero 20 ms packets: a two-state (Gilbert) model with mean loss ``loss`` and bursty runs."""
    if loss <= 0:
        return x
    out = x.copy()
    packets = len(x) // PACKET
    p_enter = loss * (1 - burst) / max(1e-9, 1 - loss)
    lost = False
    for i in range(packets):
        lost = rng.random() < (burst if lost else p_enter)
        if lost:
            out[i * PACKET : (i + 1) * PACKET] = 0.0
    return out


@dataclass(frozen=True)
class LineCondition:
    """One set of line impairments."""

    snr_db: float | None = None
    loss: float = 0.0
    speed: float = 1.0
    gain_db: float = 0.0
    mulaw: bool = True


def through_line(x: Audio, condition: LineCondition, rng: np.random.Generator) -> Audio:
    """Apply a condition to 8 kHz audio in [-1, 1]: speed, band, gain, noise, μ-law, loss."""
    y = change_speed(x, condition.speed)
    y = band_pass(y)
    peak = float(np.max(np.abs(y))) + 1e-9
    y = y * (0.5 / peak) * 10 ** (condition.gain_db / 20)
    if condition.snr_db is not None:
        y = add_noise(y, condition.snr_db, rng)
    if condition.mulaw:
        y = mulaw_round_trip(np.clip(y, -1.0, 1.0).astype(np.float32))
    return drop_packets(y, condition.loss, rng)


def crop(x: Audio, start_s: float, length_s: float) -> Audio:
    """The part of a recording a callee heard when answering ``start_s`` into it."""
    start = int(start_s * RATE)
    return x[start : start + int(length_s * RATE)]
