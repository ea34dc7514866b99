"""Run the decision service: ``python -m services.decision`` (FRAUDMESH_WORKERS processes).

With more than one worker, each is its own process serving the same port through SO_REUSEPORT
(services.common.workers); worker ``i`` serves metrics on ``FRAUDMESH_METRICS_PORT + i``.
"""

from __future__ import annotations

import sys

from services.common.settings import SettingsError, load
from services.common.workers import run_workers
from services.decision.service import run_worker
from services.decision.settings import DecisionSettings


def main() -> int:
    """Entry point of ``python -m services.decision``."""
    try:
        settings = load(DecisionSettings)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    return run_workers(settings.workers, run_worker, "decision")


if __name__ == "__main__":
    sys.exit(main())
