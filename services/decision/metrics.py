"""Every Prometheus instrument of the decision service, defined once.

Labels are bounded: actions, configured tenants, reason codes from services.common.reasons,
degradation causes and dependency names. No numbers or call ids.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.common.labelled import Children

DECISIONS = Counter(
    "fraudmesh_decision_decisions_total",
    "Decisions returned, by action and tenant (shadow-mode decisions count as the ALLOW returned).",
    ["action", "tenant"],
)
SHADOW = Counter(
    "fraudmesh_decision_shadow_actions_total",
    "Would-be actions computed in shadow mode (the call was allowed), by action and tenant.",
    ["action", "tenant"],
)
REASONS = Counter(
    "fraudmesh_decision_reasons_total",
    "Reason codes on returned decisions, by code and action.",
    ["reason", "action"],
)
EMERGENCY = Counter(
    "fraudmesh_decision_emergency_calls_total",
    "Calls to emergency numbers, by the action returned (anything but ALLOW is a page).",
    ["action"],
)
DECIDE_SECONDS = Histogram(
    "fraudmesh_decision_decide_seconds",
    "Server-side time of one decision, from request to response.",
    buckets=(0.00025, 0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1),
)
SCORES = Histogram(
    "fraudmesh_decision_score",
    "Calibrated model scores of scored calls (for drift watching).",
    buckets=(0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 1.0),
)
DEGRADED = Counter(
    "fraudmesh_decision_degraded_total",
    "Decisions made with something missing, by cause (services/decision/degraded.py: REDIS_TIMEOUT, …).",
    ["cause"],
)
DEPENDENCY_SECONDS = Histogram(
    "fraudmesh_decision_dependency_seconds",
    "Time spent waiting for a dependency on the call path (redis, origination).",
    ["dependency"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.01, 0.05),
)
LATE_WAKEUPS = Counter(
    "fraudmesh_decision_late_wakeups_total",
    "Dependency timeouts this process saw late (descheduled or its loop busy): a sign it is short of CPU.",
    ["dependency"],
)
BREAKER_STATE = Gauge(
    "fraudmesh_decision_breaker_state",
    "Circuit breaker state per dependency (0 closed, 1 half-open, 2 open).",
    ["dependency"],
)
AUDIT = Counter(
    "fraudmesh_decision_audit_records_total",
    "Audit records by outcome: queued, delivered, failed (Kafka refused), dropped (local queue full).",
    ["outcome"],
)
NOTICES = Counter(
    "fraudmesh_decision_impersonation_notices_total",
    "Notices to impersonated subscribers (subscribers.notices.v1): queued, delivered, failed, dropped.",
    ["outcome"],
)
AUDIT_QUEUE = Gauge(
    "fraudmesh_decision_audit_queue_records",
    "Audit records waiting in the producer's local queue (bounded by FRAUDMESH_AUDIT_QUEUE_MAX).",
)
POLICY_RELOADS = Counter(
    "fraudmesh_decision_policy_reloads_total",
    "Policy file changes seen, by outcome (applied, rejected — the previous policy stays).",
    ["outcome"],
)
POLICY_INFO = Gauge(
    "fraudmesh_decision_policy_info",
    "The active policy version (value 1 on the active version's series).",
    ["version"],
)
MODEL_INFO = Gauge(
    "fraudmesh_decision_model_info",
    "The loaded model version and feature-schema hash (value 1).",
    ["version", "schema"],
)
MODEL_RELOADS = Counter(
    "fraudmesh_decision_model_reloads_total",
    "Model artifact changes seen, by outcome (applied, rejected — the previous model stays).",
    ["outcome"],
)

STREAM_INVALID = Counter(
    "fraudmesh_decision_stream_invalid_messages_total",
    "DecideStream messages without setup.call_id, answered ALLOW (degraded INVALID_REQUEST).",
)

# In-process origination (services/decision/verification.py; FRAUDMESH_STI_TRUST_ANCHORS set).
SHAKEN = Counter(
    "fraudmesh_decision_shaken_verdicts_total",
    "SHAKEN outcomes of calls verified in this process, by status (verified, pending, failed, …).",
    ["status"],
)
CERT_FEED = Counter(
    "fraudmesh_decision_cert_feed_events_total",
    "Certificate feed events: loaded, refused (failed validation here), expired, miss_reported.",
    ["outcome"],
)
CERTIFICATES = Gauge(
    "fraudmesh_decision_certificates",
    "Validated certificate chains this process holds from origination's feed.",
)
INTERNAL_ERRORS = Counter(
    "fraudmesh_decision_internal_errors_total",
    "Bugs caught on the call path, by part (verification, caller_id); the call is still answered.",
    ["part"],
)

# The call path's children of the labelled instruments above, each looked up once
# (services.common.labelled); never cleared, unlike the *_INFO gauges.
decisions = Children(DECISIONS)
reasons = Children(REASONS)
degraded = Children(DEGRADED)
dependency_seconds = Children(DEPENDENCY_SECONDS)
audit = Children(AUDIT)
shaken = Children(SHAKEN)
