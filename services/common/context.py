"""Call-context features: what the CallSetup and the numbers themselves say, before any lookup.

Shared by the decision service (live calls) and the trainer (replayed calls), so both fill the
context part of the vector with the same code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fraudmesh.v1 import call_pb2, verdicts_pb2
from services.common.features import INDEX
from services.common.phone import NormalizedNumber, NumberKind, shared_national_prefix
from services.common.reasons import Reason

KIND_CODES = {kind: i for i, kind in enumerate(NumberKind)}


@dataclass(frozen=True)
class ContextRules:
    """The tenant facts context features need: its region, ranges and local time."""

    region: str
    home_ranges: tuple[str, ...]
    risky_ranges: tuple[str, ...]
    utc_offset_hours: float


def fill_context(
    vector: npt.NDArray[np.float32],
    setup: call_pb2.CallSetup,
    caller: NormalizedNumber | None,
    callee: NormalizedNumber | None,
    rules: ContextRules,
) -> None:
    """Write the context features of one call into ``vector``; unknown parts stay NaN."""
    vector[INDEX["ingress_kind"]] = setup.ingress_kind
    if setup.HasField("event_time"):
        hours = setup.event_time.seconds / 3600 + rules.utc_offset_hours
        vector[INDEX["hour_of_day"]] = math.floor(hours % 24)
    if caller is None:
        vector[INDEX["caller_valid"]] = 0.0
        return
    vector[INDEX["caller_number_kind"]] = KIND_CODES[caller.kind]
    vector[INDEX["caller_valid"]] = float(caller.valid or caller.is_short)
    canonical = caller.canonical
    vector[INDEX["caller_risky_range"]] = float(any(canonical.startswith(p) for p in rules.risky_ranges))
    vector[INDEX["caller_home_range"]] = float(any(canonical.startswith(p) for p in rules.home_ranges))
    vector[INDEX["caller_domestic"]] = float(caller.region == rules.region)
    if callee is not None:
        vector[INDEX["callee_prefix_shared"]] = shared_national_prefix(caller, callee)


CLI_FINDINGS = frozenset(
    {
        Reason.INTL_INGRESS_DOMESTIC_CLI,
        Reason.ONNET_CLI_OFFNET_INGRESS,
        Reason.NEIGHBOR_SPOOFING,
        Reason.INVALID_CLI,
        Reason.RISKY_RANGE,
        Reason.DNO_LISTED,
        Reason.CLI_REGION_MISMATCH,
    }
)
"""The origination reason codes that count as caller-ID consistency findings (feature cli_findings)."""


def fill_origination(
    vector: npt.NDArray[np.float32], verdict: verdicts_pb2.OriginationVerdict | None
) -> None:
    """Write origination's features from its verdict; none (NaN) when origination did not answer.

    When only its SHAKEN check raised (status UNSPECIFIED with ``DEGRADED_ORIGINATION``), the
    caller-ID checks still ran independently, so their count is kept and the SHAKEN features stay
    missing. Shared by the decision service and the trainer, so both turn a verdict into features alike.
    """
    if verdict is None:
        return
    if verdict.shaken_status == verdicts_pb2.SHAKEN_STATUS_UNSPECIFIED:
        if Reason.DEGRADED_ORIGINATION not in verdict.reason_codes:
            return
    else:
        vector[INDEX["shaken_status"]] = verdict.shaken_status
        vector[INDEX["attestation"]] = verdict.attestation
    vector[INDEX["cli_findings"]] = sum(1 for code in verdict.reason_codes if code in CLI_FINDINGS)
