"""Panels over services/reputation/metrics.py: throughput, dead letters, Redis, batching, freshness."""

from __future__ import annotations

from charts.grafana.model import Panel, Query, Row, Section, Threshold, sel

RATE = "[$__rate_interval]"
EVENTS = "fraudmesh_reputation_events_total"
DEAD = "fraudmesh_reputation_dead_letters_total"
WRITE = "fraudmesh_reputation_redis_write_seconds"
BATCH = "fraudmesh_reputation_batch_records"
LAG = "fraudmesh_reputation_lag_seconds"
RETRIES = "fraudmesh_reputation_redis_retries_total"
APPLIED = 'outcome="applied"'
SETUPS = 'topic="calls.setup.v1"'
COMPLAINTS = 'topic="complaints.v1"'
VERDICTS = 'topic="audio.verdicts.v1"'
FRESHNESS_BUDGET_S = 1.0  # an event's effect readable in Redis within 1 s (p99)


def _quantile(q: float, metric: str, by: str = "topic") -> str:
    return f"histogram_quantile({q}, sum by (le, {by}) (rate({sel(metric + '_bucket')}{RATE})))"


events_by_topic = Panel(
    "Events folded / s by topic",
    (Query(f"sum by (topic) (rate({sel(EVENTS, APPLIED)}{RATE}))", "{{topic}}"),),
    unit="ops",
    description="Records applied to Redis per second (duplicates and dead letters excluded).",
    stacked=True,
)
events_by_outcome = Panel(
    "Events / s by topic and outcome",
    (Query(f"sum by (topic, outcome) (rate({sel(EVENTS)}{RATE}))", "{{topic}} {{outcome}}"),),
    unit="ops",
    description="Every consumed record ends applied, duplicate (seen before) or dead_lettered.",
    width=12,
)
events_by_pod = Panel(
    "Events / s by pod",
    (Query(f"sum by (pod) (rate({sel(EVENTS)}{RATE}))", "{{pod}}"),),
    unit="ops",
    description="Uneven bars mean uneven partitions: a worker owns whole partitions (8 per call topic).",
    width=12,
)
dead_letters = Panel(
    "Dead letters / s by reason",
    (Query(f"sum by (topic, reason) (rate({sel(DEAD)}{RATE}))", "{{topic}} {{reason}}"),),
    unit="ops",
    description="Records sent to dlq.reputation.v1 with their stable reason; processing_error is a bug.",
    width=12,
)
dead_letter_ratio = Panel(
    "Dead-letter ratio",
    (
        Query(
            f"sum(rate({sel(DEAD)}{RATE})) / clamp_min(sum(rate({sel(EVENTS)}{RATE})), 1e-9)",
            "dead-lettered / consumed",
        ),
    ),
    unit="percentunit",
    thresholds=(Threshold(0.01, "orange"),),
    description="Share of consumed records that were dead-lettered; the alert fires above 1 %.",
    width=12,
)
freshness = Panel(
    "Freshness p99 (Kafka timestamp → processed)",
    (Query(_quantile(0.99, LAG), "p99 {{topic}}"),),
    unit="s",
    thresholds=(Threshold(FRESHNESS_BUDGET_S),),
    description="Budget: an event's effect is readable in Redis within 1 s (p99).",
)
freshness_detail = Panel(
    "Freshness p50 / p99 by topic",
    (Query(_quantile(0.5, LAG), "p50 {{topic}}"), Query(_quantile(0.99, LAG), "p99 {{topic}}")),
    unit="s",
    thresholds=(Threshold(FRESHNESS_BUDGET_S),),
    description="Time from a record's Kafka timestamp to its fold; growth means the workers fall behind.",
    width=12,
)
redis_write_p99 = Panel(
    "Redis batch write p99",
    (Query(_quantile(0.99, WRITE), "p99 {{topic}}"),),
    unit="s",
    description="One pipelined round trip per batch, retries included.",
)
redis_write_detail = Panel(
    "Redis batch write p50 / p99",
    (Query(_quantile(0.5, WRITE), "p50 {{topic}}"), Query(_quantile(0.99, WRITE), "p99 {{topic}}")),
    unit="s",
    description="One pipelined round trip per batch, retries included.",
    width=12,
)
redis_retries = Panel(
    "Redis write retries / s",
    (Query(f"sum by (pod) (rate({sel(RETRIES)}{RATE}))", "{{pod}}"),),
    unit="ops",
    description="Failed batch writes retried with backoff: the partition waits, nothing is skipped.",
    width=12,
)
batch_size = Panel(
    "Records per batch",
    (
        Query(
            f"sum by (topic) (rate({sel(BATCH + '_sum')}{RATE})) / "
            f"clamp_min(sum by (topic) (rate({sel(BATCH + '_count')}{RATE})), 1e-9)",
            "mean {{topic}}",
        ),
        Query(_quantile(0.99, BATCH), "p99 {{topic}}"),
    ),
    unit="short",
    description="Batches fill up (to 500) under load; small batches under load mean per-event overhead.",
    width=12,
)
consumer_lag = Panel(
    "Consumer-group lag (records)",
    (Query('sum by (topic) (kafka_consumergroup_lag{consumergroup="fraudmesh-reputation"})', "{{topic}}"),),
    unit="short",
    description="From kafka_exporter (not exported by fraudmesh): records not yet consumed per topic.",
    width=12,
)
complaints = Panel(
    "Complaints folded / s",
    (Query(f"sum(rate({sel(EVENTS, COMPLAINTS, APPLIED)}{RATE}))", "complaints"),),
    unit="ops",
    description="Subscriber complaints (12321, app, honeypot) folded into per-number features.",
)
audio_verdicts = Panel(
    "Audio verdicts folded / s",
    (
        Query(
            f"sum(rate({sel(EVENTS, VERDICTS, APPLIED)}{RATE}))",
            "audio verdicts",
        ),
    ),
    unit="ops",
    description="Campaign / bot / synthetic-voice verdicts linking numbers to campaigns.",
)
complaints_per_1k = Panel(
    "Complaints per 1000 call setups",
    (
        Query(
            f"1000 * sum(rate({sel(EVENTS, COMPLAINTS, APPLIED)}{RATE})) / "
            f"clamp_min(sum(rate({sel(EVENTS, SETUPS, APPLIED)}{RATE})), 1e-9)",
            "complaints / 1k setups",
        ),
    ),
    unit="short",
    decimals=2,
    description="A rising complaint rate with a flat setup rate is a campaign the model is not catching.",
)

SECTION = Section(
    service="reputation",
    title="Reputation",
    order=30,
    overview=(events_by_topic, freshness, redis_write_p99),
    rows=(
        Row("Throughput", (events_by_outcome, events_by_pod)),
        Row("Dead letters", (dead_letters, dead_letter_ratio)),
        Row("Redis", (redis_write_detail, redis_retries)),
        Row("Batching and freshness", (batch_size, freshness_detail)),
        Row("Kafka", (consumer_lag,)),
    ),
    fraud=(complaints, audio_verdicts, complaints_per_1k),
)
