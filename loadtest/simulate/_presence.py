"""Presence (``presence``): what the home network reports about the tenant's own mobile subscribers.

Every home subscriber on a mobile number (honeypots excepted) is a *subject*. Subjects are attached at
home most of the time; ``roaming_share`` of them are abroad at any moment, on trips of ``roaming_days``
on average (``plan_trips``, drawn before any call so their calls know where they are: a trip's calls
home break out abroad and arrive over an international gateway for ``gateway_share`` of trips, the
rest are home-routed and arrive on-net); ``detach_share`` switch their phone off at night, on the
nights they neither place nor answer a call. ``presence_reports`` turns that into the reports the
feed carries, in time order: every registration change (ROAMING with the visited country on leaving,
ATTACHED_HOME on coming back or switching on again, DETACHED on switching off), a periodic
re-registration of the current state every ``reregistration_hours`` (none while switched off), and
IN_CALL at answer and CALL_ENDED at hang-up of each answered on-net call a subject places.

Trips draw from a generator of their own and the reports from another (``Stream.PRESENCE``), so
tuning presence moves no other actor's calls; only home subscribers' routing follows their trips.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fraudmesh.v1 import events_pb2
from loadtest.simulate._builder import Builder, Stream
from loadtest.simulate._model import I64, ON_NET, Calls, K, Population, PresenceEvents, Trips

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
MIN_TRIP_MS = 6 * HOUR_MS
# Visited countries of the tenant's roamers (ISO 3166-1 alpha-2) and how often each is visited.
DESTINATIONS = (
    ("HK", 0.2),
    ("JP", 0.15),
    ("TH", 0.12),
    ("KR", 0.1),
    ("SG", 0.08),
    ("MY", 0.07),
    ("VN", 0.07),
    ("US", 0.07),
    ("AU", 0.05),
    ("GB", 0.04),
    ("DE", 0.03),
    ("FR", 0.02),
)
ATTACHED_HOME = int(events_pb2.PRESENCE_STATE_ATTACHED_HOME)
ROAMING = int(events_pb2.PRESENCE_STATE_ROAMING)
DETACHED = int(events_pb2.PRESENCE_STATE_DETACHED)
IN_CALL = int(events_pb2.PRESENCE_STATE_IN_CALL)
CALL_ENDED = int(events_pb2.PRESENCE_STATE_CALL_ENDED)


def plan_trips(b: Builder, pop: Population) -> Trips | None:
    """Who is abroad when, drawn before the calls (None when ``presence`` is off).

    A subject has a trip overlapping the window with probability ``roaming_share`` * (trip + window)
    / trip, so that ``roaming_share`` of subjects are abroad at any moment; a trip lasts ``roaming_days``
    on average (gamma, shape 2; at least six hours) and may have begun before the window.
    """
    p = b.s.presence
    if not p.enabled:
        return None
    n = len(pop.numbers)
    subject = pop.home & ~pop.fixed
    subject[pop.honeypots] = False
    who = np.flatnonzero(subject)
    rng = b.stream_rng(Stream.PRESENCE, "trips")
    window = b.s.duration_ms
    mean_ms = p.roaming_days * DAY_MS
    countries = tuple(c for c, _ in DESTINATIONS if c != b.s.network.region)
    weights = np.array([w for c, w in DESTINATIONS if c != b.s.network.region])
    travels = rng.random(len(who)) < min(1.0, p.roaming_share * (mean_ms + window) / mean_ms)
    length = np.maximum(rng.gamma(2.0, mean_ms / 2, size=len(who)), MIN_TRIP_MS).astype(np.int64)
    start = b.s.start_ms - length + (rng.random(len(who)) * (window + length)).astype(np.int64)
    country = rng.choice(len(countries), size=len(who), p=weights / weights.sum())
    gateway = rng.random(len(who)) < p.gateway_share
    trips = Trips(
        subject=subject,
        start=np.zeros(n, np.int64),
        end=np.zeros(n, np.int64),
        country=np.full(n, -1, np.int16),
        gateway=np.zeros(n, np.bool_),
        countries=countries,
    )
    away = who[travels]
    trips.start[away] = start[travels]
    trips.end[away] = start[travels] + length[travels]
    trips.country[away] = country[travels]
    trips.gateway[away] = gateway[travels]
    return trips


def presence_reports(b: Builder, pop: Population, calls: Calls) -> PresenceEvents | None:
    """Every presence report of the window, in time order (``calls`` sorted and final)."""
    trips = pop.trips
    if trips is None:
        return None
    p = b.s.presence
    s = b.s
    begin, end = s.start_ms, s.start_ms + s.duration_ms
    who = np.flatnonzero(trips.subject)
    rng = b.stream_rng(Stream.PRESENCE, "reports")
    night = _Nights(b, pop, trips, who, rng.random(len(who)) < p.detach_share, calls)
    period = max(int(p.reregistration_hours * HOUR_MS), 1)
    phase = (rng.random(len(who)) * period).astype(np.int64)
    repeats = np.maximum(-(-(s.duration_ms - phase) // period), 0)
    reg_person = np.repeat(who, repeats)
    reg_t = begin + np.repeat(phase, repeats) + _ranks(repeats) * period
    awake = ~night.asleep(reg_person, reg_t)
    reg_person, reg_t = reg_person[awake], reg_t[awake]
    away = trips.abroad(reg_person, reg_t)
    travelled = who[trips.end[who] > trips.start[who]]
    leave = travelled[(trips.start[travelled] >= begin) & (trips.start[travelled] < end)]
    back = travelled[(trips.end[travelled] >= begin) & (trips.end[travelled] < end)]
    placed = np.flatnonzero(
        (calls.kind == K.ACTOR_KIND_SUBSCRIBER)
        & (calls.actor < 0)
        & (calls.ingress == ON_NET)
        & calls.answered
    )
    placed = placed[trips.subject[-(calls.actor[placed].astype(np.int64) + 1)]]
    answer = calls.t[placed] + calls.ring_ms[placed]
    person = np.concatenate([reg_person, leave, back, night.person_off, night.person_on])
    t = np.concatenate([reg_t, trips.start[leave], trips.end[back], night.off_t, night.on_t])
    state = np.concatenate(
        [
            np.where(away, ROAMING, ATTACHED_HOME),
            np.full(len(leave), ROAMING),
            np.full(len(back), ATTACHED_HOME),
            np.full(len(night.off_t), DETACHED),
            np.full(len(night.on_t), ATTACHED_HOME),
        ]
    )
    roaming = state == ROAMING
    country = np.where(roaming, trips.country[person], -1)
    number = np.concatenate([_number_at(pop, person, t), calls.caller[placed], calls.caller[placed]])
    t = np.concatenate([t, answer, answer + calls.duration_ms[placed]])
    state = np.concatenate([state, np.full(len(placed), IN_CALL), np.full(len(placed), CALL_ENDED)])
    country = np.concatenate([country, np.full(2 * len(placed), -1)])
    call = np.concatenate([np.full(len(person), -1), placed, placed]).astype(np.int64)
    order = np.lexsort((number, state, t))
    return PresenceEvents(
        t=t[order].astype(np.int64),
        number=number[order].astype(np.int64),
        state=state[order].astype(np.int8),
        country=country[order].astype(np.int16),
        call=call[order],
    )


class _Nights:
    """Subjects who switch their phone off at night (``detach_share``): off around 23:00 local time
    (sd 1 h, 21:30 to 02:00), on again around 07:00 (sd 45 min, 05:00 to 09:30). A night is skipped when the
    subject is abroad then, or places or answers a call from an hour before switching off until
    switching on again (people who are up use their phone)."""

    def __init__(
        self,
        b: Builder,
        pop: Population,
        trips: Trips,
        who: I64,
        detaching: npt.NDArray[np.bool_],
        calls: Calls,
    ) -> None:
        s = b.s
        rng = b.stream_rng(Stream.PRESENCE, "nights")
        self.offset = int(s.utc_offset_hours * HOUR_MS)
        self.first = (s.start_ms + self.offset - 12 * HOUR_MS) // DAY_MS
        last = (s.start_ms + s.duration_ms - 1 + self.offset - 12 * HOUR_MS) // DAY_MS
        self.nights = int(last - self.first + 1)
        people = who[detaching]
        self.row = np.full(len(pop.numbers), -1, np.int64)
        self.row[people] = np.arange(len(people))
        shape = (len(people), self.nights)
        midnight = (self.first + np.arange(self.nights)) * DAY_MS + DAY_MS - self.offset
        off = np.clip(rng.normal(-1.0, 1.0, size=shape), -2.5, 2.0)
        on = np.clip(rng.normal(7.0, 0.75, size=shape), 5.0, 9.5)
        self.off = (midnight + off * HOUR_MS).astype(np.int64)
        self.on = (midnight + on * HOUR_MS).astype(np.int64)
        self.kept = ~((self.off < trips.end[people, None]) & (self.on > trips.start[people, None]))
        busy = (calls.kind == K.ACTOR_KIND_SUBSCRIBER) & (calls.actor < 0)
        self._skip(-(calls.actor[busy].astype(np.int64) + 1), calls.t[busy])
        answered = np.flatnonzero(calls.answered)
        callee = _person_of(pop, calls.callee[answered])
        known = callee >= 0
        self._skip(callee[known], calls.t[answered][known])
        begin, end = s.start_ms, s.start_ms + s.duration_ms
        rows = np.arange(len(people))[:, None]
        switch_off = self.kept & (self.off >= begin) & (self.off < end)
        switch_on = self.kept & (self.on >= begin) & (self.on < end)
        self.person_off = np.broadcast_to(people[rows], shape)[switch_off]
        self.off_t = self.off[switch_off]
        self.person_on = np.broadcast_to(people[rows], shape)[switch_on]
        self.on_t = self.on[switch_on]

    def _index(self, person: I64, t: I64) -> tuple[npt.NDArray[np.bool_], I64, I64]:
        row = self.row[person]
        night = (t + self.offset - 12 * HOUR_MS) // DAY_MS - self.first
        ok = (row >= 0) & (night >= 0) & (night < self.nights)
        return ok, row[ok], night[ok]

    def _skip(self, person: I64, t: I64) -> None:
        ok, row, night = self._index(person, t)
        t = t[ok]
        busy = (self.off[row, night] - HOUR_MS <= t) & (t < self.on[row, night])
        self.kept[row[busy], night[busy]] = False

    def asleep(self, person: I64, t: I64) -> npt.NDArray[np.bool_]:
        """Per (person, time), whether the person's phone is off then."""
        ok, row, night = self._index(person, t)
        inside = self.kept[row, night] & (self.off[row, night] <= t[ok]) & (t[ok] < self.on[row, night])
        out = np.zeros(len(person), np.bool_)
        out[np.flatnonzero(ok)[inside]] = True
        return out


def _ranks(repeats: I64) -> I64:
    """0, 1, … within each run of ``np.repeat(…, repeats)``."""
    total = int(repeats.sum())
    starts = np.repeat(np.cumsum(repeats) - repeats, repeats)
    return np.arange(total, dtype=np.int64) - starts


def _number_at(pop: Population, person: I64, t: I64) -> I64:
    """The number a person uses at ``t``: the new one from their switch on (``new_number_share``)."""
    new = pop.new_numbers[person] if len(pop.new_numbers) else np.zeros(len(person), np.int64)
    since = pop.new_number_ms[person] if len(pop.new_number_ms) else np.zeros(len(person), np.int64)
    return np.asarray(np.where((new > 0) & (t >= since), new, pop.numbers[person]), dtype=np.int64)


def _person_of(pop: Population, numbers: I64) -> I64:
    """The person each number belongs to (their first number or their new one), -1 for none."""
    owned = np.concatenate([pop.numbers, pop.new_numbers[pop.new_numbers > 0]])
    owner = np.concatenate([np.arange(len(pop.numbers)), np.flatnonzero(pop.new_numbers > 0)])
    order = np.argsort(owned, kind="stable")
    owned, owner = owned[order], owner[order]
    at = np.minimum(np.searchsorted(owned, numbers), len(owned) - 1)
    return np.asarray(np.where(owned[at] == numbers, owner[at], -1), dtype=np.int64)
