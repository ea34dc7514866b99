"""A circuit breaker for call-path dependencies: a dead Redis or peer costs microseconds, not timeouts.

CLOSED lets calls through and counts consecutive failures; ``failure_threshold`` of them in a row
OPEN it, and while open ``allow()`` says no without touching the dependency. After ``reset_after_s``
one probe is let through (HALF_OPEN): success closes the breaker, failure opens it again. The
breaker is single-threaded by design (one per event loop) and takes an injectable clock for tests.

Failures are counted per incident, not per victim: a caller that says when its call started
(``failure(started_at=...)``, on the breaker's clock) is counted only if the call started after the
last counted failure. One stall of a few milliseconds times out every call waiting on it at once —
at carrier rates that is more than the threshold — and would open the breaker for a whole reset
period although the dependency answered the next call in time; a dependency that is really down
fails call after call, each started after the previous failure, and opens it as before (after
``failure_threshold`` sub-deadlines). Likewise only a failure of the probe itself, not of a call
still in flight from before, decides a HALF_OPEN probe.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable


class BreakerState(enum.Enum):
    """Where a breaker stands; the value is the gauge reading SREs see (0 closed, 1 half-open, 2 open)."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    """Consecutive-failure breaker with a single half-open probe."""

    __slots__ = (
        "_clock",
        "_failures",
        "_last_failure_at",
        "_on_change",
        "_opened_at",
        "_probe_started",
        "_probing",
        "_reset_after",
        "_threshold",
        "name",
    )

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_after_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, BreakerState], None] | None = None,
    ) -> None:
        if failure_threshold < 1 or reset_after_s <= 0:
            raise ValueError("failure_threshold must be >= 1 and reset_after_s > 0")
        self.name = name
        self._threshold = failure_threshold
        self._reset_after = reset_after_s
        self._clock = clock
        self._on_change = on_change
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._probe_started = 0.0
        self._last_failure_at = float("-inf")

    @property
    def state(self) -> BreakerState:
        """The current state (OPEN turns HALF_OPEN once the reset delay has passed)."""
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._probing or self._clock() - self._opened_at >= self._reset_after:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        """True if a call may go to the dependency now; in HALF_OPEN only one probe at a time."""
        if self._opened_at is None:
            return True
        if self._probing or self._clock() - self._opened_at < self._reset_after:
            return False
        self._probing = True
        self._probe_started = self._clock()
        self._notify(BreakerState.HALF_OPEN)
        return True

    def now(self) -> float:
        """The breaker's clock, for callers to stamp when a call started."""
        return self._clock()

    def success(self) -> None:
        """Record a successful call; closes the breaker."""
        was_open = self._opened_at is not None
        self._failures = 0
        self._opened_at = None
        self._probing = False
        if was_open:
            self._notify(BreakerState.CLOSED)

    def release(self) -> None:
        """Record a call that says nothing about the dependency (cut short by its client's deadline).

        Neither success nor failure: the failure count stands, and a half-open probe is handed back
        so that the next call probes instead.
        """
        self._probing = False

    def failure(self, started_at: float | None = None) -> None:
        """Record a failed or timed-out call; opens the breaker at the threshold or on a failed probe.

        ``started_at`` (the breaker's clock when the call began): a call already in flight when the
        last failure was counted is part of that incident and not counted again; nor does it decide
        a probe that started after it.
        """
        if started_at is not None:
            if self._probing and started_at < self._probe_started:
                return
            if not self._probing and started_at < self._last_failure_at:
                return
        self._failures += 1
        self._last_failure_at = self._clock()
        if self._probing or (self._opened_at is None and self._failures >= self._threshold):
            self._opened_at = self._clock()
            self._probing = False
            self._notify(BreakerState.OPEN)

    def _notify(self, state: BreakerState) -> None:
        if self._on_change is not None:
            self._on_change(self.name, state)
