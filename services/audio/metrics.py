"""Every Prometheus instrument of the audio service, defined once.

Labels are bounded: outcome and reason codes, the verdict part, the detector's decision.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

SEGMENTS = Counter(
    "fraudmesh_audio_segments_total",
    "Segments consumed, by outcome (verdict, duplicate, dead_lettered).",
    ["outcome"],
)
DEAD_LETTERS = Counter(
    "fraudmesh_audio_dead_letters_total",
    "Segments sent to dlq.audio.v1, by reason.",
    ["reason"],
)
CAMPAIGN_OUTCOMES = Counter(
    "fraudmesh_audio_campaign_outcomes_total",
    "What campaign matching concluded: campaign, candidate (heard before, not yet a campaign), new, "
    "discovered (this segment made a recording a campaign), too_short.",
    ["outcome"],
)
DETECTOR_OUTCOMES = Counter(
    "fraudmesh_audio_detector_outcomes_total",
    "Bot-behaviour and synthetic-voice detectors: scored or abstained.",
    ["detector", "outcome"],
)
STAGE_SECONDS = Histogram(
    "fraudmesh_audio_stage_seconds",
    "Time spent per segment in each stage (decode, fingerprint, index, behaviour, synthetic, publish).",
    ["stage"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
)
AUDIO_SECONDS = Counter(
    "fraudmesh_audio_audio_seconds_total",
    "Seconds of call audio analysed (per leg).",
)
REDIS_RETRIES = Counter(
    "fraudmesh_audio_redis_retries_total",
    "Redis operations retried after an error; the partition waits rather than skip segments.",
)
