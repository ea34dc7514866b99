"""Allow/deny lists and recent decisions per caller, in Redis on the caller's slot.

An entry lives in the hash ``fm:v1:{<pseudonym>}:lists`` under ``<allow|deny>:<tenant>`` (``*`` for
every tenant) as JSON with its own expiry; the key's TTL is the latest expiry, so every entry and
the key itself go away. The decision reads a caller's entries in the same pipeline (one round trip)
as its features. Recent decisions (``:dec``) are written by reputation (services.common.recent).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Final

from fraudmesh.v1 import admin_pb2

ALLOW: Final = admin_pb2.LIST_KIND_ALLOW
DENY: Final = admin_pb2.LIST_KIND_DENY
KIND_NAMES: Final = {ALLOW: "allow", DENY: "deny"}
ANY_TENANT: Final = "*"
MAX_TTL_S: Final = 400 * 86_400


def field(kind: admin_pb2.ListKind.ValueType, tenant: str) -> str:
    """The hash field of one list entry."""
    return f"{KIND_NAMES[kind]}:{tenant or ANY_TENANT}"


def lookup_fields(tenant: str) -> list[str]:
    """The fields a decision reads for a tenant: its own and the all-tenant entries of both lists."""
    return [field(ALLOW, tenant), field(ALLOW, ANY_TENANT), field(DENY, tenant), field(DENY, ANY_TENANT)]


@dataclass(frozen=True, slots=True)
class ListStatus:
    """What the lists say about one caller for one tenant (deny wins over nothing, allow over deny)."""

    allowed: bool
    denied: bool

    @classmethod
    def of(cls, values: list[Any], now_ms: int) -> ListStatus:
        """From the HMGET of ``lookup_fields`` (expired entries are ignored)."""
        live = [_live(value, now_ms) for value in values]
        return cls(allowed=live[0] or live[1], denied=live[2] or live[3])


NOTHING: Final = ListStatus(False, False)


def _live(value: Any, now_ms: int) -> bool:
    if value is None:
        return False
    try:
        return int(json.loads(value)["expires_ms"]) > now_ms
    except (ValueError, KeyError, TypeError):
        return False


def entry_json(ttl_s: int, reason: str, actor: str, now_ms: int | None = None, on_behalf_of: str = "") -> str:
    """The stored JSON of a new entry expiring ttl_s from now; ``actor`` is the authenticated principal."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    entry = {"expires_ms": now_ms + ttl_s * 1000, "created_ms": now_ms, "reason": reason, "actor": actor}
    if on_behalf_of:
        entry["on_behalf_of"] = on_behalf_of
    return json.dumps(entry)
