"""Run the decision service: ``python -m services.decision`` (FRAUDMESH_WORKERS processes).

With more than one worker, each is its own process serving the same port through SO_REUSEPORT
(the kernel spreads connections), so one pod uses all its cores; worker ``i`` serves metrics on
``FRAUDMESH_METRICS_PORT + i``. The parent forwards SIGTERM/SIGINT and waits for every worker's
graceful drain.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys

from services.common.settings import SettingsError, load
from services.decision.service import run_worker
from services.decision.settings import DecisionSettings


def main() -> int:
    """Entry point of ``python -m services.decision``."""
    try:
        settings = load(DecisionSettings)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    if settings.workers == 1:
        run_worker(0)
        return 0
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=run_worker, args=(i,), name=f"decision-{i}") for i in range(settings.workers)
    ]
    for worker in workers:
        worker.start()

    def forward(_signum: int, _frame: object) -> None:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()  # SIGTERM: each worker drains gracefully

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for worker in workers:
        worker.join()
    return max((worker.exitcode or 0) for worker in workers)


if __name__ == "__main__":
    sys.exit(main())
