"""Run a reputation worker: settings → telemetry → faust worker."""

from __future__ import annotations

import sys

from services.common.streams import run_stream_service
from services.reputation.agents import build_app
from services.reputation.settings import ReputationSettings

if __name__ == "__main__":
    sys.exit(run_stream_service(ReputationSettings, build_app))
