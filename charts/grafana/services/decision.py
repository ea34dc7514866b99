"""Panels over services/decision/metrics.py: actions, the 5 ms budget, degradation, emergency calls."""

from __future__ import annotations

from charts.grafana.model import Panel, Query, Row, Section, Threshold, sel

RATE = "[$__rate_interval]"
DECISIONS = "fraudmesh_decision_decisions_total"
SHADOW = "fraudmesh_decision_shadow_actions_total"
REASONS = "fraudmesh_decision_reasons_total"
EMERGENCY = "fraudmesh_decision_emergency_calls_total"
DECIDE = "fraudmesh_decision_decide_seconds"
SCORE = "fraudmesh_decision_score"
DEGRADED = "fraudmesh_decision_degraded_total"
DEPENDENCY = "fraudmesh_decision_dependency_seconds"
BREAKER = "fraudmesh_decision_breaker_state"
LATE_WAKEUPS = "fraudmesh_decision_late_wakeups_total"
AUDIT = "fraudmesh_decision_audit_records_total"
AUDIT_QUEUE = "fraudmesh_decision_audit_queue_records"
RELOADS = "fraudmesh_decision_policy_reloads_total"
POLICY = "fraudmesh_decision_policy_info"
MODEL = "fraudmesh_decision_model_info"
MODEL_RELOADS = "fraudmesh_decision_model_reloads_total"
BUDGET_S = 0.005  # Decide: server-side p99 within 5 ms
SUB_DEADLINE_S = 0.004  # FRAUDMESH_ORIGINATION_TIMEOUT_S / FRAUDMESH_FEATURES_TIMEOUT_S defaults
NOT_ALLOW = 'action!="ALLOW"'
ACTED = 'action=~"LABEL|CHALLENGE|BLOCK"'
STOPPED = 'action=~"BLOCK|CHALLENGE"'
DROPPED = 'outcome="dropped"'
AT_OR_BELOW_HALF = 'le="0.5"'


def _quantile(q: float, metric: str, by: str = "") -> str:
    labels = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({labels}) (rate({sel(metric + '_bucket')}{RATE})))"


def _rate(metric: str, by: str, *matchers: str) -> str:
    return f"sum by ({by}) (rate({sel(metric, *matchers)}{RATE}))"


decisions_by_action = Panel(
    "Decisions / s by action",
    (Query(_rate(DECISIONS, "action"), "{{action}}"),),
    unit="ops",
    stacked=True,
    description="Answers returned to the switch (shadow-mode tenants count as the ALLOW they got).",
)
decisions_by_tenant = Panel(
    "Decisions / s by tenant and action",
    (Query(_rate(DECISIONS, "tenant, action"), "{{tenant}} {{action}}"),),
    unit="ops",
    width=12,
    description="Per carrier tenant; a tenant whose LABEL/BLOCK share jumps has a campaign or a policy "
    "change.",
)
shadow_actions = Panel(
    "Shadow-mode would-be actions / s",
    (Query(_rate(SHADOW, "tenant, action"), "{{tenant}} {{action}}"),),
    unit="ops",
    width=12,
    description="What tenants in shadow mode would have done; the call was allowed.",
)
latency = Panel(
    "Decide p50 / p99 (server) vs the 5 ms budget",
    (Query(_quantile(0.5, DECIDE), "p50"), Query(_quantile(0.99, DECIDE), "p99")),
    unit="s",
    thresholds=(Threshold(BUDGET_S),),
    description="Server-side time from request to response; the budget is p99 within 5 ms.",
)
latency_detail = Panel(
    "Decide p50 / p99 by pod",
    (
        Query(_quantile(0.5, DECIDE, "pod"), "p50 {{pod}}"),
        Query(_quantile(0.99, DECIDE, "pod"), "p99 {{pod}}"),
    ),
    unit="s",
    thresholds=(Threshold(BUDGET_S),),
    width=12,
    description="One slow pod points at its node (CPU steal, noisy neighbour) rather than a dependency.",
)
dependency_latency = Panel(
    "Dependency wait p99 (origination, redis) vs sub-deadline",
    (Query(_quantile(0.99, DEPENDENCY, "dependency"), "p99 {{dependency}}"),),
    unit="s",
    thresholds=(Threshold(SUB_DEADLINE_S, "orange"),),
    width=12,
    description="Verify and the one Redis round trip run concurrently, each capped by its sub-deadline (4 "
    "ms).",
)
degraded_ratio = Panel(
    "Degraded ratio",
    (
        Query(
            f"sum(rate({sel(DEGRADED)}{RATE})) / clamp_min(sum(rate({sel(DECISIONS)}{RATE})), 1e-9)",
            "degraded causes / decisions",
        ),
    ),
    unit="percentunit",
    thresholds=(Threshold(0.05, "orange"),),
    description="Decisions made with something missing (fail-open); the alert fires above 5 %. "
    "A decision with two causes counts twice.",
)
degraded_causes = Panel(
    "Degraded decisions / s by cause",
    (Query(_rate(DEGRADED, "cause"), "{{cause}}"),),
    unit="ops",
    width=12,
    description="REDIS_TIMEOUT / ORIGINATION_UNAVAILABLE / … — which dependency the decisions ran without.",
)
breakers = Panel(
    "Circuit breakers (0 closed, 1 half-open, 2 open)",
    (Query(f"max by (dependency) ({sel(BREAKER)})", "{{dependency}}"),),
    unit="short",
    thresholds=(Threshold(1, "orange"), Threshold(2, "red")),
    width=12,
    decimals=0,
    description="Worst pod per dependency; open means calls skip that dependency entirely (fail-open).",
)
late_wakeups = Panel(
    "Dependency timeouts seen late, by pod",
    (Query(_rate(LATE_WAKEUPS, "pod, dependency"), "{{pod}} {{dependency}}"),),
    unit="reqps",
    width=12,
    description="Waits a pod ended late because it was not running at the deadline (descheduled, or its loop "
    "busy): a pod short of CPU, not a slow dependency. Anything steady here means more CPU or more pods.",
)
emergency_not_allowed = Panel(
    "Emergency calls NOT allowed (must be 0)",
    (Query(f"sum(increase({sel(EMERGENCY, NOT_ALLOW)}[$__range])) or vector(0)", "not ALLOW"),),
    kind="stat",
    unit="short",
    decimals=0,
    thresholds=(Threshold(1, "red"),),
    width=6,
    description="Any emergency call answered other than ALLOW in the selected range is an incident (it "
    "pages).",
)
emergency_by_action = Panel(
    "Emergency calls / s by action",
    (Query(_rate(EMERGENCY, "action"), "{{action}}"),),
    unit="ops",
    width=18,
    description="Emergency numbers are ALLOWed before anything else runs; only ALLOW may ever appear here.",
)
audit_records = Panel(
    "Audit records / s by outcome",
    (Query(_rate(AUDIT, "outcome"), "{{outcome}}"),),
    unit="ops",
    width=12,
    description="queued → delivered to calls.setup.v1; failed = Kafka refused; dropped = local queue full.",
)
audit_queue = Panel(
    "Audit queue (records) by pod",
    (Query(f"sum by (pod) ({sel(AUDIT_QUEUE)})", "{{pod}}"),),
    unit="short",
    width=12,
    description="Records waiting in the producer's local queue; at FRAUDMESH_AUDIT_QUEUE_MAX new ones are "
    "dropped.",
)
audit_dropped = Panel(
    "Audit records dropped",
    (Query(f"sum(increase({sel(AUDIT, DROPPED)}[$__range])) or vector(0)", "dropped"),),
    kind="stat",
    unit="short",
    decimals=0,
    thresholds=(Threshold(1, "red"),),
    width=6,
    description="Decisions missing from the audit trail (and from reputation) in the selected range.",
)
policy_version = Panel(
    "Policy version (pods)",
    (Query(f"count by (version) ({sel(POLICY)} == 1)", "{{version}}"),),
    kind="stat",
    text_mode="value_and_name",
    width=6,
    description="Pods on each policy version; two versions for long means a reload failed on some pods.",
)
model_version = Panel(
    "Model version (pods)",
    (Query(f"count by (version) ({sel(MODEL)} == 1)", "{{version}}"),),
    kind="stat",
    text_mode="value_and_name",
    width=6,
    description="Pods on each scoring model version (and its feature-schema hash in the series).",
)
policy_reloads = Panel(
    "Policy reloads by outcome",
    (Query(f"sum by (outcome) (increase({sel(RELOADS)}{RATE}))", "{{outcome}}"),),
    unit="short",
    width=12,
    description="rejected: the edit failed validation and the previous policy stays in force.",
)
model_reloads = Panel(
    "Model reloads by outcome",
    (Query(f"sum by (outcome) (increase({sel(MODEL_RELOADS)}{RATE}))", "{{outcome}}"),),
    unit="short",
    width=12,
    description="rejected: the new artifact failed verification (digest, manifest or feature schema) and "
    "the previous model keeps scoring; the decision logs name the file.",
)
scores = Panel(
    "Score distribution (p50 / p90 / p99, and p90 a week ago)",
    (
        Query(_quantile(0.5, SCORE), "p50"),
        Query(_quantile(0.9, SCORE), "p90"),
        Query(_quantile(0.99, SCORE), "p99"),
        Query(
            f"histogram_quantile(0.9, sum by (le) (rate({sel(SCORE + '_bucket')}{RATE} offset 7d)))",
            "p90 7d ago",
        ),
    ),
    unit="percentunit",
    width=12,
    description="Calibrated model scores of scored calls; a shift with no traffic change is drift.",
)
high_scores = Panel(
    "Share of scored calls above 0.5",
    (
        Query(
            f"1 - sum(rate({sel(SCORE + '_bucket', AT_OR_BELOW_HALF)}{RATE})) / "
            f"clamp_min(sum(rate({sel(SCORE + '_count')}{RATE})), 1e-9)",
            "score > 0.5",
        ),
    ),
    unit="percentunit",
    width=12,
    description="The high-risk share of scored calls; compare with the same hour last week.",
)
top_reasons = Panel(
    "Top reason codes / s",
    (Query(f"topk(10, sum by (reason) (rate({sel(REASONS)}{RATE})))", "{{reason}}"),),
    unit="ops",
    width=12,
    description="Reason codes on returned decisions (every non-ALLOW answer carries some).",
)
actions_over_time = Panel(
    "Blocked vs labelled vs challenged / s",
    (Query(_rate(DECISIONS, "action", ACTED), "{{action}}"),),
    unit="ops",
    width=12,
    description="Calls the mesh acted on; shadow-mode tenants are in the shadow panel instead.",
)
acted_share_by_tenant = Panel(
    "Share of calls acted on, by tenant",
    (
        Query(
            f"{_rate(DECISIONS, 'tenant', ACTED)} / clamp_min({_rate(DECISIONS, 'tenant')}, 1e-9)",
            "{{tenant}}",
        ),
    ),
    unit="percentunit",
    width=12,
    description="LABEL + CHALLENGE + BLOCK over all decisions per tenant.",
)
reasons_by_action = Panel(
    "Top reason codes on BLOCK / CHALLENGE / s",
    (Query(f"topk(10, sum by (reason) (rate({sel(REASONS, STOPPED)}{RATE})))", "{{reason}}"),),
    unit="ops",
    width=12,
    description="Why calls were stopped or screened.",
)

SECTION = Section(
    service="decision",
    title="Decision",
    order=10,
    overview=(decisions_by_action, latency, degraded_ratio, emergency_not_allowed, audit_dropped),
    rows=(
        Row("Emergency calls", (emergency_not_allowed, emergency_by_action)),
        Row("Decisions", (decisions_by_action, latency, degraded_ratio, decisions_by_tenant, shadow_actions)),
        Row("Latency", (latency_detail, dependency_latency)),
        Row("Degradation", (degraded_causes, breakers, late_wakeups)),
        Row("Audit", (audit_dropped, audit_records, audit_queue)),
        Row("Policy and model", (policy_version, model_version, policy_reloads, model_reloads)),
        Row("Scores and reasons", (scores, high_scores, top_reasons)),
    ),
    fraud=(actions_over_time, acted_share_by_tenant, top_reasons, reasons_by_action, shadow_actions),
)
