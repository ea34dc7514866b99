"""The mesh's restart policy: backoff doubles up to its cap, and a crash loop spends the budget."""

from __future__ import annotations

import pytest

from loadtest.supervision import RestartPolicy, describe_exit, restarts_text

POLICY = RestartPolicy(first_backoff_s=0.5, max_backoff_s=4.0, budget=5, window_s=60.0)


def test_backoff_doubles_with_each_recent_restart_up_to_the_cap() -> None:
    now = 1000.0
    waits = [POLICY.next_backoff_s([now - 1.0] * restarts, now) for restarts in range(5)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_the_budget_within_the_window_is_spent_by_a_crash_loop() -> None:
    now = 1000.0
    assert POLICY.next_backoff_s([now - 50.0, now - 40.0, now - 30.0, now - 20.0], now) == 4.0
    assert POLICY.next_backoff_s([now - 50.0, now - 40.0, now - 30.0, now - 20.0, now - 10.0], now) is None


def test_restarts_older_than_the_window_neither_count_nor_lengthen_the_backoff() -> None:
    now = 1000.0
    old = [now - 600.0 + i for i in range(20)]
    assert POLICY.recent(old, now) == 0
    assert POLICY.next_backoff_s(old, now) == 0.5
    assert POLICY.next_backoff_s([*old, now - 59.0], now) == 1.0
    assert POLICY.next_backoff_s([now - 60.0], now) == 0.5, "the window is half-open"


def test_a_long_history_under_a_large_budget_stays_at_the_cap() -> None:
    policy = RestartPolicy(first_backoff_s=0.1, max_backoff_s=30.0, budget=10_000, window_s=1e9)
    assert policy.next_backoff_s([0.0] * 5_000, 1.0) == 30.0


@pytest.mark.parametrize(
    "fields",
    [
        {"first_backoff_s": 0.0},
        {"first_backoff_s": 2.0, "max_backoff_s": 1.0},
        {"budget": 0},
        {"window_s": 0.0},
    ],
)
def test_a_policy_that_would_spin_or_never_restart_is_rejected(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        RestartPolicy(**fields)  # type: ignore[arg-type]


def test_exits_and_restarts_read_as_words() -> None:
    assert describe_exit(-9) == "was killed by SIGKILL"
    assert describe_exit(-15) == "was killed by SIGTERM"
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(0) == "exited with code 0"
    assert describe_exit(None) == "is still running"
    assert restarts_text({"reputation": 1, "decision": 3}) == "decision 3 times, reputation once"
