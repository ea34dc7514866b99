"""Every Prometheus instrument of the reputation service, defined once."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS = Counter(
    "fraudmesh_reputation_events_total",
    "Records consumed, by topic and outcome (applied, duplicate, dead_lettered).",
    ["topic", "outcome"],
)
DEAD_LETTERS = Counter(
    "fraudmesh_reputation_dead_letters_total",
    "Records sent to the dead-letter topic, by reason.",
    ["reason"],
)
REDIS_RETRIES = Counter(
    "fraudmesh_reputation_redis_retries_total",
    "Redis writes retried after an error; the partition waits rather than skip an event.",
)
APPLY_SECONDS = Histogram(
    "fraudmesh_reputation_apply_seconds",
    "Time to fold one event into Redis, including retries.",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0),
)
