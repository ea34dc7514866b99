"""Run the switch front: ``python -m services.switchfront`` (FRAUDMESH_WORKERS processes).

With more than one worker, each is its own process on the same SIP and HTTP ports through
SO_REUSEPORT (services.common.workers): a caller's retransmissions keep their source address and
port, so they reach the worker that holds the transaction. Worker ``i`` serves metrics on
``FRAUDMESH_METRICS_PORT + i``.
"""

from __future__ import annotations

import sys

from services.common.settings import SettingsError, load
from services.common.workers import run_workers
from services.switchfront.service import run_worker
from services.switchfront.settings import SwitchFrontSettings


def main() -> int:
    """Entry point of ``python -m services.switchfront``."""
    try:
        settings = load(SwitchFrontSettings)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    return run_workers(settings.workers, run_worker, "switchfront")


if __name__ == "__main__":
    sys.exit(main())
