"""The actor families, one function each, drawing from one ``Builder`` in a fixed order, and
``simulate``, which runs them all for a scenario."""

from __future__ import annotations

import time
from datetime import timedelta

import numpy as np
import numpy.typing as npt

from loadtest.scenario import BulkCallers, Scenario
from loadtest.simulate._adaptive import adaptive_campaigns
from loadtest.simulate._builder import Builder, Stream
from loadtest.simulate._lookalikes import legit_complaints, new_numbers, strip_identity, wrong_numbers
from loadtest.simulate._model import (
    ATTEST,
    HOUR_WEIGHTS_BUSINESS,
    HOUR_WEIGHTS_FLAT,
    HOUR_WEIGHTS_PEOPLE,
    I64,
    IN,
    INTERNATIONAL,
    VOIP,
    Calls,
    K,
    Population,
    Simulation,
)
from loadtest.simulate._presence import plan_trips, presence_reports
from loadtest.stipki import CarrierSpec, build_pki

# Valid mobile ranges abroad as (leading digits with country code, digits after them): the UK,
# Taiwan, Singapore, Australia, Germany, France, the US (the exchange's first digit is 2-9).
FOREIGN_RANGES = ((4479, 8), (8869, 8), (658, 7), (6141, 7), (4917, 9), (3367, 7), (12122, 6))


def subscriber_calls(b: Builder, pop: Population) -> Calls:
    """People calling mostly their contacts, with callbacks after missed calls."""
    sub = b.s.subscribers
    callers = np.setdiff1d(np.arange(len(pop.numbers)), pop.honeypots)
    rows, t = b.times(np.full(len(callers), sub.calls_per_day), HOUR_WEIGHTS_PEOPLE)
    who = callers[rows]
    degree = pop.contacts_indptr[who + 1] - pop.contacts_indptr[who]
    pick = pop.contacts_indptr[who] + (b.rng.random(len(who)) * degree).astype(np.int64)
    to_contact = b.rng.random(len(who)) < sub.contact_share
    callee = np.where(to_contact, pop.contacts[pick], b.rng.integers(0, len(pop.numbers), size=len(who)))
    keep = pop.home[callee] & (callee != who) & ~np.isin(callee, pop.honeypots)
    who, callee, t, to_contact = who[keep], callee[keep], t[keep], to_contact[keep]
    answer = np.where(to_contact, sub.answer_rate, sub.answer_rate * 0.6)
    first = _person_calls(b, pop, who, callee, t, answer)
    missed = ~first.answered & (b.rng.random(len(first)) < sub.callback_share) & pop.home[who]
    back_t = (
        t[missed] + first.ring_ms[missed] + b.rng.exponential(10 * 60_000, int(missed.sum())).astype(np.int64)
    )
    inside = back_t < b.s.start_ms + b.s.duration_ms
    back = _person_calls(
        b,
        pop,
        callee[missed][inside],
        who[missed][inside],
        back_t[inside],
        np.full(int(inside.sum()), sub.answer_rate),
    )
    return Calls.concat([first, back])


def _person_calls(
    b: Builder, pop: Population, who: I64, callee: I64, t: I64, answer: npt.NDArray[np.float64]
) -> Calls:
    """People's calls from home or abroad. Off-net people call from abroad ``subscribers.roaming_share``
    of the time, over an international gateway; home subscribers too, unless ``presence`` is on: then
    they are abroad on their trips (``Trips``), calling home over a gateway on a trip that breaks out
    abroad, on-net on one that is home-routed, and a fixed line never roams."""
    on_net = pop.home[who]
    ingress = np.where(on_net, IN.INGRESS_KIND_ON_NET, IN.INGRESS_KIND_DOMESTIC_INTERCONNECT)
    carrier = pop.carrier[who].astype(np.int64)
    roaming = b.rng.random(len(who)) < b.s.subscribers.roaming_share
    abroad = roaming
    if pop.trips is not None:
        away = pop.trips.abroad(who, t)
        roaming = np.where(on_net, away & pop.trips.gateway[who], roaming)
        abroad = np.where(on_net, away, roaming)
    gateways = b.gateways()
    carrier = np.where(roaming, gateways[b.rng.integers(0, len(gateways), size=len(who))], carrier)
    ingress = np.where(roaming, INTERNATIONAL, ingress)
    return b.calls(
        t,
        pop.numbers[who],
        pop.numbers[callee],
        K.ACTOR_KIND_SUBSCRIBER,
        -(who + 1),
        carrier,
        ingress,
        np.where(roaming, 3, 1),
        answer,
        b.s.subscribers.mean_duration_s,
        withheld=b.presentation_rng.random(len(who)) < b.s.subscribers.withheld_share,
        roaming=abroad,
    )


def bulk_calls(b: Builder, pop: Population, group: BulkCallers, kind: int, label: str) -> Calls:
    """Legitimate high-volume callers: couriers, call centres, reminders, bank alerts, outbound diallers.

    Their own carrier attests ``group.attest`` (enterprises on a PBX trunk get B), except the
    ``voip_share`` handed over by VoIP peers; ``enterprise`` says how many arrive unsigned or at C
    anyway (``_enterprise_arrival``). The ``pbx_share`` of calls placed from a PBX extension present
    the extension's DDI (in the main number's block of 100) in From, and the trunk asserts the
    organisation's main number (its first) in PAI. Couriers' and reminders' mobiles are MVNO numbers
    (the virtual ranges) as often as people's (``network.mvno_share``).
    """
    if group.count == 0:
        return b.empty()
    home = pop.home_index
    weights = HOUR_WEIGHTS_BUSINESS if kind != K.ACTOR_KIND_BANK_ALERT else HOUR_WEIGHTS_PEOPLE
    rows, t = b.times(np.full(group.count, group.calls_per_day), weights)
    numbers_each = max(group.numbers_each, 1)
    if kind == K.ACTOR_KIND_BANK_ALERT:
        own = 86400 * 10**7 + b.rng.integers(0, 10**7, size=(group.count, numbers_each))
    elif kind == K.ACTOR_KIND_CALL_CENTRE:
        city = b.rng.integers(0, len(b.cities), size=group.count * numbers_each).astype(np.int32)
        own = b.fixed_lines(city).reshape(group.count, numbers_each)
    else:
        ranges = [
            *b.s.network.home.ranges,
            *(r for c in b.s.network.interconnects for r in c.ranges),
        ]
        own = b.numbers_in(ranges, group.count * numbers_each).reshape(group.count, numbers_each)
        with b.drawing_from(Stream.NUMBERING, label):
            mvno = b.rng.random(own.shape) < b.s.network.mvno_share
            if mvno.any():
                own[mvno] = b.numbers_in(b.s.network.virtual_ranges, int(mvno.sum()))
    caller = own[rows, b.rng.integers(0, numbers_each, size=len(rows))]
    main = own[rows, 0]
    extension = b.presentation_rng.random(len(rows)) < group.pbx_share
    ddi = (main // 100) * 100 + b.presentation_rng.integers(0, 100, size=len(rows))
    caller = np.where(extension, main, caller)
    if group.audience:
        audiences = b.rng.choice(home, size=(group.count, min(group.audience, len(home))))
        callee = pop.numbers[audiences[rows, b.rng.integers(0, audiences.shape[1], size=len(rows))]]
    else:
        callee = pop.numbers[b.rng.choice(home, size=len(rows))]
    n = len(rows)
    via_voip = b.rng.random(n) < group.voip_share
    carrier = np.where(via_voip, b.pick(b.voip_peers(), n), b.pick(b.interconnects(), n))
    ingress = np.where(via_voip, VOIP, IN.INGRESS_KIND_DOMESTIC_INTERCONNECT)
    attest = np.where(via_voip, 3, ATTEST.index(group.attest))
    carrier, attest = _enterprise_arrival(b, label, via_voip, carrier, attest)
    actor = np.array([b.name(f"{label}-{i}") for i in range(group.count)], dtype=np.int64)[rows]
    script = voice = -1
    if group.automated:
        script = b.name(f"script-{label}")
        voice = b.name("tts-standard")
    return b.calls(
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


def _enterprise_arrival(
    b: Builder, label: str, via_voip: npt.NDArray[np.bool_], carrier: I64, attest: I64
) -> tuple[I64, I64]:
    """How a business's calls arrive (``enterprise``): some unsigned or at C over interconnects (a
    carrier or platform that does not sign yet, a reseller its carrier cannot vouch for); over VoIP
    through a peer that does not sign, or one that signs B (a hosted PBX that knows its customer) or C."""
    e = b.s.enterprise
    rng = b.stream_rng(Stream.ENTERPRISE, label)
    n = len(carrier)
    draw = rng.random(n)
    attest = np.where(~via_voip & (draw < e.unsigned_share), 0, attest)
    attest = np.where(
        ~via_voip & (draw >= e.unsigned_share) & (draw < e.unsigned_share + e.c_share), 3, attest
    )
    peers = b.voip_peers()
    signs = np.array([b.carriers[p].signs for p in peers], dtype=np.bool_)
    signing, open_peers = peers[signs], peers[~signs]
    unsigned = rng.random(n) < e.voip_unsigned_share
    if len(signing) and len(open_peers):
        peer = np.where(
            unsigned,
            open_peers[rng.integers(0, len(open_peers), size=n)],
            signing[rng.integers(0, len(signing), size=n)],
        )
        carrier = np.where(via_voip, peer, carrier)
    attest = np.where(via_voip, np.where(rng.random(n) < e.voip_b_share, 2, 3), attest)
    return carrier, attest


def robocalls(b: Builder, pop: Population) -> Calls:
    """Campaigns dialling tens of thousands of callees from rotating, location-masked numbers."""
    rc = b.s.robocalls
    if rc.campaigns == 0:
        return b.empty()
    rows, t = b.times(np.full(rc.campaigns, rc.calls_per_day), HOUR_WEIGHTS_BUSINESS)
    n = len(rows)
    n_virtual = round(rc.pool_size * rc.virtual_share)
    pools = np.empty((rc.campaigns, rc.pool_size), np.int64)
    for c in range(rc.campaigns):
        pools[c, :n_virtual] = b.numbers_in(b.s.network.virtual_ranges, n_virtual)
        cities = b.rng.integers(0, len(b.cities), size=rc.pool_size - n_virtual).astype(np.int32)
        pools[c, n_virtual:] = b.fixed_lines(cities)
        b.rng.shuffle(pools[c])
    slot = (t - b.s.start_ms) // int(rc.rotation_minutes * 60_000)
    position = (slot * rc.active_numbers + b.rng.integers(0, rc.active_numbers, size=n)) % rc.pool_size
    caller = pools[rows, position]
    home = pop.home_index
    to_honeypot = b.rng.random(n) < rc.honeypot_share
    callee_idx = np.where(
        to_honeypot & (len(pop.honeypots) > 0),
        pop.honeypots[b.rng.integers(0, max(len(pop.honeypots), 1), size=n)] if len(pop.honeypots) else 0,
        b.rng.choice(home, size=n),
    )
    masked = b.rng.random(n) < rc.location_masking_share
    caller = np.where(masked, b.fixed_lines(pop.city[callee_idx]), caller)
    via_voip = b.rng.random(n) < rc.voip_share
    voip = [b.cidx[c.name] for c in b.s.network.voip_peers] or [0]
    interconnects = [b.cidx[c.name] for c in b.s.network.interconnects] or [0]
    carrier = np.where(
        via_voip,
        np.asarray(voip)[b.rng.integers(0, len(voip), size=n)],
        np.asarray(interconnects)[b.rng.integers(0, len(interconnects), size=n)],
    )
    ingress = np.where(via_voip, IN.INGRESS_KIND_VOIP_PEER, IN.INGRESS_KIND_DOMESTIC_INTERCONNECT)
    complicit = b.rng.random(n) < rc.a_attested_share
    attest = np.where(via_voip, 3, np.where(complicit, 1, 2))
    campaign = np.array([b.name(f"campaign-{c}") for c in range(rc.campaigns)], dtype=np.int64)[rows]
    script = np.array([b.name(f"script-campaign-{c}") for c in range(rc.campaigns)], dtype=np.int64)[rows]
    voice = np.array([b.name(f"tts-campaign-{c}") for c in range(rc.campaigns)], dtype=np.int64)[rows]
    calls = b.calls(
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
    return calls


def spoofers(b: Builder, pop: Population) -> Calls:
    """Neighbor, international-domestic, on-net-from-off-net and invalid-number spoofers.

    International-domestic spoofers present mobiles of every domestic carrier, the tenant's, the
    interconnects' and the virtual operators': ``intl_real_share`` of their calls a real person's
    number (one of the tenant's subscribers or another carrier's, harvested from a leaked list), the
    rest a random number in those ranges.
    """
    sp = b.s.spoofers
    net = b.s.network
    home = pop.home_index
    voip = [b.cidx[c.name] for c in net.voip_peers] or [0]
    gateways = [b.cidx[c.name] for c in net.gateways] or voip
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
        rows, t = b.times(np.full(count, sp.calls_per_day), HOUR_WEIGHTS_BUSINESS)
        n = len(rows)
        callee = pop.numbers[b.rng.choice(home, size=n)]
        if kind == K.ACTOR_KIND_NEIGHBOR_SPOOFER:
            caller = (callee // 10**4) * 10**4 + b.rng.integers(0, 10**4, size=n)
        elif kind == K.ACTOR_KIND_INTL_DOMESTIC_SPOOFER:
            domestic = [r for c in net.interconnects for r in c.ranges]
            ranges = [*net.home.ranges, *domestic, *net.virtual_ranges]
            caller = _real_numbers(b, pop, b.numbers_in(ranges, n), sp.intl_real_share, label)
        elif kind == K.ACTOR_KIND_ONNET_SPOOFER:
            caller = pop.numbers[b.rng.choice(home, size=n)]
        else:
            caller = b.numbers_in(["+86100", "+86120", "+86125", "+86111", "+86140"], n)
        carrier = np.asarray(carriers)[b.rng.integers(0, len(carriers), size=n)]
        calls_ingress = np.full(n, ingress, dtype=np.int64)
        attest = np.full(n, 3, dtype=np.int64)
        if ingress == IN.INGRESS_KIND_VOIP_PEER:
            signed = b.rng.random(n) < sp.signed_share
            carrier = np.where(signed, b.pick(b.interconnects(), n), carrier)
            calls_ingress = np.where(signed, IN.INGRESS_KIND_DOMESTIC_INTERCONNECT, calls_ingress)
            attest = np.where(signed, 2, attest)
        actor = np.array([b.name(f"spoofer-{label}-{i}") for i in range(count)], dtype=np.int64)[rows]
        parts.append(
            b.calls(
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
    return Calls.concat(parts) if parts else b.empty()


def _real_numbers(b: Builder, pop: Population, caller: I64, share: float, label: str) -> I64:
    """``caller`` with ``share`` of its numbers replaced by real people's mobile numbers (a draw of its
    own, so the share moves nothing else)."""
    rng = b.stream_rng(Stream.SPOOFING, label)
    people = np.setdiff1d(np.flatnonzero(~pop.fixed), pop.honeypots)
    real = rng.random(len(caller)) < share
    pick = rng.integers(0, max(len(people), 1), size=len(caller))
    if not len(people):
        return caller
    return np.asarray(np.where(real, pop.numbers[people[pick]], caller), dtype=np.int64)


def foreign_calls(b: Builder, pop: Population) -> Calls:
    """People abroad calling the few home subscribers they know (family, friends, business).

    They arrive over international gateways, unsigned or attested C, at any hour (other time
    zones), and present valid foreign numbers.
    """
    fo = b.s.foreign
    if fo.count == 0:
        return b.empty()
    table = np.array(FOREIGN_RANGES, dtype=np.int64)
    which = b.rng.integers(0, len(table), size=fo.count)
    digits = table[which, 1]
    tails = (b.rng.random(fo.count) * (10.0**digits)).astype(np.int64)
    numbers = table[which, 0] * 10**digits + tails
    reachable = np.setdiff1d(pop.home_index, pop.honeypots)
    known = b.rng.choice(reachable, size=(fo.count, fo.contacts))
    rows, t = b.times(np.full(fo.count, fo.calls_per_day), HOUR_WEIGHTS_FLAT)
    n = len(rows)
    callee = pop.numbers[known[rows, b.rng.integers(0, fo.contacts, size=n)]]
    actor = np.array([b.name(f"foreign-{i}") for i in range(fo.count)], dtype=np.int64)[rows]
    return b.calls(
        t,
        numbers[rows],
        callee,
        K.ACTOR_KIND_SUBSCRIBER,
        actor,
        b.pick(b.gateways(), n),
        INTERNATIONAL,
        3,
        fo.answer_rate,
        fo.mean_duration_s,
        withheld=b.presentation_rng.random(n) < fo.withheld_share,
    )


def impersonators(b: Builder, pop: Population) -> Calls:
    """Cloned-voice calls presenting a relative's number, in short bursts to one victim.

    ``onnet_share`` of the victims hear a relative who is one of the tenant's own subscribers, the
    rest one on another carrier (either kind when the victim has no contact of the other).
    """
    im = b.s.impersonators
    if im.count == 0:
        return b.empty()
    rows, t0 = b.times(np.full(im.count, im.victims_per_day), HOUR_WEIGHTS_PEOPLE)
    home = pop.home_index
    victims = b.rng.choice(home, size=len(rows))
    relative = _relatives(b, pop, victims, b.rng.random(len(victims)))
    burst = 1 + b.rng.poisson(max(im.calls_per_victim - 1, 0.0), size=len(rows))
    rep = np.repeat(np.arange(len(rows)), burst)
    t = t0[rep] + b.rng.integers(0, 20 * 60_000, size=len(rep))
    inside = t < b.s.start_ms + b.s.duration_ms
    rep, t = rep[inside], t[inside]
    open_carriers = [b.cidx[c.name] for c in (*b.s.network.gateways, *b.s.network.voip_peers) if not c.signs]
    open_carriers = open_carriers or [b.cidx[b.s.network.voip_peers[0].name]]
    carrier = np.asarray(open_carriers)[b.rng.integers(0, len(open_carriers), size=len(rep))]
    gateway_names = {c.name for c in b.s.network.gateways}
    ingress = np.where(
        np.isin(carrier, [b.cidx[n] for n in gateway_names]),
        IN.INGRESS_KIND_INTERNATIONAL_GATEWAY,
        IN.INGRESS_KIND_VOIP_PEER,
    )
    actor = np.array([b.name(f"impersonator-{i}") for i in range(im.count)], dtype=np.int64)[rows][rep]
    voice = np.array([b.name(f"clone-{v}") for v in relative[rep]], dtype=np.int64)
    return b.calls(
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


def _relatives(b: Builder, pop: Population, victims: I64, draw: npt.NDArray[np.float64]) -> I64:
    """One contact per victim, on-net (a home subscriber) for ``impersonators.onnet_share`` of them.

    ``draw`` picks the contact among the victim's contacts of the chosen kind; the kind comes from a
    generator of its own.
    """
    start = pop.contacts_indptr[victims]
    degree = pop.contacts_indptr[victims + 1] - start
    on = pop.home[pop.contacts]
    before_on = np.concatenate([[0], np.cumsum(on)]).astype(np.int64)
    before_off = np.arange(len(on) + 1, dtype=np.int64) - before_on
    n_on = before_on[start + degree] - before_on[start]
    n_off = degree - n_on
    want_on = b.stream_rng(Stream.IMPERSONATION).random(len(victims)) < b.s.impersonators.onnet_share
    use_on = (want_on & (n_on > 0)) | (n_off == 0)
    on_at, off_at = np.flatnonzero(on), np.flatnonzero(~on)
    k_on = np.minimum(before_on[start] + (draw * n_on).astype(np.int64), max(len(on_at) - 1, 0))
    k_off = np.minimum(before_off[start] + (draw * n_off).astype(np.int64), max(len(off_at) - 1, 0))
    at = np.where(
        use_on,
        on_at[k_on] if len(on_at) else start,
        off_at[k_off] if len(off_at) else start,
    )
    return np.asarray(pop.contacts[at], dtype=np.int64)


def emergency(b: Builder, pop: Population) -> Calls:
    """Home subscribers calling the tenant's emergency numbers."""
    em = b.s.emergency
    numbers = b.s.network.emergency_numbers
    if em.calls_per_day == 0 or not numbers:
        return b.empty()
    _rows, t = b.times(np.array([em.calls_per_day]), HOUR_WEIGHTS_FLAT)
    who = b.rng.choice(pop.home_index, size=len(t))
    callee = -np.array([int(x) for x in numbers], dtype=np.int64)[
        b.rng.integers(0, len(numbers), size=len(t))
    ]
    return b.calls(
        t,
        pop.numbers[who],
        callee,
        K.ACTOR_KIND_EMERGENCY,
        b.name("emergency-callers"),
        b.cidx[b.s.network.home.name],
        IN.INGRESS_KIND_ON_NET,
        1,
        0.98,
        90.0,
    )


def simulate(scenario: Scenario) -> Simulation:
    """Generate every call of a scenario, sorted by setup time (deterministic for its seed)."""
    started = time.perf_counter()
    b = Builder(scenario)
    pop = b.population()
    pop.trips = plan_trips(b, pop)
    legit = scenario.legit
    parts = [
        subscriber_calls(b, pop),
        foreign_calls(b, pop),
        bulk_calls(b, pop, legit.couriers, K.ACTOR_KIND_COURIER, "courier"),
        bulk_calls(b, pop, legit.call_centres, K.ACTOR_KIND_CALL_CENTRE, "call-centre"),
        bulk_calls(b, pop, legit.reminders, K.ACTOR_KIND_REMINDER, "reminder"),
        bulk_calls(b, pop, legit.bank_alerts, K.ACTOR_KIND_BANK_ALERT, "bank"),
        robocalls(b, pop),
        spoofers(b, pop),
        impersonators(b, pop),
        emergency(b, pop),
    ]
    with b.drawing_from(Stream.OUTBOUND):
        parts.append(bulk_calls(b, pop, legit.outbound, K.ACTOR_KIND_CALL_CENTRE, "outbound"))
    with b.drawing_from(Stream.ADAPTIVE):
        parts.append(adaptive_campaigns(b, pop))
    calls = Calls.concat(parts)
    new_numbers(b, pop, calls)
    wrong_numbers(b, pop, calls)
    calls.honeypot = np.isin(calls.callee, pop.honeypot_numbers)  # every call to one is recorded
    strip_identity(b, calls)
    order = np.lexsort((calls.caller, calls.t))
    calls = calls.take(order.astype(np.int64))
    legit_complaints(b, calls)
    presence = presence_reports(b, pop, calls)
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
        presence=presence,
    )
