"""Folding: how a decoded record on a reputation topic becomes a ``numbers`` update.

One method per topic (setups, CDRs, complaints, audio verdicts, presence). Setups, CDRs and verdicts
are keyed by the caller identity ``services.common.identity`` attributes (PAI, else From; a withheld
caller under its trunk's bucket), complaints by the reported number, presence by the subscriber's
number; every number is normalised with the tenant's region and pseudonymised before it reaches
Redis. A record that decodes but cannot be folded raises ``RejectedRecordError`` with the
dead-letter reason. The faust agents (``services.reputation.agents``) and the trainer's point-in-time
replay (``training.pointintime``) share this one implementation.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from fraudmesh.v1 import common_pb2, events_pb2
from services.common.identity import CallerFields, attribute
from services.common.phone import InvalidNumberError, normalize
from services.common.pseudonym import Pseudonymizer
from services.common.recent import summary_json
from services.common.topics import AUDIO_VERDICTS, CALLS_CDR, CALLS_SETUP, COMPLAINTS, SUBSCRIBERS_PRESENCE
from services.reputation.numbers import (
    CdrUpdate,
    ComplaintUpdate,
    Position,
    PresenceUpdate,
    SetupUpdate,
    Update,
    VerdictUpdate,
)
from services.reputation.settings import ReputationSettings

FRAUD_CATEGORIES = frozenset(
    {events_pb2.COMPLAINT_CATEGORY_FRAUD, events_pb2.COMPLAINT_CATEGORY_IMPERSONATION}
)


class RejectedRecordError(Exception):
    """A record that decoded but cannot be folded in; it is dead-lettered with ``reason``."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(detail)


CACHE_SIZE = 100_000

PSEUDONYM = re.compile(r"[a-z2-7]{26}")
COUNTRY = re.compile(r"[A-Z]{2}")
PRESENCE_STATES = frozenset(events_pb2.PresenceState.values()) - {events_pb2.PRESENCE_STATE_UNSPECIFIED}
CALL_STATES = frozenset({events_pb2.PRESENCE_STATE_IN_CALL, events_pb2.PRESENCE_STATE_CALL_ENDED})


def _pseudonym(value: str, what: str) -> str:
    """A pseudonym another service put in a record, or RejectedRecordError (never a raw number)."""
    if not PSEUDONYM.fullmatch(value):
        raise RejectedRecordError(f"invalid_{what}", f"{what}: not a pseudonym")
    return value


def _ms(stamp: Any, fallback_ms: int) -> int:
    ms = int(stamp.ToMilliseconds()) if stamp.ByteSize() else 0
    return ms if ms > 0 else fallback_ms


class Folding:
    """Turns decoded records into updates, with the number normalisation the services share."""

    def __init__(self, settings: ReputationSettings) -> None:
        self.settings = settings
        self.pseudonymize = Pseudonymizer(settings.pseudonym_key)
        # Normalising and pseudonymising cost ~15 µs a number; the hot path sees the same callers
        # and callees again and again. Bounded (a sprayed number space only churns it); the
        # entries are pseudonyms of numbers the process already holds in its input records.
        self._pseudonym_of = functools.lru_cache(maxsize=CACHE_SIZE)(self._pseudonym)
        self._caller_of = functools.lru_cache(maxsize=CACHE_SIZE)(self._caller)

    def _pseudonym(self, raw: str, region: str) -> str:
        return self.pseudonymize(normalize(raw, region, allow_unallocated=True).canonical)

    def _caller(self, pai: str, calling: str, tenant: str, trunk: str) -> str:
        identity = attribute(
            pai, calling, tenant=tenant, trunk=trunk, region=self.settings.region_for(tenant)
        )
        return self.pseudonymize(identity.key)

    def number(self, raw: str, tenant: str, what: str, required: bool = True) -> str:
        """The pseudonym of a number, or RejectedRecordError (or '' when optional and unusable)."""
        try:
            return self._pseudonym_of(raw, self.settings.region_for(tenant))
        except InvalidNumberError as exc:
            if not required:
                return ""
            raise RejectedRecordError(f"invalid_{what}", f"{what}: {exc.reason.value}") from None

    def caller(self, record: CallerFields) -> str:
        """The pseudonym of the identity a call is attributed to, or RejectedRecordError."""
        try:
            return self._caller_of(
                record.p_asserted_identity, record.calling_number, record.tenant, record.ingress_trunk_id
            )
        except InvalidNumberError as exc:
            raise RejectedRecordError("invalid_calling_number", f"caller ID: {exc.reason.value}") from None

    def setup(self, value: bytes, fallback_ms: int, at: Position | None = None) -> Update:
        """calls.setup.v1 → SetupUpdate."""
        event = CALLS_SETUP.codec().decode(value)
        setup = event.setup
        return SetupUpdate(
            at=at,
            caller=self.caller(setup),
            callee=self.number(setup.called_number, setup.tenant, "called_number", required=False),
            tenant=setup.tenant,
            call_id=setup.call_id,
            t_ms=_ms(setup.event_time, fallback_ms),
            summary=summary_json(event),
            on_net=setup.ingress_kind == common_pb2.INGRESS_KIND_ON_NET,
        )

    def cdr(self, value: bytes, fallback_ms: int, at: Position | None = None) -> Update:
        """calls.cdr.v1 → CdrUpdate."""
        cdr = CALLS_CDR.codec().decode(value)
        end_ms = _ms(cdr.end_time, fallback_ms)
        return CdrUpdate(
            at=at,
            caller=self.caller(cdr),
            tenant=cdr.tenant,
            call_id=cdr.call_id,
            setup_ms=_ms(cdr.setup_time, end_ms - cdr.duration_ms),
            end_ms=end_ms,
            answered=cdr.answered,
            duration_ms=cdr.duration_ms,
        )

    def complaint(self, value: bytes, fallback_ms: int, at: Position | None = None) -> Update:
        """complaints.v1 → ComplaintUpdate."""
        complaint = COMPLAINTS.codec().decode(value)
        return ComplaintUpdate(
            at=at,
            reported=self.number(complaint.reported_number, complaint.tenant, "reported_number"),
            tenant=complaint.tenant,
            complaint_id=complaint.complaint_id,
            t_ms=_ms(complaint.event_time, fallback_ms),
            fraud=complaint.category in FRAUD_CATEGORIES,
            honeypot=complaint.channel == events_pb2.COMPLAINT_CHANNEL_HONEYPOT,
        )

    def verdict(self, value: bytes, fallback_ms: int, at: Position | None = None) -> Update:
        """audio.verdicts.v1 → VerdictUpdate."""
        verdict = AUDIO_VERDICTS.codec().decode(value)
        return VerdictUpdate(
            at=at,
            caller=self.caller(verdict),
            tenant=verdict.tenant,
            segment_id=verdict.segment_id,
            synthetic=verdict.synthetic_voice_score if verdict.HasField("synthetic_voice_score") else None,
            bot=verdict.bot_behaviour_score if verdict.HasField("bot_behaviour_score") else None,
            campaign_ids=tuple(verdict.campaign_ids),
            earlier_members=tuple(
                _pseudonym(p, "earlier_member_pseudonyms") for p in verdict.earlier_member_pseudonyms
            ),
        )

    def presence(self, value: bytes, fallback_ms: int, at: Position | None = None) -> Update:
        """subscribers.presence.v1 → PresenceUpdate.

        A state outside the enum, or a call event without its call id, is dead-lettered. A roaming
        report whose country is missing or not ISO alpha-2 is still folded, as roaming somewhere
        unknown: dropping it would leave the subscriber "at home", which proofs would trust.
        """
        presence = SUBSCRIBERS_PRESENCE.codec().decode(value)
        state = presence.state
        if state not in PRESENCE_STATES:
            raise RejectedRecordError("invalid_presence_state", f"state: {state} is not a presence state")
        if state in CALL_STATES and not presence.call_id:
            raise RejectedRecordError("missing_call_id", "call_id: empty on a call event")
        country = presence.country.strip().upper() if state == events_pb2.PRESENCE_STATE_ROAMING else ""
        return PresenceUpdate(
            number=self.number(presence.number, presence.tenant, "number"),
            tenant=presence.tenant,
            event_id=presence.event_id,
            t_ms=_ms(presence.event_time, fallback_ms),
            state=state,
            country=country if COUNTRY.fullmatch(country) else "",
            call_id=presence.call_id if state in CALL_STATES else "",
        )
