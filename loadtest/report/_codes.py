"""Outcome status codes, actor-kind and action names, and the array types shared by the report."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from fraudmesh.v1 import common_pb2, dataset_pb2

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Method = Literal["linear", "inverted_cdf"]

SERVER_BUDGET_MS = 5.0
HOUR_MS = 3_600_000
KIND_SPAN = 1 << 16
EMERGENCY = int(dataset_pb2.ACTOR_KIND_EMERGENCY)

NOT_DECIDED = 0
ALLOW = int(common_pb2.ACTION_ALLOW)
LABEL = int(common_pb2.ACTION_LABEL)
CHALLENGE = int(common_pb2.ACTION_CHALLENGE)
BLOCK = int(common_pb2.ACTION_BLOCK)
ERROR = 5
OTHER_ACTION = 6
N_STATUS = 7
FLAGGED = (LABEL, CHALLENGE, BLOCK)
DECIDED = (ALLOW, LABEL, CHALLENGE, BLOCK, OTHER_ACTION)
NOT_ALLOWED = (*FLAGGED, OTHER_ACTION)
STATUS_ORDER = (ALLOW, LABEL, CHALLENGE, BLOCK, OTHER_ACTION, ERROR, NOT_DECIDED)


def action_name(value: int) -> str:
    """An Action value's name without its ACTION_ prefix (e.g. "BLOCK")."""
    try:
        return common_pb2.Action.Name(common_pb2.Action.ValueType(value)).removeprefix("ACTION_")
    except ValueError:
        return f"ACTION_{value}"


def kind_name(value: int) -> str:
    """An ActorKind value's name without its ACTOR_KIND_ prefix (e.g. "ROBOCALL")."""
    try:
        return dataset_pb2.ActorKind.Name(dataset_pb2.ActorKind.ValueType(value)).removeprefix("ACTOR_KIND_")
    except ValueError:
        return f"KIND_{value}"


def status_name(status: int) -> str:
    """Display name of a per-call outcome status: an action, "error", "other action" or "not decided"."""
    if status == NOT_DECIDED:
        return "not decided"
    if status == ERROR:
        return "error"
    if status == OTHER_ACTION:
        return "other action"
    return action_name(status)
