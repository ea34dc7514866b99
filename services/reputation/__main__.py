"""Run a reputation worker: settings → telemetry → faust worker."""

from __future__ import annotations

import sys

from services.common.settings import SettingsError, load
from services.common.streams import run_worker
from services.common.telemetry import setup_telemetry
from services.reputation.agents import build_app
from services.reputation.settings import ReputationSettings


def main() -> int:
    """Entry point of ``python -m services.reputation``."""
    try:
        settings = load(ReputationSettings)
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
