"""Chaos drills: the real reputation worker keeps every caller's count exact through faults.

A replay of call setups for a fixed set of callers runs from a background thread while Redis is
frozen, the broker is killed and restarted, the worker is killed again and again, or a second
worker joins and leaves the group. Afterwards every caller's ``setups`` total in Redis must equal
what was produced: nothing lost, nothing counted twice. Each caller gets many setups, because a
number seen once may live in a compact tier rather than in its hash.

These drills stop shared infrastructure, so they run apart from the other tests: ``make test-chaos``.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from confluent_kafka import KafkaError, Message
from confluent_kafka.admin import AdminClient

from loadtest.kafkaio import SetupProducer, call_setup
from loadtest.processes import REPO_ROOT
from services.common import keys
from services.common.kafka import make_producer
from services.common.phone import normalize
from services.common.pseudonym import Pseudonymizer
from services.common.settings import Secret
from services.common.topics import CALLS_SETUP

from .conftest import Stack, Worker, start_reputation_worker
from .test_reputation_pipeline import fresh_cn_mobile

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

CALLERS = 100
REPLAY_CAP = 30_000
DRAIN_S = 120.0
SETTLE_S = 2.0
STACK_DIR = Path(os.environ.get("FRAUDMESH_STACK_DIR", REPO_ROOT / ".stack")).resolve()


class Replay:
    """Call setups for fixed callers, produced at a steady rate from a thread until stopped.

    ``expected`` counts what was handed to the producer; a record the broker never acknowledged
    fails the drill as a harness problem, not as a worker loss.
    """

    def __init__(self, bootstrap: str, own: Pseudonymizer, callers: list[str], rate_per_s: float) -> None:
        self.expected = dict.fromkeys(callers, 0)
        self.sent = 0
        self.undelivered: list[str] = []
        self._producer = SetupProducer(
            # librdkafka's own log would only repeat "connection refused" while the broker is down;
            # every delivery failure reaches ``_delivered``.
            make_producer(bootstrap, "fraudmesh-chaos", on_delivery=self._delivered, log_level=2),
            own,
        )
        self._callers = callers
        self._callees = [fresh_cn_mobile() for _ in range(50)]
        self._rate = rate_per_s
        self._running = threading.Event()
        self._running.set()
        self._stopped = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="chaos-replay", daemon=True)
        self._thread.start()

    def _delivered(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self.undelivered.append(str(error))

    def _run(self) -> None:
        tick_s = 0.05
        per_tick = max(1, round(self._rate * tick_s))
        next_at = time.monotonic()
        try:
            while not self._stopped.is_set() and self.sent < REPLAY_CAP:
                if not self._running.wait(0.1):
                    next_at = time.monotonic()
                    continue
                for _ in range(min(per_tick, REPLAY_CAP - self.sent)):
                    caller = random.choice(self._callers)
                    self._producer.send(call_setup(caller, random.choice(self._callees)))
                    self.expected[caller] += 1
                    self.sent += 1
                next_at += tick_s
                self._stopped.wait(max(0.0, next_at - time.monotonic()))
        except BaseException as exc:
            self._error = exc

    def producing(self) -> bool:
        """True while the replay still has setups to send (it has not hit its cap or failed)."""
        return self._thread.is_alive() and self.sent < REPLAY_CAP

    def pause(self) -> None:
        """Stop handing new setups to the producer (queued ones are still retried)."""
        self._running.clear()

    def resume(self) -> None:
        """Produce again at the same rate."""
        self._running.set()

    def stop(self) -> None:
        """Stop producing (a failed drill's replay must not run on into the next drill)."""
        self._stopped.set()
        self._running.set()
        self._thread.join(30)

    def finish(self) -> dict[str, int]:
        """Stop, wait until every setup is acknowledged, and return the count sent per caller."""
        self.stop()
        assert not self._thread.is_alive(), "the replay thread did not stop"
        if self._error is not None:
            raise self._error
        self._producer.flush(150)
        assert not self.undelivered, (
            f"{len(self.undelivered)} setups never reached Kafka: {self.undelivered[:3]}"
        )
        return dict(self.expected)


@dataclass
class Drill:
    """One drill's own pseudonym key, app id (consumer group) and callers, and the workers it ran."""

    stack: Stack
    name: str
    key_hex: str = field(default_factory=lambda: secrets.token_hex(32))
    app_id: str = field(default_factory=lambda: f"fraudmesh-reputation-chaos-{uuid.uuid4().hex[:8]}")
    workers: list[Worker] = field(default_factory=list)
    replays: list[Replay] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        own = Pseudonymizer(Secret(bytes.fromhex(self.key_hex)))
        numbers: set[str] = set()
        while len(numbers) < CALLERS:
            numbers.add(fresh_cn_mobile())
        self.callers = sorted(numbers)
        self.own = own
        self.number_keys = [keys.number_key(own(normalize(c, "CN").canonical)) for c in self.callers]
        self.client = redis.Redis.from_url(self.stack.settings.redis_url)

    def start_worker(self, *, new_group: bool) -> Worker:
        """A real worker for this drill's group, with this drill's pseudonym key."""
        worker = start_reputation_worker(
            self.stack, self.app_id, {"FRAUDMESH_PSEUDONYM_KEY": self.key_hex}, new_group=new_group
        )
        self.workers.append(worker)
        return worker

    def replay(self, rate_per_s: float) -> Replay:
        """Start producing setups for this drill's callers in the background."""
        replay = Replay(self.stack.settings.kafka_bootstrap, self.own, self.callers, rate_per_s)
        self.replays.append(replay)
        return replay

    def counted(self) -> dict[str, int]:
        """Every caller's ``setups`` total as Redis holds it now (one pipelined round trip)."""
        pipe = self.client.pipeline(transaction=False)
        for key in self.number_keys:
            pipe.hget(key, "setups")
        return {c: int(v or 0) for c, v in zip(self.callers, pipe.execute(), strict=True)}

    def wait_until(self, condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
        """Poll ``condition``; fail if it stays false past the timeout or a worker of the drill died."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            self.fail_if_a_worker_died(what)
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name}: timed out waiting for {what}:\n{self.tails()}")
            time.sleep(0.2)

    def wait_for_folding(self, what: str, timeout_s: float = 60.0) -> None:
        """Wait until some caller's count grows: a worker of the drill is folding setups."""
        before = sum(self.counted().values())
        self.wait_until(lambda: sum(self.counted().values()) > before, what, timeout_s)

    def fail_if_a_worker_died(self, what: str) -> None:
        """Fail with the log of a worker that exited on its own (one the drill killed is not running)."""
        for worker in self.workers:
            code = worker.process.process.poll()
            if code not in (None, 0, -signal.SIGKILL):
                pytest.fail(
                    f"{self.name}: a worker exited ({code}) waiting for {what}:\n{worker.process.tail()}"
                )

    def tails(self) -> str:
        """The log tail of the last worker started."""
        return self.workers[-1].process.tail() if self.workers else ""

    def drain_and_check(self, expected: dict[str, int], alive: list[Worker]) -> None:
        """Wait until ``alive`` have folded every setup, then check every caller's count is exact."""
        assert min(expected.values()) >= 5, "a caller with fewer than 5 setups may still be on probation"
        deadline = time.monotonic() + DRAIN_S
        got = self.counted()
        while any(got[c] < n for c, n in expected.items()) and time.monotonic() < deadline:
            for worker in alive:
                if not worker.process.alive():
                    pytest.fail(f"{self.name}: a worker died while draining:\n{worker.process.tail()}")
            time.sleep(0.5)
            got = self.counted()
        time.sleep(SETTLE_S)
        got = self.counted()
        duplicates = sum(max(0, got[c] - n) for c, n in expected.items())
        lost = sum(max(0, n - got[c]) for c, n in expected.items())
        print(
            f"\n{self.name}: callers={len(expected)} expected={sum(expected.values())} "
            f"counted={sum(got.values())} duplicates={duplicates} lost={lost} "
            f"fewest/caller={min(expected.values())} ({time.monotonic() - self.started:.0f} s)"
        )
        wrong = {c: (n, got[c]) for c, n in expected.items() if got[c] != n}
        assert not wrong, (
            f"{self.name}: {len(wrong)} callers off (expected, counted): {dict(list(wrong.items())[:5])}\n"
            f"{self.tails()}"
        )

    def close(self) -> None:
        """Stop the replay and whatever worker still runs, and close the Redis client."""
        for replay in self.replays:
            replay.stop()
        for worker in self.workers:
            worker.process.stop()
        self.client.close()


@pytest.fixture
def drill(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Drill]:
    """A fresh drill; its workers never outlive the test."""
    out = Drill(stack, request.node.name.removeprefix("test_"))
    try:
        yield out
    finally:
        out.close()


def kill_hard(worker: Worker) -> None:
    """SIGKILL a worker and reap it: no shutdown, no final commit."""
    worker.process.process.send_signal(signal.SIGKILL)
    worker.process.process.wait(10)
    worker.process.stop()


def stack_pid(component: str, config: Path) -> int | None:
    """The pid of the stack's running ``component`` (from its pidfile, checked on its exact argv)."""
    try:
        pid = int((STACK_DIR / "run" / f"{component}.pid").read_text().strip())
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if os.fsencode(config) in args else None


def redis_pid() -> int:
    """The local stack's Redis, as deploy/local/stack.sh started it."""
    pid = stack_pid("redis", REPO_ROOT / "deploy" / "local" / "redis.conf")
    assert pid is not None, f"no Redis of this stack runs (pidfile {STACK_DIR / 'run' / 'redis.pid'})"
    return pid


def kafka_pid() -> int | None:
    """The local stack's Kafka broker, as deploy/local/stack.sh started it, or None if it is down."""
    return stack_pid("kafka", STACK_DIR / "kafka" / "server.properties")


def stack_up() -> None:
    """Start what is not running, exactly as ``make up`` does (a running Redis is left alone)."""
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "deploy" / "local" / "stack.sh"), "up"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, f"stack.sh up failed:\n{result.stdout}\n{result.stderr}"


def broker_serves(bootstrap: str) -> bool:
    """True once the broker answers metadata with a leader for every partition of calls.setup."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        topic = admin.list_topics(CALLS_SETUP.name, timeout=2).topics[CALLS_SETUP.name]
    except Exception:  # the broker is still starting
        return False
    return (
        topic.error is None
        and len(topic.partitions) == CALLS_SETUP.partitions
        and all(p.leader >= 0 and p.error is None for p in topic.partitions.values())
    )


def setup_partitions_per_member(bootstrap: str, app_id: str) -> list[int]:
    """How many calls.setup partitions each consumer holding some has, over the app id's groups.

    Every group named ``<app_id>`` or ``<app_id>.<anything>`` is looked at, so the answer does not
    depend on which of the worker's groups reads the setups.
    """
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    listed = admin.list_consumer_groups(request_timeout=5).result()
    groups = [g.group_id for g in listed.valid if g.group_id == app_id or g.group_id.startswith(app_id + ".")]
    if not groups:
        return []
    held = []
    for future in admin.describe_consumer_groups(groups, request_timeout=5).values():
        for member in future.result().members:
            count = sum(1 for tp in member.assignment.topic_partitions if tp.topic == CALLS_SETUP.name)
            if count:
                held.append(count)
    return sorted(held)


def test_redis_frozen_for_10_s_mid_replay(drill: Drill) -> None:
    worker = drill.start_worker(new_group=True)
    replay = drill.replay(rate_per_s=800)
    drill.wait_for_folding("the worker to fold its first setups")
    pid = redis_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(10)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert replay.producing(), "the replay ended before Redis came back; raise the cap"
    time.sleep(3)
    expected = replay.finish()
    drill.drain_and_check(expected, [worker])
    assert worker.process.stop() == 0, worker.process.tail()


def test_broker_killed_and_restarted_mid_replay(drill: Drill) -> None:
    bootstrap = drill.stack.settings.kafka_bootstrap
    worker = drill.start_worker(new_group=True)
    replay = drill.replay(rate_per_s=1_000)
    drill.wait_for_folding("the worker to fold its first setups")
    pid = kafka_pid()
    assert pid is not None, f"no Kafka of this stack runs (pidfile {STACK_DIR / 'run' / 'kafka.pid'})"
    try:
        replay.pause()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(5)
    finally:
        if kafka_pid() is None:
            stack_up()
    drill.wait_until(lambda: broker_serves(bootstrap), "the restarted broker to serve calls.setup", 60)
    replay.resume()
    time.sleep(10)
    assert replay.producing(), "the replay ended before the broker came back; raise the cap"
    expected = replay.finish()
    drill.drain_and_check(expected, [worker])
    assert worker.process.stop() == 0, worker.process.tail()


def test_worker_killed_20_times_mid_replay(drill: Drill) -> None:
    # Every other kill lands at a random moment of a worker's first second of folding, the others at a
    # random moment of its start or group join. A restarted worker folds only once the killed
    # member's 10 s session has expired, so killing each one mid-fold would take over 3 minutes.
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    print(f"\n{drill.name}: kill times seeded with {seed}")
    worker = drill.start_worker(new_group=True)
    replay = drill.replay(rate_per_s=150)
    for kill in range(20):
        if kill % 2 == 0:
            drill.wait_for_folding("a restarted worker to fold", 30)
            time.sleep(rng.uniform(0.0, 1.0))
        else:
            time.sleep(rng.uniform(0.0, 2.0))
        kill_hard(worker)
        worker = drill.start_worker(new_group=False)
    assert replay.producing(), "the replay ended before the last kill; raise the cap"
    print(f"{drill.name}: 10 workers killed while folding, 10 while starting or joining the group")
    time.sleep(2)
    expected = replay.finish()
    drill.drain_and_check(expected, [worker])
    assert worker.process.stop() == 0, worker.process.tail()


def test_a_second_worker_joins_and_leaves_mid_replay(drill: Drill) -> None:
    bootstrap = drill.stack.settings.kafka_bootstrap
    first = drill.start_worker(new_group=True)
    replay = drill.replay(rate_per_s=600)
    drill.wait_for_folding("the first worker to fold its first setups")
    alone = setup_partitions_per_member(bootstrap, drill.app_id)
    second = drill.start_worker(new_group=False)
    drill.wait_until(
        lambda: len(setup_partitions_per_member(bootstrap, drill.app_id)) == 2,
        "both workers to hold calls.setup partitions",
    )
    shared = setup_partitions_per_member(bootstrap, drill.app_id)
    time.sleep(8)
    assert second.process.stop() == 0, second.process.tail()
    drill.wait_until(
        lambda: setup_partitions_per_member(bootstrap, drill.app_id) == [CALLS_SETUP.partitions],
        "the first worker to hold every calls.setup partition again",
    )
    time.sleep(5)
    assert replay.producing(), "the replay ended before the second worker left; raise the cap"
    assert first.process.alive(), first.process.tail()
    print(f"\n{drill.name}: calls.setup partitions per worker: {alone} → {shared} → back to one")
    expected = replay.finish()
    drill.drain_and_check(expected, [first])
    assert first.process.stop() == 0, first.process.tail()
