"""Context features from the CallSetup and the numbers themselves."""

from __future__ import annotations

import math

import numpy as np

from fraudmesh.v1 import call_pb2, common_pb2, verdicts_pb2
from services.common.context import ContextRules, fill_context, fill_origination
from services.common.features import INDEX, empty_vector
from services.common.phone import normalize, shared_national_prefix

RULES = ContextRules(region="CN", home_ranges=("+86138",), risky_ranges=("+86170",), utc_offset_hours=8)


def setup_at(seconds: int) -> call_pb2.CallSetup:
    setup = call_pb2.CallSetup(ingress_kind=common_pb2.INGRESS_KIND_VOIP_PEER)
    setup.event_time.seconds = seconds
    return setup


def test_context_of_a_virtual_range_neighbor_call() -> None:
    caller = normalize("17012345678", "CN")
    callee = normalize("17012349999", "CN")
    vector = empty_vector()
    fill_context(vector, setup_at(0), caller, callee, RULES)
    assert vector[INDEX["ingress_kind"]] == common_pb2.INGRESS_KIND_VOIP_PEER
    assert vector[INDEX["hour_of_day"]] == 8
    assert vector[INDEX["caller_risky_range"]] == 1
    assert vector[INDEX["caller_home_range"]] == 0
    assert vector[INDEX["caller_domestic"]] == 1
    assert vector[INDEX["callee_prefix_shared"]] == 7
    assert np.isnan(vector[INDEX["calls_24h"]])


def test_unusable_caller_is_invalid_and_the_rest_unknown() -> None:
    vector = empty_vector()
    fill_context(vector, setup_at(3600 * 20), None, None, RULES)
    assert vector[INDEX["caller_valid"]] == 0
    assert vector[INDEX["hour_of_day"]] == 4
    assert np.isnan(vector[INDEX["caller_number_kind"]])


def test_shared_national_prefix_needs_the_same_country() -> None:
    assert shared_national_prefix(normalize("+8613800138000", "CN"), normalize("+12025550123", "US")) == 0
    assert shared_national_prefix(normalize("+8613800138000", "CN"), normalize("+8613800199999", "CN")) == 6


def test_origination_features_from_a_verdict() -> None:
    def filled(verdict: verdicts_pb2.OriginationVerdict | None) -> dict[str, float]:
        vector = empty_vector()
        fill_origination(vector, verdict)
        return {name: float(vector[INDEX[name]]) for name in ("shaken_status", "attestation", "cli_findings")}

    assert all(math.isnan(v) for v in filled(None).values())
    assert all(math.isnan(v) for v in filled(verdicts_pb2.OriginationVerdict()).values())
    verified = filled(
        verdicts_pb2.OriginationVerdict(
            shaken_status=verdicts_pb2.SHAKEN_STATUS_VERIFIED,
            attestation=common_pb2.ATTESTATION_A,
            reason_codes=["RISKY_RANGE"],
        )
    )
    assert verified == {
        "shaken_status": verdicts_pb2.SHAKEN_STATUS_VERIFIED,
        "attestation": common_pb2.ATTESTATION_A,
        "cli_findings": 1.0,
    }
    shaken_raised = filled(
        verdicts_pb2.OriginationVerdict(
            reason_codes=["DEGRADED_ORIGINATION", "NEIGHBOR_SPOOFING"], degraded=True
        )
    )
    assert math.isnan(shaken_raised["shaken_status"])
    assert math.isnan(shaken_raised["attestation"])
    assert shaken_raised["cli_findings"] == 1.0
