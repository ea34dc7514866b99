"""State origination replicas share through Redis: fetched x5u chains and PASSporT replay markers.

* ``SharedCertificateCache`` — a ``CertificateCache`` whose background fetch first looks for a
  chain another replica already fetched (``fm:v1:{x5u}:chain:<digest>``, TTL = the fetching
  replica's cache expiry) and publishes what it fetches itself. A chain read from Redis is
  validated again against this replica's trust anchors, so Redis is never trusted for validity.
  A starting replica pre-warms from the index of shared chains before it reports SERVING.
* ``ReplayGuard`` — the cross-replica replay check: one ``SET NX EXAT`` per verified PASSporT
  within a sub-deadline, behind a circuit breaker. When Redis is slow or down it falls back to the
  replica's in-memory store and says so (``degraded``); it never fails a call because Redis did.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import redis.asyncio as aioredis
from cryptography.hazmat.primitives import serialization
from redis.exceptions import RedisError

from services.common import keys
from services.common.breaker import CircuitBreaker
from services.origination.certs import CachedChain, CertificateCache, CertificateError
from services.origination.fetch import FetchedChain, FetchError, parse_pem_chain
from services.origination.passport import MemoryReplayStore

log = logging.getLogger(__name__)

INDEX_TTL_S = 2 * 86_400


class SharedChains:
    """The Redis copy of validated x5u chains: publish after a fetch, load before one."""

    def __init__(self, redis: aioredis.Redis, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._clock = clock

    async def publish(self, chain: CachedChain) -> None:
        """Store a validated chain (without its trust anchor) until the entry's cache expiry."""
        now = self._clock()
        ttl = math.floor(chain.expires_at - now)
        if ttl < 1:
            return
        pem = b"".join(
            cert.public_bytes(serialization.Encoding.PEM) for cert in chain.chain[:-1] or chain.chain
        )
        value = json.dumps({"x5u": chain.x5u, "expires_at": chain.expires_at, "pem": pem.decode("ascii")})
        index = keys.x5u_index_key()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(keys.x5u_chain_key(chain.x5u), value, ex=ttl)
            pipe.zadd(index, {chain.x5u: chain.expires_at})
            pipe.zremrangebyscore(index, "-inf", now)
            pipe.expire(index, INDEX_TTL_S)
            await pipe.execute()

    async def load(self, x5u: str) -> FetchedChain | None:
        """The shared chain of x5u with its remaining lifetime as max-age, or None."""
        raw = await self._redis.get(keys.x5u_chain_key(x5u))
        return self._decode(x5u, raw)

    async def load_all(self) -> list[FetchedChain]:
        """Every shared chain still valid, for pre-warming a starting replica."""
        urls = [
            u.decode() if isinstance(u, bytes) else str(u)
            for u in await self._redis.zrangebyscore(keys.x5u_index_key(), self._clock(), "+inf")
        ]
        if not urls:
            return []
        raws = await self._redis.mget([keys.x5u_chain_key(url) for url in urls])
        found = (self._decode(url, raw) for url, raw in zip(urls, raws, strict=True))
        return [chain for chain in found if chain is not None]

    def _decode(self, x5u: str, raw: bytes | str | None) -> FetchedChain | None:
        """A stored entry as a FetchedChain; None when absent, expired or not what was stored for x5u."""
        if raw is None:
            return None
        try:
            entry = json.loads(raw)
            if entry["x5u"] != x5u:
                return None
            remaining = math.floor(float(entry["expires_at"]) - self._clock())
            certificates = parse_pem_chain(str(entry["pem"]).encode("ascii"))
        except (ValueError, KeyError, TypeError, FetchError):
            log.warning("unusable shared certificate chain ignored")
            return None
        if remaining < 1:
            return None
        return FetchedChain(x5u, certificates, remaining)


class SharedCertificateCache(CertificateCache):
    """A CertificateCache that fills misses from the replicas' shared Redis copy before the network."""

    def __init__(
        self,
        *args: object,
        shared: SharedChains,
        on_fetch: Callable[[str], None] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._shared = shared
        self._on_fetch = on_fetch

    async def fetch(self, x5u: str) -> CachedChain:
        """Shared copy first (re-validated here), else the network; a network result is published."""
        try:
            found = await self._shared.load(x5u)
        except (TimeoutError, RedisError, OSError):
            found = None
        if found is not None:
            try:
                chain = self.insert(x5u, found.certificates, found.max_age_s)
            except CertificateError:
                pass  # what another replica accepted fails here (e.g. different anchors): fetch ourselves
            else:
                self._count("shared")
                return chain
        try:
            chain = await super().fetch(x5u)
        except FetchError as exc:
            self._count(exc.reason.value)
            raise
        except CertificateError as exc:
            self._count(exc.failure.value)
            raise
        self._count("ok")
        try:
            await self._shared.publish(chain)
        except (TimeoutError, RedisError, OSError):
            log.warning("could not share a fetched certificate chain through Redis")
        return chain

    async def warm_from_shared(self) -> int:
        """Insert every valid chain other replicas shared; returns how many were accepted."""
        accepted = 0
        for found in await self._shared.load_all():
            try:
                self.insert(found.url, found.certificates, found.max_age_s)
            except CertificateError:
                continue
            accepted += 1
        return accepted

    def warm_from_files(self, entries: Iterable[tuple[str, Path]]) -> dict[str, str | None]:
        """Insert chains provisioned as local PEM files (air-gapped pre-seeding); failure per URL."""
        results: dict[str, str | None] = {}
        for url, path in entries:
            try:
                self.insert(url, parse_pem_chain(path.read_bytes(), max_certificates=8))
                results[url] = None
            except CertificateError as exc:
                results[url] = exc.failure.value
            except (OSError, FetchError) as exc:
                results[url] = type(exc).__name__
        return results

    def _count(self, outcome: str) -> None:
        if self._on_fetch is not None:
            self._on_fetch(outcome)


def read_prewarm_file(path: Path) -> tuple[list[str], list[tuple[str, Path]]]:
    """Parse a pre-warm list: ``<x5u>`` lines are fetched, ``<x5u> <pem file>`` lines loaded locally.

    Blank lines and ``#`` comments are ignored; a relative PEM path is relative to the list's folder.
    """
    fetch: list[str] = []
    local: list[tuple[str, Path]] = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        if len(parts) == 1:
            fetch.append(parts[0])
        elif len(parts) == 2:
            pem = Path(parts[1])
            local.append((parts[0], pem if pem.is_absolute() else path.parent / pem))
        else:
            raise ValueError(f"{path}:{number}: expected '<x5u>' or '<x5u> <pem file>'")
    return fetch, local


class ReplayGuard:
    """Cross-replica replay detection in Redis with a sub-deadline, a breaker and a local fallback."""

    def __init__(
        self,
        redis: aioredis.Redis,
        breaker: CircuitBreaker,
        *,
        timeout_s: float,
        local: MemoryReplayStore | None = None,
    ) -> None:
        self._redis = redis
        self._breaker = breaker
        self._timeout = timeout_s
        self.local = local if local is not None else MemoryReplayStore()

    async def first_seen(
        self, caller: str | None, digest: bytes, expires_at: float, now: float
    ) -> tuple[bool, bool]:
        """(True if this PASSporT was not seen before, True if the answer came from the local fallback).

        ``caller`` is the pseudonym of the caller the call is attributed to (the marker's slot);
        None when there is none, and then only the local store can answer.

        The local store always records the key too, so a replica that loses Redis still catches
        replays that reach it, and a Redis answer is never contradicted by stale local state.
        """
        new_locally = self.local.add_if_absent(digest, expires_at, now)
        if caller is None or not self._breaker.allow():
            return new_locally, True
        try:
            async with asyncio.timeout(self._timeout):
                created = await self._redis.set(
                    keys.replay_key(caller, digest), b"1", nx=True, ex=max(1, math.ceil(expires_at - now))
                )
        except (RedisError, OSError, TimeoutError):
            self._breaker.failure()
            return new_locally, True
        self._breaker.success()
        return bool(created) and new_locally, False
