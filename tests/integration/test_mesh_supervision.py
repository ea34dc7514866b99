"""The main job's mesh restarts a service killed mid-run: the decision server comes back on the port the
replay was given, the reputation worker resumes in its consumer group, and a crash loop is given up on.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
import redis

from fraudmesh.v1 import decision_pb2, decision_pb2_grpc
from loadtest.kafkaio import SetupProducer, call_setup
from loadtest.mesh import Mesh, wait_serving
from loadtest.model import resolve_model
from loadtest.stipki import CarrierSpec, build_pki
from loadtest.supervision import RestartPolicy
from services.common import keys
from services.common.phone import normalize
from services.common.pseudonym import Pseudonymizer

from .conftest import Stack

pytestmark = pytest.mark.integration

BACK_WITHIN_S = 45.0  # restart, start-up, and for reputation the dead member's 10 s session timeout
QUICK = RestartPolicy(first_backoff_s=0.2, max_backoff_s=1.0, budget=3, window_s=60.0)


@pytest.fixture(scope="module")
def mesh(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    """The main job's mesh (reputation, origination, decision) on the local stack, supervised."""
    folder = tmp_path_factory.mktemp("mesh-supervision")
    build_pki(7, [CarrierSpec("home", "H001", signs=True)], datetime.now(UTC) - timedelta(days=1)).write(
        folder / "pki"
    )
    model = resolve_model(None, folder / "placeholder-model")
    mesh = Mesh.start(
        folder / "pki",
        model,
        stack.env,
        timeout_s=50.0,
        bootstrap=stack.settings.kafka_bootstrap,
        restarts=QUICK,
    )
    yield mesh
    restarts = mesh.restarts
    codes = mesh.stop()
    assert mesh.restarts == restarts, "the mesh's own shutdown was taken for a crash"
    assert not any(process.alive() for process in mesh.processes.values())
    assert all(code == 0 for code in codes.values()), codes


def kill(mesh: Mesh, name: str) -> int:
    """SIGKILL the named service, as the OOM killer or `kill -9` would; its pid."""
    pid = mesh.processes[name].process.pid
    os.kill(pid, signal.SIGKILL)
    return pid


def wait_for(condition: Callable[[], bool], what: str, mesh: Mesh, name: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}; {name} log tail:\n{mesh.processes[name].tail()}")


def test_a_killed_decision_server_is_back_on_the_same_port(mesh: Mesh) -> None:
    address = mesh.decide_address
    deadline = time.monotonic() + BACK_WITHIN_S
    pid = kill(mesh, "decision")
    wait_for(
        lambda: mesh.processes["decision"].process.pid != pid,
        "a new decision process",
        mesh,
        "decision",
        deadline,
    )
    wait_serving(
        address, "fraudmesh.v1.DecisionService", deadline - time.monotonic(), mesh.processes["decision"]
    )
    with grpc.insecure_channel(address) as channel:
        stub: Any = decision_pb2_grpc.DecisionServiceStub(channel)
        reply = stub.Decide(
            decision_pb2.DecideRequest(setup=call_setup(cn_mobile(), cn_mobile()).setup), timeout=10
        )
    assert reply.decision.model_version
    assert mesh.alive("decision")
    assert mesh.decide_address == address
    assert mesh.restarts.get("decision") == 1
    assert not mesh.failure


def test_a_killed_reputation_worker_resumes_from_its_groups_committed_offsets(
    mesh: Mesh, producer: SetupProducer, redis_client: redis.Redis, pseudonymize: Pseudonymizer
) -> None:
    deadline = time.monotonic() + BACK_WITHIN_S
    pid = kill(mesh, "reputation")
    # Published while no worker runs: only a restart in the same group (from its committed offsets,
    # not from the end of the topic as a fresh group would start) folds them in. Two calls, so the
    # number has full state whether or not a number seen once is first held elsewhere.
    caller = cn_mobile()
    event_ms = int(time.time() * 1000) - 5000
    for offset_ms in (0, 1000):
        producer.send(call_setup(caller, cn_mobile(), event_ms=event_ms + offset_ms))
    producer.flush()
    pseudonym = pseudonymize(normalize(caller, "CN").canonical)
    wait_for(
        lambda: mesh.processes["reputation"].process.pid != pid,
        "a new reputation process",
        mesh,
        "reputation",
        deadline,
    )
    wait_for(
        lambda: int(redis_client.hget(keys.number_key(pseudonym), "setups") or 0) == 2,
        "the setups published while reputation was down to be folded",
        mesh,
        "reputation",
        deadline,
    )
    assert mesh.processes["reputation"].alive()
    assert mesh.restarts.get("reputation") == 1
    assert not mesh.failure


def test_a_crash_loop_spends_the_budget_and_the_mesh_says_so() -> None:
    mesh = Mesh()
    # A module that does not exist exits at once every time, as a service crashing at start would.
    mesh.spawn("broken", "services.no_such_service", {})
    mesh.supervise(RestartPolicy(first_backoff_s=0.05, max_backoff_s=0.2, budget=2, window_s=60.0))
    try:
        deadline = time.monotonic() + 30
        while not mesh.failure and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "broken exited with code 1 after 2 restarts" in mesh.failure
        assert mesh.restarts == {"broken": 2}
        assert not mesh.alive("broken"), "a service given up on is dead for the run's waits"
        time.sleep(0.5)
        assert mesh.restarts == {"broken": 2}, "no restart after giving up"
    finally:
        mesh.stop()


def cn_mobile() -> str:
    """A valid CN mobile number nobody else in this run uses."""
    while True:
        number = "139" + f"{random.randrange(10**8):08d}"
        if normalize(number, "CN").valid:
            return number
