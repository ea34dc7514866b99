"""Every Prometheus instrument of the reputation service, defined once.

Labels are bounded: topic names from services.common.topics, their partition numbers (8 per topic),
fixed outcome and reason codes.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "fraudmesh_reputation_events_total",
    "Records consumed, by topic and outcome (applied, duplicate, dead_lettered).",
    ["topic", "outcome"],
)
DEAD_LETTERS = Counter(
    "fraudmesh_reputation_dead_letters_total",
    "Records sent to the dead-letter topic, by source topic and reason.",
    ["topic", "reason"],
)
REDIS_RETRIES = Counter(
    "fraudmesh_reputation_redis_retries_total",
    "Redis batch writes retried after an error; the partition waits rather than skip events.",
)
APPLY_SECONDS = Histogram(
    "fraudmesh_reputation_redis_write_seconds",
    "Time to fold one batch into Redis (one pipelined round trip), including retries.",
    ["topic"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
)
BATCH_SIZE = Histogram(
    "fraudmesh_reputation_batch_records",
    "Records folded per batch.",
    ["topic"],
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2000),
)
LAG = Histogram(
    "fraudmesh_reputation_lag_seconds",
    "Time from a record's Kafka timestamp to its processing.",
    ["topic"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
CONSUMER_LAG = Gauge(
    "fraudmesh_reputation_consumer_lag_records",
    "Records on a partition not yet folded (high watermark minus the next offset to fold).",
    ["topic", "partition"],
)
FRESHNESS = Gauge(
    "fraudmesh_reputation_freshness_seconds",
    "Age of the newest record folded from a partition, at the moment its batch was written.",
    ["topic", "partition"],
)
PROBATION_FORGOTTEN = Counter(
    "fraudmesh_reputation_probation_forgotten_total",
    "Numbers seen once forgotten from a full probation bucket to make room for another.",
)
REDIS_EVICTED = Gauge(
    "fraudmesh_reputation_redis_evicted_keys",
    "Keys Redis has evicted under maxmemory since it started (INFO stats); should stay 0.",
)
REDIS_USED_RATIO = Gauge(
    "fraudmesh_reputation_redis_memory_used_ratio",
    "Redis used_memory over maxmemory (0 when no limit is set).",
)
