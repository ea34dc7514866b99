"""Replay detection: a signature's replay key and the store that remembers keys until they expire."""

from __future__ import annotations

import hashlib
import heapq
from typing import Final, Protocol

from services.origination.passport._errors import P256_ORDER
from services.origination.passport._parse import Passport

_HALF_ORDER: Final = (P256_ORDER // 2).to_bytes(32, "big")


def replay_key(passport: Passport) -> bytes:
    """128-bit replay key of a PASSporT's signature; (r, s) and its malleated twin (r, n-s) collide."""
    signature = passport.signature
    if signature[32:] <= _HALF_ORDER:  # big-endian bytes of one width compare as their numbers
        return hashlib.sha256(signature).digest()[:16]
    low_s = P256_ORDER - int.from_bytes(signature[32:], "big")
    return hashlib.sha256(signature[:32] + low_s.to_bytes(32, "big")).digest()[:16]


class ReplayStore(Protocol):
    """Remembers PASSporT replay keys until they expire; a Redis ``SET NX EXAT`` fits the same contract."""

    def add_if_absent(self, key: bytes, expires_at: float, now: float) -> bool:
        """Record key until expires_at; True if it was new, False if already present (a replay)."""
        ...


class MemoryReplayStore:
    """Bounded in-process replay set with per-key expiry; when full, the soonest-expiring key goes first."""

    __slots__ = ("_expiry", "_heap", "_max_entries")

    def __init__(self, max_entries: int = 1_000_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._expiry: dict[bytes, float] = {}
        self._heap: list[tuple[float, bytes]] = []

    def __len__(self) -> int:
        """The number of keys held (expired ones are dropped lazily)."""
        return len(self._expiry)

    def add_if_absent(self, key: bytes, expires_at: float, now: float) -> bool:
        """Record key until expires_at; True if it was new, False if already present (a replay)."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            del self._expiry[heapq.heappop(heap)[1]]
        if key in self._expiry:
            return False
        if len(self._expiry) >= self._max_entries:
            del self._expiry[heapq.heappop(heap)[1]]
        self._expiry[key] = expires_at
        heapq.heappush(heap, (expires_at, key))
        return True
