"""The call-path circuit breaker: opens after consecutive failures, probes once, closes on success."""

from __future__ import annotations

from services.common.breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def state_of(breaker: CircuitBreaker) -> BreakerState:
    return breaker.state


def test_opens_after_threshold_then_half_opens_with_one_probe() -> None:
    clock = Clock()
    changes: list[BreakerState] = []
    breaker = CircuitBreaker(
        "redis",
        failure_threshold=3,
        reset_after_s=1.0,
        clock=clock,
        on_change=lambda _n, s: changes.append(s),
    )
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    assert state_of(breaker) is BreakerState.CLOSED
    breaker.failure()
    assert state_of(breaker) is BreakerState.OPEN
    assert not breaker.allow()
    clock.now = 1.0
    assert breaker.allow(), "one probe after the reset delay"
    assert not breaker.allow(), "only one probe at a time"
    breaker.failure()
    assert state_of(breaker) is BreakerState.OPEN, "a failed probe opens it again"
    clock.now = 2.5
    assert breaker.allow()
    breaker.success()
    assert state_of(breaker) is BreakerState.CLOSED
    assert breaker.allow()
    assert changes == [
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
    ]


def test_success_resets_the_consecutive_count() -> None:
    breaker = CircuitBreaker("x", failure_threshold=2, clock=Clock())
    breaker.failure()
    breaker.success()
    breaker.failure()
    assert state_of(breaker) is BreakerState.CLOSED


def test_release_neither_charges_nor_resets_and_hands_back_the_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker("x", failure_threshold=2, reset_after_s=1.0, clock=clock)
    for _ in range(10):
        assert breaker.allow()
        breaker.release()
    assert state_of(breaker) is BreakerState.CLOSED, "calls cut short by their client do not open it"
    breaker.failure()
    breaker.release()
    breaker.failure()
    assert state_of(breaker) is BreakerState.OPEN, "a release does not reset the count"
    clock.now = 1.0
    assert breaker.allow()
    breaker.release()
    assert breaker.allow(), "the probe was handed back"


def test_calls_failing_together_in_one_stall_count_once() -> None:
    clock = Clock()
    breaker = CircuitBreaker("redis", failure_threshold=3, reset_after_s=1.0, clock=clock)
    in_flight = [breaker.now() for _ in range(10)]  # ten calls waiting when the dependency stalls
    clock.now = 0.004
    for started in in_flight:
        breaker.failure(started_at=started)
    assert state_of(breaker) is BreakerState.CLOSED, "one stall is one failure, however many it hit"
    for _ in range(2):  # the dependency stays down: each next call started after the last failure
        started = breaker.now()
        clock.now += 0.004
        breaker.failure(started_at=started)
    assert state_of(breaker) is BreakerState.OPEN


def test_only_the_probe_decides_a_half_open_breaker() -> None:
    clock = Clock()
    breaker = CircuitBreaker("redis", failure_threshold=1, reset_after_s=1.0, clock=clock)
    breaker.failure()
    clock.now = 0.999
    straggler = breaker.now()  # a call that began just before the probe (e.g. admitted by another path)
    clock.now = 1.0
    assert breaker.allow()
    probe = breaker.now()
    clock.now = 1.002
    breaker.failure(started_at=straggler)
    assert state_of(breaker) is BreakerState.HALF_OPEN, "an older call's failure does not decide the probe"
    breaker.failure(started_at=probe)
    assert state_of(breaker) is BreakerState.OPEN
