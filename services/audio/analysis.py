"""One segment → one AudioVerdict: campaign matching, bot behaviour, synthetic voice, reasons."""

from __future__ import annotations

import time
from dataclasses import dataclass

from fraudmesh.v1 import events_pb2
from services.audio import behaviour, metrics
from services.audio.campaigns import CampaignTracker
from services.audio.segments import Legs
from services.audio.synthetic import SyntheticVoiceDetector
from services.common.reasons import Reason

SYNTHETIC_REASON_AT = 0.5


@dataclass
class Analyzer:
    """Runs the three detectors on a decoded segment and assembles the verdict."""

    campaigns: CampaignTracker
    synthetic: SyntheticVoiceDetector

    @property
    def version(self) -> str:
        """What produced a verdict: fingerprint parameters and the detector model."""
        p = self.campaigns.params
        return f"landmark-d{p.density}f{p.fanout};vad-webrtc3;{self.synthetic.version}"

    async def verdict(
        self, segment: events_pb2.AudioSegment, legs: Legs, caller: str, t_ms: int
    ) -> events_pb2.AudioVerdict:
        """The verdict for one segment played by ``caller`` (pseudonym) at ``t_ms``."""
        reasons: list[str] = []
        started = time.perf_counter()
        campaign = await self.campaigns.observe(legs.caller, caller, t_ms)
        metrics.STAGE_SECONDS.labels("campaign").observe(time.perf_counter() - started)
        metrics.CAMPAIGN_OUTCOMES.labels(campaign.outcome).inc()
        if campaign.campaign_ids:
            reasons.append(Reason.CAMPAIGN_LINKED)
        bot: float | None = None
        if legs.callee is not None:
            started = time.perf_counter()
            result = behaviour.analyse(legs.caller, legs.callee)
            metrics.STAGE_SECONDS.labels("behaviour").observe(time.perf_counter() - started)
            metrics.DETECTOR_OUTCOMES.labels(
                "bot", "scored" if result.score is not None else "abstained"
            ).inc()
            bot = result.score
            reasons.extend(result.reasons)
        started = time.perf_counter()
        synthetic = self.synthetic.score(legs.caller)
        metrics.STAGE_SECONDS.labels("synthetic").observe(time.perf_counter() - started)
        metrics.DETECTOR_OUTCOMES.labels(
            "synthetic", "scored" if synthetic.score is not None else "abstained"
        ).inc()
        if synthetic.score is not None and synthetic.score >= SYNTHETIC_REASON_AT:
            reasons.append(Reason.SYNTHETIC_VOICE)
        metrics.AUDIO_SECONDS.inc(legs.seconds * (2 if legs.callee is not None else 1))
        verdict = verdict_for(segment, self.version)
        verdict.event_time.FromMilliseconds(t_ms)
        verdict.campaign_ids.extend(campaign.campaign_ids)
        verdict.earlier_member_pseudonyms.extend(campaign.earlier_members)
        verdict.campaign_match_score = campaign.score
        verdict.reason_codes.extend(reasons)
        if bot is not None:
            verdict.bot_behaviour_score = bot
        if synthetic.score is not None:
            verdict.synthetic_voice_score = synthetic.score
        return verdict


def verdict_for(segment: events_pb2.AudioSegment, detector_version: str) -> events_pb2.AudioVerdict:
    """A segment's verdict with the call's identity copied (reputation attributes it as the call)."""
    return events_pb2.AudioVerdict(
        segment_id=segment.segment_id,
        call_id=segment.call_id,
        tenant=segment.tenant,
        calling_number=segment.calling_number,
        p_asserted_identity=segment.p_asserted_identity,
        ingress_trunk_id=segment.ingress_trunk_id,
        detector_version=detector_version,
    )
