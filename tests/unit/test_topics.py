"""The declarative topic list is consistent: one type per topic, a DLQ per consumer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fraudmesh.v1 import events_pb2
from services.common import topics
from services.common.settings import load
from services.common.topics import CALL_PARTITIONS, CONSUMERS, TOPICS, by_name, dead_letter_topic
from services.reputation.hotpath import HOT_TOPICS
from services.reputation.settings import ReputationSettings


def test_names_are_unique_and_versioned() -> None:
    names = [t.name for t in TOPICS]
    assert len(names) == len(set(names))
    assert all(name.endswith(".v1") for name in names)


def test_every_consumer_has_a_dead_letter_topic() -> None:
    for consumer in CONSUMERS:
        topic = by_name(f"dlq.{consumer}.v1")
        assert topic.message_type is events_pb2.DeadLetter
    with pytest.raises(ValueError, match="unknown consumer"):
        dead_letter_topic("nobody")


def test_caller_keyed_topics_are_co_partitioned() -> None:
    for name in (
        "calls.setup.v1",
        "calls.cdr.v1",
        "complaints.v1",
        "audio.verdicts.v1",
        "subscribers.presence.v1",
    ):
        assert by_name(name).partitions == CALL_PARTITIONS


def test_configs_carry_retention_and_cleanup() -> None:
    for topic in TOPICS:
        config = topic.config()
        assert config["cleanup.policy"] in {"delete", "compact", "compact,delete"}
        assert int(config["retention.ms"]) > 0
        topic.codec()


def test_reputation_inputs_are_exactly_the_topics_reputation_folds_on_its_agents_and_hot_path() -> None:
    source = (Path(__file__).resolve().parents[2] / "services" / "reputation" / "agents.py").read_text()
    subscribed = {getattr(topics, name).name for name in re.findall(r"raw_topic\(app, ([A-Z_]+)\)", source)}
    hot = {topic.name for topic in HOT_TOPICS}
    assert not subscribed & hot, "a hot-path topic is also on a faust agent"
    assert subscribed | hot == {topic.name for topic in topics.REPUTATION_INPUTS}


def test_reputation_state_outlives_every_record_it_may_be_redelivered() -> None:
    """The offset marks live with the number's state; they must outlast the inputs' retention."""
    settings = load(ReputationSettings, {"FRAUDMESH_PSEUDONYM_KEY": "00" * 32})
    for topic in topics.REPUTATION_INPUTS:
        if topic is not topics.SUBSCRIBERS_PRESENCE:  # presence folds last-writer-wins by event time
            assert int(topic.config()["retention.ms"]) <= settings.number_ttl_s * 1000, topic.name
