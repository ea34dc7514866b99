"""fraudmesh services as OS processes (``python -m services.<name>``) that never outlive their launcher.

Used by the main job's mesh, the benchmarks and the integration tests.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the launching process dies, so no worker outlives a killed run.

    A stray worker left consuming in its own group would keep writing to the shared Redis and skew
    the next run's results.
    """
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class ServiceProcess:
    """A fraudmesh service run as its own OS process (``python -m services.<name>``)."""

    def __init__(
        self, module: str, env: Mapping[str, str], log_path: Path, args: Sequence[str] = (), nice: int = 0
    ) -> None:
        self.module = module
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - fixed interpreter and module
            [sys.executable, "-m", module, *args],
            env={**os.environ, **env},
            cwd=REPO_ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        if nice:  # lower priority, set before the interpreter starts threads (they inherit it)
            os.setpriority(os.PRIO_PROCESS, self.process.pid, nice)

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process.poll() is None

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, wait, then SIGKILL; returns the exit code."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()
        return self.process.returncode

    def tail(self, lines: int = 40) -> str:
        """The last lines of the process's log, for failure messages."""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])
