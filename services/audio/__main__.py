"""Run an audio worker: settings → telemetry → faust worker."""

from __future__ import annotations

import sys

from services.audio.agents import build_app
from services.audio.settings import AudioSettings
from services.common.settings import SettingsError, load
from services.common.streams import run_worker
from services.common.telemetry import setup_telemetry


def main() -> int:
    """Entry point of ``python -m services.audio``."""
    try:
        settings = load(AudioSettings)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    telemetry = setup_telemetry(settings)
    try:
        run_worker(build_app(settings), settings)
    finally:
        telemetry.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
