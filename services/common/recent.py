"""A caller's recent decisions (``{pseudonym}:dec``), written by reputation and read by the admin API.

Reputation pushes one summary per audit record it folds (calls.setup.v1 carries every decision), in
the same per-caller script that counts the setup, so a record delivered twice pushes once and the
decision's call path writes nothing for it. The summary holds no number: pseudonyms key the list.
"""

from __future__ import annotations

import json
from typing import Final

from fraudmesh.v1 import events_pb2

RECENT_DECISIONS: Final = 20
DECISIONS_TTL_S: Final = 35 * 86_400


def summary_json(event: events_pb2.CallSetupEvent) -> str:
    """The list entry of one audited decision, or '' when the record carries none.

    ``decided_ms`` is the call's event time plus the decision's own latency: the moment the switch
    got its answer on the call's clock (the audit record may reach Kafka later).
    """
    decision = event.decision
    if not decision.call_id:
        return ""
    stamp = event.setup.event_time
    decided_ms = stamp.seconds * 1000 + stamp.nanos // 1_000_000 + decision.latency_us // 1000
    return json.dumps(
        {
            "call_id": decision.call_id,
            "tenant": event.setup.tenant,
            "decided_ms": decided_ms,
            "action": int(decision.action),
            "shadow_action": int(decision.shadow_action),
            "score": decision.score,
            "reasons": list(decision.reason_codes),
            "model": decision.model_version,
            "policy": decision.policy_version,
            "degraded": decision.degraded,
        }
    )
