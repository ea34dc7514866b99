"""Shutting the audit publisher down with Kafka unreachable is prompt and counts what it drops."""

import asyncio
import time

from prometheus_client import REGISTRY

from fraudmesh.v1 import events_pb2
from services.decision.audit import AuditPublisher


def failed() -> float:
    return REGISTRY.get_sample_value("fraudmesh_decision_audit_records_total", {"outcome": "failed"}) or 0.0


def test_close_with_kafka_down_drops_counted_and_returns_promptly() -> None:
    publisher = AuditPublisher("127.0.0.1:1", queue_max=100)  # nothing listens on port 1
    before = failed()
    for n in range(3):
        assert publisher.publish(events_pb2.CallSetupEvent(), key=f"k{n}".encode())

    left = asyncio.run(publisher.drain(0.2))
    started = time.monotonic()
    publisher.close()

    assert left == 3
    assert time.monotonic() - started < 2.0, "close must not wait out message.timeout.ms"
    assert failed() - before == 3, "every record dropped at shutdown is counted failed"
