"""The recent-decisions summary reputation pushes for each audited decision (pure, no network)."""

from __future__ import annotations

import json

from fraudmesh.v1 import common_pb2, events_pb2
from services.common.recent import summary_json


def test_a_record_without_a_decision_has_no_summary() -> None:
    assert summary_json(events_pb2.CallSetupEvent()) == ""


def test_the_summary_holds_what_explain_reads_and_no_number() -> None:
    event = events_pb2.CallSetupEvent()
    event.setup.tenant = "demo-cn"
    event.setup.calling_number = "+8613800138000"
    event.setup.event_time.seconds = 1_800_000_000
    event.decision.call_id = "c-1"
    event.decision.action = common_pb2.ACTION_BLOCK
    event.decision.latency_us = 2_500
    event.decision.reason_codes.append("DENY_LISTED")
    event.decision.degraded = True
    raw = summary_json(event)
    assert "13800138000" not in raw
    summary = json.loads(raw)
    assert summary == {
        "call_id": "c-1",
        "tenant": "demo-cn",
        "decided_ms": 1_800_000_000_002,
        "action": common_pb2.ACTION_BLOCK,
        "shadow_action": 0,
        "score": 0.0,
        "reasons": ["DENY_LISTED"],
        "model": "",
        "policy": "",
        "degraded": True,
    }
