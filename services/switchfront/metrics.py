"""Every Prometheus instrument of the switch front, defined once.

Labels are bounded: transports (udp, tcp, tls, http), known SIP methods (else "other"), status
codes the front sends, actions, causes and parse problems. No numbers, call ids or addresses.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.common.labelled import Children

METHODS = frozenset({"INVITE", "ACK", "OPTIONS", "CANCEL", "BYE", "REGISTER", "INFO", "UPDATE", "PRACK"})

REQUESTS = Children(
    Counter(
        "fraudmesh_switchfront_requests_total",
        "Requests received, by transport and SIP method (HTTP requests count as INVITE).",
        ["transport", "method"],
    )
)
ANSWERS = Children(
    Counter(
        "fraudmesh_switchfront_answers_total",
        "Final answers sent for calls, by transport, SIP status, action and cause "
        "(decided, emergency, timeout, unavailable, error: every cause but decided is fail-open).",
        ["transport", "status", "action", "cause"],
    )
)
MALFORMED = Children(
    Counter(
        "fraudmesh_switchfront_malformed_total",
        "Requests refused as malformed, by transport, reason, and whether a 400 could be sent.",
        ["transport", "reason", "answered"],
    )
)
RETRANSMISSIONS = Children(
    Counter(
        "fraudmesh_switchfront_retransmissions_total",
        "Retransmitted requests answered from the transaction cache (or absorbed while deciding).",
        ["transport"],
    )
)
ANSWER_SECONDS = Children(
    Histogram(
        "fraudmesh_switchfront_answer_seconds",
        "Time from a call's request to its answer inside the front, Decide included, by transport.",
        ["transport"],
        buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1),
    )
)
TRANSACTIONS = Gauge(
    "fraudmesh_switchfront_transactions",
    "Server transactions held for retransmissions (RFC 3261 timer H).",
)
CONNECTIONS = Gauge(
    "fraudmesh_switchfront_connections",
    "Open SIP connections (TCP and TLS).",
)
