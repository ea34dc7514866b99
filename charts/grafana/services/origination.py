"""Panels over services/origination/metrics.py for the Verify RPC: outcomes, the 1 ms budget, certificates."""

from __future__ import annotations

from charts.grafana.model import Panel, Query, Row, Section, Threshold, sel

RATE = "[$__rate_interval]"
SCOPE = 'service="origination"'  # the stats agent exports the same instruments from its own pods
VERIFICATIONS = "fraudmesh_origination_verifications_total"
FAILURES = "fraudmesh_origination_shaken_failures_total"
ATTESTATIONS = "fraudmesh_origination_attestations_total"
REASONS = "fraudmesh_origination_reasons_total"
VERIFY = "fraudmesh_origination_verify_seconds"
DEGRADED = "fraudmesh_origination_degraded_total"
CACHE = "fraudmesh_origination_cert_cache_total"
FETCHES = "fraudmesh_origination_cert_fetches_total"
ENTRIES = "fraudmesh_origination_cert_cache_entries"
BREAKER = "fraudmesh_origination_breaker_state"
INTERNAL_ERRORS = "fraudmesh_origination_internal_errors_total"
BUDGET_S = 0.001  # Verify within 1 ms with a warm certificate cache
HIT = 'outcome="hit"'
REPLAY_STORE = 'cause="replay_store"'
FAILED = 'status=~"failed|unsupported"'
SIGNED = 'status!="absent"'
SPOOFING = (
    'reason=~"NEIGHBOR_SPOOFING|INTL_INGRESS_DOMESTIC_CLI|ONNET_CLI_OFFNET_INGRESS|INVALID_CLI|DNO_LISTED"'
)


def _rate(metric: str, by: str, *matchers: str) -> str:
    return f"sum by ({by}) (rate({sel(metric, SCOPE, *matchers)}{RATE}))"


def _quantile(q: float, by: str = "") -> str:
    labels = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({labels}) (rate({sel(VERIFY + '_bucket', SCOPE)}{RATE})))"


verifications = Panel(
    "Verifications / s by SHAKEN status",
    (Query(_rate(VERIFICATIONS, "status"), "{{status}}"),),
    unit="ops",
    stacked=True,
    description="absent (unsigned), verified, failed, pending (certificate not cached yet), unsupported.",
)
latency = Panel(
    "Verify p50 / p99 vs the 1 ms budget",
    (Query(_quantile(0.5), "p50"), Query(_quantile(0.99), "p99")),
    unit="s",
    thresholds=(Threshold(BUDGET_S),),
    description="Server-side time of one Verify RPC; budget 1 ms with a warm certificate cache.",
)
hit_ratio = Panel(
    "Certificate cache hit ratio",
    (
        Query(
            f"sum(rate({sel(CACHE, SCOPE, HIT)}{RATE})) / "
            f"clamp_min(sum(rate({sel(CACHE, SCOPE)}{RATE})), 1e-9)",
            "hit ratio",
        ),
    ),
    unit="percentunit",
    description="Lookups answered from memory; a miss answers PENDING and starts a background fetch.",
)
latency_by_pod = Panel(
    "Verify p99 by pod",
    (Query(_quantile(0.99, "pod"), "p99 {{pod}}"),),
    unit="s",
    thresholds=(Threshold(BUDGET_S),),
    width=12,
)
attestations = Panel(
    "Verified PASSporTs / s by attestation",
    (Query(_rate(ATTESTATIONS, "attestation"), "{{attestation}}"),),
    unit="ops",
    stacked=True,
    width=12,
    description="A (full), B (partial), C (gateway); a shift towards C means more traffic the signer "
    "cannot vouch for.",
)
failures = Panel(
    "SHAKEN failures / s by failure",
    (Query(_rate(FAILURES, "failure"), "{{failure}}"),),
    unit="ops",
    width=12,
    description="Failed or unsupported PASSporTs by the specific failure (signature, freshness, replay, "
    "chain, …).",
)
reasons = Panel(
    "Reason codes / s",
    (Query(f"topk(10, {_rate(REASONS, 'reason')})", "{{reason}}"),),
    unit="ops",
    width=12,
    description="Caller-ID findings and SHAKEN outcomes Verify returned (NEIGHBOR_SPOOFING, "
    "INTL_INGRESS_DOMESTIC_CLI, …).",
)
cache_lookups = Panel(
    "Certificate cache lookups / s (hit, miss, refused)",
    (Query(_rate(CACHE, "outcome"), "{{outcome}}"),),
    unit="ops",
    width=12,
    description="refused: a remembered failed fetch (negative entry, 60 s) — the x5u is bad or unreachable.",
)
fetches = Panel(
    "Certificate fetches / s by outcome",
    (Query(f"sum by (outcome) (rate({sel(FETCHES)}{RATE}))", "{{outcome}}"),),
    unit="ops",
    width=12,
    description="Background x5u fetches (never on the call path): ok, shared (from Redis), or the refusal "
    "reason.",
)
cache_entries = Panel(
    "Cached certificate chains by pod",
    (Query(f"sum by (pod) ({sel(ENTRIES)})", "{{pod}}"),),
    unit="short",
    width=12,
)
degraded = Panel(
    "Degraded verdicts / s by cause",
    (Query(_rate(DEGRADED, "cause"), "{{cause}}"),),
    unit="ops",
    width=12,
    description="cert_pending (cache miss), replay_store / history_store (Redis slow or down), error (a "
    "bug).",
)
replay_store = Panel(
    "Replay store degraded / s",
    (Query(_rate(DEGRADED, "pod", REPLAY_STORE), "{{pod}}"),),
    unit="ops",
    width=12,
    description="Replay checks answered from the replica's memory because Redis missed its 3 ms budget.",
)
internal_errors = Panel(
    "Internal errors / s by part",
    (Query(_rate(INTERNAL_ERRORS, "part"), "{{part}}"),),
    unit="ops",
    width=12,
    description="A part of Verify raised and was answered without (verification, caller_id, redis_checks, "
    "verify): each is a bug, logged with its traceback; should be zero.",
)
breaker = Panel(
    "Redis breaker (0 closed, 1 half-open, 2 open)",
    (Query(f"max by (pod) ({sel(BREAKER, SCOPE)})", "{{pod}}"),),
    unit="short",
    decimals=0,
    thresholds=(Threshold(1, "orange"), Threshold(2, "red")),
    width=12,
)
spoofing = Panel(
    "Caller-ID spoofing findings / s",
    (
        Query(
            _rate(REASONS, "reason", SPOOFING),
            "{{reason}}",
        ),
    ),
    unit="ops",
    description="Presented numbers that cannot be genuine for the way the call arrived.",
)
shaken_failed_share = Panel(
    "Share of signed calls failing SHAKEN",
    (
        Query(
            f"sum(rate({sel(VERIFICATIONS, SCOPE, FAILED)}{RATE})) / "
            f"clamp_min(sum(rate({sel(VERIFICATIONS, SCOPE, SIGNED)}{RATE})), 1e-9)",
            "failed / signed",
        ),
    ),
    unit="percentunit",
    description="Forged or broken signatures among calls that carried an Identity header.",
)

SECTION = Section(
    service="origination",
    title="Origination",
    order=20,
    overview=(verifications, latency, hit_ratio),
    rows=(
        Row("Verify", (verifications, latency, hit_ratio, latency_by_pod, attestations)),
        Row("Failures", (failures, reasons)),
        Row("Certificates", (cache_lookups, fetches, cache_entries)),
        Row("Redis and degradation", (degraded, replay_store, breaker, internal_errors)),
    ),
    fraud=(spoofing, shaken_failed_share),
)
