"""Every Prometheus instrument of the origination service, defined once.

Labels are bounded: ShakenStatus names, the Failure and FetchRefusal enums, reason codes from
services.common.reasons, and fixed outcome words. No numbers, URLs or trunk ids in labels.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

VERIFICATIONS = Counter(
    "fraudmesh_origination_verifications_total",
    "Verify RPCs by SHAKEN status (absent, verified, failed, pending, unsupported).",
    ["status"],
)
FAILURES = Counter(
    "fraudmesh_origination_shaken_failures_total",
    "PASSporTs that failed or were unsupported, by the specific failure.",
    ["failure"],
)
ATTESTATIONS = Counter(
    "fraudmesh_origination_attestations_total",
    "Verified PASSporTs by attestation level (A, B, C).",
    ["attestation"],
)
REASONS = Counter(
    "fraudmesh_origination_reasons_total",
    "Reason codes returned by Verify (caller-ID findings and SHAKEN outcomes).",
    ["reason"],
)
VERIFY_SECONDS = Histogram(
    "fraudmesh_origination_verify_seconds",
    "Server-side time of one Verify RPC.",
    buckets=(0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.0025, 0.005, 0.01, 0.025, 0.1),
)
DEGRADED = Counter(
    "fraudmesh_origination_degraded_total",
    "Verify answers marked degraded, by cause (cert_pending, replay_store, history_store, error).",
    ["cause"],
)
CERT_CACHE = Counter(
    "fraudmesh_origination_cert_cache_total",
    "Certificate cache lookups on the call path: hit, miss (fetch started) or refused (negative entry).",
    ["outcome"],
)
CERT_FETCHES = Counter(
    "fraudmesh_origination_cert_fetches_total",
    "Background x5u fetches by outcome: ok, shared (loaded from Redis), or the refusal/failure reason.",
    ["outcome"],
)
CERT_CACHE_ENTRIES = Gauge(
    "fraudmesh_origination_cert_cache_entries",
    "Validated certificate chains held in this process's cache.",
)
CERT_FEED = Counter(
    "fraudmesh_origination_cert_feed_total",
    "Certificate feed (services/origination/certfeed.py): records to sti.certs.v1 (published, "
    "publish_failed) and misses read from sti.certs.misses.v1 (republished, fetch_started, "
    "fetch_in_flight, refused, deduplicated, dead_lettered).",
    ["outcome"],
)
BREAKER_STATE = Gauge(
    "fraudmesh_origination_breaker_state",
    "Circuit breaker state per dependency (0 closed, 1 half-open, 2 open).",
    ["dependency"],
)
STATS_EVENTS = Counter(
    "fraudmesh_origination_stats_events_total",
    "Call setups the attestation statistics agent consumed, by outcome (applied, duplicate, dead_lettered).",
    ["outcome"],
)
STATS_DEAD_LETTERS = Counter(
    "fraudmesh_origination_stats_dead_letters_total",
    "Call setups the attestation statistics agent dead-lettered, by reason.",
    ["reason"],
)
STATS_LAG = Histogram(
    "fraudmesh_origination_stats_lag_seconds",
    "Time from a call setup's Kafka timestamp to its attestation statistics write.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
STATS_WRITE_SECONDS = Histogram(
    "fraudmesh_origination_stats_write_seconds",
    "Time to write one batch of attestation statistics (one pipelined round trip), including retries.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
)
INTERNAL_ERRORS = Counter(
    "fraudmesh_origination_internal_errors_total",
    "Parts of a Verify RPC that raised unexpectedly and were answered without them "
    "(verification, caller_id, redis_checks, verify); each is a bug, logged with its traceback.",
    ["part"],
)
