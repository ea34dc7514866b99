"""Several serving processes on one port: each worker is its own process (SO_REUSEPORT spreads
connections and datagrams), so one pod uses all its cores. The parent forwards SIGTERM/SIGINT and
waits for every worker's graceful drain."""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable


def run_workers(count: int, target: Callable[[int], None], name: str) -> int:
    """Run ``target(i)`` for i in range(count), in this process when count is 1; the worst exit code."""
    if count == 1:
        target(0)
        return 0
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=target, args=(i,), name=f"{name}-{i}") for i in range(count)]
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
