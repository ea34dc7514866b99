"""W3C trace context travels in gRPC metadata and comes back out, sampled or not."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from services.common.tracing import child_span, incoming_context, outgoing_metadata


def test_no_span_means_no_metadata_and_no_parent() -> None:
    assert outgoing_metadata() is None
    assert incoming_context(None) is None
    assert incoming_context((("authorization", "Bearer x"), ("x-bin", b"\x00"))) is None


def test_context_round_trips_through_metadata() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("client") as span:
        metadata = outgoing_metadata()
        sent = span.get_span_context()
    assert metadata is not None
    assert {key for key, _ in metadata} <= {"traceparent", "tracestate"}
    parent = incoming_context((("user-agent", "grpc-python"), *metadata))
    assert parent is not None
    restored = trace.get_current_span(parent).get_span_context()
    assert (restored.trace_id, restored.span_id, restored.trace_flags.sampled) == (
        sent.trace_id,
        sent.span_id,
        True,
    )


def test_an_unsampled_decision_travels_too_so_the_next_hop_does_not_reroll() -> None:
    tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")
    with tracer.start_as_current_span("client") as span:
        assert not span.is_recording()
        metadata = outgoing_metadata()
    assert metadata is not None
    parent = incoming_context(metadata)
    assert parent is not None
    assert not trace.get_current_span(parent).get_span_context().trace_flags.sampled


def test_child_spans_only_under_a_recorded_parent() -> None:
    sampled = TracerProvider().get_tracer("test")
    with (
        sampled.start_as_current_span("parent") as parent,
        child_span(sampled, "child", trace.SpanKind.CLIENT) as child,
    ):
        assert child.is_recording()
        assert child.get_span_context().trace_id == parent.get_span_context().trace_id
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")
    with (
        unsampled.start_as_current_span("parent"),
        child_span(unsampled, "child", trace.SpanKind.CLIENT) as child,
    ):
        assert child is trace.INVALID_SPAN


def test_tracestate_travels_with_traceparent() -> None:
    header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    parent = incoming_context((("traceparent", header), ("tracestate", "vendor=1")))
    assert parent is not None
    with TracerProvider().get_tracer("test").start_as_current_span("child", context=parent):
        metadata = dict(outgoing_metadata() or ())
    assert metadata["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert metadata["tracestate"] == "vendor=1"
