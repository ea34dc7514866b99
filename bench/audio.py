"""Evaluation of the audio service (not a test): campaigns, bot behaviour, synthetic voice, speed.

``python -m bench.audio`` (``make bench-audio``) prints and writes ``reports/audio/summary.md`` with
PNG plots beside it:

- campaign matching: recall of 5 s crops of indexed recordings (random answer points) through the
  phone-line simulator across SNR, packet loss and speed change, at the service's thresholds, and
  the false-alarm rate on hard negatives — the same voices reading different scripts;
- bot behaviour: accuracy on constructed two-leg calls (a recording that plays on vs a caller who
  takes turns), with the turn-taking measurements;
- synthetic voice: the baseline trained on some TTS engines and real speakers, EER on each held-out
  engine against held-out real speakers (never a random file split). ``--write-model`` saves the
  model the service ships;
- throughput: fingerprinting and VAD x real time on one core, and index queries against synthetic
  indexes of growing size in the local Redis, with memory per indexed hour.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis

from loadtest.audio import calls, corpus, phoneline, voices
from services.audio import behaviour, fingerprint, synthetic
from services.audio.campaigns import MatchRules
from services.audio.index import POSTING, FingerprintIndex
from services.audio.settings import DEFAULT_MODEL

REPO = Path(__file__).resolve().parent.parent
TRAIN_SYNTHETIC = ("espeak:en-us", "espeak:en-us+m3", "flite:kal", "flite:awb")
CALIBRATE_SYNTHETIC = ("flite:rms",)
HELD_OUT_SYNTHETIC = ("piper:joe", "flite:slt", "espeak:en-gb-x-rp+f4")
TRAIN_REAL = ("asterisk-en-allison", "asterisk-fr-june")
CALIBRATE_REAL = ("asterisk-ru-ivr",)
HELD_OUT_REAL = ("asterisk-it-carlo", "pocketsphinx")
ADD_CHUNK = 50_000  # postings per index write: one synthetic hour in one pipeline times out


def eer(genuine: npt.NDArray[np.float64], spoof: npt.NDArray[np.float64]) -> float:
    """Equal error rate: where the miss rate on ``spoof`` equals the false-alarm rate on ``genuine``."""
    thresholds = np.unique(np.concatenate([genuine, spoof]))
    best = 1.0
    for t in thresholds:
        miss = float(np.mean(spoof < t))
        fa = float(np.mean(genuine >= t))
        best = min(best, max(miss, fa))
    return best


def _line(audio: phoneline.Audio, rng: np.random.Generator) -> phoneline.Audio:
    condition = phoneline.LineCondition(
        snr_db=float(rng.uniform(15, 35)), loss=float(rng.choice([0, 0, 0.02]))
    )
    return phoneline.through_line(audio, condition, rng)


def _features(utterances: Sequence[phoneline.Audio], rng: np.random.Generator) -> npt.NDArray[np.float64]:
    rows = []
    for audio in utterances:
        x, _ = synthetic.features(_line(audio, rng))
        if x is not None:
            rows.append(x)
    return np.array(rows)


@dataclass
class SyntheticReport:
    """EER per held-out engine (against held-out real speakers) and on the training engines."""

    per_engine: dict[str, float]
    seen: float
    abstained: float
    scores: dict[str, npt.NDArray[np.float64]]


def evaluate_synthetic(cache: Path, per_voice: int, write_model: bool, console: list[str]) -> SyntheticReport:
    """Train the baseline on some engines and speakers, report EER on the held-out ones."""
    rng = np.random.default_rng(7)
    root = corpus.fetch(cache)
    real = {
        s: corpus.real_utterances(root, s, per_voice, seed=i)
        for i, s in enumerate(TRAIN_REAL + CALIBRATE_REAL + HELD_OUT_REAL)
    }
    fake = {}
    for i, v in enumerate(TRAIN_SYNTHETIC + CALIBRATE_SYNTHETIC + HELD_OUT_SYNTHETIC):
        if voices.available(v.split(":")[0]):
            fake[v] = corpus.tts_utterances(v, per_voice, seed=100 + i)
    feats = {name: _features(utts, rng) for name, utts in {**real, **fake}.items()}
    x_tr = np.vstack([feats[v] for v in TRAIN_SYNTHETIC if v in feats] + [feats[s] for s in TRAIN_REAL])
    y_tr = np.concatenate(
        [np.ones(len(feats[v])) for v in TRAIN_SYNTHETIC if v in feats]
        + [np.zeros(len(feats[s])) for s in TRAIN_REAL]
    )
    x_cal = np.vstack(
        [feats[v] for v in CALIBRATE_SYNTHETIC if v in feats] + [feats[s] for s in CALIBRATE_REAL]
    )
    y_cal = np.concatenate(
        [np.ones(len(feats[v])) for v in CALIBRATE_SYNTHETIC if v in feats]
        + [np.zeros(len(feats[s])) for s in CALIBRATE_REAL]
    )
    card = {
        "trained_on_synthetic": [v for v in TRAIN_SYNTHETIC if v in feats],
        "trained_on_real": list(TRAIN_REAL),
        "calibrated_on": [v for v in CALIBRATE_SYNTHETIC if v in feats] + list(CALIBRATE_REAL),
        "held_out": [v for v in HELD_OUT_SYNTHETIC if v in feats] + list(HELD_OUT_REAL),
        "features": "std of 20 CMN LFCCs, mean |delta|, std delta over VAD-active frames (60)",
        "channel": "phone-line simulator: band-pass, SNR 15-35 dB, mu-law, 0-2 % loss",
        "utterances_per_voice": per_voice,
        "trainer": "python -m bench.audio --write-model",
    }
    model = synthetic.train(x_tr, y_tr, x_cal, y_cal, version="lfcc-lr-1", card=card)
    genuine = np.concatenate([model.probability(feats[s]) for s in HELD_OUT_REAL])
    per_engine = {v: eer(genuine, model.probability(feats[v])) for v in HELD_OUT_SYNTHETIC if v in feats}
    seen_fake = np.concatenate([model.probability(feats[v]) for v in TRAIN_SYNTHETIC if v in feats])
    seen = eer(np.concatenate([model.probability(feats[s]) for s in TRAIN_REAL]), seen_fake)
    total = sum(len(u) for u in {**real, **fake}.values())
    used = sum(len(f) for f in feats.values())
    model.card["eer_held_out"] = {k: round(v, 3) for k, v in per_engine.items()}
    model.card["eer_training_engines"] = round(seen, 3)
    if write_model:
        model.save(DEFAULT_MODEL)
        console.append(f"wrote {DEFAULT_MODEL.relative_to(REPO)}")
    scores = {"real (held out)": genuine, **{v: model.probability(feats[v]) for v in per_engine}}
    return SyntheticReport(per_engine, seen, 1 - used / max(1, total), scores)


def _memory_index(recordings: Sequence[phoneline.Audio]) -> dict[int, list[tuple[int, int]]]:
    index: dict[int, list[tuple[int, int]]] = {}
    for number, audio in enumerate(recordings):
        fp = fingerprint.fingerprint(audio)
        for h, t in zip(fp.hashes.tolist(), fp.times.tolist(), strict=True):
            index.setdefault(h, []).append((number, t))
    return index


def _matches(index: dict[int, list[tuple[int, int]]], audio: phoneline.Audio, rules: MatchRules) -> set[int]:
    for speed in (1.0, *rules.probes):
        probe = audio if speed == 1.0 else phoneline.change_speed(audio, speed)
        hashes, starts, times = fingerprint.query_layout(fingerprint.fingerprint(probe))
        recs: list[int] = []
        ts: list[int] = []
        p_starts = [0]
        for h in hashes.tolist():
            found = index.get(h, [])
            recs.extend(r for r, _ in found)
            ts.extend(t for _, t in found)
            p_starts.append(len(recs))
        if len(starts) < 2:
            return set()
        hits = {
            m.recording
            for m in fingerprint.vote(
                starts,
                times,
                np.array(p_starts, dtype=np.int64),
                np.array(recs, dtype=np.int64),
                np.array(ts, dtype=np.int64),
            )
            if m.votes >= rules.min_votes and m.coverage >= rules.min_coverage
        }
        if hits:
            return hits
    return set()


def evaluate_campaigns(trials: int, lines: list[str], out: Path) -> None:
    """Recall of 5 s crops across SNR, loss and speed; false alarms on other scripts by the same voices."""
    rng = np.random.default_rng(11)
    rules = MatchRules()
    voice_set = ("espeak:en-us", "flite:kal", "espeak:en-us+f2")
    recordings = [voices.render(voices.script(500 + i), voice_set[i % 3]) for i in range(12)]
    index = _memory_index(recordings)
    lines.append("| SNR dB | loss | speed | recall (5 s crops) |")
    lines.append("|---|---|---|---|")
    grid = {}
    for snr in (30, 20, 10, 5, 0):
        for loss in (0.0, 0.05, 0.1):
            hits = 0
            for k in range(trials):
                i = k % len(recordings)
                cond = phoneline.LineCondition(snr_db=snr, loss=loss, speed=float(rng.uniform(0.97, 1.03)))
                crop = calls.answered_segment(recordings[i], rng, cond, min_s=5, max_s=5)
                hits += i in _matches(index, crop, rules)
            grid[(snr, loss)] = hits / trials
            lines.append(f"| {snr} | {loss:.0%} | 0.97-1.03 | {hits / trials:.2f} |")
    false_alarms = 0
    negatives = trials * 2
    for k in range(negatives):
        other = voices.render(voices.script(900 + k), voice_set[k % 3])
        crop = calls.answered_segment(other, rng, phoneline.LineCondition(snr_db=20), min_s=5, max_s=15)
        false_alarms += bool(_matches(index, crop, rules))
    lines.append("")
    lines.append(
        f"False alarms (same voices, different scripts, 5-15 s): {false_alarms}/{negatives} "
        f"at votes >= {rules.min_votes}, coverage >= {rules.min_coverage}"
    )
    fig, ax = plt.subplots(figsize=(6, 4))
    for loss in (0.0, 0.05, 0.1):
        ax.plot(
            [30, 20, 10, 5, 0],
            [grid[(s, loss)] for s in (30, 20, 10, 5, 0)],
            marker="o",
            label=f"loss {loss:.0%}",
        )
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("recall, 5 s crops")
    ax.set_ylim(0, 1.05)
    ax.invert_xaxis()
    ax.legend()
    ax.set_title("Campaign recall through the phone-line simulator")
    fig.tight_layout()
    fig.savefig(out / "campaign_recall.png")
    plt.close(fig)


def evaluate_bot(trials: int, lines: list[str]) -> None:
    """Accuracy on constructed two-leg calls at score 0.5."""
    rng = np.random.default_rng(3)
    correct = abstained = 0
    for k in range(trials):
        bot = k % 2 == 0
        caller, callee = calls.conversation(bot, rng, 700 + k)
        cond = phoneline.LineCondition(snr_db=float(rng.uniform(10, 30)), loss=0.02)
        result = behaviour.analyse(
            phoneline.through_line(caller, cond, rng), phoneline.through_line(callee, cond, rng)
        )
        if result.score is None:
            abstained += 1
        elif (result.score >= 0.5) == bot:
            correct += 1
    lines.append(
        f"Bot behaviour on {trials} constructed two-leg calls (half play-on recordings, half turn-takers; "
        f"SNR 10-30 dB, 2 % loss): accuracy {correct / max(1, trials - abstained):.2f}, abstained {abstained}"
    )


def evaluate_throughput(lines: list[str], redis_url: str) -> None:
    """Fingerprint and VAD x real time on one core; Redis query time against synthetic indexes."""
    audio = voices.render(voices.script(42), "espeak:en-us")
    seconds = len(audio) / 8000
    fingerprint.fingerprint(audio)
    started = time.perf_counter()
    for _ in range(10):
        fp = fingerprint.fingerprint(audio)
    fp_rt = seconds * 10 / (time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(10):
        behaviour.voice_activity(audio)
    vad_rt = seconds * 10 / (time.perf_counter() - started)
    rate = len(fp.hashes) / seconds
    per_hour = rate * 3600 * POSTING.itemsize
    lines.append(
        f"Fingerprinting: {fp_rt:.0f}x real time per core; VAD: {vad_rt:.0f}x; {rate:.0f} hashes/s of speech"
    )
    lines.append(f"Index memory: {per_hour / 1e6:.1f} MB of postings per indexed hour (+ Redis key overhead)")
    asyncio.run(_query_scale(lines, redis_url, rate, fp))


async def _query_scale(lines: list[str], redis_url: str, rate: float, query: fingerprint.Fingerprint) -> None:
    client = aioredis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/15", socket_timeout=120)
    index = FingerprintIndex(client, 3600, 3600, 86_400)
    rng = np.random.default_rng(1)
    hashes, starts, times = fingerprint.query_layout(
        fingerprint.Fingerprint(query.hashes[:1800], query.times[:1800], 625)
    )
    await client.flushdb()
    try:
        indexed = 0.0
        first_memory = 0
        for hours in (1, 2, 4):
            while indexed < hours:
                for part in range(0, int(rate * 3600), ADD_CHUNK):
                    postings = min(ADD_CHUNK, int(rate * 3600) - part)
                    h = rng.integers(0, 1 << fingerprint.HASH_BITS, postings)
                    t = rng.integers(0, 2000, postings)
                    await index.add(int(indexed * 1000) + 1 + part // ADD_CHUNK, h, t, "c")
                indexed += 1
            memory = int((await client.info("memory"))["used_memory"])
            first_memory = first_memory or memory
            samples = []
            for _ in range(5):
                started = time.perf_counter()
                found = await index.postings(hashes, int(time.time() * 1000))
                fingerprint.vote(starts, times, found.starts, found.recordings, found.times)
                samples.append(time.perf_counter() - started)
            ms = 1000 * float(np.median(samples))
            lines.append(
                f"Synthetic index of {hours} h: query (10 s, {len(hashes)} hashes, "
                f"{found.total} postings read) {ms:.1f} ms; Redis used_memory {memory / 1e6:.0f} MB"
            )
        per_hour_ms = ms / hours
        per_hour_bytes = (memory - first_memory) / (hours - 1)
        lines.append(
            f"Extrapolated to 10,000 h on one Redis (postings read grow linearly with indexed hours): "
            f"~{per_hour_ms * 10_000 / 1000:.0f} s per query and ~{per_hour_bytes * 10_000 / 1e9:.0f} GB "
            f"({per_hour_bytes / 1e6:.0f} MB per hour from the 1 h to {hours} h slope) - "
            f"the 50 ms budget needs the index sharded "
            f"(the 16 hash tags spread over a cluster) and fewer postings per hash (see architecture)."
        )
    finally:
        await client.flushdb()
        await client.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the evaluation and write the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "audio")
    parser.add_argument("--cache", type=Path, default=REPO / ".stack" / "audio-corpus")
    parser.add_argument("--per-voice", type=int, default=15)
    parser.add_argument("--write-model", action="store_true")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--only", choices=("synthetic", "campaigns", "bot", "throughput"), default=None)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    lines.append("# Audio evaluation\n")
    if args.only in (None, "campaigns"):
        lines.append("## Campaign matching\n")
        evaluate_campaigns(args.trials, lines, args.out)
        lines.append("\n![campaign recall](campaign_recall.png)\n")
    if args.only in (None, "bot"):
        lines.append("## Bot behaviour\n")
        evaluate_bot(args.trials, lines)
    if args.only in (None, "synthetic"):
        lines.append("\n## Synthetic voice (held-out engines and speakers)\n")
        report = evaluate_synthetic(args.cache, args.per_voice, args.write_model, lines)
        for engine, value in report.per_engine.items():
            lines.append(f"- EER on held-out {engine}: {value:.2f}")
        lines.append(f"- EER on the training engines/speakers (optimistic): {report.seen:.2f}")
        lines.append(f"- abstained on {report.abstained:.0%} of utterances")
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.hist(list(report.scores.values()), bins=20, label=list(report.scores), histtype="step")
        ax.set_xlabel("synthetic-voice score")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.out / "synthetic_scores.png")
        plt.close(fig)
        lines.append("\n![synthetic scores](synthetic_scores.png)\n")
    if args.only in (None, "throughput"):
        lines.append("\n## Throughput\n")
        evaluate_throughput(lines, os.environ.get("FRAUDMESH_REDIS_URL", "redis://127.0.0.1:16379/0"))
    text = "\n".join(lines) + "\n"
    (args.out / "summary.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
