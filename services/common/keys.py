"""Redis key names, in one place for the writers (reputation) and the readers (decision).

Keys are built only from pseudonyms and opaque digests, never raw numbers. Every key of one
number shares the hash tag ``{<pseudonym>}``, so a multi-key script or pipeline for a caller stays
on one Redis Cluster slot. Writers give every key a TTL.
"""

from __future__ import annotations

from services.common.pseudonym import opaque_id

PREFIX = "fm:v1"


def number_key(pseudonym: str) -> str:
    """Hash of per-number state: setups, first_seen_ms, last_seen_ms."""
    return f"{PREFIX}:{{{pseudonym}}}:num"


def seen_key(pseudonym: str, stream: str, tenant: str, event_id: str) -> str:
    """Idempotency marker: this event (e.g. a setup's call id) was already folded in."""
    return f"{PREFIX}:{{{pseudonym}}}:seen:{stream}:{opaque_id(tenant + chr(0) + event_id)}"
