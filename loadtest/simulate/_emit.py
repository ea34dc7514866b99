"""Records from calls: the CallSetup as the switch presents it (From, PAI, Identity headers,
emergency forms), the CDR, complaints, audio-segment metadata and per-call truth; and the home
network's presence reports."""

from __future__ import annotations

import hashlib
import uuid

import numpy as np
import phonenumbers
from google.protobuf.timestamp_pb2 import Timestamp

from fraudmesh.v1 import dataset_pb2, events_pb2
from loadtest.simulate._model import (
    ATTEST,
    INTERNATIONAL,
    ON_NET,
    VOIP,
    K,
    Simulation,
    actor_name,
    canonical,
    identity_keys,
    identity_name,
    trunk_id,
)
from training.dataset import UNWANTED_KINDS

ANONYMOUS_FROM = '"Anonymous" <sip:anonymous@anonymous.invalid>'  # RFC 3323 privacy
ANONYMOUS_RECORDED = "anonymous"  # what mediation and media taps record for a withheld caller

COMPLAINT_CATEGORY = {
    K.ACTOR_KIND_ROBOCALL: events_pb2.COMPLAINT_CATEGORY_ROBOCALL,
    K.ACTOR_KIND_AI_IMPERSONATOR: events_pb2.COMPLAINT_CATEGORY_IMPERSONATION,
}


def _presented(number: int, ingress: int) -> str:
    """The caller ID as the trunk presents it (national on-net, E.164 from peers, 00 from abroad)."""
    if ingress == ON_NET:
        national = str(number)[2:]
        return national if len(national) == 11 and national[0] == "1" else "0" + national
    if ingress == INTERNATIONAL:
        return "00" + str(number)
    if ingress == VOIP:
        return f"sip:+{number}@peer.sim.invalid;user=phone"
    return "+" + str(number)


def _asserted(number: int, ingress: int) -> str:
    """The P-Asserted-Identity a trunk that sends one puts beside From: always E.164."""
    if ingress == ON_NET:
        return f"<sip:+{number}@ims.home.sim.invalid;user=phone>"
    return f"<tel:+{number}>"


def _stamp(ms: int) -> Timestamp:
    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def _origid(seed: int, carrier: str, actor: str) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256(f"{seed}:{carrier}:{actor}".encode()).digest()[:16], version=4))


def emergency_form(digits: str, country_code: int, call_id: str) -> tuple[str, str]:
    """(called number, Request-URI) of an emergency call, in one of the forms switches send (by call id)."""
    form = int(hashlib.blake2b(call_id.encode(), digest_size=2).hexdigest(), 16) % 5
    if form == 1:
        return f"tel:{digits};phone-context=+{country_code}", ""
    if form == 2:
        return f"sip:{digits}@ims.sim.invalid;user=phone", ""
    if form == 3:
        return f"+{country_code}{digits}", ""
    if form == 4:
        return digits, "urn:service:sos"
    return digits, ""


class Emitter:
    """Serialises one simulation's records, reusing message objects (twice as fast as building)."""

    def __init__(self, sim: Simulation) -> None:
        s = sim.scenario
        c = sim.calls
        self.sim = sim
        self.seed = s.seed
        self.tenant = s.network.tenant
        self.region = s.network.region
        self.country_code = phonenumbers.country_code_for_region(self.region)
        self.names = sim.names
        self.carriers = sim.carriers
        self.signers = [
            sim.pki.carriers.get(carrier.name) if carrier.signs else None for carrier in sim.carriers
        ]
        self.origids: dict[tuple[int, int], str] = {}
        self.call_ids = [f"{s.seed:x}-{i:08x}@sim.invalid" for i in range(len(c))]
        self.trunk_ids = [trunk_id(carrier) for carrier in sim.carriers]
        self.sends_pai = [carrier.sends_pai for carrier in sim.carriers]
        self.keys = identity_keys(sim)
        self.key = self.keys.tolist()
        self.from_number = c.from_number.tolist()
        self.withheld = c.withheld.tolist()
        self.home_region = next(iter(s.network.cities.values()))
        self.regions = [
            "INTL" if carrier in s.network.gateways else self.home_region for carrier in sim.carriers
        ]
        self.end_ms = c.t + c.ring_ms + c.duration_ms
        self.t = c.t.tolist()
        self.caller = c.caller.tolist()
        self.callee = c.callee.tolist()
        self.ingress = c.ingress.tolist()
        self.carrier = c.carrier.tolist()
        self.attest = c.attest.tolist()
        self.actor = c.actor.tolist()
        self.answered = c.answered.tolist()
        self.ring = c.ring_ms.tolist()
        self.duration = c.duration_ms.tolist()
        self.end = self.end_ms.tolist()
        self.kind = c.kind.tolist()
        self.honeypot = c.honeypot.tolist()
        self.campaign = c.campaign.tolist()
        self.script = c.script.tolist()
        self.voice = c.voice.tolist()
        self.synthetic = c.synthetic.tolist()
        self.spoofed = c.spoofed.tolist()
        self.true_caller = c.true_caller.tolist()
        self.iat_skew = c.iat_skew_s.tolist()
        self.complaint_category = c.complaint_category.tolist()
        self.roaming = c.roaming.tolist()
        pop = sim.population
        renumbered = pop.home & (pop.new_numbers > 0)
        subscribers = np.concatenate([pop.numbers[pop.home], pop.new_numbers[renumbered]])
        self.presented_on_net = np.isin(self.keys, subscribers).tolist()
        self.presence_t: list[int] = []
        self.presence_number: list[str] = []
        self.presence_state: list[events_pb2.PresenceState.ValueType] = []
        self.presence_country: list[str] = []
        self.presence_call: list[str] = []
        if sim.presence is not None and pop.trips is not None:
            reports, countries = sim.presence, pop.trips.countries
            self.presence_t = reports.t.tolist()
            self.presence_number = ["+" + str(n) for n in reports.number.tolist()]
            self.presence_state = reports.state.tolist()
            self.presence_country = ["" if k < 0 else countries[k] for k in reports.country.tolist()]
            self.presence_call = ["" if k < 0 else self.call_ids[k] for k in reports.call.tolist()]
        self._record = dataset_pb2.DatasetRecord()

    def _name(self, index: int) -> str:
        return self.names[index] if index >= 0 else ""

    @staticmethod
    def _called(callee: int) -> str:
        return str(-callee) if callee < 0 else "+" + str(callee)

    def _identity(self, i: int) -> str | None:
        carrier = self.carrier[i]
        signer = self.signers[carrier]
        if signer is None or self.attest[i] == 0:
            return None
        key = (carrier, self.actor[i])
        origid = self.origids.get(key)
        if origid is None:
            actor = actor_name(self.names, self.actor[i])
            origid = self.origids[key] = _origid(self.seed, self.carriers[carrier].name, actor)
        callee = self.callee[i]
        dest = str(-callee) if callee < 0 else str(callee)
        if self.key[i] < 0:  # a withheld caller without PAI: nothing to sign for
            return None
        header: str = signer.identity_header(
            str(self.key[i]),
            [dest],
            self.t[i] // 1000 + self.iat_skew[i],
            ATTEST[self.attest[i]],
            origid,
        )
        return header

    def setup(self, i: int) -> bytes:
        """A calls.setup.v1 record as the switch presents the call."""
        record = self._record
        record.Clear()
        record.time_ms = t = self.t[i]
        setup = record.setup.setup
        setup.call_id = self.call_ids[i]
        setup.event_time.seconds = t // 1000
        setup.event_time.nanos = (t % 1000) * 1_000_000
        setup.tenant = self.tenant
        ingress = self.ingress[i]
        carrier = self.carrier[i]
        if self.withheld[i]:
            setup.calling_number = ANONYMOUS_FROM
        else:
            setup.calling_number = _presented(self.from_number[i] or self.caller[i], ingress)
        if self.sends_pai[carrier]:
            setup.p_asserted_identity = _asserted(self.caller[i], ingress)
        if self.callee[i] < 0:
            setup.called_number, setup.request_uri = emergency_form(
                str(-self.callee[i]), self.country_code, self.call_ids[i]
            )
        else:
            setup.called_number = self._called(self.callee[i])
        identity = self._identity(i)
        if identity is not None:
            setup.identity_headers.append(identity)
        setup.ingress_trunk_id = self.trunk_ids[carrier]
        setup.ingress_kind = ingress
        setup.ingress_region = self.home_region if ingress == ON_NET else self.regions[carrier]
        setup.user_agent = "sim-sbc/1.0"
        return record.SerializeToString()

    def cdr(self, i: int) -> bytes:
        """The call's CDR, visible when the call ends."""
        record = self._record
        record.Clear()
        record.time_ms = end = self.end[i]
        cdr = record.cdr
        cdr.call_id = self.call_ids[i]
        cdr.tenant = self.tenant
        cdr.calling_number, cdr.p_asserted_identity = self._recorded(i)
        cdr.called_number = self._called(self.callee[i])
        t = self.t[i]
        cdr.setup_time.seconds, cdr.setup_time.nanos = t // 1000, (t % 1000) * 1_000_000
        if self.answered[i]:
            answer = t + self.ring[i]
            cdr.answered = True
            cdr.answer_time.seconds, cdr.answer_time.nanos = answer // 1000, (answer % 1000) * 1_000_000
            cdr.release_cause = 16
            cdr.sip_status = 200
        else:
            cdr.release_cause = 19
            cdr.sip_status = 480
        cdr.end_time.seconds, cdr.end_time.nanos = end // 1000, (end % 1000) * 1_000_000
        cdr.duration_ms = self.duration[i]
        cdr.ingress_trunk_id = self.trunk_ids[self.carrier[i]]
        return record.SerializeToString()

    def _recorded(self, i: int) -> tuple[str, str]:
        """(From, PAI) as mediation and media taps record them: E.164, or anonymous, or no PAI."""
        calling = ANONYMOUS_RECORDED if self.withheld[i] else "+" + str(self.from_number[i] or self.caller[i])
        return calling, "+" + str(self.caller[i]) if self.sends_pai[self.carrier[i]] else ""

    def complaint(self, i: int, at: int) -> bytes:
        """A complaint from the callee (or a honeypot report) about the number the callee saw.

        A honeypot cannot tell who called, so its reports all say robocall; a callee's says what the
        call was taken for (``complaint_category``, else by the caller's kind).
        """
        if self.honeypot[i]:
            category = events_pb2.COMPLAINT_CATEGORY_ROBOCALL
        else:
            category = self.complaint_category[i] or COMPLAINT_CATEGORY.get(
                self.kind[i], events_pb2.COMPLAINT_CATEGORY_FRAUD
            )
        record = dataset_pb2.DatasetRecord(
            time_ms=at,
            complaint=events_pb2.Complaint(
                complaint_id=f"complaint-{self.call_ids[i]}",
                tenant=self.tenant,
                reported_number="+" + str(self.key[i]),
                reporter_number=self._called(self.callee[i]),
                channel=events_pb2.COMPLAINT_CHANNEL_HONEYPOT
                if self.honeypot[i]
                else events_pb2.COMPLAINT_CHANNEL_SMS,
                category=events_pb2.ComplaintCategory.ValueType(category),
                event_time=_stamp(at),
                call_id=self.call_ids[i],
            ),
        )
        return record.SerializeToString()

    def audio(self, i: int, at: int) -> bytes:
        """Audio-segment metadata a media tap or honeypot would capture (no audio bytes yet)."""
        calling, asserted = self._recorded(i)
        record = dataset_pb2.DatasetRecord(
            time_ms=at,
            audio=dataset_pb2.AudioSegmentMeta(
                segment=events_pb2.AudioSegment(
                    segment_id=f"segment-{self.call_ids[i]}",
                    call_id=self.call_ids[i],
                    tenant=self.tenant,
                    calling_number=calling,
                    p_asserted_identity=asserted,
                    ingress_trunk_id=self.trunk_ids[self.carrier[i]],
                    called_number=self._called(self.callee[i]),
                    source=events_pb2.AUDIO_SOURCE_HONEYPOT
                    if self.honeypot[i]
                    else events_pb2.AUDIO_SOURCE_MEDIA_TAP,
                    encoding=events_pb2.AUDIO_ENCODING_PCMU,
                    sample_rate_hz=8000,
                    start_time=_stamp(self.t[i] + self.ring[i]),
                ),
                script_id=self._name(self.script[i]),
                voice_id=self._name(self.voice[i]) or f"human-{actor_name(self.names, self.actor[i])}",
                synthetic_voice=self.synthetic[i],
            ),
        )
        return record.SerializeToString()

    def truth(self, i: int) -> bytes:
        """Ground truth for one call."""
        record = self._record
        record.Clear()
        record.time_ms = self.t[i]
        truth = record.call_truth
        truth.call_id = self.call_ids[i]
        truth.tenant = self.tenant
        kind = self.kind[i]
        truth.actor_kind = kind
        truth.actor_id = actor_name(self.names, self.actor[i])
        truth.campaign_id = self._name(self.campaign[i])
        truth.spoofed = self.spoofed[i]
        truth.unwanted = kind in UNWANTED_KINDS
        truth.script_id = self._name(self.script[i])
        truth.voice_id = self._name(self.voice[i])
        truth.synthetic_voice = self.synthetic[i]
        truth.setup_time_ms = self.t[i]
        truth.presented_number = identity_name(self.key[i], self.sim)
        truth.called_number = canonical(self.callee[i], self.region)
        if self.true_caller[i]:
            truth.true_number = canonical(self.true_caller[i], self.region)
        truth.roaming = self.roaming[i]
        truth.presented_on_net = self.presented_on_net[i]
        return record.SerializeToString()

    def presence(self, i: int) -> bytes:
        """The ``i``-th presence report (subscribers.presence.v1) of the simulation."""
        record = self._record
        record.Clear()
        record.time_ms = t = self.presence_t[i]
        presence = record.presence
        presence.event_id = f"presence-{self.seed:x}-{i:08x}"
        presence.tenant = self.tenant
        presence.number = self.presence_number[i]
        presence.event_time.seconds, presence.event_time.nanos = t // 1000, (t % 1000) * 1_000_000
        presence.state = self.presence_state[i]
        if self.presence_country[i]:
            presence.country = self.presence_country[i]
        if self.presence_call[i]:
            presence.call_id = self.presence_call[i]
        return record.SerializeToString()
