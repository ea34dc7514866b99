"""Legitimate traffic that looks like unwanted traffic, applied to the whole calls table: people
switching to a new number, wrong-number calls to honeypots, interconnect calls that lose their
Identity header, and complaints about legitimate numbers (mistaken and malicious).

Each draws from a generator of its own (``Stream``), so tuning one leaves every other call as it was.
"""

from __future__ import annotations

import numpy as np

from fraudmesh.v1 import events_pb2
from loadtest.simulate._builder import Builder, Stream
from loadtest.simulate._model import IN, Calls, K, Population
from training.dataset import UNWANTED_KINDS

DAY_MS = 86_400_000
LEGIT_CALLER_KINDS = sorted(
    set(K.values()) - set(UNWANTED_KINDS) - {K.ACTOR_KIND_UNSPECIFIED, K.ACTOR_KIND_EMERGENCY}
)

C = events_pb2.ComplaintCategory
# What a callee picks when they report a legitimate call; a malicious report always says fraud.
MISTAKEN_CATEGORY = {
    K.ACTOR_KIND_SUBSCRIBER: C.COMPLAINT_CATEGORY_HARASSMENT,
    K.ACTOR_KIND_COURIER: C.COMPLAINT_CATEGORY_OTHER,
    K.ACTOR_KIND_CALL_CENTRE: C.COMPLAINT_CATEGORY_TELEMARKETING,
    K.ACTOR_KIND_REMINDER: C.COMPLAINT_CATEGORY_ROBOCALL,
    K.ACTOR_KIND_BANK_ALERT: C.COMPLAINT_CATEGORY_FRAUD,
}


def new_numbers(b: Builder, pop: Population, calls: Calls) -> None:
    """People who start using a new number during the window (``subscribers.new_number_share`` a day).

    From a random moment on, a switcher's calls present a fresh number in their carrier's ranges
    (a new SIM): a number reputation has never seen, calling the switcher's usual contacts.
    Recorded in ``pop.new_numbers`` / ``pop.new_number_ms``.
    """
    s = b.s
    n = len(pop.numbers)
    pop.new_numbers = np.zeros(n, np.int64)
    pop.new_number_ms = np.zeros(n, np.int64)
    share = s.subscribers.new_number_share * s.duration_ms / DAY_MS
    if share <= 0:
        return
    with b.drawing_from(Stream.NEW_NUMBERS):
        switch = b.rng.random(n) < share
        switch[pop.honeypots] = False
        pop.new_number_ms[switch] = s.start_ms + (b.rng.random(int(switch.sum())) * s.duration_ms).astype(
            np.int64
        )
        for carrier in np.unique(pop.carrier[switch]).tolist():
            who = switch & (pop.carrier == carrier)
            ranges = b.carriers[carrier].ranges or s.network.home.ranges
            pop.new_numbers[who] = b.numbers_in(ranges, int(who.sum()))
    rows = np.flatnonzero((calls.kind == K.ACTOR_KIND_SUBSCRIBER) & (calls.actor < 0))
    person = -(calls.actor[rows].astype(np.int64) + 1)
    moved = (pop.new_numbers[person] > 0) & (calls.t[rows] >= pop.new_number_ms[person])
    calls.caller[rows[moved]] = pop.new_numbers[person[moved]]


def wrong_numbers(b: Builder, pop: Population, calls: Calls) -> None:
    """Legitimate calls that reach a honeypot instead (``capture.wrong_number_calls_per_day`` each):
    misdials, and — honeypots being recycled numbers — the previous owner's contacts and customer lists."""
    honeypots = pop.honeypot_numbers
    legit = np.flatnonzero(np.isin(calls.kind, LEGIT_CALLER_KINDS))
    expected = len(honeypots) * b.s.capture.wrong_number_calls_per_day * b.s.duration_ms / DAY_MS
    if expected <= 0 or len(legit) == 0:
        return
    key = (calls.t[legit], calls.caller[legit], calls.callee[legit])
    rows = legit[b.keyed_uniform(Stream.WRONG_NUMBERS, 0, *key) < expected / len(legit)]
    which = b.keyed_uniform(Stream.WRONG_NUMBERS, 1, calls.t[rows], calls.caller[rows], calls.callee[rows])
    calls.callee[rows] = honeypots[(which * len(honeypots)).astype(np.int64)]


def strip_identity(b: Builder, calls: Calls) -> None:
    """``network.unsigned_share`` of the calls over domestic interconnects, whoever places them, arrive
    without their Identity header (a TDM leg on the way, a transit carrier that drops it)."""
    share = b.s.network.unsigned_share
    if share <= 0:
        return
    draw = b.keyed_uniform(Stream.UNSIGNED, 0, calls.t, calls.caller, calls.callee)
    stripped = (calls.ingress == IN.INGRESS_KIND_DOMESTIC_INTERCONNECT) & (draw < share)
    calls.attest[stripped] = 0


def legit_complaints(b: Builder, calls: Calls) -> None:
    """Complaints about answered legitimate calls (``complaints``): people report wanted calls too.

    Mistaken reports (``mistaken_rate`` of people's calls, ``business_mistaken_rate`` of businesses':
    a forgotten opt-in, an unexpected delivery, the wrong line picked in the call log) and malicious
    ones: ``malicious_rate`` of legitimate caller numbers have somebody reporting
    ``malicious_report_share`` of their answered calls as fraud (a dispute, a grudge, a competitor).
    """
    co = b.s.complaints
    key = (calls.t, calls.caller, calls.callee)
    legit = np.isin(calls.kind, LEGIT_CALLER_KINDS)
    rate = np.where(calls.kind == K.ACTOR_KIND_SUBSCRIBER, co.mistaken_rate, co.business_mistaken_rate)
    mistaken = legit & (b.keyed_uniform(Stream.COMPLAINTS, 0, *key) < rate)
    targeted = b.keyed_uniform(Stream.COMPLAINTS, 1, calls.caller) < co.malicious_rate
    malicious = legit & targeted & (b.keyed_uniform(Stream.COMPLAINTS, 2, *key) < co.malicious_report_share)
    reported = calls.answered & (mistaken | malicious) & (calls.complaint_delay_ms < 0)
    wait = -np.log1p(-b.keyed_uniform(Stream.COMPLAINTS, 3, *key)) * co.delay_minutes * 60_000
    delay = wait.astype(np.int64) + 1
    calls.complaint_delay_ms = np.where(reported, delay, calls.complaint_delay_ms)
    by_kind = np.zeros(max(K.values()) + 1, np.int8)
    for kind, category in MISTAKEN_CATEGORY.items():
        by_kind[kind] = category
    chosen = np.where(malicious, int(C.COMPLAINT_CATEGORY_FRAUD), by_kind[calls.kind])
    calls.complaint_category = np.where(reported, chosen, calls.complaint_category).astype(np.int8)
