"""Telemetry bootstrap for every service: logs, Prometheus /metrics and OpenTelemetry traces.

Metrics are served on ``metrics_bind:metrics_port`` (127.0.0.1 unless configured; 0 disables the
listener). Traces go to an OTLP/gRPC collector when ``otlp_endpoint`` is set, sampled by ratio
with the parent's decision respected, and are otherwise recorded nowhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from prometheus_client import start_http_server

from services.common.logs import configure_logging
from services.common.settings import CommonSettings

log = logging.getLogger(__name__)


@dataclass
class Telemetry:
    """Handles to what ``setup_telemetry`` started, so ``shutdown`` can flush and stop them."""

    tracer_provider: TracerProvider
    metrics_port: int | None

    def shutdown(self) -> None:
        """Flush pending spans and stop exporters."""
        self.tracer_provider.shutdown()


def setup_telemetry(settings: CommonSettings) -> Telemetry:
    """Configure logging, start the /metrics listener and install the tracer provider."""
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name, "service.namespace": "fraudmesh"}),
        sampler=ParentBased(TraceIdRatioBased(settings.trace_sample_ratio)),
    )
    if settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
    trace.set_tracer_provider(provider)
    port: int | None = None
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_bind)
        port = settings.metrics_port
        log.info("metrics listening", extra={"bind": settings.metrics_bind, "port": port})
    return Telemetry(tracer_provider=provider, metrics_port=port)
