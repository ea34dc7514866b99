"""Panels over services/switchfront/metrics.py: answers, fail-open causes, the 20 ms budget, SIP health."""

from __future__ import annotations

from charts.grafana.model import Panel, Query, Row, Section, Threshold, sel

RATE = "[$__rate_interval]"
REQUESTS = "fraudmesh_switchfront_requests_total"
ANSWERS = "fraudmesh_switchfront_answers_total"
MALFORMED = "fraudmesh_switchfront_malformed_total"
RETRANSMISSIONS = "fraudmesh_switchfront_retransmissions_total"
ANSWER_SECONDS = "fraudmesh_switchfront_answer_seconds"
TRANSACTIONS = "fraudmesh_switchfront_transactions"
CONNECTIONS = "fraudmesh_switchfront_connections"
BUDGET_S = 0.02  # FRAUDMESH_DECIDE_TIMEOUT_S: the switch's whole budget for one answer
FAIL_OPEN_ALERT = 0.05  # FraudmeshSwitchFrontFailingOpen
FAILED_OPEN = 'cause!~"decided|emergency"'  # timeout, unavailable, error (and any cause added later)
EMERGENCY = 'cause="emergency"'
NOT_ALLOW = 'action!="ALLOW"'
ACTED = 'action=~"LABEL|CHALLENGE|BLOCK"'


def _rate(metric: str, by: str, *matchers: str) -> str:
    return f"sum by ({by}) (rate({sel(metric, *matchers)}{RATE}))"


def _quantile(q: float, by: str = "") -> str:
    labels = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({labels}) (rate({sel(ANSWER_SECONDS + '_bucket')}{RATE})))"


answers_by_action = Panel(
    "Answers / s by action and status",
    (Query(_rate(ANSWERS, "action, status"), "{{action}} {{status}}"),),
    unit="ops",
    stacked=True,
    width=12,
    description="Final answers to calls on every transport: 302 routes on (ALLOW, LABEL, CHALLENGE to the "
    "IVR), 603/480 refuse (BLOCK, CHALLENGE without an IVR URI).",
)
fail_open_share = Panel(
    "Fail-open share",
    (
        Query(
            f"sum(rate({sel(ANSWERS, FAILED_OPEN)}{RATE}))"
            f" / clamp_min(sum(rate({sel(ANSWERS)}{RATE})), 1e-9)",
            "failed open / answers",
        ),
    ),
    kind="stat",
    unit="percentunit",
    decimals=1,
    thresholds=(Threshold(0.01, "orange"), Threshold(FAIL_OPEN_ALERT, "red")),
    width=6,
    description="Calls routed on without a decision (Decide timed out, decision unreachable, or an error); "
    "the alert fires above 5 %. Emergency calls are not counted: they are allowed by design.",
)
fail_open_by_cause = Panel(
    "Fail-open answers / s by cause",
    (Query(_rate(ANSWERS, "cause", FAILED_OPEN), "{{cause}}"),),
    unit="ops",
    stacked=True,
    width=6,
    description="timeout: Decide missed FRAUDMESH_DECIDE_TIMEOUT_S; unavailable: no decision pod "
    "reachable; error: anything else (the front's logs hold the traceback).",
)
latency = Panel(
    "Answer time p50 / p99 by transport vs the 20 ms budget",
    (
        Query(_quantile(0.5, "transport"), "p50 {{transport}}"),
        Query(_quantile(0.99, "transport"), "p99 {{transport}}"),
    ),
    unit="s",
    thresholds=(Threshold(BUDGET_S),),
    width=12,
    description="From a call's request to its answer inside the front, Decide included; past the budget "
    "the call is routed on (fail-open, cause timeout).",
)
latency_p99 = Panel(
    "Answer time p99 vs the 20 ms budget",
    (Query(_quantile(0.99), "p99"),),
    unit="s",
    thresholds=(Threshold(BUDGET_S),),
    width=6,
    description="Every transport together; the alert fires when p99 stays over 20 ms for 10 minutes.",
)
emergency_answers = Panel(
    "Emergency answers / s by transport and action",
    (Query(_rate(ANSWERS, "transport, action", EMERGENCY), "{{transport}} {{action}}"),),
    unit="ops",
    width=18,
    description="Calls to emergency numbers (the numbering plan's and the policy's emergency_numbers), "
    "routed on by the front without asking decision; only ALLOW may ever appear.",
)
emergency_not_allowed = Panel(
    "Emergency answers NOT allowed (must be 0)",
    (Query(f"sum(increase({sel(ANSWERS, EMERGENCY, NOT_ALLOW)}[$__range])) or vector(0)", "not ALLOW"),),
    kind="stat",
    unit="short",
    decimals=0,
    thresholds=(Threshold(1, "red"),),
    width=6,
    description="Any emergency call the front answered other than ALLOW in the selected range is a bug.",
)
requests = Panel(
    "Requests / s by transport and method",
    (Query(_rate(REQUESTS, "transport, method"), "{{transport}} {{method}}"),),
    unit="reqps",
    width=12,
    description="Everything received (HTTP requests count as INVITE); OPTIONS are the switches' keepalives.",
)
malformed = Panel(
    "Malformed requests / s by reason",
    (
        Query(
            _rate(MALFORMED, "transport, reason, answered"),
            "{{transport}} {{reason}} answered={{answered}}",
        ),
    ),
    unit="reqps",
    width=12,
    description="Refused requests; answered=false could not even be addressed (no Via), so nothing was sent.",
)
retransmissions = Panel(
    "Retransmissions / s by transport",
    (Query(_rate(RETRANSMISSIONS, "transport"), "{{transport}}"),),
    unit="reqps",
    width=12,
    description="Requests answered again from the transaction cache; a rise on UDP means answers are lost "
    "or arrive after the switch's T1 (500 ms).",
)
connections = Panel(
    "Open SIP connections by pod",
    (Query(f"sum by (pod) ({sel(CONNECTIONS)})", "{{pod}}"),),
    unit="short",
    width=12,
    description="TCP and TLS connections from switches; the Service balances per connection.",
)
transactions = Panel(
    "Transactions held by pod",
    (Query(f"sum by (pod) ({sel(TRANSACTIONS)})", "{{pod}}"),),
    unit="short",
    width=12,
    description="Server transactions kept for retransmissions (RFC 3261 timer H, 32 s), bounded by "
    "FRAUDMESH_TRANSACTION_MAX.",
)
acted = Panel(
    "Calls labelled / challenged / blocked at the switch front / s",
    (Query(_rate(ANSWERS, "action", ACTED), "{{action}}"),),
    unit="ops",
    width=12,
    description="What switches without a gRPC client were told to do (SIP and HTTP answers).",
)

SECTION = Section(
    service="switchfront",
    title="Switch front",
    order=5,
    overview=(answers_by_action, fail_open_share, latency_p99),
    rows=(
        Row("Answers", (answers_by_action, fail_open_share, fail_open_by_cause)),
        Row("Latency", (latency, requests)),
        Row("Emergency calls", (emergency_not_allowed, emergency_answers)),
        Row("SIP", (malformed, retransmissions, connections, transactions)),
    ),
    fraud=(acted,),
)
