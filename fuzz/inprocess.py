"""The origination service in-process, for the Verify-handler fuzz target and the robustness tests.

``build_core`` assembles the production core with ``service.build`` (Verifier, shared certificate
cache, replay guard, breaker, caller-ID rules with a DNO list) against a real Redis client: the
local Redis from ``make up`` (its own database, 14, by default), or ``REDIS_DOWN``, an address that
cannot answer (a Unix socket that does not exist), which exercises the production fallback honestly:
the replay guard's breaker opens and the replica's own memory answers, marked degraded. Nothing
stands in for Redis. The only stand-in is the x5u network: certificate fetches are refused at once
(the fuzz x5u hosts are under ``.invalid`` and never resolve, RFC 6761), so a cache miss exercises
the background-fetch path without a DNS query per input.

``ErrorLog`` collects the ERROR records the service logs when a part of Verify raised; the fuzz
target treats any as a finding, since the handler catches them to keep answering.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, cast

import grpc
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from fraudmesh.v1 import origination_pb2, verdicts_pb2
from fuzz.passports import DNO_NUMBER, NEGATIVE_TTL_S, REGION, FuzzPki
from services.common.redisstore import make_async_redis
from services.common.settings import ClockSource, Secret
from services.origination.fetch import FetchedChain, FetchError, FetchRefusal
from services.origination.service import Origination, OriginationServicer, build
from services.origination.settings import OriginationSettings

__all__ = [
    "DEFAULT_REDIS_URL",
    "REDIS_DOWN",
    "ErrorLog",
    "InProcessContext",
    "build_core",
    "call_verify",
    "check_redis",
]

DEFAULT_REDIS_URL: Final = "redis://127.0.0.1:16379/14"
REDIS_DOWN: Final = "down"


async def refuse_fetch(url: str) -> FetchedChain:
    """The x5u network as seen from the fuzz targets: nothing resolves (``.invalid``), refused at once."""
    raise FetchError(FetchRefusal.DNS_FAILED, "fuzzing: x5u hosts never resolve")


def build_core(pki: FuzzPki, folder: Path, redis_url: str) -> Origination:
    """The production core over pki's trust anchor, a DNO list holding DNO_NUMBER and a real Redis client."""
    folder.mkdir(parents=True, exist_ok=True)
    anchor = folder / "anchor.pem"
    anchor.write_bytes(pki.anchor_pem())
    dno = folder / "dno.txt"
    dno.write_text(f"# fuzzing only\n{DNO_NUMBER}\n")
    url = f"unix://{folder / 'no-redis.sock'}" if redis_url == REDIS_DOWN else redis_url
    settings = OriginationSettings(
        pseudonym_key=Secret(secrets.token_bytes(32)),
        redis_url=url,
        default_region=REGION,
        clock_source=ClockSource.EVENT,
        sti_trust_anchors=(str(anchor),),
        dno_file=str(dno),
        x5u_allow_hosts=("cert.fuzz.invalid",),
        cert_negative_ttl_s=NEGATIVE_TTL_S,
        replay_timeout_s=0.05,  # the production 3 ms is a latency budget, not what is fuzzed here
    )
    core = build(settings, redis=make_async_redis(settings), fetcher=refuse_fetch)
    pki.seed_cache(core.cache)
    return core


async def check_redis(core: Origination) -> None:
    """Raise RuntimeError when the core's Redis does not answer a PING."""
    client: aioredis.Redis = core.redis
    try:
        async with asyncio.timeout(2.0):
            await client.ping()
    except (RedisError, OSError, TimeoutError) as exc:
        raise RuntimeError(f"Redis not reachable ({type(exc).__name__}): start it with `make up`") from None


class InProcessContext:
    """The two ServicerContext methods Verify uses: no metadata, and abort raising like grpc.aio does."""

    def invocation_metadata(self) -> Sequence[tuple[str, str]]:
        """No trace context from the caller."""
        return ()

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        """Abort the RPC (grpc.aio raises to unwind the handler)."""
        raise grpc.RpcError(f"{code.name}: {details}")


async def call_verify(
    servicer: OriginationServicer, request: origination_pb2.VerifyRequest, context: InProcessContext
) -> verdicts_pb2.OriginationVerdict:
    """One Verify RPC through the servicer, as grpc.aio would call it."""
    response = await servicer.Verify(request, cast("grpc.aio.ServicerContext[Any, Any]", context))
    return response.verdict


class ErrorLog(logging.Handler):
    """Keeps ERROR records of the origination service (a part of Verify raised) for the fuzz oracle."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Remember the record."""
        self.records.append(record)

    def attach(self) -> ErrorLog:
        """Listen on the origination service's logger; returns self."""
        logging.getLogger("services.origination").addHandler(self)
        return self

    def detach(self) -> None:
        """Stop listening."""
        logging.getLogger("services.origination").removeHandler(self)

    def raise_if_any(self) -> None:
        """AssertionError with the first record's message and traceback, if any were logged."""
        if self.records:
            record = self.records[0]
            self.records.clear()
            text = self.format(record)
            raise AssertionError(f"Verify swallowed an internal error:\n{text}")
