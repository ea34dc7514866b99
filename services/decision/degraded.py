"""Why a decision was made without something it normally has: the closed vocabulary of degraded causes.

Each cause is the string that appears in ``Decision.degraded_reasons`` and in the ``cause`` label of
``fraudmesh_decision_degraded_total``; add a member here (with its text) to add a cause.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["DEGRADED_TEXT", "Degraded", "skipped_late", "timed_out", "unavailable"]


class Degraded(enum.StrEnum):
    """A degraded cause; the value is the stable wire string."""

    REDIS_TIMEOUT = "REDIS_TIMEOUT"
    REDIS_UNAVAILABLE = "REDIS_UNAVAILABLE"
    REDIS_SKIPPED_LATE = "REDIS_SKIPPED_LATE"
    ORIGINATION_TIMEOUT = "ORIGINATION_TIMEOUT"
    ORIGINATION_UNAVAILABLE = "ORIGINATION_UNAVAILABLE"
    ORIGINATION_SKIPPED_LATE = "ORIGINATION_SKIPPED_LATE"
    ORIGINATION_DEGRADED = "ORIGINATION_DEGRADED"
    DECISION_ERROR = "DECISION_ERROR"
    INVALID_REQUEST = "INVALID_REQUEST"


DEGRADED_TEXT: Final[dict[Degraded, str]] = {
    Degraded.REDIS_TIMEOUT: "the caller's features and lists did not arrive within the sub-deadline",
    Degraded.REDIS_UNAVAILABLE: "Redis refused or its breaker is open; decided without features and lists",
    Degraded.REDIS_SKIPPED_LATE: "the call arrived too late to wait for Redis (no breaker charge)",
    Degraded.ORIGINATION_TIMEOUT: "origination's verdict did not arrive within the sub-deadline",
    Degraded.ORIGINATION_UNAVAILABLE: "origination refused or its breaker is open; no verdict",
    Degraded.ORIGINATION_SKIPPED_LATE: "too late to wait for origination (no breaker charge)",
    Degraded.ORIGINATION_DEGRADED: "origination answered, but part of its verdict is missing (e.g. PENDING)",
    Degraded.DECISION_ERROR: "the decision raised; answered ALLOW",
    Degraded.INVALID_REQUEST: "a DecideStream message without setup.call_id; answered ALLOW",
}

_BY_DEPENDENCY: Final = {
    "redis": (Degraded.REDIS_TIMEOUT, Degraded.REDIS_UNAVAILABLE, Degraded.REDIS_SKIPPED_LATE),
    "origination": (
        Degraded.ORIGINATION_TIMEOUT,
        Degraded.ORIGINATION_UNAVAILABLE,
        Degraded.ORIGINATION_SKIPPED_LATE,
    ),
}


def timed_out(dependency: str) -> Degraded:
    """The timeout cause of a dependency ("redis" or "origination")."""
    return _BY_DEPENDENCY[dependency][0]


def unavailable(dependency: str) -> Degraded:
    """The unavailable (refused / breaker open) cause of a dependency."""
    return _BY_DEPENDENCY[dependency][1]


def skipped_late(dependency: str) -> Degraded:
    """The cause for a call that arrived too late to wait for a dependency."""
    return _BY_DEPENDENCY[dependency][2]
