"""Fixtures for integration tests: the real local Kafka and Redis from `make up`, and real workers.

If the stack is not running these tests fail (they are never skipped): run `make up` first, or
`make test`, which does.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

from loadtest.kafkaio import SetupProducer, start_group_at_end
from loadtest.processes import REPO_ROOT, ServiceProcess
from services.common.pseudonym import Pseudonymizer
from services.common.settings import CommonSettings, load
from services.common.topics import REPUTATION_INPUTS, ensure_topics
from services.reputation.hotpath import consumer_group

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Stack:
    """Addresses of the running stack and a test-only pseudonym key made for this session."""

    settings: CommonSettings
    env: dict[str, str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def stack() -> Stack:
    """The local stack, checked reachable, with a fresh test-only key (generated, never stored)."""
    env = {
        "FRAUDMESH_KAFKA_BOOTSTRAP": os.environ.get("FRAUDMESH_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
        "FRAUDMESH_REDIS_URL": os.environ.get("FRAUDMESH_REDIS_URL", "redis://127.0.0.1:16379/0"),
        "FRAUDMESH_PSEUDONYM_KEY": secrets.token_hex(32),
        "FRAUDMESH_TENANT_REGIONS": "demo-cn=CN,demo-us=US",
        "FRAUDMESH_LOG_FORMAT": "json",
    }
    host, _, port = env["FRAUDMESH_KAFKA_BOOTSTRAP"].split(",")[0].rpartition(":")
    redis_url = urllib.parse.urlparse(env["FRAUDMESH_REDIS_URL"])
    down = [
        name
        for name, ok in (
            ("Kafka", _reachable(host, int(port))),
            ("Redis", _reachable(redis_url.hostname or "127.0.0.1", redis_url.port or 6379)),
        )
        if not ok
    ]
    if down:
        pytest.fail(f"{' and '.join(down)} not reachable: start the local stack with `make up`")
    settings = load(CommonSettings, env)
    ensure_topics(settings.kafka_bootstrap)
    return Stack(settings=settings, env=env)


@pytest.fixture(scope="session")
def redis_client(stack: Stack) -> Iterator[redis.Redis]:
    """A plain Redis client on the local stack."""
    client = redis.Redis.from_url(stack.settings.redis_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def pseudonymize(stack: Stack) -> Pseudonymizer:
    """The same pseudonymiser the workers use (same test key)."""
    return Pseudonymizer(stack.settings.pseudonym_key)


@pytest.fixture(scope="session")
def producer(stack: Stack, pseudonymize: Pseudonymizer) -> SetupProducer:
    """An idempotent producer of call setups, keyed by caller pseudonym."""
    return SetupProducer.connect(stack.settings.kafka_bootstrap, pseudonymize)


@dataclass(frozen=True)
class Worker:
    """A running reputation worker and where its metrics are served."""

    process: ServiceProcess
    metrics_port: int


REPUTATION_TOPICS = REPUTATION_INPUTS


def start_reputation_worker(
    stack: Stack, app_id: str, env: dict[str, str] | None = None, *, new_group: bool = True
) -> Worker:
    """A real reputation worker process; a new group starts at the end of every input topic."""
    if new_group:
        for topic in REPUTATION_TOPICS:
            start_group_at_end(stack.settings.kafka_bootstrap, consumer_group(app_id, topic), topic)
    port = _free_port()
    process = ServiceProcess(
        "services.reputation",
        {**stack.env, **(env or {}), "FRAUDMESH_APP_ID": app_id, "FRAUDMESH_METRICS_PORT": str(port)},
        REPO_ROOT / ".stack" / "logs" / f"{app_id}.log",
    )
    time.sleep(0.5)
    if not process.alive():
        pytest.fail(f"reputation worker exited at start:\n{process.tail()}")
    return Worker(process, port)


@pytest.fixture(scope="session")
def reputation_worker(stack: Stack) -> Iterator[Worker]:
    """A real reputation worker process in its own consumer group, starting at the topics' end."""
    worker = start_reputation_worker(stack, f"fraudmesh-reputation-test-{uuid.uuid4().hex[:8]}")
    yield worker
    code = worker.process.stop()
    assert code == 0, f"reputation worker did not stop cleanly (exit {code}):\n{worker.process.tail()}"
