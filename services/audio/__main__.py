"""Run an audio worker: settings → telemetry → faust worker."""

from __future__ import annotations

import sys

from services.audio.agents import build_app
from services.audio.settings import AudioSettings
from services.common.streams import run_stream_service

if __name__ == "__main__":
    sys.exit(run_stream_service(AudioSettings, build_app))
