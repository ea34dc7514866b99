"""Topic creation from the declarative list is idempotent against the real broker."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from services.common.topics import TOPICS, ensure_topics

from .conftest import Stack

pytestmark = pytest.mark.integration


def test_topics_exist_as_declared_and_reconcile_is_a_no_op(stack: Stack) -> None:
    outcome = ensure_topics(stack.settings.kafka_bootstrap)
    assert set(outcome.values()) == {"ok"}
    admin = AdminClient({"bootstrap.servers": stack.settings.kafka_bootstrap})
    metadata = admin.list_topics(timeout=10)
    resources = [ConfigResource("topic", t.name) for t in TOPICS]
    configs = {r.name: f.result() for r, f in admin.describe_configs(resources).items()}
    for topic in TOPICS:
        assert len(metadata.topics[topic.name].partitions) == topic.partitions
        for key, value in topic.config().items():
            assert configs[topic.name][key].value == value, (topic.name, key)
