"""DecisionService (Decide, DecideStream) and AdminService on grpc.aio, and the process that serves them.

Readiness: the gRPC health status turns SERVING only once the model is loaded and its Numba
kernels are compiled and have run, the policy validated, and one decision made end to end.
SIGTERM flips health to NOT_SERVING, lets in-flight calls finish (grace period), then drains the
audit queue for a bounded time.

DecideStream decides up to ``FRAUDMESH_STREAM_WINDOW`` messages of one stream concurrently, each
within its own deadline (``budget_ms`` from its arrival, else ``FRAUDMESH_STREAM_BUDGET_S``, never
past the stream's deadline), and answers in completion order; each response carries its call id.

The admin API (redress and lists, ``services.decision.admin``) is served on its own port only when
FRAUDMESH_ADMIN_TOKEN(_FILE) is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import grpc
from opentelemetry.context import Context
from redis.exceptions import RedisError

from fraudmesh.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    call_pb2,
    decision_pb2,
    decision_pb2_grpc,
    origination_pb2_grpc,
    verdicts_pb2,
)
from services.common import eventloop
from services.common.features import SCHEMA_HASH
from services.common.grpcserver import ServerHandle, server_tls, start_server, until_signalled
from services.common.redisstore import make_async_redis
from services.common.settings import load
from services.common.telemetry import setup_telemetry
from services.common.tracing import incoming_context
from services.decision import metrics
from services.decision.admin import AdminServicer, admin_tls
from services.decision.audit import AuditPublisher
from services.decision.decider import Decider
from services.decision.degraded import Degraded
from services.decision.models import ModelStore, model_reloaded
from services.decision.policy import ALLOW, PolicyStore
from services.decision.settings import DecisionSettings
from services.decision.verification import ConfigurationError, LocalOrigination
from services.scoring.model import Scorer, default_model

log = logging.getLogger(__name__)

SERVICE_NAME: Final = decision_pb2.DESCRIPTOR.services_by_name["DecisionService"].full_name
ADMIN_NAME: Final = admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name
REPO_ROOT: Final = Path(__file__).resolve().parents[2]


class DecisionServicer(decision_pb2_grpc.DecisionServiceServicer):
    """The switch-facing API."""

    def __init__(self, decider: Decider) -> None:
        self._decider = decider
        self._pending: set[asyncio.Future[Any]] = set()

    async def Decide(  # noqa: N802 - generated name
        self, request: decision_pb2.DecideRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> decision_pb2.DecideResponse:
        if not request.HasField("setup") or not request.setup.call_id:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "DecideRequest.setup with a call_id is required"
            )
        parent = incoming_context(context.invocation_metadata())
        return await self._answer(request.setup, context.time_remaining(), parent)

    async def DecideStream(  # noqa: N802 - generated name
        self,
        request_iterator: AsyncIterator[decision_pb2.DecideRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[decision_pb2.DecideResponse]:
        # Each decision on a stream is its own trace: stream metadata would make one huge trace.
        settings = self._decider.settings
        window = asyncio.Semaphore(settings.stream_window)
        done: asyncio.Queue[decision_pb2.DecideResponse | None] = asyncio.Queue()

        async def one(request: decision_pb2.DecideRequest, arrived: float) -> None:
            try:
                budget = request.budget_ms / 1000 if request.budget_ms else settings.stream_budget_s
                stream_left = context.time_remaining()
                if stream_left is not None:
                    budget = min(budget, stream_left)
                remaining = max(0.0, budget - (time.perf_counter() - arrived))
                done.put_nowait(await self._answer(request.setup, remaining, None))
            finally:
                window.release()

        async def read() -> None:
            tasks: set[asyncio.Task[None]] = set()
            try:
                async for request in request_iterator:
                    arrived = time.perf_counter()
                    if not request.HasField("setup") or not request.setup.call_id:
                        metrics.STREAM_INVALID.inc()
                        done.put_nowait(self._invalid())
                        continue
                    await window.acquire()
                    task = asyncio.create_task(one(request, arrived))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                if tasks:
                    await asyncio.gather(*tasks, return_exceptions=True)
            finally:
                done.put_nowait(None)

        reader = asyncio.create_task(read())
        try:
            while (response := await done.get()) is not None:
                yield response
            await reader
        finally:
            reader.cancel()

    def _invalid(self) -> decision_pb2.DecideResponse:
        """The fail-open answer to a stream message that names no call."""
        decider = self._decider
        decision = verdicts_pb2.Decision(
            action=ALLOW,
            degraded=True,
            degraded_reasons=[Degraded.INVALID_REQUEST],
            model_version=decider.scorer.version,
            policy_version=decider.policies.current().version,
        )
        return decision_pb2.DecideResponse(decision=decision)

    async def _answer(
        self, setup: call_pb2.CallSetup, remaining: float | None, parent: Context | None
    ) -> decision_pb2.DecideResponse:
        # Shielded: when the switch's deadline passes first, gRPC cancels this handler, but the call
        # still happened (the switch failed open), so the decision completes and its audit record lands.
        task = asyncio.ensure_future(self._decider.decide(setup, remaining, parent=parent))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        outcome = await asyncio.shield(task)
        response = decision_pb2.DecideResponse(decision=outcome.decision)
        if outcome.origination is not None:
            response.origination.CopyFrom(outcome.origination)
        return response


def model_path(settings: DecisionSettings) -> Path:
    """The model artifact to load: FRAUDMESH_MODEL_PATH, else the shipped default."""
    if settings.model_path:
        return Path(settings.model_path)
    default = default_model()
    if default is None:
        raise FileNotFoundError("FRAUDMESH_MODEL_PATH is not set and no default model ships with this build")
    return default


class Core:
    """A warm decider and what runs beside it (reloads, audit delivery, the origination channel):
    what a decision server serves, or what the switch front runs in its own process."""

    def __init__(
        self, decider: Decider, tasks: list[asyncio.Task[None]], channel: grpc.aio.Channel | None
    ) -> None:
        self.decider = decider
        self._tasks = tasks
        self._channel = channel

    async def close(self) -> None:
        """Drain the audit queue (bounded), stop the background tasks, close clients."""
        if self.decider.audit is not None:
            left = await self.decider.audit.drain(5.0)
            if left:
                log.warning("audit records left undelivered at shutdown", extra={"records": left})
        if self.decider.local is not None:
            await self.decider.local.close()
        await self.decider.pipeline.aclose()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.decider.audit is not None:
            self.decider.audit.close()  # after its poll task has stopped
        if self._channel is not None:
            await self._channel.close()
        await self.decider.redis.aclose()


class Running:
    """A started decision server and what must be stopped with it."""

    def __init__(self, handle: ServerHandle, core: Core, admin: ServerHandle | None) -> None:
        self.handle = handle
        self.core = core
        self.decider = core.decider
        self.admin = admin

    @property
    def port(self) -> int:
        return self.handle.port

    async def stop(self, grace_s: float = 5.0) -> None:
        """NOT_SERVING, finish in-flight calls, drain the audit queue (bounded), close clients."""
        await self.handle.stop(grace_s)
        if self.admin is not None:
            await self.admin.stop(0.5)
        await self.core.close()


def origination_channel(settings: DecisionSettings) -> grpc.aio.Channel | None:
    """The channel to origination: mutual TLS when the client TLS files are set, else plaintext.

    round_robin spreads calls over every address the target resolves to (a headless Service's
    pods), instead of gRPC's default of sticking to the first.
    """
    if not settings.origination_target:
        return None
    options = [("grpc.lb_policy_name", "round_robin")]
    if not settings.tls_server_ca_file:
        return grpc.aio.insecure_channel(settings.origination_target, options=options)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=Path(settings.tls_server_ca_file).read_bytes(),
        private_key=Path(settings.tls_client_key_file).read_bytes(),
        certificate_chain=Path(settings.tls_client_cert_file).read_bytes(),
    )
    return grpc.aio.secure_channel(settings.origination_target, credentials, options=options)


async def build_core(settings: DecisionSettings, *, scorer: Scorer | None = None) -> Core:
    """Load the model and policy, connect Redis, origination and the audit producer, and decide one
    call end to end (every code path compiled and connected before the first real call)."""
    models = ModelStore(
        model_path(settings), check_every_s=settings.model_check_s, on_reload=model_reloaded, scorer=scorer
    )  # loads, verifies and warms; a bad artifact at start-up is fatal
    metrics.MODEL_INFO.labels(models.current().version, SCHEMA_HASH).set(1)

    def on_reload(outcome: str, version: str) -> None:
        metrics.POLICY_RELOADS.labels(outcome).inc()
        metrics.POLICY_INFO.clear()
        metrics.POLICY_INFO.labels(version).set(1)

    policy_path = Path(settings.policy_file)
    policies = PolicyStore(
        policy_path if policy_path.is_absolute() else REPO_ROOT / policy_path,
        check_every_s=settings.policy_check_s,
        on_reload=on_reload,
    )
    metrics.POLICY_INFO.labels(policies.policy.version).set(1)
    redis = make_async_redis(settings)
    local = LocalOrigination.build(settings) if settings.sti_trust_anchors else None
    channel = origination_channel(settings) if local is None else None
    stub = origination_pb2_grpc.OriginationServiceStub(channel) if channel is not None else None
    if local is not None:
        held = await local.start(settings.cert_catch_up_s)  # bounded; unknown chains answer PENDING
        log.info("origination verified in-process", extra={"certificates": held})
    audit = (
        AuditPublisher(settings.kafka_bootstrap, settings.audit_queue_max) if settings.audit_enabled else None
    )
    decider = Decider(settings, policies, models, redis, stub, audit, local)
    with contextlib.suppress(RedisError, OSError):
        await decider.load_scripts()  # a Redis that is down now is handled per call (NOSCRIPT reloads)
    tasks = [
        asyncio.create_task(policies.run(), name="policy-reload"),
        asyncio.create_task(models.run(), name="model-reload"),
    ]
    if audit is not None:
        tasks.append(asyncio.create_task(audit.run(), name="audit-delivery"))
    warm = call_pb2.CallSetup(
        call_id="warm-up", tenant="warm-up", calling_number="+8613800000000", called_number="+8613900000000"
    )
    await decider.decide(warm, 0.05, record=False)
    return Core(decider, tasks, channel)


async def start(settings: DecisionSettings, *, scorer: Scorer | None = None) -> Running:
    """Build the core, start the servers and report SERVING."""
    core = await build_core(settings, scorer=scorer)
    decider = core.decider
    handle = await start_server(
        settings.grpc_bind,
        settings.grpc_port,
        [SERVICE_NAME],
        [(decision_pb2_grpc.add_DecisionServiceServicer_to_server, DecisionServicer(decider))],
        max_concurrent_rpcs=settings.max_concurrent_rpcs,
        tls=server_tls(settings),
        health_port=settings.grpc_health_port or None,
        reuse_port=settings.workers > 1,
    )
    admin = None
    if settings.admin_token is not None:
        admin = await start_server(
            settings.admin_bind,
            settings.admin_port,
            [ADMIN_NAME],
            [(admin_pb2_grpc.add_AdminServiceServicer_to_server, AdminServicer(settings, decider.redis))],
            tls=admin_tls(settings),
            reuse_port=settings.workers > 1,
        )
        await admin.set_serving(True)
    await handle.set_serving(True)
    log.info(
        "decision serving",
        extra={
            "port": handle.port,
            "model": decider.models.current().version,
            "policy": decider.policies.policy.version,
        },
    )
    return Running(handle, core, admin)


async def serve(settings: DecisionSettings) -> None:
    """Serve until SIGTERM/SIGINT, then drain gracefully."""
    running = await start(settings)
    await until_signalled()
    log.info("draining")
    await running.stop(grace_s=5.0)


def run_worker(index: int) -> None:
    """One serving process (the whole service when FRAUDMESH_WORKERS=1); a spawn target, so importable."""
    settings = load(DecisionSettings)
    if index and settings.metrics_port:
        settings = dataclasses.replace(settings, metrics_port=settings.metrics_port + index)
    telemetry = setup_telemetry(settings)
    try:
        eventloop.run(serve(settings))
    except ConfigurationError as exc:  # unreadable trust anchors, CRLs or DNO list: say which, exit 2
        print(f"decision: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        telemetry.shutdown()
