"""Adaptive campaigns (``adaptive``): robocallers that work around detection.

They spread their calls over many numbers with a few calls each (``spread_numbers``), keep every
number under an hourly cap (``max_calls_per_number_hour``: low and slow, adding numbers when the
cap needs more), age their numbers with ordinary-looking calls before the campaign uses them
(``number_aging_days``) and buy A attestation from a lax carrier (``buys_a_attestation_share``).
Their numbers are real SIMs on the interconnects' mobile ranges and some leased virtual-range
numbers. Every call, the aging ones included, is the campaign's: ActorKind ROBOCALL, unwanted.
"""

from __future__ import annotations

import numpy as np

from loadtest.scenario import Adaptive
from loadtest.simulate._builder import Builder
from loadtest.simulate._model import HOUR_WEIGHTS_BUSINESS, I64, IN, VOIP, Calls, K, Population

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
INTERCONNECT = int(IN.INGRESS_KIND_DOMESTIC_INTERCONNECT)


def adaptive_campaigns(b: Builder, pop: Population) -> Calls:
    """Every adaptive campaign's calls, the aging calls before each number's first use included."""
    ad = b.s.adaptive
    if ad.campaigns == 0:
        return b.empty()
    rows, t = b.times(np.full(ad.campaigns, ad.calls_per_day), HOUR_WEIGHTS_BUSINESS)
    parts = [_campaign(b, pop, c, np.sort(t[rows == c])) for c in range(ad.campaigns)]
    return Calls.concat(parts)


def pool_size(ad: Adaptive, t: I64, start_ms: int) -> int:
    """Numbers a campaign needs: ``spread_numbers``, or more when the busiest hour would otherwise
    make a number exceed ``max_calls_per_number_hour``."""
    size = max(ad.spread_numbers, 1)
    if ad.max_calls_per_number_hour > 0 and len(t):
        peak = int(np.bincount((t - start_ms) // HOUR_MS).max())
        size = max(size, -(-peak // ad.max_calls_per_number_hour))
    return size


def _campaign(b: Builder, pop: Population, index: int, t: I64) -> Calls:
    """One campaign: its calls (time-sorted ``t``) take its numbers in turn, so in any hour a number
    places at most ceil(calls that hour / numbers) of them."""
    ad = b.s.adaptive
    net = b.s.network
    n = len(t)
    size = pool_size(ad, t, b.s.start_ms)
    n_virtual = round(size * ad.virtual_share) if net.virtual_ranges else 0
    mobile = [r for c in net.interconnects for r in c.ranges] or list(net.home.ranges)
    pool = np.concatenate(
        [b.numbers_in(net.virtual_ranges, n_virtual), b.numbers_in(mobile, size - n_virtual)]
    )
    b.rng.shuffle(pool)
    owner = b.carrier_of_ranges(pool)
    home = b.cidx[net.home.name]
    owner = np.where(
        owner == home, b.pick(b.interconnects(), size), owner
    )  # leased numbers: any interconnect
    which = np.arange(n) % size
    via_voip = b.rng.random(n) < ad.voip_share
    carrier = np.where(via_voip, b.pick(b.voip_peers(), n), owner[which])
    ingress = np.where(via_voip, VOIP, INTERCONNECT)
    bought = b.rng.random(n) < ad.buys_a_attestation_share
    attest = np.where(bought, 1, np.where(via_voip, 3, 2))
    reachable = np.setdiff1d(pop.home_index, pop.honeypots)
    callee = pop.numbers[b.rng.choice(reachable, size=n)]
    honeypots = pop.honeypot_numbers
    if len(honeypots):
        to_honeypot = b.rng.random(n) < ad.honeypot_share
        callee = np.where(to_honeypot, honeypots[b.rng.integers(0, len(honeypots), size=n)], callee)
    campaign = b.name(f"adaptive-{index}")
    calls = b.calls(
        t,
        pool[which],
        callee,
        K.ACTOR_KIND_ROBOCALL,
        campaign,
        carrier,
        ingress,
        attest,
        ad.answer_rate,
        ad.mean_duration_s,
        campaign=campaign,
        script=b.name(f"script-adaptive-{index}"),
        voice=b.name(f"tts-campaign-{b.s.robocalls.campaigns + index}"),
        synthetic=True,
        complaint_share=ad.complaint_share,
        complaint_delay_minutes=b.s.robocalls.complaint_delay_minutes,
    )
    used = min(size, n)
    aging = _aging(b, reachable, pop.numbers, pool[:used], owner[:used], t[:used], campaign)
    return Calls.concat([aging, calls])


def _aging(
    b: Builder, reachable: I64, numbers: I64, pool: I64, owner: I64, first_use: I64, campaign: int
) -> Calls:
    """The calls each number placed in the ``number_aging_days`` before its first campaign call, at
    ``aging_calls_per_day``, like a person calling strangers (the part inside the window)."""
    ad = b.s.adaptive
    sub = b.s.subscribers
    if ad.number_aging_days <= 0 or ad.aging_calls_per_day <= 0 or len(pool) == 0:
        return b.empty()
    span = np.minimum(int(ad.number_aging_days * DAY_MS), first_use - b.s.start_ms)
    counts = b.rng.poisson(ad.aging_calls_per_day * span / DAY_MS)
    who = np.repeat(np.arange(len(pool)), counts)
    t = first_use[who] - 1 - (b.rng.random(len(who)) * span[who]).astype(np.int64)
    return b.calls(
        t,
        pool[who],
        numbers[b.rng.choice(reachable, size=len(who))],
        K.ACTOR_KIND_ROBOCALL,
        campaign,
        owner[who],
        INTERCONNECT,
        1,
        sub.answer_rate * 0.6,
        sub.mean_duration_s,
        campaign=campaign,
    )
