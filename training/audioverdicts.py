"""Audio verdicts for training, synthesised from the dataset's segment metadata.

The service folds the audio service's verdicts into reputation (campaign links, bot behaviour,
synthetic voice), so the trainer must fold them too, or the model never learns what they mean.
Rendering every captured call's audio and running the real audio service at training time would
make a training run hours long; instead each segment's verdict is drawn from what the segment is
(its recording and its voice, never its label) and the audio service's *measured* behaviour
(docs/architecture.md, ``make bench-audio``):

- **Campaigns**: a recording becomes a campaign once ``min_callers`` (5, the service's default)
  distinct numbers were heard playing it within ``window_s`` (a day); the discovering verdict
  carries the earlier numbers' pseudonyms, later plays of it carry the campaign id. A play is
  recognised with probability ``match_recall`` (0.90 on 10 s queries over the line simulator); a
  segment of any recording falsely matches a known campaign with probability ``false_match``
  (0.01). Legitimate recordings (bank alerts, reminders, IVRs) become campaigns as they do in the
  service: a campaign link is a signal, not proof.
- **Synthetic voice**: the shipped baseline detector is near chance on held-out engines; its score
  is drawn so that its equal-error rate is ``synthetic_eer`` (0.45), and it abstains on
  ``synthetic_abstain`` (0.3) of segments.
- **Bot behaviour**: needs both legs' audio, which segment metadata does not describe: unset (the
  service abstains likewise without a callee turn).

Each verdict is due ``latency_ms`` after the segment's start (the call's audio captured, then
analysed), and is folded at that time, in event order, like the service's.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections import deque
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Final

import numpy as np

from fraudmesh.v1 import dataset_pb2, events_pb2
from services.audio.analysis import verdict_for

__all__ = ["AudioBehaviour", "VerdictSynthesiser"]

DETECTOR_VERSION: Final = "synthesised-from-metadata/1"


@dataclass(frozen=True)
class AudioBehaviour:
    """The audio service's measured behaviour the synthesised verdicts follow."""

    min_callers: int = 5
    window_s: int = 86_400
    match_recall: float = 0.90
    false_match: float = 0.01
    synthetic_eer: float = 0.45
    synthetic_abstain: float = 0.3
    latency_ms: int = 15_000


@dataclass
class _Recording:
    callers: deque[tuple[int, str]] = field(default_factory=deque)  # (time_ms, pseudonym), in time order
    campaign: str = ""


class VerdictSynthesiser:
    """Segment metadata in, in time order; AudioVerdicts out, each when it is due."""

    def __init__(self, behaviour: AudioBehaviour, seed: int) -> None:
        self.behaviour = behaviour
        self._rng = np.random.default_rng(seed)
        self._recordings: dict[str, _Recording] = {}
        self._campaigns: list[str] = []
        self._due: list[tuple[int, int, bytes]] = []  # (due_ms, order, serialized AudioVerdict)
        self._order = 0
        # Scores of a detector with the given EER: genuine ~ N(0, 1), synthetic ~ N(d, 1) on the logit scale.
        self._separation = 2.0 * NormalDist().inv_cdf(1.0 - behaviour.synthetic_eer)

    def add(self, meta: dataset_pb2.AudioSegmentMeta, time_ms: int, caller_pseudonym: str) -> None:
        """One captured segment (``caller_pseudonym``: its attributed caller's, '' when unusable)."""
        segment = meta.segment
        verdict = verdict_for(segment, DETECTOR_VERSION)
        verdict.event_time.CopyFrom(segment.start_time)
        self._campaign(verdict, meta.script_id, time_ms, caller_pseudonym)
        if self._rng.random() >= self.behaviour.synthetic_abstain:
            logit = self._rng.normal(self._separation if meta.synthetic_voice else 0.0, 1.0)
            verdict.synthetic_voice_score = float(1.0 / (1.0 + math.exp(-(logit - self._separation / 2))))
        self._order += 1
        heapq.heappush(
            self._due, (time_ms + self.behaviour.latency_ms, self._order, verdict.SerializeToString())
        )

    def due(self, until_ms: int) -> list[tuple[int, bytes]]:
        """The verdicts due at or before ``until_ms``, in order: (due time, serialized AudioVerdict)."""
        out = []
        while self._due and self._due[0][0] <= until_ms:
            due_ms, _, value = heapq.heappop(self._due)
            out.append((due_ms, value))
        return out

    def _campaign(self, verdict: events_pb2.AudioVerdict, script: str, time_ms: int, caller: str) -> None:
        behaviour = self.behaviour
        recording = self._recordings.setdefault(script, _Recording()) if script else None
        if recording is not None and recording.campaign:
            if self._rng.random() < behaviour.match_recall:
                verdict.campaign_ids.append(recording.campaign)
                verdict.campaign_match_score = float(self._rng.uniform(0.6, 1.0))
            return
        if self._campaigns and self._rng.random() < behaviour.false_match:
            verdict.campaign_ids.append(self._campaigns[int(self._rng.integers(len(self._campaigns)))])
            verdict.campaign_match_score = float(self._rng.uniform(0.6, 0.7))
            return
        if recording is None or not caller:
            return
        heard = recording.callers
        while heard and heard[0][0] < time_ms - behaviour.window_s * 1000:
            heard.popleft()
        if all(pseudonym != caller for _, pseudonym in heard):
            heard.append((time_ms, caller))
        if len(heard) >= behaviour.min_callers:
            digest = hashlib.sha256(f"{script}:{heard[0][0]}".encode()).hexdigest()[:12]
            recording.campaign = f"ac-{digest}"
            self._campaigns.append(recording.campaign)
            verdict.campaign_ids.append(recording.campaign)
            verdict.campaign_match_score = 1.0
            verdict.earlier_member_pseudonyms.extend(p for _, p in heard if p != caller)
            heard.clear()
