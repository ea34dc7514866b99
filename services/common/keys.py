"""Redis key names, in one place for the writers (reputation) and the readers (decision).

Keys are built only from pseudonyms and opaque digests, never raw numbers. Every key of one
number shares the hash tag ``{<pseudonym>}``, so a number's scripts and its one-round-trip read
stay on one Redis Cluster slot; a campaign's keys share ``{camp:<digest>}``. Writers give every
key a TTL.
"""

from __future__ import annotations

import functools

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from services.common.pseudonym import opaque_id

PREFIX = "fm:v1"


def number_key(pseudonym: str) -> str:
    """Hash of per-number totals: setups, first/last seen, CDR and complaint totals, audio scores."""
    return f"{PREFIX}:{{{pseudonym}}}:num"


def window_key(pseudonym: str) -> str:
    """Hash of the number's bucketed window counters (see services.common.windows)."""
    return f"{PREFIX}:{{{pseudonym}}}:win"


def hll_key(pseudonym: str, prefix: str, bucket: int) -> str:
    """HyperLogLog of distinct callees in one bucket of a distinct-callee window."""
    return f"{PREFIX}:{{{pseudonym}}}:hll:{prefix}:{bucket}"


def outbound_key(pseudonym: str) -> str:
    """Set of digests of numbers this number has called (capped)."""
    return f"{PREFIX}:{{{pseudonym}}}:out"


def inbound_key(pseudonym: str) -> str:
    """Set of digests of numbers that have called this number (capped)."""
    return f"{PREFIX}:{{{pseudonym}}}:in"


def active_key(pseudonym: str) -> str:
    """Sorted set of the number's recent calls by end time, for concurrency."""
    return f"{PREFIX}:{{{pseudonym}}}:act"


def campaigns_key(pseudonym: str) -> str:
    """Set of campaign ids the number's audio matched."""
    return f"{PREFIX}:{{{pseudonym}}}:camp"


def campaign_members_key(campaign_id: str) -> str:
    """HyperLogLog of the numbers linked to one campaign."""
    return f"{PREFIX}:{{camp:{opaque_id(campaign_id)}}}:members"


def campaign_numbers_key(campaign_id: str) -> str:
    """Capped zset of the pseudonyms linked to one campaign (newest kept), told its size as it grows."""
    return f"{PREFIX}:{{camp:{opaque_id(campaign_id)}}}:numbers"


def campaign_meta_key(campaign_id: str) -> str:
    """Hash of one campaign's linking state: ``told`` (size last told to its numbers), ``into``."""
    return f"{PREFIX}:{{camp:{opaque_id(campaign_id)}}}:meta"


def presence_key(pseudonym: str) -> str:
    """Hash of the subscriber's presence as its home network reports it (services.reputation).

    Fields: ``reg`` (1 attached home, 2 roaming, 3 detached) and ``reg_ms`` (its event time), ``cc``
    (visited country, roaming only), ``call`` (an on-net call in progress, '' none) and ``call_ms``.
    On the number's slot, so the decision reads it in the caller's one round trip.
    """
    return f"{PREFIX}:{{{pseudonym}}}:pres"


def seen_key(pseudonym: str, stream: str, tenant: str, event_id: str) -> str:
    """Idempotency marker: this event (e.g. a setup's call id) was already folded in."""
    return f"{PREFIX}:{{{pseudonym}}}:seen:{stream}:{opaque_id(tenant + chr(0) + event_id)}"


def probation_key(pseudonym: str) -> str:
    """The probation bucket a number seen only once lives in (services.reputation.scripts).

    One bucket per Redis Cluster slot, named with a hash tag that lands on the number's own slot,
    so the number's scripts reach its bucket and its state in one call; the bucket's field is the
    number's ``digest``.
    """
    return f"{PREFIX}:{{{_slot_tags()[key_slot(pseudonym.encode())]}}}:prob"


def probation_keys() -> list[str]:
    """Every probation bucket's key, one per cluster slot (for tools and checks that walk the tier)."""
    return [f"{PREFIX}:{{{tag}}}:prob" for tag in _slot_tags()]


@functools.cache
def _slot_tags() -> tuple[str, ...]:
    """For each cluster slot, a short hash tag that hashes to it (found once, ~0.1 s)."""
    tags: dict[int, str] = {}
    candidate = 0
    while len(tags) < REDIS_CLUSTER_HASH_SLOTS:
        tag = f"p{candidate}"
        tags.setdefault(key_slot(tag.encode()), tag)
        candidate += 1
    return tuple(tags[slot] for slot in range(REDIS_CLUSTER_HASH_SLOTS))


def digest(pseudonym: str) -> str:
    """A short member id for a number inside another number's sets (60 bits of its pseudonym)."""
    return pseudonym[:12]


def attestation_key(pseudonym: str) -> str:
    """Hash of the number's bucketed STIR/SHAKEN outcome counters (see services.origination.stats)."""
    return f"{PREFIX}:{{{pseudonym}}}:att"


def trunk_key(tenant: str, trunk_id: str) -> str:
    """Hash of one ingress trunk's bucketed attestation and on-net-presentation counters."""
    return f"{PREFIX}:{{trunk:{opaque_id(tenant + chr(0) + trunk_id)}}}:att"


def trunk_seen_key(tenant: str, trunk_id: str, call_id: str) -> str:
    """Idempotency marker on the trunk's slot: this call was already counted for its trunk."""
    trunk = opaque_id(tenant + chr(0) + trunk_id)
    return f"{PREFIX}:{{trunk:{trunk}}}:seen:{opaque_id(tenant + chr(0) + call_id)}"


def replay_key(pseudonym: str, passport_digest: bytes) -> str:
    """A verified PASSporT's replay marker on its caller's slot, keyed by the signature digest.

    A verified PASSporT's ``orig`` is the presented caller, so every presentation of it lands on
    this one slot, and decision sets the marker inside the caller's one feature read.
    """
    return f"{PREFIX}:{{{pseudonym}}}:replay:{passport_digest.hex()}"


def x5u_chain_key(x5u: str) -> str:
    """The shared copy of a fetched x5u certificate chain (PEM, re-validated by every reader)."""
    return f"{PREFIX}:{{x5u}}:chain:{opaque_id(x5u)}"


def x5u_index_key() -> str:
    """Sorted set of the cached x5u chain digests by expiry, for pre-warming a starting replica."""
    return f"{PREFIX}:{{x5u}}:index"


def lists_key(pseudonym: str) -> str:
    """Hash of the number's allow/deny-list entries, field ``<allow|deny>:<tenant or *>`` → JSON entry."""
    return f"{PREFIX}:{{{pseudonym}}}:lists"


def decisions_key(pseudonym: str) -> str:
    """Capped list of the number's most recent decisions (newest first), for redress lookups."""
    return f"{PREFIX}:{{{pseudonym}}}:dec"


# Audio fingerprint index and campaigns (services.audio). Hash tags spread the index over a fixed
# set of slots; a recording's and a campaign's keys each share one slot.


def fingerprint_key(shard: int, tier: str, hash_value: int) -> str:
    """Packed postings (recording, time) of one landmark hash in one index tier (day or campaigns)."""
    return f"{PREFIX}:{{afp:{shard}}}:{tier}:{hash_value:x}"


def recording_key(recording: int, what: str) -> str:
    """One heard recording: ``info`` (hash), ``callers`` (zset of pseudonyms), ``fp`` (its postings)."""
    return f"{PREFIX}:{{arec:{recording}}}:{what}"


def recording_counter_key() -> str:
    """The counter that numbers recordings."""
    return f"{PREFIX}:{{arec}}:next"


def audio_campaign_key(campaign_id: str, what: str) -> str:
    """One audio campaign: ``info`` (hash: first seen, origin, recording) or ``members`` (zset)."""
    return f"{PREFIX}:{{acamp:{opaque_id(campaign_id)}}}:{what}"


def audio_member_campaigns_key(pseudonym: str) -> str:
    """Set of the audio campaigns a number played (the audio service's own view, for merging)."""
    return f"{PREFIX}:{{{pseudonym}}}:acamp"


def audio_campaign_index_key() -> str:
    """Sorted set of audio campaign ids by first-seen time (for operators' listing)."""
    return f"{PREFIX}:{{acamp}}:all"
