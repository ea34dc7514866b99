"""Origination verified in the decision process: no Verify RPC, no second Redis round trip (issue 15).

Best-in-class engines verify STIR/SHAKEN in the process that answers the switch and keep certificate
fetching off the call path; so does decision when ``FRAUDMESH_STI_TRUST_ANCHORS`` is set:

* origination's own library (services.origination.checks: PASSporT verification, chain checks,
  caller-ID rules) runs here against an in-memory certificate cache;
* the cache is filled from origination's certificate feed (``sti.certs.v1``, compacted), loaded at
  start and followed; every chain is validated again against this process's trust anchors, so
  Kafka is never trusted for validity. A call whose certificate is not known yet is answered
  PENDING (unverified, degraded) and the miss goes to origination, which fetches and publishes it;
* the replay marker and the caller's history ride the caller's one feature read (READ_CALL): the
  marker on the caller's slot, the history from the ``first_seen_ms`` the read returns anyway.
  When Redis does not answer, this process's own replay memory answers (degraded ``replay_store``).

The origination service stays independent: it owns certificates and keeps serving ``Verify``.
"""

from __future__ import annotations

import logging

from fraudmesh.v1 import call_pb2, verdicts_pb2
from services.common.featurestore import CallRead
from services.decision import metrics
from services.decision.settings import DecisionSettings
from services.origination.certfeed import CertificateFollower
from services.origination.certs import ChainValidator
from services.origination.checks import CallChecks, Checks, Trust
from services.origination.passport import MemoryReplayStore, Verifier
from services.origination.presence import PresenceFacts
from services.origination.stats import RulesByTenant

log = logging.getLogger(__name__)

__all__ = ["ConfigurationError", "LocalOrigination"]


class ConfigurationError(Exception):
    """In-process verification cannot start with these settings; the message says why."""


class LocalOrigination:
    """The origination checks of one decision process, with the certificate feed behind them."""

    def __init__(self, checks: CallChecks, follower: CertificateFollower, replay: MemoryReplayStore) -> None:
        self.checks = checks
        self.follower = follower
        self.replay = replay

    @classmethod
    def build(cls, settings: DecisionSettings) -> LocalOrigination:
        """From the decision's settings; raises ConfigurationError on unreadable trust or lists."""
        try:
            trust = Trust.load(settings)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(str(exc)) from exc
        held: list[CertificateFollower] = []

        def feed_event(outcome: str) -> None:  # may run on the follower's thread (prometheus is thread-safe)
            metrics.CERT_FEED.labels(outcome).inc()
            if held:
                metrics.CERTIFICATES.set(len(held[0].chains))

        follower = CertificateFollower(
            settings.kafka_bootstrap,
            ChainValidator(trust.anchors),
            client_id=f"{settings.service_name}-certificates",
            max_entries=settings.cert_cache_entries,
            miss_interval_s=settings.cert_miss_interval_s,
            on_event=feed_event,
        )
        held.append(follower)
        verifier = Verifier(
            follower.chains,
            None,  # replays are checked on the caller's slot in the one round trip (see below)
            freshness_s=settings.freshness_s,
            revocations=trust.revocations,
            on_miss=follower.report_miss,
        )
        checks = CallChecks(settings, verifier, RulesByTenant(settings, trust.dno), on_error=_internal_error)
        return cls(checks, follower, MemoryReplayStore())

    async def start(self, catch_up_timeout_s: float) -> int:
        """Load the certificate feed (bounded) and keep following it; returns the chains held."""
        held = await self.follower.start(catch_up_timeout_s)
        metrics.CERTIFICATES.set(len(self.follower.chains))
        return held

    async def close(self) -> None:
        """Stop following the feed."""
        await self.follower.close()

    def check(self, setup: call_pb2.CallSetup, now: float) -> Checks:
        """The CPU half of the checks (never raises)."""
        return self.checks.check(setup, now)

    def conclude(self, checks: Checks, read: CallRead | None, now: float) -> verdicts_pb2.OriginationVerdict:
        """The verdict from the checks and the call's one Redis read (None when Redis did not answer).

        The process's replay memory records every verified PASSporT too, so a replay that reaches
        this process while Redis is away is still caught, and Redis's answer is never contradicted.
        """
        replayed, fallback = False, False
        digest = checks.replay_key
        if digest is not None:
            new_here = self.replay.add_if_absent(digest, checks.shaken.replay_expires_at, now)
            if read is None or read.replayed is None:
                replayed, fallback = not new_here, True
            else:
                replayed = read.replayed or not new_here
        established: bool | None = None
        presence: PresenceFacts | None = None
        if read is not None:
            features = read.features
            seen = features.first_seen_ms if features.seen else None
            established = self.checks.established(seen, now)
            contacts = features.callee_called_caller or features.caller_called_callee
            state = features.presence
            presence = PresenceFacts(state.state, state.call_id, state.call_ms, contacts)
        concluded = self.checks.verdict(
            checks,
            replayed=replayed,
            replay_fallback=fallback,
            established=established,
            presence=presence,
            now_ms=int(now * 1000),
        )
        metrics.shaken(_STATUS_NAMES.get(concluded.verdict.shaken_status, "unspecified")).inc()
        return concluded.verdict


_STATUS_NAMES = {
    value: name.removeprefix("SHAKEN_STATUS_").lower() for name, value in verdicts_pb2.ShakenStatus.items()
}


def _internal_error(part: str) -> None:
    metrics.INTERNAL_ERRORS.labels(part).inc()
