"""OriginationService.Verify on grpc.aio: STIR/SHAKEN and caller-ID consistency for the current call.

The call path does CPU work only, plus at most one bounded Redis round trip (the replay marker,
for a neighbor-spoofing finding the caller's history, for an off-net or international finding the
presented subscriber's presence, concurrently behind one breaker):

1. verify the Identity headers against the in-memory certificate cache — a miss answers PENDING
   (unverified, not failed, ``degraded``) and starts a background fetch (shared Redis copy first,
   then the allow-listed x5u), so no call ever waits for a certificate;
2. check the PASSporT was not presented before (cross-replica, Redis ``SET NX``; the replica's own
   memory when Redis is slow or down, marked degraded);
3. run the caller-ID consistency checks; a neighbor-spoofing finding is dropped when the caller has
   a call history older than ``neighbor_history_days`` (real neighbours call; spoofers are new);
4. for an own number from off-net or a domestic number from the international gateway, read the
   presented subscriber's presence and relationship to the callee in the same round trip, so the
   presence proofs and roaming facts (services.origination.presence) hold here as in decision's
   in-process verification.

The parts are independent: verification never raises for hostile input (see passport.py's bounds),
but if it raises anyway (a bug) the answer is ``VERIFICATION_ERROR`` (UNSPECIFIED,
``DEGRADED_ORIGINATION``) *with* the caller-ID findings, so one odd Identity header cannot hide a
DNO-listed caller; a failing caller-ID check likewise leaves the SHAKEN outcome standing. Each such
part is logged with its traceback, counted in ``fraudmesh_origination_internal_errors_total{part}``
and marks the verdict degraded (the proto has one ``degraded`` flag; the reason codes say which
part is missing).

Tracing: ``origination.verify`` is a child of the caller's span (W3C context in the RPC metadata),
``origination.replay`` the bounded Redis round trip inside it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import redis.asyncio as aioredis
from opentelemetry import trace
from redis.exceptions import RedisError

from fraudmesh.v1 import call_pb2, common_pb2, origination_pb2, origination_pb2_grpc, verdicts_pb2
from services.common import keys
from services.common.breaker import BreakerState, CircuitBreaker
from services.common.featurestore import PRESENCE_FIELDS, parse_presence
from services.common.grpcserver import ServerHandle, server_tls, start_server, until_signalled
from services.common.identity import attribute_setup
from services.common.phone import InvalidNumberError, NormalizedNumber
from services.common.pseudonym import Pseudonymizer
from services.common.reasons import Reason
from services.common.redisstore import make_async_redis
from services.common.tracing import child_span, incoming_context
from services.origination import metrics
from services.origination.certpublish import CertificatePublisher, MissFollower
from services.origination.certs import CachedChain, ChainValidator
from services.origination.checks import CallChecks, Trust
from services.origination.failures import Failure
from services.origination.fetch import FetchPolicy, HostAllowList, X5uFetcher
from services.origination.passport import Verifier
from services.origination.presence import PresenceFacts
from services.origination.settings import OriginationSettings
from services.origination.shared import ReplayGuard, SharedCertificateCache, SharedChains, read_prewarm_file
from services.origination.stats import RulesByTenant

log = logging.getLogger(__name__)
tracer = trace.get_tracer("fraudmesh.origination")

SERVICE_NAME = origination_pb2.DESCRIPTOR.services_by_name["OriginationService"].full_name
_STATUS_NAMES = {
    value: name.removeprefix("SHAKEN_STATUS_").lower() for name, value in verdicts_pb2.ShakenStatus.items()
}
# Caller-ID findings presence can turn into proof or a roaming fact (services.origination.presence)
PRESENCE_FINDINGS = frozenset({Reason.ONNET_CLI_OFFNET_INGRESS, Reason.INTL_INGRESS_DOMESTIC_CLI})
_ATTEST_NAMES = {common_pb2.ATTESTATION_A: "A", common_pb2.ATTESTATION_B: "B", common_pb2.ATTESTATION_C: "C"}


class ConfigurationError(Exception):
    """The service cannot start with these settings (e.g. no trust anchors); the message says why."""


class _CountingChains:
    """The certificate cache as the verifier sees it, counting hits and remembered refusals."""

    __slots__ = ("_cache",)

    def __init__(self, cache: SharedCertificateCache) -> None:
        self._cache = cache

    def get(self, x5u: str, now: float | None = None) -> CachedChain | None:
        chain = self._cache.get(x5u, now)
        if chain is not None:
            metrics.CERT_CACHE.labels("hit").inc()
        return chain

    def failure(self, x5u: str, now: float | None = None) -> Failure | None:
        found = self._cache.failure(x5u, now)
        if found is not None:
            metrics.CERT_CACHE.labels("refused").inc()
        return found


@dataclass
class Origination:
    """The verification core behind the RPC: verifier, certificate cache, Redis checks, CLI rules."""

    settings: OriginationSettings
    cache: SharedCertificateCache
    verifier: Verifier
    replay: ReplayGuard
    redis: aioredis.Redis
    breaker: CircuitBreaker
    rules: RulesByTenant
    pseudonymize: Pseudonymizer
    checks: CallChecks = field(init=False)

    def __post_init__(self) -> None:
        self.checks = CallChecks(self.settings, self.verifier, self.rules, on_error=_internal_error)

    async def verify(self, setup: Any) -> verdicts_pb2.OriginationVerdict:
        """The OriginationVerdict of one call setup; never raises for hostile input.

        SHAKEN verification and the caller-ID checks run independently (services.origination.checks);
        then the replay marker and, for a neighbour-spoofing finding, the caller's history, in one
        bounded round trip.
        """
        stamp = setup.event_time
        now = self.settings.call_time(stamp.seconds + stamp.nanos / 1e9)
        checks = self.checks.check(setup, now)
        digest = checks.replay_key
        replayed, fallback, established, presence = False, False, None, None
        needs_presence = not PRESENCE_FINDINGS.isdisjoint(checks.caller_id.reason_codes)
        if digest is not None or checks.needs_history or needs_presence:
            caller = checks.caller_id.caller
            history: Awaitable[bool | None] = (
                self._has_history(caller.canonical, now) if checks.needs_history and caller else _none()
            )
            replay: Awaitable[tuple[bool, bool]] = (
                self.replay.first_seen(self._slot(setup), digest, checks.shaken.replay_expires_at, now)
                if digest is not None
                else _fresh()
            )
            facts: Awaitable[PresenceFacts | None] = (
                self._presence(caller.canonical, checks.caller_id.callee)
                if needs_presence and caller
                else _none_facts()
            )
            try:
                with child_span(tracer, "origination.replay", trace.SpanKind.CLIENT):
                    (new, fallback), established, presence = await asyncio.gather(replay, history, facts)
            except Exception:  # a bug in the Redis checks: answer as if Redis had not answered
                log.exception("the replay/history checks raised; answering without them")
                metrics.INTERNAL_ERRORS.labels("redis_checks").inc()
                (new, fallback), established, presence = (True, True), None, None
            replayed = not new
        concluded = self.checks.verdict(
            checks,
            replayed=replayed,
            replay_fallback=fallback,
            established=established,
            presence=presence,
            now_ms=int(now * 1000),
        )
        _observe(concluded.verdict, concluded.failure, concluded.causes)
        return concluded.verdict

    def _slot(self, setup: call_pb2.CallSetup) -> str | None:
        """The pseudonym of the caller the call is attributed to (the replay marker's slot), or None."""
        try:
            return self.pseudonymize(attribute_setup(setup, self.settings.region_for(setup.tenant)).key)
        except InvalidNumberError:
            return None

    def fallback_verdict(self, setup: call_pb2.CallSetup) -> verdicts_pb2.OriginationVerdict:
        """The answer when verify() itself raised: unverified and degraded, with the caller-ID findings."""
        return self.checks.fallback(setup)

    async def _has_history(self, canonical: str, now: float) -> bool | None:
        """True when reputation first saw the caller long enough ago; None when Redis did not answer."""
        if not self.breaker.allow():
            return None
        try:
            async with asyncio.timeout(self.settings.replay_timeout_s):
                first = await self.redis.hget(keys.number_key(self.pseudonymize(canonical)), "first_seen_ms")
        except (RedisError, OSError, TimeoutError):
            self.breaker.failure()
            return None
        self.breaker.success()
        if first is None:
            return False
        try:
            first_seen_ms = int(first)
        except ValueError:
            log.warning("unreadable first_seen_ms in a caller's reputation record; history unknown")
            return None
        return self.checks.established(first_seen_ms, now)

    async def _presence(self, canonical: str, callee: NormalizedNumber | None) -> PresenceFacts | None:
        """The presented subscriber's presence and whether caller and callee know each other, as the
        decision's read returns them; None when Redis did not answer (then nothing is proven)."""
        if not self.breaker.allow():
            return None
        caller = self.pseudonymize(canonical)
        contact = keys.digest(self.pseudonymize(callee.canonical)) if callee is not None else ""
        try:
            async with asyncio.timeout(self.settings.replay_timeout_s):
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.hmget(keys.presence_key(caller), list(PRESENCE_FIELDS))
                    if contact:
                        pipe.sismember(keys.inbound_key(caller), contact)
                        pipe.sismember(keys.outbound_key(caller), contact)
                    reply = await pipe.execute()
        except (RedisError, OSError, TimeoutError):
            self.breaker.failure()
            return None
        self.breaker.success()
        state = parse_presence(reply[0])
        return PresenceFacts(state.state, state.call_id, state.call_ms, any(bool(x) for x in reply[1:]))


async def _none_facts() -> PresenceFacts | None:
    return None


def _internal_error(part: str) -> None:
    metrics.INTERNAL_ERRORS.labels(part).inc()


async def _none() -> None:
    return None


async def _fresh() -> tuple[bool, bool]:
    return True, False


def _observe(
    verdict: verdicts_pb2.OriginationVerdict, failure: Failure | None, causes: tuple[str, ...]
) -> None:
    """Count one verdict in the service's metrics."""
    metrics.VERIFICATIONS.labels(_STATUS_NAMES.get(verdict.shaken_status, "unspecified")).inc()
    if failure is not None:
        metrics.FAILURES.labels(failure.value).inc()
    attestation = _ATTEST_NAMES.get(verdict.attestation)
    if attestation is not None and verdict.shaken_status == verdicts_pb2.SHAKEN_STATUS_VERIFIED:
        metrics.ATTESTATIONS.labels(attestation).inc()
    for code in verdict.reason_codes:
        metrics.REASONS.labels(code).inc()
    for cause in causes:
        metrics.DEGRADED.labels(cause).inc()


class OriginationServicer(origination_pb2_grpc.OriginationServiceServicer):
    """The gRPC face of Origination: validates the request, answers degraded on an internal error."""

    def __init__(self, core: Origination) -> None:
        self._core = core

    async def Verify(  # noqa: N802 - the generated gRPC method name
        self, request: origination_pb2.VerifyRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> origination_pb2.VerifyResponse:
        started = time.perf_counter()
        if not request.HasField("setup"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "VerifyRequest.setup is required")
        parent = incoming_context(context.invocation_metadata())
        with tracer.start_as_current_span(
            "origination.verify", context=parent, kind=trace.SpanKind.SERVER
        ) as span:
            try:
                verdict = await self._core.verify(request.setup)
            except Exception:  # never fail a call because of a bug here: answer unverified and degraded
                log.exception("Verify raised; answering degraded with the caller-ID findings")
                metrics.INTERNAL_ERRORS.labels("verify").inc()
                metrics.DEGRADED.labels("error").inc()
                verdict = self._core.fallback_verdict(request.setup)
            if span.is_recording():
                span.set_attributes(
                    {
                        "fraudmesh.tenant": request.setup.tenant,
                        "fraudmesh.shaken_status": _STATUS_NAMES.get(verdict.shaken_status, "unspecified"),
                        "fraudmesh.degraded": verdict.degraded,
                    }
                )
        metrics.VERIFY_SECONDS.observe(time.perf_counter() - started)
        return origination_pb2.VerifyResponse(verdict=verdict)


def _fetch_context(settings: OriginationSettings) -> ssl.SSLContext:
    """TLS trust for x5u servers: the configured CA bundle, else the system's."""
    if settings.x5u_tls_ca_file:
        return ssl.create_default_context(cafile=settings.x5u_tls_ca_file)
    return ssl.create_default_context()


def build(
    settings: OriginationSettings,
    *,
    redis: aioredis.Redis | None = None,
    fetcher: Callable[[str], Awaitable[Any]] | None = None,
) -> Origination:
    """Assemble the core from settings; raises ConfigurationError on an unusable configuration."""
    if not settings.sti_trust_anchors:
        raise ConfigurationError(
            "FRAUDMESH_STI_TRUST_ANCHORS: no STI-CA trust anchors configured; nothing could verify"
        )
    try:
        trust = Trust.load(settings)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(str(exc)) from exc
    anchors, revocations, dno = trust.anchors, trust.revocations, trust.dno
    if not settings.x5u_allow_hosts:
        log.warning("FRAUDMESH_X5U_ALLOW_HOSTS is empty: only pre-seeded certificates can verify")
    client = redis if redis is not None else make_async_redis(settings)
    network = fetcher or X5uFetcher(
        FetchPolicy(HostAllowList.of(settings.x5u_allow_hosts), timeout_s=settings.x5u_fetch_timeout_s),
        ssl_context=_fetch_context(settings),
    )

    def fetch_done(outcome: str) -> None:
        metrics.CERT_FETCHES.labels(outcome).inc()
        metrics.CERT_CACHE_ENTRIES.set(len(cache))

    def fetch_error(x5u: str, exc: BaseException) -> None:
        log.warning("x5u fetch refused", extra={"error": type(exc).__name__, "detail": str(exc)[:200]})

    cache = SharedCertificateCache(
        ChainValidator(anchors),
        network,
        shared=SharedChains(client),
        on_fetch=fetch_done,
        max_entries=settings.cert_cache_entries,
        negative_ttl_s=settings.cert_negative_ttl_s,
        on_error=fetch_error,
    )

    def on_miss(x5u: str) -> None:
        metrics.CERT_CACHE.labels("miss").inc()
        cache.fetch_in_background(x5u)

    def breaker_changed(name: str, state: BreakerState) -> None:
        metrics.BREAKER_STATE.labels(name).set(state.value)
        log.warning("circuit breaker changed", extra={"dependency": name, "state": state.name})

    breaker = CircuitBreaker(
        "redis",
        failure_threshold=settings.breaker_failures,
        reset_after_s=settings.breaker_reset_s,
        on_change=breaker_changed,
    )
    metrics.BREAKER_STATE.labels("redis").set(0)
    verifier = Verifier(
        _CountingChains(cache),
        None,
        freshness_s=settings.freshness_s,
        revocations=revocations,
        on_miss=on_miss,
    )
    return Origination(
        settings=settings,
        cache=cache,
        verifier=verifier,
        replay=ReplayGuard(client, breaker, timeout_s=settings.replay_timeout_s),
        redis=client,
        breaker=breaker,
        rules=RulesByTenant(settings, dno),
        pseudonymize=Pseudonymizer(settings.pseudonym_key),
    )


def prewarm_files(core: Origination) -> tuple[list[str], dict[str, int]]:
    """Insert the chains the pre-warm file provisions as local PEMs; returns the URLs left to fetch."""
    counts = {"files": 0, "shared": 0, "fetched": 0, "failed": 0}
    if not core.settings.x5u_prewarm_file:
        return [], counts
    fetch, local = read_prewarm_file(Path(core.settings.x5u_prewarm_file))
    for url, failure in core.cache.warm_from_files(local).items():
        if failure is None:
            counts["files"] += 1
        else:
            counts["failed"] += 1
            log.warning("pre-seeded certificate refused", extra={"x5u": url, "failure": failure})
    metrics.CERT_CACHE_ENTRIES.set(len(core.cache))
    return fetch, counts


async def prewarm(core: Origination, deadline_s: float = 10.0) -> dict[str, int]:
    """Fill the certificate cache before serving: provisioned files, the shared Redis copy, fetches.

    Bounded by ``deadline_s``; what is not warm by then is fetched on first use. Returns counts.
    """
    fetch, counts = prewarm_files(core)
    try:
        async with asyncio.timeout(deadline_s):
            counts["shared"] = await core.cache.warm_from_shared()
            results = await core.cache.warm([url for url in fetch if core.cache.get(url) is None])
            counts["fetched"] = sum(1 for failure in results.values() if failure is None)
            counts["failed"] += sum(1 for failure in results.values() if failure is not None)
    except (TimeoutError, RedisError, OSError) as exc:
        log.warning("certificate pre-warm incomplete", extra={"error": type(exc).__name__})
    metrics.CERT_CACHE_ENTRIES.set(len(core.cache))
    return counts


async def start(
    settings: OriginationSettings, core: Origination | None = None
) -> tuple[ServerHandle, Origination]:
    """Build (unless given), pre-warm, start the gRPC server and report SERVING."""
    core = core if core is not None else build(settings)

    def feed_event(outcome: str) -> None:  # may run on the miss follower's thread
        metrics.CERT_FEED.labels(outcome).inc()

    publisher = CertificatePublisher.connect(
        settings.kafka_bootstrap, f"{settings.service_name}-certificates", on_event=feed_event
    )
    core.cache.on_cached = publisher.chain  # every chain validated from here on goes to the feed
    core.cache.on_refused = publisher.refusal
    for chain in core.cache.chains():  # and what the cache held before (a core built earlier)
        publisher.chain(chain)
    counts = await prewarm(core)
    left = await asyncio.to_thread(publisher.flush, 10.0)  # on the feed before SERVING (bounded)
    log.info("certificate cache pre-warmed", extra={**counts, "unpublished": left})
    misses = MissFollower(
        settings.kafka_bootstrap, settings.cert_miss_group, core.cache, publisher, on_event=feed_event
    )
    misses.start()
    handle = await start_server(
        settings.grpc_bind,
        settings.grpc_port,
        [SERVICE_NAME],
        [(origination_pb2_grpc.add_OriginationServiceServicer_to_server, OriginationServicer(core))],
        max_concurrent_rpcs=settings.max_concurrent_rpcs,
        tls=server_tls(settings),
        health_port=settings.grpc_health_port or None,
    )

    async def stop_feed() -> None:
        await misses.close()
        core.cache.on_cached = core.cache.on_refused = None
        left = await asyncio.to_thread(publisher.close, 5.0)
        if left:
            log.warning("certificate records left unpublished at shutdown", extra={"records": left})

    handle.on_stop.append(stop_feed)
    await handle.set_serving(True)
    log.info("origination serving", extra={"port": handle.port, "certificates": len(core.cache)})
    return handle, core


async def serve(settings: OriginationSettings) -> None:
    """Run until SIGTERM/SIGINT, then drain in-flight calls (health NOT_SERVING first)."""
    handle, core = await start(settings)
    await until_signalled()
    log.info("draining")
    await handle.stop(grace_s=5.0)
    await core.redis.aclose()
