"""Panels over services/audio/metrics.py: segments, dead letters, campaigns, detectors, stage times."""

from __future__ import annotations

from charts.grafana.model import Panel, Query, Row, Section, sel

RATE = "[$__rate_interval]"
SEGMENTS = "fraudmesh_audio_segments_total"
DEAD = "fraudmesh_audio_dead_letters_total"
CAMPAIGNS = "fraudmesh_audio_campaign_outcomes_total"
DETECTORS = "fraudmesh_audio_detector_outcomes_total"
STAGES = "fraudmesh_audio_stage_seconds"
AUDIO_SECONDS = "fraudmesh_audio_audio_seconds_total"
RETRIES = "fraudmesh_audio_redis_retries_total"
GROUP = "fraudmesh-audio"  # FRAUDMESH_APP_ID, the consumer group
DISCOVERED = 'outcome="discovered"'
MATCHED = 'outcome="campaign"'


def _rate(metric: str, by: str, *matchers: str) -> str:
    return f"sum by ({by}) (rate({sel(metric, *matchers)}{RATE}))"


def _quantile(q: float) -> str:
    return f"histogram_quantile({q}, sum by (le, stage) (rate({sel(STAGES + '_bucket')}{RATE})))"


segments = Panel(
    "Segments / s by outcome",
    (Query(_rate(SEGMENTS, "outcome"), "{{outcome}}"),),
    unit="ops",
    stacked=True,
    description="verdict (published to audio.verdicts.v1), duplicate (re-published), dead_lettered.",
)
realtime = Panel(
    "Audio analysed (seconds of audio per second)",
    (Query(f"sum by (pod) (rate({sel(AUDIO_SECONDS)}{RATE}))", "{{pod}}"),),
    unit="short",
    description="Real-time factor per pod: seconds of call audio analysed each second.",
)
stage_p99 = Panel(
    "Stage time p99",
    (Query(_quantile(0.99), "p99 {{stage}}"),),
    unit="s",
    description="decode, fingerprint, index, behaviour, synthetic, publish — per segment.",
)
stage_detail = Panel(
    "Stage time p50 / p99",
    (Query(_quantile(0.5), "p50 {{stage}}"), Query(_quantile(0.99), "p99 {{stage}}")),
    unit="s",
    width=12,
)
dead_letters = Panel(
    "Dead letters / s by reason",
    (Query(_rate(DEAD, "reason"), "{{reason}}"),),
    unit="ops",
    width=12,
    description="Segments sent to dlq.audio.v1 (decode_error, segment_too_long, …); processing_error is a "
    "bug.",
)
campaign_outcomes = Panel(
    "Campaign matching outcomes / s",
    (Query(_rate(CAMPAIGNS, "outcome"), "{{outcome}}"),),
    unit="ops",
    width=12,
    description="campaign (matched a known campaign), candidate, new, discovered, too_short.",
)
detectors = Panel(
    "Detectors: scored vs abstained / s",
    (Query(_rate(DETECTORS, "detector, outcome"), "{{detector}} {{outcome}}"),),
    unit="ops",
    width=12,
    description="Bot behaviour abstains without a callee turn; synthetic voice on < 2 s of speech or "
    "clipping.",
)
redis_retries = Panel(
    "Redis retries / s",
    (Query(f"sum by (pod) (rate({sel(RETRIES)}{RATE}))", "{{pod}}"),),
    unit="ops",
    width=12,
    description="The partition waits and retries rather than skip segments.",
)
consumer_lag = Panel(
    "Consumer-group lag (records)",
    (Query(f'sum by (topic) (kafka_consumergroup_lag{{consumergroup="{GROUP}"}})', "{{topic}}"),),
    unit="short",
    width=12,
    description="From kafka_exporter (not exported by fraudmesh): segments not yet analysed.",
)
campaigns_discovered = Panel(
    "Campaigns discovered (per hour)",
    (Query(f"sum(increase({sel(CAMPAIGNS, DISCOVERED)}[1h]))", "discovered"),),
    unit="short",
    description="Recordings heard from enough distinct callers to become a campaign (links rotating "
    "numbers).",
)
campaign_matches = Panel(
    "Segments matching a known campaign / s",
    (Query(f"sum(rate({sel(CAMPAIGNS, MATCHED)}{RATE}))", "campaign matches"),),
    unit="ops",
    description="Calls that played a known scam recording, from whatever number.",
)

SECTION = Section(
    service="audio",
    title="Audio",
    order=40,
    overview=(segments, stage_p99, realtime),
    rows=(
        Row("Throughput", (segments, realtime, stage_p99)),
        Row("Dead letters and campaigns", (dead_letters, campaign_outcomes)),
        Row("Detectors and stages", (detectors, stage_detail)),
        Row("Redis and Kafka", (redis_retries, consumer_lag)),
    ),
    fraud=(campaigns_discovered, campaign_matches),
)
