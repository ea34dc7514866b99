"""One decision is one trace: Decide → Verify over real gRPC → Redis, and → Kafka → reputation's fold.

Decision and origination run in this process, recording into an in-memory span exporter; a real
reputation worker process (sample ratio 0, so it records only what the decision sampled) exports
its spans over OTLP/gRPC to a collector this test serves. The audit record is also read back from
Kafka to check the header hop on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from confluent_kafka import TopicPartition
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, TraceIdRatioBased

from fraudmesh.v1 import decision_pb2, decision_pb2_grpc
from loadtest.kafkaio import end_offsets
from services.common.kafka import extract_trace_context, make_consumer
from services.common.settings import load
from services.common.topics import CALLS_SETUP
from services.common.tracing import outgoing_metadata
from services.decision.service import REPO_ROOT, start
from services.decision.settings import DecisionSettings
from services.origination.service import build as build_origination
from services.origination.service import start as start_origination
from services.origination.settings import OriginationSettings
from services.scoring.model import Scorer
from tests.integration.conftest import Stack, start_reputation_worker
from tests.integration.origination_pki import HOME_X5U, Pki, build_pki, signed_setup
from training.synthetic import generate
from training.train import train

pytestmark = pytest.mark.integration


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver that keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[trace_pb2.Span] = []

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                self.spans.extend(scope.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """Finished spans of this process (the SDK provider, ParentBased as in the services)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.01)))
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


@pytest.fixture(scope="module")
def small_scorer(tmp_path_factory: pytest.TempPathFactory) -> Scorer:
    folder = tmp_path_factory.mktemp("trace-model")
    rows = generate(5_000, seed=5)
    train(
        rows.X,
        rows.y,
        rows.t_ms,
        rows.kinds,
        folder / "artifact",
        manifest={"test": True},
        trees=10,
        depth=3,
        threads=1,
    )
    return Scorer.load(folder / "artifact")


@contextlib.asynccontextmanager
async def collector() -> AsyncIterator[tuple[Collector, int]]:
    receiver = Collector()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield receiver, port
    finally:
        await server.stop(0)


@contextlib.asynccontextmanager
async def mesh(stack: Stack, pki: Pki, scorer: Scorer, policy: Path) -> AsyncIterator[Any]:
    """Origination and decision (audit on) in this process; yields a Decide stub."""
    origination_settings = load(
        OriginationSettings,
        {
            **stack.env,
            "FRAUDMESH_GRPC_PORT": "0",
            "FRAUDMESH_STI_TRUST_ANCHORS": str(pki.anchor_file),
            "FRAUDMESH_X5U_PREWARM_FILE": str(pki.prewarm_file),
        },
    )
    verify, core = await start_origination(origination_settings, build_origination(origination_settings))
    decision_settings = load(
        DecisionSettings,
        {
            **stack.env,
            "FRAUDMESH_GRPC_PORT": "0",
            "FRAUDMESH_POLICY_FILE": str(policy),
            "FRAUDMESH_ORIGINATION_TARGET": f"127.0.0.1:{verify.port}",
            "FRAUDMESH_ORIGINATION_TIMEOUT_S": "0.5",
            "FRAUDMESH_FEATURES_TIMEOUT_S": "0.5",
        },
    )
    decision = await start(decision_settings, scorer=scorer)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{decision.port}")
    try:
        yield decision_pb2_grpc.DecisionServiceStub(channel)
    finally:
        await channel.close()
        await decision.stop(0.5)
        await verify.stop(0.5)
        await core.redis.aclose()


def _switch_metadata(sampled: bool) -> tuple[trace.SpanContext, Any]:
    """The switch's own span context (sampled or not) and the metadata it sends with Decide."""
    switch = TracerProvider(sampler=ALWAYS_ON if sampled else ALWAYS_OFF).get_tracer("switch")
    with switch.start_as_current_span("switch.invite") as invite:
        return invite.get_span_context(), outgoing_metadata()


def _audit_headers(stack: Stack, offsets: dict[int, int], call_id: str) -> Any:
    """The headers of the audit record decision published for call_id."""
    consumer = make_consumer(stack.settings.kafka_bootstrap, f"it-trace-{uuid.uuid4().hex[:8]}")
    consumer.assign([TopicPartition(CALLS_SETUP.name, p, o) for p, o in offsets.items()])
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            if CALLS_SETUP.codec().decode(message.value()).setup.call_id == call_id:
                return message.headers() or []
    finally:
        consumer.close()
    raise AssertionError(f"audit record of {call_id} not found on {CALLS_SETUP.name}")


async def test_one_decision_is_one_trace_across_grpc_redis_and_kafka(
    stack: Stack, exporter: InMemorySpanExporter, small_scorer: Scorer, tmp_path: Path
) -> None:
    (tmp_path / "sti").mkdir()
    pki = build_pki(tmp_path / "sti")[0]
    policy = tmp_path / "policy.yaml"
    shutil.copy(REPO_ROOT / "deploy" / "policy" / "default.yaml", policy)
    offsets = end_offsets(stack.settings.kafka_bootstrap, CALLS_SETUP)
    async with collector() as (receiver, otlp_port):
        worker = start_reputation_worker(
            stack,
            f"fraudmesh-reputation-trace-{uuid.uuid4().hex[:8]}",
            {
                "FRAUDMESH_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
                "FRAUDMESH_TRACE_SAMPLE_RATIO": "0",
                "OTEL_BSP_SCHEDULE_DELAY": "200",
            },
        )
        try:
            async with mesh(stack, pki, small_scorer, policy) as stub:
                invite, metadata = _switch_metadata(sampled=True)
                setup = signed_setup(pki.home, HOME_X5U)
                setup.event_time.GetCurrentTime()
                reply = await stub.Decide(
                    decision_pb2.DecideRequest(setup=setup), timeout=5, metadata=metadata
                )
                quiet, quiet_metadata = _switch_metadata(sampled=False)
                unsampled = signed_setup(pki.home, HOME_X5U)
                unsampled.event_time.GetCurrentTime()
                await stub.Decide(
                    decision_pb2.DecideRequest(setup=unsampled), timeout=5, metadata=quiet_metadata
                )

            spans = {
                s.name: s for s in exporter.get_finished_spans() if s.context.trace_id == invite.trace_id
            }
            assert set(spans) >= {
                "decision.decide",
                "decision.verify",
                "decision.features",
                "origination.verify",
                "origination.replay",
            }, sorted(spans)

            def parent_of(name: str) -> ReadableSpan:
                parent = spans[name].parent
                assert parent is not None, name
                return next(s for s in spans.values() if s.context.span_id == parent.span_id)

            decide = spans["decision.decide"]
            assert decide.parent is not None
            assert decide.parent.span_id == invite.span_id
            assert parent_of("decision.verify") is decide
            assert parent_of("decision.features") is decide
            assert parent_of("origination.verify") is spans["decision.verify"]
            assert parent_of("origination.replay") is spans["origination.verify"]
            assert spans["origination.verify"].kind is trace.SpanKind.SERVER
            assert decide.attributes is not None
            assert decide.attributes["fraudmesh.tenant"] == setup.tenant
            assert decide.attributes["fraudmesh.degraded"] is reply.decision.degraded
            assert decide.attributes["fraudmesh.action"] in {"ALLOW", "LABEL", "CHALLENGE", "BLOCK"}
            digits = {setup.calling_number.lstrip("+"), setup.called_number.lstrip("+")}
            for span in spans.values():
                for value in (span.attributes or {}).values():
                    assert not any(d in str(value) for d in digits), (span.name, value)
            assert not [s for s in exporter.get_finished_spans() if s.context.trace_id == quiet.trace_id]

            # The Kafka hop: the audit record carries decision.decide's context ...
            headers = _audit_headers(stack, offsets, setup.call_id)
            carried = trace.get_current_span(extract_trace_context(headers)).get_span_context()
            assert (carried.trace_id, carried.span_id) == (invite.trace_id, decide.context.span_id)

            # ... and the real reputation worker folds it under that span, up to its Redis write.
            trace_id = invite.trace_id.to_bytes(16, "big")
            deadline = time.monotonic() + 90
            folds: list[trace_pb2.Span] = []
            while not folds and time.monotonic() < deadline and worker.process.alive():
                await asyncio.sleep(0.5)
                folds = [s for s in receiver.spans if s.name == "reputation.fold" and s.trace_id == trace_id]
            assert folds, f"no reputation.fold span arrived:\n{worker.process.tail()}"
            assert folds[0].parent_span_id == decide.context.span_id.to_bytes(8, "big")
            outcome = {a.key: a.value.string_value for a in folds[0].attributes}["fraudmesh.outcome"]
            assert outcome in {"applied", "duplicate"}  # another test's worker may share this Redis
            quiet_id = quiet.trace_id.to_bytes(16, "big")
            assert not [s for s in receiver.spans if s.trace_id == quiet_id]
        finally:
            code = worker.process.stop()
        assert code == 0, worker.process.tail()
