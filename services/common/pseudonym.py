"""Keyed HMAC pseudonyms: the only form of a phone number allowed in keys, logs and Kafka keys.

The pseudonym is HMAC-SHA256(key, canonical number) truncated to 128 bits and base32-encoded,
so it is stable across services that share the key, short enough for Redis keys, and useless to
anyone without the key (phone numbers are too few to protect with a plain hash).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from services.common.settings import Secret

PSEUDONYM_BYTES = 16
MIN_KEY_BYTES = 32


class Pseudonymizer:
    """Turns canonical phone numbers (see services.common.phone) into keyed pseudonyms."""

    __slots__ = ("_cached", "_key")

    def __init__(self, key: Secret, cache_size: int = 65536) -> None:
        raw = key.reveal()
        if len(raw) < MIN_KEY_BYTES:
            raise ValueError(f"pseudonym key must be at least {MIN_KEY_BYTES} bytes")
        self._key = raw
        self._cached = lru_cache(maxsize=cache_size)(self._compute)

    def _compute(self, canonical: str) -> str:
        digest = hmac.new(self._key, canonical.encode(), hashlib.sha256).digest()[:PSEUDONYM_BYTES]
        return base64.b32encode(digest).decode().rstrip("=").lower()

    def __call__(self, canonical: str) -> str:
        """The pseudonym of one canonical number (26 lowercase base32 characters)."""
        if not canonical:
            raise ValueError("cannot pseudonymise an empty number")
        return self._cached(canonical)

    def kafka_key(self, canonical: str) -> bytes:
        """The Kafka record key for events about this number, so one caller's events stay ordered."""
        return self(canonical).encode()

    def __repr__(self) -> str:
        return "Pseudonymizer(key=***)"


def opaque_id(value: str) -> str:
    """A short unkeyed digest for identifiers that are not phone numbers (call ids, segment ids).

    Used to bound Redis key length and keep network addresses embedded in SIP Call-IDs out of
    keys; it is not a privacy control, which is why phone numbers always use ``Pseudonymizer``.
    """
    return hashlib.blake2b(value.encode(), digest_size=12).hexdigest()
