"""The labelled carrier-traffic simulator: actors → calls → a time-ordered, signed event stream.

Each actor group is simulated column-wise with numpy (one seeded Generator, so a seed always gives
the same stream): call times follow the group's diurnal rhythm, callees its behaviour (contacts,
customers, random dialling), caller IDs its tactics (rotating pools, neighbor and on-net spoofing,
a relative's number). The calls are then sorted by time and emitted as the records the topics would
carry — CallSetup (with real PASSporTs where the carrier signs), Cdr, Complaint, audio metadata —
plus ground truth per call and per presented number.

Caller IDs are presented the way trunks present them. A carrier with ``sends_pai`` (on-net and
domestic interconnects by default, and the signing VoIP peer) sends a P-Asserted-Identity in E.164
beside From; the others send From only. From is national form on-net, E.164 from interconnects,
``00``-prefixed from abroad and a SIP URI from VoIP peers. Calls a PBX places from an extension
(``legit.*.pbx_share``) carry the extension's own DDI in From and the organisation's main (pilot)
number, the one its carrier provisioned and asserts, in PAI. People who withhold their number
(``*.withheld_share``) send an anonymous From; on a trunk that sends PAI the network still asserts
who they are, elsewhere the call has no identity and is not signed. Ground truth is keyed exactly
as the services attribute calls (``services.common.identity``): the PAI's number when one is sent,
else From's, and for a withheld caller without PAI the trunk's bucket ``WITHHELD:<tenant>/<trunk>``.

Emergency calls come in the forms switches send them (``emergency_form``): bare digits,
``tel:`` with a global ``phone-context``, a ``sip:…;user=phone`` URI, the international ``+cc``
form, or bare digits with the IMS Request-URI ``urn:service:sos``.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import phonenumbers
from google.protobuf.timestamp_pb2 import Timestamp

from fraudmesh.v1 import common_pb2, dataset_pb2, events_pb2
from loadtest.scenario import BulkCallers, Carrier, Scenario
from loadtest.stipki import CarrierSpec, StiPki, build_pki
from services.common.identity import withheld_key
from training.dataset import CALLS, EVENTS, NUMBERS, Manifest, RecordWriter

I64 = npt.NDArray[np.int64]
GENERATOR_VERSION = "3"
ANONYMOUS_FROM = '"Anonymous" <sip:anonymous@anonymous.invalid>'  # RFC 3323 privacy
ANONYMOUS_RECORDED = "anonymous"  # what mediation and media taps record for a withheld caller

K = dataset_pb2.ActorKind
IN = common_pb2.IngressKind

ATTEST = ("", "A", "B", "C")
ON_NET = int(IN.INGRESS_KIND_ON_NET)
INTERNATIONAL = int(IN.INGRESS_KIND_INTERNATIONAL_GATEWAY)
VOIP = int(IN.INGRESS_KIND_VOIP_PEER)

HOUR_WEIGHTS_PEOPLE = np.array(
    [
        0.2,
        0.1,
        0.05,
        0.05,
        0.05,
        0.1,
        0.3,
        0.8,
        1.2,
        1.4,
        1.5,
        1.4,
        1.2,
        1.2,
        1.3,
        1.4,
        1.4,
        1.3,
        1.3,
        1.4,
        1.4,
        1.2,
        0.8,
        0.4,
    ]
)
HOUR_WEIGHTS_BUSINESS = np.array(
    [0.0] * 8 + [0.8, 1.2, 1.3, 1.3, 1.0, 1.1, 1.3, 1.3, 1.2, 1.1, 0.9, 0.7, 0.5] + [0.0] * 3
)
HOUR_WEIGHTS_FLAT = np.ones(24)

# Valid mobile ranges abroad as (leading digits with country code, digits after them): the UK,
# Taiwan, Singapore, Australia, Germany, France, the US (the exchange's first digit is 2-9).
FOREIGN_RANGES = ((4479, 8), (8869, 8), (658, 7), (6141, 7), (4917, 9), (3367, 7), (12122, 6))

COMPLAINT_CATEGORY = {
    K.ACTOR_KIND_ROBOCALL: events_pb2.COMPLAINT_CATEGORY_ROBOCALL,
    K.ACTOR_KIND_AI_IMPERSONATOR: events_pb2.COMPLAINT_CATEGORY_IMPERSONATION,
}
UNWANTED_KINDS = frozenset(
    {
        K.ACTOR_KIND_ROBOCALL,
        K.ACTOR_KIND_NEIGHBOR_SPOOFER,
        K.ACTOR_KIND_INTL_DOMESTIC_SPOOFER,
        K.ACTOR_KIND_ONNET_SPOOFER,
        K.ACTOR_KIND_INVALID_NUMBER_SPOOFER,
        K.ACTOR_KIND_AI_IMPERSONATOR,
    }
)


@dataclass
class Calls:
    """Calls of one actor group as columns (one row per call)."""

    t: I64
    caller: I64  # the line the network knows (E.164 digits as an integer): the PAI when one is sent
    callee: I64  # E.164 digits; negative = a short code's digits (emergency numbers)
    kind: npt.NDArray[np.int8]
    actor: npt.NDArray[np.int32]  # index into Simulation.names; -(person + 1) for a subscriber
    carrier: npt.NDArray[np.int16]  # index into Simulation.carriers
    ingress: npt.NDArray[np.int8]
    attest: npt.NDArray[np.int8]  # 0 = none, 1..3 = A..C; only used when the carrier signs
    answered: npt.NDArray[np.bool_]
    ring_ms: I64
    duration_ms: I64
    campaign: npt.NDArray[np.int32]  # index into names, -1 for none
    script: npt.NDArray[np.int32]  # index into names, -1 for none
    voice: npt.NDArray[np.int32]  # index into names, -1 for a person's own voice
    synthetic: npt.NDArray[np.bool_]
    spoofed: npt.NDArray[np.bool_]
    true_caller: I64  # 0 when unknown or equal to the presented number
    complaint_delay_ms: I64  # -1 for no complaint
    honeypot: npt.NDArray[np.bool_]
    iat_skew_s: I64  # how far the signer's clock is off (0 for almost every call)
    from_number: I64  # the number in From when it is not ``caller`` (a PBX extension's DDI); 0 = caller
    withheld: npt.NDArray[np.bool_]  # the caller asked for privacy: From is anonymous

    @staticmethod
    def concat(parts: Sequence[Calls]) -> Calls:
        """All parts as one table."""
        names = [f for f in Calls.__dataclass_fields__]
        return Calls(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})

    def take(self, index: npt.NDArray[np.int64]) -> Calls:
        """The rows at ``index``, in that order."""
        return Calls(**{n: getattr(self, n)[index] for n in Calls.__dataclass_fields__})

    def __len__(self) -> int:
        return len(self.t)


@dataclass
class Population:
    """People and their numbers, cities, carriers and contacts (CSR); ``home`` marks the tenant's."""

    numbers: I64
    city: npt.NDArray[np.int32]
    home: npt.NDArray[np.bool_]
    carrier: npt.NDArray[np.int16]
    contacts_indptr: I64
    contacts: I64
    honeypots: I64  # indices of home numbers that never call (listening posts)

    @property
    def home_index(self) -> I64:
        """Indices of home subscribers that can receive calls (honeypots included)."""
        return np.flatnonzero(self.home).astype(np.int64)


@dataclass
class Simulation:
    """Everything generated for one scenario run."""

    scenario: Scenario
    calls: Calls
    names: list[str]
    carriers: list[Carrier]
    cities: list[tuple[str, str]]
    population: Population
    pki: StiPki
    generate_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


class _Builder:
    """Column-wise generation of every actor group of a scenario."""

    def __init__(self, scenario: Scenario) -> None:
        self.s = scenario
        self.rng = np.random.default_rng(scenario.seed)
        self.names: list[str] = []
        self._name_index: dict[str, int] = {}
        net = scenario.network
        self.carriers: list[Carrier] = [net.home, *net.interconnects, *net.gateways, *net.voip_peers]
        self.cidx = {c.name: i for i, c in enumerate(self.carriers)}
        self.sends_pai = np.array([c.sends_pai for c in self.carriers], dtype=np.bool_)
        # Caller-ID presentation (privacy, PBX extensions) draws from a generator of its own, so the
        # calls themselves do not move when those knobs change.
        self.presentation_rng = np.random.default_rng([scenario.seed, 3])
        self.cities = list(net.cities.items())
        self.minutes = max(1, int(scenario.duration_ms // 60_000))
        local_start = scenario.start_ms / 3_600_000 + scenario.utc_offset_hours
        self.minute_hour = ((local_start + np.arange(self.minutes) / 60.0) % 24).astype(np.int64)

    def name(self, text: str) -> int:
        """Intern a string (actor, campaign, script, voice) and return its index."""
        index = self._name_index.get(text)
        if index is None:
            index = len(self.names)
            self.names.append(text)
            self._name_index[text] = index
        return index

    def times(self, per_day: npt.NDArray[np.float64], weights: npt.NDArray[np.float64]) -> tuple[I64, I64]:
        """Call times for actors with the given daily rates: (actor row per call, time in ms)."""
        density = weights[self.minute_hour]
        total = density.sum()
        if total <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        days_weight = total / (weights.sum() * 60.0)
        counts = self.rng.poisson(per_day * days_weight)
        rows = np.repeat(np.arange(len(per_day)), counts)
        minute = self.rng.choice(self.minutes, size=len(rows), p=density / total)
        offset = self.rng.integers(0, 60_000, size=len(rows))
        return rows.astype(np.int64), self.s.start_ms + minute * 60_000 + offset

    def numbers_in(self, prefixes: Sequence[str], n: int) -> I64:
        """Random mobile-style numbers (11 national digits) in the given +CC prefixes."""
        if n == 0:
            return np.zeros(0, np.int64)
        heads = np.array([int(p.lstrip("+")) for p in prefixes], dtype=np.int64)
        national_len = np.array([len(p.lstrip("+")) - 2 for p in prefixes])
        choice = self.rng.integers(0, len(prefixes), size=n)
        tail_digits = 11 - national_len[choice]
        tails = (self.rng.random(n) * (10.0**tail_digits)).astype(np.int64)
        return np.asarray(heads[choice] * (10**tail_digits) + tails, dtype=np.int64)

    def fixed_lines(self, city: npt.NDArray[np.int32]) -> I64:
        """Random fixed-line numbers (+86, area code, 8 digits led by 2-8) in the given cities."""
        areas = np.array([int("86" + code) for code, _ in self.cities], dtype=np.int64)
        first = self.rng.choice(np.array([2, 3, 5, 6, 8]), size=len(city))
        rest = self.rng.integers(0, 10**7, size=len(city))
        return np.asarray(areas[city] * 10**8 + first * 10**7 + rest, dtype=np.int64)

    def calls(
        self,
        t: I64,
        caller: I64,
        callee: I64,
        kind: int,
        actor: npt.NDArray[np.int64] | int,
        carrier: npt.NDArray[np.int64] | int,
        ingress: npt.NDArray[np.int64] | int,
        attest: npt.NDArray[np.int64] | int,
        answer_rate: float | npt.NDArray[np.float64],
        mean_duration_s: float,
        *,
        campaign: npt.NDArray[np.int64] | int = -1,
        script: npt.NDArray[np.int64] | int = -1,
        voice: npt.NDArray[np.int64] | int = -1,
        synthetic: bool = False,
        spoofed: npt.NDArray[np.bool_] | bool = False,
        true_caller: I64 | int = 0,
        complaint_share: float = 0.0,
        complaint_delay_minutes: float = 60.0,
        from_number: I64 | int = 0,
        withheld: npt.NDArray[np.bool_] | bool = False,
    ) -> Calls:
        """One group's calls with answer, ringing, duration and complaint draws filled in.

        A withheld call on a trunk that sends no PAI carries no identity, so it is not signed.
        """
        n = len(t)
        answered = self.rng.random(n) < answer_rate
        ring = self.rng.integers(2_000, 15_000, size=n)
        ring[~answered] = self.rng.integers(15_000, 40_000, size=int((~answered).sum()))
        sigma = 0.8
        mu = np.log(mean_duration_s * 1000) - sigma**2 / 2
        duration = np.where(answered, self.rng.lognormal(mu, sigma, size=n), 0).astype(np.int64)
        complains = answered & (self.rng.random(n) < complaint_share)
        delay = np.where(
            complains, self.rng.exponential(complaint_delay_minutes * 60_000, size=n).astype(np.int64) + 1, -1
        )

        skewed = self.rng.random(n) < self.s.network.clock_skew_share
        skew = np.where(
            skewed, self.rng.integers(120, 900, size=n) * self.rng.choice(np.array([-1, 1]), size=n), 0
        )

        def col(value: object, dtype: type) -> Any:
            return np.broadcast_to(np.asarray(value, dtype=dtype), (n,)).copy()

        carriers = col(carrier, np.int16)
        hidden = col(withheld, np.bool_)
        attests = col(attest, np.int8)
        attests[hidden & ~self.sends_pai[carriers]] = 0
        return Calls(
            t=t.astype(np.int64),
            caller=caller.astype(np.int64),
            callee=callee.astype(np.int64),
            kind=col(kind, np.int8),
            actor=col(actor, np.int32),
            carrier=carriers,
            ingress=col(ingress, np.int8),
            attest=attests,
            answered=answered,
            ring_ms=ring.astype(np.int64),
            duration_ms=duration,
            campaign=col(campaign, np.int32),
            script=col(script, np.int32),
            voice=col(voice, np.int32),
            synthetic=col(synthetic, np.bool_),
            spoofed=col(spoofed, np.bool_),
            true_caller=col(true_caller, np.int64),
            complaint_delay_ms=delay,
            honeypot=np.zeros(n, np.bool_),
            iat_skew_s=skew.astype(np.int64),
            from_number=col(from_number, np.int64),
            withheld=hidden,
        )

    def gateways(self) -> npt.NDArray[np.int64]:
        """Indices of the international gateways (the VoIP peers when there are none)."""
        net = self.s.network
        return np.array([self.cidx[c.name] for c in net.gateways or net.voip_peers] or [0], dtype=np.int64)

    def voip_peers(self) -> npt.NDArray[np.int64]:
        """Indices of the VoIP peers (the home carrier when there are none)."""
        return np.array([self.cidx[c.name] for c in self.s.network.voip_peers] or [0], dtype=np.int64)

    def interconnects(self) -> npt.NDArray[np.int64]:
        """Indices of the domestic interconnects (the home carrier when there are none)."""
        return np.array([self.cidx[c.name] for c in self.s.network.interconnects] or [0], dtype=np.int64)

    def pick(self, carriers: npt.NDArray[np.int64], n: int) -> npt.NDArray[np.int64]:
        """One carrier of ``carriers`` per call, uniformly."""
        return carriers[self.rng.integers(0, len(carriers), size=n)]

    def carrier_of_ranges(self, numbers: I64) -> npt.NDArray[np.int64]:
        """The home or interconnect carrier owning each mobile number's range (home when unknown)."""
        out = np.full(len(numbers), self.cidx[self.s.network.home.name], dtype=np.int64)
        digits = numbers // 10**8
        for carrier in (self.s.network.home, *self.s.network.interconnects):
            for prefix in carrier.ranges:
                out[digits == int(prefix.lstrip("+"))] = self.cidx[carrier.name]
        return out

    def population(self) -> Population:
        """Subscribers (home first), their numbers, cities, carriers and contact graph."""
        sub = self.s.subscribers
        n = sub.count
        home = self.rng.random(n) >= sub.off_net_share
        city = self.rng.integers(0, len(self.cities), size=n).astype(np.int32)
        numbers = np.empty(n, np.int64)
        home_fixed = home & (self.rng.random(n) < sub.fixed_line_share)
        numbers[home_fixed] = self.fixed_lines(city[home_fixed])
        home_mobile = home & ~home_fixed
        numbers[home_mobile] = self.numbers_in(self.s.network.home.ranges, int(home_mobile.sum()))
        off_ranges = [r for c in self.s.network.interconnects for r in c.ranges] or list(
            self.s.network.home.ranges
        )
        numbers[~home] = self.numbers_in(off_ranges, int((~home).sum()))
        carrier = self.carrier_of_ranges(numbers).astype(np.int16)
        carrier[home] = self.cidx[self.s.network.home.name]
        degree = 1 + self.rng.poisson(max(sub.contacts_mean - 1, 0.0), size=n)
        owner = np.repeat(np.arange(n), degree)
        local = self.rng.random(len(owner)) < 0.8
        community = (owner // sub.community_size) * sub.community_size
        within = community + self.rng.integers(0, sub.community_size, size=len(owner))
        contacts = np.where(local, np.minimum(within, n - 1), self.rng.integers(0, n, size=len(owner)))
        contacts = np.where(contacts == owner, (contacts + 1) % n, contacts)
        indptr = np.concatenate([[0], np.cumsum(degree)]).astype(np.int64)
        home_index = np.flatnonzero(home)
        size = min(self.s.capture.honeypots, max(len(home_index) - 1, 0))
        honeypots = self.rng.choice(home_index, size=size, replace=False).astype(np.int64)
        return Population(numbers, city, home, carrier, indptr, contacts.astype(np.int64), honeypots)

    def subscriber_calls(self, pop: Population) -> Calls:
        """People calling mostly their contacts, with callbacks after missed calls."""
        sub = self.s.subscribers
        callers = np.setdiff1d(np.arange(len(pop.numbers)), pop.honeypots)
        rows, t = self.times(np.full(len(callers), sub.calls_per_day), HOUR_WEIGHTS_PEOPLE)
        who = callers[rows]
        degree = pop.contacts_indptr[who + 1] - pop.contacts_indptr[who]
        pick = pop.contacts_indptr[who] + (self.rng.random(len(who)) * degree).astype(np.int64)
        to_contact = self.rng.random(len(who)) < sub.contact_share
        callee = np.where(
            to_contact, pop.contacts[pick], self.rng.integers(0, len(pop.numbers), size=len(who))
        )
        keep = pop.home[callee] & (callee != who) & ~np.isin(callee, pop.honeypots)
        who, callee, t, to_contact = who[keep], callee[keep], t[keep], to_contact[keep]
        answer = np.where(to_contact, sub.answer_rate, sub.answer_rate * 0.6)
        first = self._person_calls(pop, who, callee, t, answer)
        missed = ~first.answered & (self.rng.random(len(first)) < sub.callback_share) & pop.home[who]
        back_t = (
            t[missed]
            + first.ring_ms[missed]
            + self.rng.exponential(10 * 60_000, int(missed.sum())).astype(np.int64)
        )
        inside = back_t < self.s.start_ms + self.s.duration_ms
        back = self._person_calls(
            pop,
            callee[missed][inside],
            who[missed][inside],
            back_t[inside],
            np.full(int(inside.sum()), sub.answer_rate),
        )
        return Calls.concat([first, back])

    def _person_calls(
        self, pop: Population, who: I64, callee: I64, t: I64, answer: npt.NDArray[np.float64]
    ) -> Calls:
        on_net = pop.home[who]
        ingress = np.where(on_net, IN.INGRESS_KIND_ON_NET, IN.INGRESS_KIND_DOMESTIC_INTERCONNECT)
        carrier = pop.carrier[who].astype(np.int64)
        roaming = self.rng.random(len(who)) < self.s.subscribers.roaming_share
        gateways = self.gateways()
        carrier = np.where(roaming, gateways[self.rng.integers(0, len(gateways), size=len(who))], carrier)
        ingress = np.where(roaming, INTERNATIONAL, ingress)
        return self.calls(
            t,
            pop.numbers[who],
            pop.numbers[callee],
            K.ACTOR_KIND_SUBSCRIBER,
            -(who + 1),
            carrier,
            ingress,
            np.where(roaming, 3, 1),
            answer,
            self.s.subscribers.mean_duration_s,
            withheld=self.presentation_rng.random(len(who)) < self.s.subscribers.withheld_share,
        )

    def bulk_calls(self, pop: Population, group: BulkCallers, kind: int, label: str) -> Calls:
        """Legitimate high-volume callers: couriers, call centres, reminders, bank alerts.

        Their own carrier attests ``group.attest`` (enterprises on a PBX trunk get B), except the
        ``voip_share`` handed over by VoIP peers (C or unsigned). The ``pbx_share`` of calls placed
        from a PBX extension present the extension's DDI (in the main number's block of 100) in From,
        and the trunk asserts the organisation's main number (its first) in PAI.
        """
        if group.count == 0:
            return self._empty()
        home = pop.home_index
        weights = HOUR_WEIGHTS_BUSINESS if kind != K.ACTOR_KIND_BANK_ALERT else HOUR_WEIGHTS_PEOPLE
        rows, t = self.times(np.full(group.count, group.calls_per_day), weights)
        numbers_each = max(group.numbers_each, 1)
        if kind == K.ACTOR_KIND_BANK_ALERT:
            own = 86400 * 10**7 + self.rng.integers(0, 10**7, size=(group.count, numbers_each))
        elif kind == K.ACTOR_KIND_CALL_CENTRE:
            city = self.rng.integers(0, len(self.cities), size=group.count * numbers_each).astype(np.int32)
            own = self.fixed_lines(city).reshape(group.count, numbers_each)
        else:
            ranges = [
                *self.s.network.home.ranges,
                *(r for c in self.s.network.interconnects for r in c.ranges),
            ]
            own = self.numbers_in(ranges, group.count * numbers_each).reshape(group.count, numbers_each)
        caller = own[rows, self.rng.integers(0, numbers_each, size=len(rows))]
        main = own[rows, 0]
        extension = self.presentation_rng.random(len(rows)) < group.pbx_share
        ddi = (main // 100) * 100 + self.presentation_rng.integers(0, 100, size=len(rows))
        caller = np.where(extension, main, caller)
        if group.audience:
            audiences = self.rng.choice(home, size=(group.count, min(group.audience, len(home))))
            callee = pop.numbers[audiences[rows, self.rng.integers(0, audiences.shape[1], size=len(rows))]]
        else:
            callee = pop.numbers[self.rng.choice(home, size=len(rows))]
        n = len(rows)
        via_voip = self.rng.random(n) < group.voip_share
        carrier = np.where(via_voip, self.pick(self.voip_peers(), n), self.pick(self.interconnects(), n))
        ingress = np.where(via_voip, VOIP, IN.INGRESS_KIND_DOMESTIC_INTERCONNECT)
        attest = np.where(via_voip, 3, ATTEST.index(group.attest))
        actor = np.array([self.name(f"{label}-{i}") for i in range(group.count)], dtype=np.int64)[rows]
        script = voice = -1
        if group.automated:
            script = self.name(f"script-{label}")
            voice = self.name("tts-standard")
        return self.calls(
            t,
            caller,
            callee,
            kind,
            actor,
            carrier,
            ingress,
            attest,
            group.answer_rate,
            group.mean_duration_s,
            script=script,
            voice=voice,
            synthetic=group.automated,
            from_number=np.where(extension & (ddi != main), ddi, 0),
        )

    def robocalls(self, pop: Population) -> Calls:
        """Campaigns dialling tens of thousands of callees from rotating, location-masked numbers."""
        rc = self.s.robocalls
        if rc.campaigns == 0:
            return self._empty()
        rows, t = self.times(np.full(rc.campaigns, rc.calls_per_day), HOUR_WEIGHTS_BUSINESS)
        n = len(rows)
        n_virtual = round(rc.pool_size * rc.virtual_share)
        pools = np.empty((rc.campaigns, rc.pool_size), np.int64)
        for c in range(rc.campaigns):
            pools[c, :n_virtual] = self.numbers_in(self.s.network.virtual_ranges, n_virtual)
            cities = self.rng.integers(0, len(self.cities), size=rc.pool_size - n_virtual).astype(np.int32)
            pools[c, n_virtual:] = self.fixed_lines(cities)
            self.rng.shuffle(pools[c])
        slot = (t - self.s.start_ms) // int(rc.rotation_minutes * 60_000)
        position = (slot * rc.active_numbers + self.rng.integers(0, rc.active_numbers, size=n)) % rc.pool_size
        caller = pools[rows, position]
        home = pop.home_index
        to_honeypot = self.rng.random(n) < rc.honeypot_share
        callee_idx = np.where(
            to_honeypot & (len(pop.honeypots) > 0),
            pop.honeypots[self.rng.integers(0, max(len(pop.honeypots), 1), size=n)]
            if len(pop.honeypots)
            else 0,
            self.rng.choice(home, size=n),
        )
        masked = self.rng.random(n) < rc.location_masking_share
        caller = np.where(masked, self.fixed_lines(pop.city[callee_idx]), caller)
        via_voip = self.rng.random(n) < rc.voip_share
        voip = [self.cidx[c.name] for c in self.s.network.voip_peers] or [0]
        interconnects = [self.cidx[c.name] for c in self.s.network.interconnects] or [0]
        carrier = np.where(
            via_voip,
            np.asarray(voip)[self.rng.integers(0, len(voip), size=n)],
            np.asarray(interconnects)[self.rng.integers(0, len(interconnects), size=n)],
        )
        ingress = np.where(via_voip, IN.INGRESS_KIND_VOIP_PEER, IN.INGRESS_KIND_DOMESTIC_INTERCONNECT)
        complicit = self.rng.random(n) < rc.a_attested_share
        attest = np.where(via_voip, 3, np.where(complicit, 1, 2))
        campaign = np.array([self.name(f"campaign-{c}") for c in range(rc.campaigns)], dtype=np.int64)[rows]
        script = np.array([self.name(f"script-campaign-{c}") for c in range(rc.campaigns)], dtype=np.int64)[
            rows
        ]
        voice = np.array([self.name(f"tts-campaign-{c}") for c in range(rc.campaigns)], dtype=np.int64)[rows]
        calls = self.calls(
            t,
            caller,
            pop.numbers[callee_idx],
            K.ACTOR_KIND_ROBOCALL,
            campaign,
            carrier,
            ingress,
            attest,
            rc.answer_rate,
            rc.mean_duration_s,
            campaign=campaign,
            script=script,
            voice=voice,
            synthetic=True,
            complaint_share=rc.complaint_share,
            complaint_delay_minutes=rc.complaint_delay_minutes,
        )
        calls.honeypot = np.isin(callee_idx, pop.honeypots)
        return calls

    def spoofers(self, pop: Population) -> Calls:
        """Neighbor, international-domestic, on-net-from-off-net and invalid-number spoofers."""
        sp = self.s.spoofers
        net = self.s.network
        home = pop.home_index
        voip = [self.cidx[c.name] for c in net.voip_peers] or [0]
        gateways = [self.cidx[c.name] for c in net.gateways] or voip
        parts: list[Calls] = []
        plan = (
            (K.ACTOR_KIND_NEIGHBOR_SPOOFER, sp.neighbor, "neighbor", voip, IN.INGRESS_KIND_VOIP_PEER),
            (
                K.ACTOR_KIND_INTL_DOMESTIC_SPOOFER,
                sp.intl_domestic,
                "intl",
                gateways,
                IN.INGRESS_KIND_INTERNATIONAL_GATEWAY,
            ),
            (K.ACTOR_KIND_ONNET_SPOOFER, sp.onnet_offnet, "onnet", voip, IN.INGRESS_KIND_VOIP_PEER),
            (
                K.ACTOR_KIND_INVALID_NUMBER_SPOOFER,
                sp.invalid_number,
                "invalid",
                voip,
                IN.INGRESS_KIND_VOIP_PEER,
            ),
        )
        for kind, count, label, carriers, ingress in plan:
            if count == 0:
                continue
            rows, t = self.times(np.full(count, sp.calls_per_day), HOUR_WEIGHTS_BUSINESS)
            n = len(rows)
            callee = pop.numbers[self.rng.choice(home, size=n)]
            if kind == K.ACTOR_KIND_NEIGHBOR_SPOOFER:
                caller = (callee // 10**4) * 10**4 + self.rng.integers(0, 10**4, size=n)
            elif kind == K.ACTOR_KIND_INTL_DOMESTIC_SPOOFER:
                caller = self.numbers_in(
                    [*net.home.ranges, *(r for c in net.interconnects for r in c.ranges)], n
                )
            elif kind == K.ACTOR_KIND_ONNET_SPOOFER:
                caller = pop.numbers[self.rng.choice(home, size=n)]
            else:
                caller = self.numbers_in(["+86100", "+86120", "+86125", "+86111", "+86140"], n)
            carrier = np.asarray(carriers)[self.rng.integers(0, len(carriers), size=n)]
            calls_ingress = np.full(n, ingress, dtype=np.int64)
            attest = np.full(n, 3, dtype=np.int64)
            if ingress == IN.INGRESS_KIND_VOIP_PEER:
                signed = self.rng.random(n) < sp.signed_share
                carrier = np.where(signed, self.pick(self.interconnects(), n), carrier)
                calls_ingress = np.where(signed, IN.INGRESS_KIND_DOMESTIC_INTERCONNECT, calls_ingress)
                attest = np.where(signed, 2, attest)
            actor = np.array([self.name(f"spoofer-{label}-{i}") for i in range(count)], dtype=np.int64)[rows]
            parts.append(
                self.calls(
                    t,
                    caller,
                    callee,
                    kind,
                    actor,
                    carrier,
                    calls_ingress,
                    attest,
                    sp.answer_rate,
                    sp.mean_duration_s,
                    spoofed=True,
                    complaint_share=sp.complaint_share,
                )
            )
        return Calls.concat(parts) if parts else self._empty()

    def foreign_calls(self, pop: Population) -> Calls:
        """People abroad calling the few home subscribers they know (family, friends, business).

        They arrive over international gateways, unsigned or attested C, at any hour (other time
        zones), and present valid foreign numbers.
        """
        fo = self.s.foreign
        if fo.count == 0:
            return self._empty()
        table = np.array(FOREIGN_RANGES, dtype=np.int64)
        which = self.rng.integers(0, len(table), size=fo.count)
        digits = table[which, 1]
        tails = (self.rng.random(fo.count) * (10.0**digits)).astype(np.int64)
        numbers = table[which, 0] * 10**digits + tails
        reachable = np.setdiff1d(pop.home_index, pop.honeypots)
        known = self.rng.choice(reachable, size=(fo.count, fo.contacts))
        rows, t = self.times(np.full(fo.count, fo.calls_per_day), HOUR_WEIGHTS_FLAT)
        n = len(rows)
        callee = pop.numbers[known[rows, self.rng.integers(0, fo.contacts, size=n)]]
        actor = np.array([self.name(f"foreign-{i}") for i in range(fo.count)], dtype=np.int64)[rows]
        return self.calls(
            t,
            numbers[rows],
            callee,
            K.ACTOR_KIND_SUBSCRIBER,
            actor,
            self.pick(self.gateways(), n),
            INTERNATIONAL,
            3,
            fo.answer_rate,
            fo.mean_duration_s,
            withheld=self.presentation_rng.random(n) < fo.withheld_share,
        )

    def impersonators(self, pop: Population) -> Calls:
        """Cloned-voice calls presenting a relative's number, in short bursts to one victim."""
        im = self.s.impersonators
        if im.count == 0:
            return self._empty()
        rows, t0 = self.times(np.full(im.count, im.victims_per_day), HOUR_WEIGHTS_PEOPLE)
        home = pop.home_index
        victims = self.rng.choice(home, size=len(rows))
        degree = pop.contacts_indptr[victims + 1] - pop.contacts_indptr[victims]
        relative = pop.contacts[
            pop.contacts_indptr[victims] + (self.rng.random(len(victims)) * degree).astype(np.int64)
        ]
        burst = 1 + self.rng.poisson(max(im.calls_per_victim - 1, 0.0), size=len(rows))
        rep = np.repeat(np.arange(len(rows)), burst)
        t = t0[rep] + self.rng.integers(0, 20 * 60_000, size=len(rep))
        inside = t < self.s.start_ms + self.s.duration_ms
        rep, t = rep[inside], t[inside]
        open_carriers = [
            self.cidx[c.name] for c in (*self.s.network.gateways, *self.s.network.voip_peers) if not c.signs
        ]
        open_carriers = open_carriers or [self.cidx[self.s.network.voip_peers[0].name]]
        carrier = np.asarray(open_carriers)[self.rng.integers(0, len(open_carriers), size=len(rep))]
        gateway_names = {c.name for c in self.s.network.gateways}
        ingress = np.where(
            np.isin(carrier, [self.cidx[n] for n in gateway_names]),
            IN.INGRESS_KIND_INTERNATIONAL_GATEWAY,
            IN.INGRESS_KIND_VOIP_PEER,
        )
        actor = np.array([self.name(f"impersonator-{i}") for i in range(im.count)], dtype=np.int64)[rows][rep]
        voice = np.array([self.name(f"clone-{v}") for v in relative[rep]], dtype=np.int64)
        return self.calls(
            t,
            pop.numbers[relative[rep]],
            pop.numbers[victims[rep]],
            K.ACTOR_KIND_AI_IMPERSONATOR,
            actor,
            carrier,
            ingress,
            0,
            im.answer_rate,
            im.mean_duration_s,
            voice=voice,
            synthetic=True,
            spoofed=True,
            true_caller=0,
            complaint_share=im.complaint_share,
            complaint_delay_minutes=240.0,
        )

    def emergency(self, pop: Population) -> Calls:
        """Home subscribers calling the tenant's emergency numbers."""
        em = self.s.emergency
        numbers = self.s.network.emergency_numbers
        if em.calls_per_day == 0 or not numbers:
            return self._empty()
        _rows, t = self.times(np.array([em.calls_per_day]), HOUR_WEIGHTS_FLAT)
        who = self.rng.choice(pop.home_index, size=len(t))
        callee = -np.array([int(x) for x in numbers], dtype=np.int64)[
            self.rng.integers(0, len(numbers), size=len(t))
        ]
        return self.calls(
            t,
            pop.numbers[who],
            callee,
            K.ACTOR_KIND_EMERGENCY,
            self.name("emergency-callers"),
            self.cidx[self.s.network.home.name],
            IN.INGRESS_KIND_ON_NET,
            1,
            0.98,
            90.0,
        )

    def _empty(self) -> Calls:
        return self.calls(
            np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), 0, 0, 0, 0, 0, 0.0, 1.0
        )


def simulate(scenario: Scenario) -> Simulation:
    """Generate every call of a scenario, sorted by setup time (deterministic for its seed)."""
    started = time.perf_counter()
    b = _Builder(scenario)
    pop = b.population()
    legit = scenario.legit
    parts = [
        b.subscriber_calls(pop),
        b.foreign_calls(pop),
        b.bulk_calls(pop, legit.couriers, K.ACTOR_KIND_COURIER, "courier"),
        b.bulk_calls(pop, legit.call_centres, K.ACTOR_KIND_CALL_CENTRE, "call-centre"),
        b.bulk_calls(pop, legit.reminders, K.ACTOR_KIND_REMINDER, "reminder"),
        b.bulk_calls(pop, legit.bank_alerts, K.ACTOR_KIND_BANK_ALERT, "bank"),
        b.robocalls(pop),
        b.spoofers(pop),
        b.impersonators(pop),
        b.emergency(pop),
    ]
    calls = Calls.concat(parts)
    order = np.lexsort((calls.caller, calls.t))
    calls = calls.take(order.astype(np.int64))
    specs = [CarrierSpec(c.name, c.ocn, c.signs) for c in b.carriers]
    not_before = scenario.start - timedelta(days=30)
    pki = build_pki(scenario.seed, specs, not_before)
    return Simulation(
        scenario=scenario,
        calls=calls,
        names=b.names,
        carriers=b.carriers,
        cities=b.cities,
        population=pop,
        pki=pki,
        generate_s=time.perf_counter() - started,
    )


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


def trunk_id(carrier: Carrier) -> str:
    """The ingress trunk id a carrier's calls arrive on."""
    return f"trunk-{carrier.name}"


def identity_keys(sim: Simulation) -> I64:
    """Per call, what the services attribute it to (services.common.identity), as an integer.

    The PAI's number when the trunk sends one, else From's; ``-(carrier + 1)`` for a withheld caller
    on a trunk that sends no PAI (that trunk's withheld bucket). ``identity_name`` spells it out.
    """
    c = sim.calls
    pai = np.array([carrier.sends_pai for carrier in sim.carriers], dtype=np.bool_)[c.carrier]
    number = np.where(pai | (c.from_number == 0), c.caller, c.from_number)
    return np.asarray(np.where(c.withheld & ~pai, -(c.carrier.astype(np.int64) + 1), number), dtype=np.int64)


def identity_name(key: int, sim: Simulation) -> str:
    """The canonical identity of an ``identity_keys`` value: E.164, or WITHHELD:<tenant>/<trunk>."""
    if key < 0:
        return withheld_key(sim.scenario.network.tenant, trunk_id(sim.carriers[-key - 1]))
    return f"+{key}"


def canonical(number: int, region: str) -> str:
    """The canonical form the services use: E.164, or REGION:digits for short codes."""
    return f"{region}:{-number}" if number < 0 else f"+{number}"


def _stamp(ms: int) -> Timestamp:
    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def actor_name(names: Sequence[str], actor: int) -> str:
    """The actor id of a call: an interned name, or ``subscriber-<n>`` for a person."""
    return names[actor] if actor >= 0 else f"subscriber-{-actor - 1}"


def _origid(seed: int, carrier: str, actor: str) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256(f"{seed}:{carrier}:{actor}".encode()).digest()[:16], version=4))


SETUP, CDR, COMPLAINT, AUDIO = 0, 1, 2, 3


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


class _Emitter:
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
        """A complaint from the callee (or a honeypot report) about the number the callee saw."""
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
                category=COMPLAINT_CATEGORY.get(self.kind[i], events_pb2.COMPLAINT_CATEGORY_FRAUD),
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
        return record.SerializeToString()


def write_dataset(sim: Simulation, folder: Path, progress: Callable[[int], None] | None = None) -> Manifest:
    """Emit a simulation as a dataset folder (events, per-call and per-number truth, manifest)."""
    folder.mkdir(parents=True, exist_ok=True)
    s = sim.scenario
    c = sim.calls
    n = len(c)
    started = time.perf_counter()
    emit = _Emitter(sim)
    tapped = np.random.default_rng(s.seed + 1).random(n) < s.capture.tap_share
    if s.capture.suspect_tap_share > 0:  # a draw of its own, so scenarios without it keep their bytes
        suspect = np.isin(c.kind, list(UNWANTED_KINDS))
        tapped |= suspect & (np.random.default_rng(s.seed + 2).random(n) < s.capture.suspect_tap_share)
    captured = c.answered & (c.honeypot | tapped)
    complaint_t = np.where(c.complaint_delay_ms >= 0, emit.end_ms + c.complaint_delay_ms, -1)
    complaint_t = np.where(c.honeypot & (complaint_t < 0), c.t + 60_000, complaint_t)
    complaint_t = np.where(emit.keys < 0, -1, complaint_t)  # a withheld caller showed no number
    audio_t = c.t + c.ring_ms + np.minimum(c.duration_ms, 30_000)
    has_complaint = np.flatnonzero(complaint_t >= 0)
    has_audio = np.flatnonzero(captured)
    all_t = np.concatenate([c.t, emit.end_ms, complaint_t[has_complaint], audio_t[has_audio]])
    all_kind = np.concatenate(
        [
            np.full(n, SETUP),
            np.full(n, CDR),
            np.full(len(has_complaint), COMPLAINT),
            np.full(len(has_audio), AUDIO),
        ]
    )
    all_index = np.concatenate([np.arange(n), np.arange(n), has_complaint, has_audio])
    order = np.lexsort((all_index, all_kind, all_t))
    kinds = all_kind[order].tolist()
    rows = all_index[order].tolist()
    complaint_at = complaint_t.tolist()
    audio_at = audio_t.tolist()
    counts = {"setups": n, "cdrs": n, "complaints": len(has_complaint), "audio_segments": len(has_audio)}
    with RecordWriter(folder / EVENTS) as events:
        write = events.write_bytes
        for step, (kind, i) in enumerate(zip(kinds, rows, strict=True)):
            if kind == SETUP:
                write(emit.setup(i))
            elif kind == CDR:
                write(emit.cdr(i))
            elif kind == COMPLAINT:
                write(emit.complaint(i, complaint_at[i]))
            else:
                write(emit.audio(i, audio_at[i]))
            if progress is not None and step % 10_000 == 0:
                progress(step)
    with RecordWriter(folder / CALLS) as truth:
        for i in range(n):
            truth.write_bytes(emit.truth(i))
    counts["numbers"] = _write_number_truth(sim, folder / NUMBERS)
    manifest = Manifest(
        scenario=s.name,
        seed=s.seed,
        start_ms=s.start_ms,
        duration_s=s.duration_ms / 1000,
        counts={"calls": n, **counts},
        generator={
            "version": GENERATOR_VERSION,
            "simulate_s": round(sim.generate_s, 3),
            "write_s": round(time.perf_counter() - started, 3),
            "created": datetime.now().astimezone().isoformat(timespec="seconds"),
        },
    )
    manifest.write(folder)
    sim.pki.write(folder / "pki")
    return manifest


def _write_number_truth(sim: Simulation, path: Path) -> int:
    c = sim.calls
    numbers, first_index, inverse, calls = np.unique(
        identity_keys(sim), return_index=True, return_inverse=True, return_counts=True
    )
    unwanted_kind = np.isin(c.kind, list(UNWANTED_KINDS))
    any_unwanted = np.zeros(len(numbers), np.bool_)
    np.logical_or.at(any_unwanted, inverse, unwanted_kind)
    last_t = np.zeros(len(numbers), np.int64)
    np.maximum.at(last_t, inverse, c.t)
    first_unwanted = np.full(len(numbers), -1, np.int64)
    unwanted_rows = np.flatnonzero(unwanted_kind)[::-1]
    first_unwanted[inverse[unwanted_rows]] = unwanted_rows
    representative = np.where(first_unwanted >= 0, first_unwanted, first_index)
    with RecordWriter(path) as writer:
        for k in range(len(numbers)):
            row = int(representative[k])
            writer.write(
                dataset_pb2.DatasetRecord(
                    time_ms=int(c.t[first_index[k]]),
                    number_truth=dataset_pb2.NumberTruth(
                        number=identity_name(int(numbers[k]), sim),
                        actor_kind=dataset_pb2.ActorKind.ValueType(int(c.kind[row])),
                        actor_id=actor_name(sim.names, int(c.actor[row])),
                        campaign_id=sim.names[int(c.campaign[row])] if c.campaign[row] >= 0 else "",
                        unwanted=bool(any_unwanted[k]),
                        first_used_ms=int(c.t[first_index[k]]),
                        last_used_ms=int(last_t[k]),
                        calls=int(calls[k]),
                    ),
                )
            )
    return len(numbers)
