"""What the simulator produces: the calls table, the population (with its trips abroad), the presence
reports, a whole ``Simulation``, and the constants and identity helpers the builder, the emitter and
the dataset writer share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from fraudmesh.v1 import common_pb2, dataset_pb2
from loadtest.scenario import Carrier, Scenario
from loadtest.stipki import StiPki
from services.common.identity import withheld_key

I64 = npt.NDArray[np.int64]

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
    complaint_category: npt.NDArray[np.int8]  # ComplaintCategory of its complaint; 0 = by actor kind
    roaming: npt.NDArray[np.bool_]  # placed abroad by a roaming subscriber (over a gateway, or home-routed)

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
class Trips:
    """Home subscribers' trips abroad (``presence``), one slot per person: a person without a trip has
    ``start == end == 0``. ``subject``: the home network reports the person's presence (the tenant's
    mobile subscribers, honeypots excepted)."""

    subject: npt.NDArray[np.bool_]
    start: I64
    end: I64
    country: npt.NDArray[np.int16]  # index into ``countries``; -1 without a trip
    gateway: npt.NDArray[np.bool_]  # the trip's calls home break out abroad: over an international gateway
    countries: tuple[str, ...] = ()

    def abroad(self, person: I64, t: I64) -> npt.NDArray[np.bool_]:
        """Per call, whether ``person`` was on a trip at ``t``."""
        return np.asarray((self.start[person] <= t) & (t < self.end[person]), dtype=np.bool_)


@dataclass
class PresenceEvents:
    """The presence reports of a simulation (subscribers.presence.v1), in time order."""

    t: I64
    number: I64  # the subscriber's number (E.164 digits)
    state: npt.NDArray[np.int8]  # PresenceState
    country: npt.NDArray[np.int16]  # index into ``Trips.countries`` for ROAMING, else -1
    call: I64  # row of the call in ``Simulation.calls`` for IN_CALL / CALL_ENDED, else -1

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
    new_numbers: I64 = field(default_factory=lambda: np.zeros(0, np.int64))  # per person; 0 = none
    new_number_ms: I64 = field(default_factory=lambda: np.zeros(0, np.int64))  # when they switch to it
    fixed: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))  # on a fixed line
    trips: Trips | None = None  # with ``presence`` enabled: home subscribers' trips abroad

    @property
    def home_index(self) -> I64:
        """Indices of home subscribers that can receive calls (honeypots included)."""
        return np.flatnonzero(self.home).astype(np.int64)

    @property
    def honeypot_numbers(self) -> I64:
        """The honeypots' numbers."""
        return self.numbers[self.honeypots]


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
    presence: PresenceEvents | None = None  # with ``presence`` enabled


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


def actor_name(names: Sequence[str], actor: int) -> str:
    """The actor id of a call: an interned name, or ``subscriber-<n>`` for a person."""
    return names[actor] if actor >= 0 else f"subscriber-{-actor - 1}"
