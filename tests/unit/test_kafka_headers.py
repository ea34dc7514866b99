"""W3C trace context travels in Kafka record headers and comes back out."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from services.common.kafka import extract_trace_context, inject_trace_headers, producer_config


def test_trace_context_round_trips_through_headers() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("produce") as span:
        headers = inject_trace_headers([("x-other", b"1")])
        sent = span.get_span_context()
    assert ("x-other", b"1") in headers
    assert any(key == "traceparent" for key, _ in headers)
    restored = trace.get_current_span(extract_trace_context(headers)).get_span_context()
    assert restored.trace_id == sent.trace_id
    assert restored.span_id == sent.span_id
    as_mapping = trace.get_current_span(extract_trace_context(dict(headers))).get_span_context()
    assert as_mapping.trace_id == sent.trace_id


def test_no_headers_means_no_parent() -> None:
    assert not trace.get_current_span(extract_trace_context(None)).get_span_context().is_valid


def test_producer_is_idempotent_with_acks_all() -> None:
    config = producer_config("127.0.0.1:1", "t")
    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"
