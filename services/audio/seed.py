"""Operators' CLI: seed known scam recordings as campaigns, and list the campaigns the index holds.

``python -m services.audio.seed add --campaign-id seed-tax-refund --label "tax refund" a.wav``
fingerprints each 16-bit PCM WAV (any rate; resampled to 8 kHz) straight into the campaign tier,
so the first call that plays it is linked. ``python -m services.audio.seed list`` prints every
live campaign with its origin, first-seen time and member count.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from services.audio.agents import build_analyzer
from services.audio.settings import AudioSettings
from services.common.redisstore import make_async_redis
from services.common.settings import SettingsError, load


def read_recording(path: Path) -> np.ndarray:
    """A 16-bit PCM WAV file as 8 kHz float audio (first channel)."""
    with wave.open(str(path)) as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        rate, channels = wav.getframerate(), wav.getnchannels()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")[::channels]
    audio = samples.astype(np.float64) / 32768
    if rate != 8000:
        n_out = round(len(audio) * 8000 / rate)
        spectrum = np.fft.rfft(audio)[: n_out // 2 + 1]
        audio = np.fft.irfft(spectrum, n_out) * (n_out / len(samples))
    return audio.astype(np.float32)


async def _run(settings: AudioSettings, args: argparse.Namespace) -> int:
    client = make_async_redis(settings)
    analyzer = build_analyzer(settings, client)
    try:
        if args.command == "add":
            for path in args.files:
                recording = await analyzer.campaigns.seed(
                    read_recording(path), args.campaign_id, args.label, int(time.time() * 1000)
                )
                print(f"seeded {path} as campaign {args.campaign_id} (recording {recording})")
        else:
            for row in await analyzer.campaigns.campaigns():
                print(
                    f"{row['campaign_id']}  origin={row['origin']}  first_seen_ms={row['first_seen_ms']}"
                    f"  members={row['members']}  label={row.get('label', '')}"
                )
    finally:
        await client.aclose()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m services.audio.seed``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="seed recordings as one campaign")
    add.add_argument("--campaign-id", required=True)
    add.add_argument("--label", default="")
    add.add_argument("files", nargs="+", type=Path)
    commands.add_parser("list", help="list live campaigns")
    args = parser.parse_args(argv)
    try:
        settings = load(AudioSettings)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    return asyncio.run(_run(settings, args))


if __name__ == "__main__":
    sys.exit(main())
