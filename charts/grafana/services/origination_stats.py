"""Panels over the attestation statistics agent's instruments in services/origination/metrics.py."""

from __future__ import annotations

from charts.grafana.model import Panel, Query, Row, Section, Threshold, sel

RATE = "[$__rate_interval]"
EVENTS = "fraudmesh_origination_stats_events_total"
DEAD = "fraudmesh_origination_stats_dead_letters_total"
LAG = "fraudmesh_origination_stats_lag_seconds"
WRITE = "fraudmesh_origination_stats_write_seconds"
GROUP = "fraudmesh-origination-stats"  # FRAUDMESH_STATS_APP_ID, the consumer group
FRESHNESS_S = 1.0


def _quantile(q: float, metric: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({sel(metric + '_bucket')}{RATE})))"


events = Panel(
    "Setups consumed / s by outcome",
    (Query(f"sum by (outcome) (rate({sel(EVENTS)}{RATE}))", "{{outcome}}"),),
    unit="ops",
    stacked=True,
    description="calls.setup.v1 records folded into per-number and per-trunk attestation statistics.",
)
lag = Panel(
    "Lag p50 / p99 (Kafka timestamp → statistics written)",
    (Query(_quantile(0.5, LAG), "p50"), Query(_quantile(0.99, LAG), "p99")),
    unit="s",
    thresholds=(Threshold(FRESHNESS_S),),
    description="Growth means the agent falls behind; the statistics feed the next calls' features.",
)
dead_letters = Panel(
    "Dead letters / s by reason",
    (Query(f"sum by (reason) (rate({sel(DEAD)}{RATE}))", "{{reason}}"),),
    unit="ops",
    description="Setups sent to dlq.origination.v1; processing_error is a bug.",
)
writes = Panel(
    "Redis batch write p50 / p99",
    (Query(_quantile(0.5, WRITE), "p50"), Query(_quantile(0.99, WRITE), "p99")),
    unit="s",
    width=12,
    description="One pipelined round trip per batch, retries included.",
)
consumer_lag = Panel(
    "Consumer-group lag (records)",
    (Query(f'sum by (topic) (kafka_consumergroup_lag{{consumergroup="{GROUP}"}})', "{{topic}}"),),
    unit="short",
    width=12,
    description="From kafka_exporter (not exported by fraudmesh): setups not yet consumed.",
)

SECTION = Section(
    service="origination-stats",
    title="Origination stats agent",
    order=21,
    overview=(events, lag, dead_letters),
    rows=(Row("Consumption", (events, lag, dead_letters)), Row("Redis and Kafka", (writes, consumer_lag))),
)
