"""Supervision of the main job's mesh: a service process that exits while the mesh runs is started again.

In production Kubernetes restarts a worker that exits on an unrecoverable error; the local mesh
(``loadtest.mesh``) does the same for its processes, so a run survives a crashed or killed service.
The restart uses the same module, arguments and environment: the same consumer group (a stream
worker resumes from its committed offsets, and reputation's folds are idempotent) and the same
FRAUDMESH_GRPC_PORT (clients keep the address they were given). Restarts back off exponentially up
to a cap; a service that spends its restart budget within the window (a crash loop) is given up on,
and the mesh reports it failed so the run fails loudly instead of restarting it forever.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from loadtest.processes import ServiceProcess

log = logging.getLogger(__name__)
SUPERVISION_RECORD = "supervision.json"  # in the dataset folder: restarts and failures of the run
_MAX_DOUBLINGS = 32  # 2**32 times any sane first backoff is past every cap; keeps the float finite


@dataclass(frozen=True)
class RestartPolicy:
    """How soon a dead service is started again, and how many restarts a window allows."""

    first_backoff_s: float = 0.5
    max_backoff_s: float = 10.0
    budget: int = 5  # restarts allowed within ``window_s``; one more crash in it gives up
    window_s: float = 300.0

    def __post_init__(self) -> None:
        """Reject a policy that would restart in a busy loop or never."""
        if self.first_backoff_s <= 0 or self.max_backoff_s < self.first_backoff_s:
            raise ValueError("backoff must be positive and its cap at least the first backoff")
        if self.budget < 1 or self.window_s <= 0:
            raise ValueError("the restart budget and its window must be positive")

    def recent(self, restarts: Sequence[float], now: float) -> int:
        """How many of the restart times ``restarts`` fall within the window ending at ``now``."""
        return sum(1 for at in restarts if now - at < self.window_s)

    def next_backoff_s(self, restarts: Sequence[float], now: float) -> float | None:
        """Seconds to wait before the next restart of a service restarted at ``restarts``, or None
        when its budget within the window is spent: doubling from the first backoff, capped."""
        recent = self.recent(restarts, now)
        if recent >= self.budget:
            return None
        return min(self.max_backoff_s, self.first_backoff_s * 2.0 ** min(recent, _MAX_DOUBLINGS))


DEFAULT_RESTARTS = RestartPolicy()


def describe_exit(returncode: int | None) -> str:
    """A process's end in words: "was killed by SIGKILL" or "exited with code 1"."""
    if returncode is None:
        return "is still running"
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def restarts_text(restarts: Mapping[str, int]) -> str:
    """Restarts per service in words: "reputation once, decision 2 times"."""
    return ", ".join(
        f"{name} {'once' if count == 1 else f'{count} times'}" for name, count in sorted(restarts.items())
    )


class Supervisor:
    """Watches a mesh's service processes from a daemon thread and restarts those that exit.

    ``processes`` is the mesh's live name → process map; ``restart(name)`` starts that service again
    and puts the new process in the map. ``stop()`` ends the watch before the mesh stops its services,
    so the mesh's own shutdown is never mistaken for a crash.
    """

    def __init__(
        self,
        processes: Mapping[str, ServiceProcess],
        restart: Callable[[str], None],
        policy: RestartPolicy,
        poll_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.restarts: Counter[str] = Counter()  # per service, over the whole run
        self.failed: dict[str, str] = {}  # services given up on → why
        self._processes = processes
        self._restart = restart
        self._poll_s = poll_s
        self._clock = clock
        self._times: dict[str, list[float]] = {}
        self._due: dict[str, float] = {}  # dead services → when they are restarted
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="mesh-supervisor", daemon=True)

    def start(self) -> None:
        """Begin watching."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (and restarting); returns once the watcher thread has ended."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def watching(self, name: str) -> bool:
        """True while the watch runs and ``name`` has not been given up on."""
        return self._thread.is_alive() and not self._stopping.is_set() and name not in self.failed

    def _watch(self) -> None:
        while not self._stopping.wait(self._poll_s):
            for name, process in list(self._processes.items()):
                if name in self.failed or process.alive():
                    continue
                if name not in self._due:
                    self._schedule(name, process)
                elif self._clock() >= self._due[name]:
                    self._start_again(name, process)

    def _schedule(self, name: str, process: ServiceProcess) -> None:
        """A service died: log why with the tail of its log, then schedule its restart or give up."""
        how = describe_exit(process.process.returncode)
        times = self._times.setdefault(name, [])
        backoff = self.policy.next_backoff_s(times, self._clock())
        if backoff is None:
            self.failed[name] = (
                f"{name} {how} after {len(times)} restarts within {self.policy.window_s:.0f} s; "
                "the restart budget is spent and it is not started again"
            )
            log.error("%s. The end of its log (%s):\n%s", self.failed[name], process.log_path, process.tail())
            return
        self._due[name] = self._clock() + backoff
        log.warning(
            "%s %s while the mesh ran; restarting it in %.1f s (restart %d of %d within %.0f s). "
            "The end of its log (%s):\n%s",
            name,
            how,
            backoff,
            self.policy.recent(times, self._clock()) + 1,
            self.policy.budget,
            self.policy.window_s,
            process.log_path,
            process.tail(),
        )

    def _start_again(self, name: str, process: ServiceProcess) -> None:
        """Start a dead service again; a start that fails (e.g. EAGAIN from fork) spends budget too."""
        del self._due[name]
        process.stop()  # already exited: this only closes its log file
        self._times[name].append(self._clock())
        self.restarts[name] += 1
        try:
            self._restart(name)
        except OSError as exc:
            backoff = self.policy.next_backoff_s(self._times[name], self._clock())
            if backoff is None:
                self.failed[name] = f"{name} could not be started again ({exc}); the restart budget is spent"
                log.error("%s", self.failed[name])
            else:
                self._due[name] = self._clock() + backoff
                log.warning("%s could not be started again (%s); next try in %.1f s", name, exc, backoff)
            return
        log.warning("%s restarted (restart %d this run)", name, self.restarts[name])
