"""W3C trace context in gRPC metadata, so one decision is one trace across the mesh.

The client side adds ``traceparent``/``tracestate`` of the current span to an RPC's metadata; the
server side turns the caller's metadata back into the parent of its span. Unsampled contexts travel
too, so every hop honours the first hop's sampling decision (``ParentBased``) instead of rolling
its own dice. Explicit metadata rather than opentelemetry-instrumentation-grpc: two RPCs need it,
and the instrumentation would add a span (and its cost) to every RPC, health checks included.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from opentelemetry import propagate, trace
from opentelemetry.context import Context

TRACE_KEYS = frozenset({"traceparent", "tracestate"})

Metadata = tuple[tuple[str, str], ...]


def outgoing_metadata() -> Metadata | None:
    """The current span's W3C trace context as gRPC metadata, or None when there is no span.

    Formatted directly (as the W3C TraceContext propagator would) rather than through
    ``propagate.inject``, which costs several times more on the call path; baggage is not carried.
    """
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    parent = f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{span_context.trace_flags:02x}"
    if span_context.trace_state:
        return (("traceparent", parent), ("tracestate", span_context.trace_state.to_header()))
    return (("traceparent", parent),)


def child_span(
    tracer: trace.Tracer, name: str, kind: trace.SpanKind
) -> contextlib.AbstractContextManager[trace.Span]:
    """A child of the current span when that one is recorded; otherwise no span work at all."""
    if trace.get_current_span().is_recording():
        return tracer.start_as_current_span(name, kind=kind)
    return contextlib.nullcontext(trace.INVALID_SPAN)


def incoming_context(metadata: Iterable[tuple[str, str | bytes]] | None) -> Context | None:
    """The caller's trace context from an RPC's invocation metadata, or None when it sent none."""
    if not metadata:
        return None
    carrier = {key: value for key, value in metadata if key in TRACE_KEYS and isinstance(value, str)}
    return propagate.extract(carrier) if "traceparent" in carrier else None
