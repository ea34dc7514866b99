"""Landmark fingerprints of 8 kHz speech: spectral peaks paired into hashes, and offset voting.

A recording is reduced to the strongest local maxima of its onset-emphasised log spectrogram
(``density`` per second), each paired with the next ``fanout`` peaks within ~1 s and ±1 kHz; a pair's
(anchor frequency, frequency difference, time difference) is a 19-bit hash that survives the
telephone band, noise, μ-law and packet loss because it keeps only where energy peaks, not how much.
Two recordings match when many hashes agree on one time offset. The kernels are Numba; the
``*_reference`` functions are the plain NumPy definitions the tests hold them to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np
import numpy.typing as npt

RATE = 8000
N_FFT = 256
HOP = 128  # 16 ms frames, 62.5 per second
F_LO = 8  # 250 Hz
F_HI = 112  # 3500 Hz
MAX_DT = 63
MAX_DF = 31
HASH_BITS = 19
FRAMES_PER_S = RATE / HOP

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class FingerprintParams:
    """Peak density per second, pairs per anchor, peak neighbourhood (frames, bins), onset pole."""

    density: int = 50
    fanout: int = 8
    near_t: int = 3
    near_f: int = 4
    pole: float = 0.98


DEFAULT = FingerprintParams()


@dataclass(frozen=True)
class Fingerprint:
    """The hashes of one recording and the frame at which each pair's anchor sits."""

    hashes: IntArray
    times: IntArray
    frames: int

    @property
    def seconds(self) -> float:
        """Duration covered."""
        return self.frames / FRAMES_PER_S


_WINDOW = np.hanning(N_FFT + 2)[1:-1].astype(np.float32)


def log_spectrogram(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Frames x telephone-band bins of log magnitude (Hann window, 32 ms, 16 ms hop)."""
    if len(x) < N_FFT:
        return np.zeros((0, F_HI - F_LO), dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float32), N_FFT)[::HOP]
    magnitude = np.abs(np.fft.rfft(frames * _WINDOW, axis=1))[:, F_LO:F_HI].astype(np.float32)
    floor = max(float(magnitude.max()) * 1e-4, 1e-6)
    return np.log(np.maximum(magnitude, floor)).astype(np.float32)


@nb.njit(cache=True)
def _onset(spec: npt.NDArray[np.float32], pole: float) -> npt.NDArray[np.float32]:
    out = np.empty_like(spec)
    n_t, n_f = spec.shape
    for f in range(n_f):
        prev_x = spec[0, f] if n_t else 0.0
        prev_y = 0.0
        for t in range(n_t):
            y = spec[t, f] - prev_x + pole * prev_y
            prev_x = spec[t, f]
            prev_y = y
            out[t, f] = y
    return out


@nb.njit(cache=True)
def _peaks(
    spec: npt.NDArray[np.float32], near_t: int, near_f: int, per_chunk: int, chunk: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    n_t, n_f = spec.shape
    # separable max filter: along frequency, then along time
    along_f = np.empty_like(spec)
    for t in range(n_t):
        for f in range(n_f):
            m = spec[t, f]
            for g in range(max(0, f - near_f), min(n_f, f + near_f + 1)):
                if spec[t, g] > m:
                    m = spec[t, g]
            along_f[t, f] = m
    cand_t = np.empty(n_t * n_f, dtype=np.int64)
    cand_f = np.empty(n_t * n_f, dtype=np.int64)
    cand_v = np.empty(n_t * n_f, dtype=np.float32)
    n = 0
    for t in range(n_t):
        for f in range(n_f):
            v = spec[t, f]
            if v <= 0.0 or v < along_f[t, f]:
                continue
            ok = True
            for s in range(max(0, t - near_t), min(n_t, t + near_t + 1)):
                if along_f[s, f] > v:
                    ok = False
                    break
            if ok:
                cand_t[n] = t
                cand_f[n] = f
                cand_v[n] = v
                n += 1
    out_t = np.empty(n, dtype=np.int64)
    out_f = np.empty(n, dtype=np.int64)
    kept = 0
    start = 0
    while start < n:
        stop = start
        limit = (cand_t[start] // chunk + 1) * chunk
        while stop < n and cand_t[stop] < limit:
            stop += 1
        order = np.argsort(-cand_v[start:stop])[:per_chunk]
        for k in np.sort(order):
            out_t[kept] = cand_t[start + k]
            out_f[kept] = cand_f[start + k]
            kept += 1
        start = stop
    return out_t[:kept], out_f[:kept]


@nb.njit(cache=True)
def _pairs(
    peak_t: npt.NDArray[np.int64], peak_f: npt.NDArray[np.int64], fanout: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    n = len(peak_t)
    hashes = np.empty(n * fanout, dtype=np.int64)
    times = np.empty(n * fanout, dtype=np.int64)
    k = 0
    for i in range(n):
        made = 0
        j = i + 1
        while j < n and made < fanout:
            dt = peak_t[j] - peak_t[i]
            if dt > MAX_DT:
                break
            df = peak_f[j] - peak_f[i]
            if dt >= 1 and -MAX_DF <= df <= MAX_DF:
                hashes[k] = (peak_f[i] << 12) | ((df + 32) << 6) | dt
                times[k] = peak_t[i]
                k += 1
                made += 1
            j += 1
    return hashes[:k], times[:k]


def peaks(x: npt.NDArray[np.float32], params: FingerprintParams = DEFAULT) -> tuple[IntArray, IntArray]:
    """Landmark peaks (frame, band bin) sorted by time, at most ``density`` per second."""
    spec = log_spectrogram(x)
    if len(spec) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    onset = _onset(spec, params.pole)
    chunk = int(FRAMES_PER_S)
    return _peaks(onset, params.near_t, params.near_f, params.density, chunk)


def fingerprint(x: npt.NDArray[np.float32], params: FingerprintParams = DEFAULT) -> Fingerprint:
    """The landmark hashes of 8 kHz audio."""
    peak_t, peak_f = peaks(x, params)
    hashes, times = _pairs(peak_t, peak_f, params.fanout)
    frames = max(0, (len(x) - N_FFT) // HOP + 1)
    return Fingerprint(hashes=hashes, times=times, frames=frames)


def pairs_reference(peak_t: IntArray, peak_f: IntArray, fanout: int) -> tuple[IntArray, IntArray]:
    """Plain-Python definition of ``_pairs`` for the tests."""
    hashes: list[int] = []
    times: list[int] = []
    for i in range(len(peak_t)):
        made = 0
        for j in range(i + 1, len(peak_t)):
            dt = int(peak_t[j] - peak_t[i])
            if dt > MAX_DT or made >= fanout:
                break
            df = int(peak_f[j] - peak_f[i])
            if dt >= 1 and abs(df) <= MAX_DF:
                hashes.append((int(peak_f[i]) << 12) | ((df + 32) << 6) | dt)
                times.append(int(peak_t[i]))
                made += 1
    return np.array(hashes, dtype=np.int64), np.array(times, dtype=np.int64)


@nb.njit(cache=True)
def _votes(
    q_start: npt.NDArray[np.int64],
    q_times: npt.NDArray[np.int64],
    p_start: npt.NDArray[np.int64],
    p_rec: npt.NDArray[np.int64],
    p_time: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    total = 0
    for h in range(len(q_start) - 1):
        total += (q_start[h + 1] - q_start[h]) * (p_start[h + 1] - p_start[h])
    out = np.empty(total, dtype=np.int64)
    k = 0
    for h in range(len(q_start) - 1):
        for a in range(q_start[h], q_start[h + 1]):
            for b in range(p_start[h], p_start[h + 1]):
                out[k] = (p_rec[b] << 20) | (p_time[b] - q_times[a] + (1 << 19))
                k += 1
    return out


@nb.njit(cache=True)
def _best_offsets(
    keys: npt.NDArray[np.int64], tolerance: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per recording: the offset with most votes within ±tolerance frames, and that vote count."""
    keys = np.sort(keys)
    n = len(keys)
    recs = np.empty(n, dtype=np.int64)
    best = np.empty(n, dtype=np.int64)
    where = np.empty(n, dtype=np.int64)
    m = 0
    i = 0
    while i < n:
        rec = keys[i] >> 20
        j = i
        while j < n and (keys[j] >> 20) == rec:
            j += 1
        top = 0
        top_at = 0
        lo = i
        for hi in range(i, j):
            off = keys[hi] & ((1 << 20) - 1)
            while (keys[lo] & ((1 << 20) - 1)) < off - 2 * tolerance:
                lo += 1
            if hi - lo + 1 > top:
                top = hi - lo + 1
                top_at = off - tolerance
        recs[m] = rec
        best[m] = top
        where[m] = top_at - (1 << 19)
        m += 1
        i = j
    return recs[:m], best[:m], where[:m]


@nb.njit(cache=True)
def _aligned_windows(
    q_start: npt.NDArray[np.int64],
    q_times: npt.NDArray[np.int64],
    p_start: npt.NDArray[np.int64],
    p_rec: npt.NDArray[np.int64],
    p_time: npt.NDArray[np.int64],
    rec: int,
    offset: int,
    tolerance: int,
    window: int,
    n_windows: int,
) -> npt.NDArray[np.int64]:
    """Aligned votes per query window for one (recording, offset)."""
    counts = np.zeros(n_windows, dtype=np.int64)
    for h in range(len(q_start) - 1):
        for a in range(q_start[h], q_start[h + 1]):
            for b in range(p_start[h], p_start[h + 1]):
                if p_rec[b] == rec and abs(p_time[b] - q_times[a] - offset) <= tolerance:
                    counts[min(n_windows - 1, q_times[a] // window)] += 1
                    break
    return counts


@dataclass(frozen=True)
class Match:
    """A recording matched by a query.

    ``votes`` hashes agree on one alignment, where the query's frame 0 sits at ``offset`` in the
    recording's timeline; ``coverage`` is the share of the query's seconds that hold at least
    ``MIN_WINDOW_VOTES`` of them — high for the same recording, low for a shared phrase.
    """

    recording: int
    votes: int
    offset: int
    coverage: float


MIN_WINDOW_VOTES = 2


def query_layout(fp: Fingerprint) -> tuple[IntArray, IntArray, IntArray]:
    """Unique hashes of a query, and its times grouped by hash (CSR: starts, times)."""
    order = np.argsort(fp.hashes, kind="stable")
    hashes = fp.hashes[order]
    times = fp.times[order]
    unique, starts = np.unique(hashes, return_index=True)
    return unique, np.append(starts, len(hashes)).astype(np.int64), times


def vote(
    q_starts: IntArray,
    q_times: IntArray,
    p_starts: IntArray,
    p_rec: IntArray,
    p_time: IntArray,
    tolerance: int = 3,
    limit: int = 3,
) -> list[Match]:
    """The best-aligned recordings for a query, most votes first, with their time coverage."""
    keys = _votes(q_starts, q_times, p_starts, p_rec, p_time)
    if len(keys) == 0:
        return []
    recs, best, where = _best_offsets(keys, tolerance)
    order = np.argsort(-best)[:limit]
    window = int(FRAMES_PER_S)
    first, last = int(q_times.min()), int(q_times.max())
    n_windows = max(1, last // window - first // window + 1)
    matches = []
    for i in order:
        counts = _aligned_windows(
            q_starts,
            q_times - (first // window) * window,
            p_starts,
            p_rec,
            p_time,
            int(recs[i]),
            int(where[i]) + (first // window) * window,
            tolerance,
            window,
            n_windows,
        )
        coverage = float(np.count_nonzero(counts >= MIN_WINDOW_VOTES)) / n_windows
        matches.append(Match(int(recs[i]), int(best[i]), int(where[i]), coverage))
    return matches
