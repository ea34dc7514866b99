"""The builder: one seeded generator, interned names, the draws every actor family shares (times,
numbers, carriers, a group's calls table) and the population with its contact graph."""

from __future__ import annotations

import enum
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt

from loadtest.scenario import Carrier, Scenario
from loadtest.simulate._model import I64, Calls, Population


def _splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return np.asarray(x ^ (x >> np.uint64(31)), dtype=np.uint64)


class Stream(enum.IntEnum):
    """Generators of their own beside the main one: a knob that is added or tuned moves only the draws
    it drives, and every other actor family keeps its calls."""

    PRESENTATION = 3
    NUMBERING = 4
    OUTBOUND = 5
    ADAPTIVE = 6
    WRONG_NUMBERS = 7
    NEW_NUMBERS = 8
    COMPLAINTS = 9
    ENTERPRISE = 10
    UNSIGNED = 11
    PRESENCE = 12
    IMPERSONATION = 13
    SPOOFING = 14


class Builder:
    """Column-wise draws shared by a scenario's actor groups: one seeded generator and interned names."""

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
        self.presentation_rng = self.stream_rng(Stream.PRESENTATION)
        self.cities = list(net.cities.items())
        self.minutes = max(1, int(scenario.duration_ms // 60_000))
        local_start = scenario.start_ms / 3_600_000 + scenario.utc_offset_hours
        self.minute_hour = ((local_start + np.arange(self.minutes) / 60.0) % 24).astype(np.int64)

    def stream_rng(self, stream: Stream, salt: str = "") -> np.random.Generator:
        """The seed's generator for ``stream`` (and ``salt``, e.g. an actor group's label)."""
        key = [self.s.seed, int(stream)] + ([zlib.crc32(salt.encode())] if salt else [])
        return np.random.default_rng(key)

    def keyed_uniform(self, stream: Stream, salt: int, *columns: I64) -> npt.NDArray[np.float64]:
        """A uniform draw in [0, 1) per row, fixed by the row's values rather than its position (a
        splitmix64 hash of seed, stream, salt and the columns), so a pass over the whole calls table
        draws the same for a call however many other calls the scenario adds or drops."""
        h = np.full(len(columns[0]), self.s.seed * 1_000_003 + int(stream) * 1009 + salt, np.uint64)
        for column in columns:
            h = _splitmix64(h ^ np.ascontiguousarray(column, dtype=np.int64).view(np.uint64))
        return np.asarray((h >> np.uint64(11)).astype(np.float64) * 2.0**-53, dtype=np.float64)

    @contextmanager
    def drawing_from(self, stream: Stream, salt: str = "") -> Iterator[None]:
        """Every draw inside the block (times, numbers, a group's calls) comes from ``stream``'s generator."""
        main = self.rng
        self.rng = self.stream_rng(stream, salt)
        try:
            yield
        finally:
            self.rng = main

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
        roaming: npt.NDArray[np.bool_] | bool = False,
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
            complaint_category=np.zeros(n, np.int8),
            roaming=col(roaming, np.bool_),
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
        with self.drawing_from(Stream.NUMBERING):
            self._renumber(numbers, home, ~home_fixed, off_ranges)
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
        return Population(
            numbers, city, home, carrier, indptr, contacts.astype(np.int64), honeypots, fixed=home_fixed
        )

    def _renumber(
        self, numbers: I64, home: npt.NDArray[np.bool_], mobile: npt.NDArray[np.bool_], off: list[str]
    ) -> None:
        """MVNO subscribers (numbered in the virtual ranges) and ported numbers, on the carrier they had.

        A ported-in home subscriber keeps an interconnect's number; a ported-out one, now served
        off-net, keeps a number in the tenant's own ranges.
        """
        n = len(numbers)
        net = self.s.network
        mvno = mobile & (self.rng.random(n) < net.mvno_share)
        ported = mobile & ~mvno & (self.rng.random(n) < self.s.subscribers.ported_share)
        if mvno.any():
            numbers[mvno] = self.numbers_in(net.virtual_ranges, int(mvno.sum()))
        ported_in, ported_out = ported & home, ported & ~home
        numbers[ported_in] = self.numbers_in(off, int(ported_in.sum()))
        numbers[ported_out] = self.numbers_in(net.home.ranges, int(ported_out.sum()))

    def empty(self) -> Calls:
        """An empty calls table, for an actor group the scenario leaves out."""
        return self.calls(
            np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), 0, 0, 0, 0, 0, 0.0, 1.0
        )
