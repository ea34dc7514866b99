"""The whole mesh as local processes for the main job: reputation, origination, decision (and audio).

Each service runs as its own process (``python -m services.<name>``) against the local Kafka and
Redis, configured only through FRAUDMESH_* variables as in a deployment, with two differences a
replay needs: ``FRAUDMESH_CLOCK_SOURCE=event`` (recorded PASSporTs and reputation windows live in
the simulated past) and origination pre-seeded with the simulated PKI (its x5u hosts do not exist).
Sub-deadlines, breakers and origination's replay-marker timeout are the production defaults: the
report's degraded share and server-side p99 are what this machine does at production settings.
``Mesh.start`` returns once both gRPC services report SERVING on grpc.health.v1. The audio worker
runs only when the replay publishes audio segments. From then on a supervisor
(``loadtest.supervision``) starts any service that exits again, with the same environment — the
same consumer group and gRPC port — as Kubernetes would restart its pod.
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from loadtest.kafkaio import start_group_at_end
from loadtest.processes import REPO_ROOT, ServiceProcess
from loadtest.stipki import PREWARM_FILE
from loadtest.supervision import DEFAULT_RESTARTS, RestartPolicy, Supervisor
from services.common.topics import AUDIO_SEGMENTS, REPUTATION_INPUTS, Topic
from services.reputation.hotpath import consumer_group
from training.pki import ROOT_FILE

log = logging.getLogger(__name__)
LOGS = REPO_ROOT / ".stack" / "logs"
REPUTATION_TOPICS = REPUTATION_INPUTS
AUDIO_NICE = 10
STOP_ORDER = ("decision", "origination", "audio", "reputation")  # any other service after these


class MeshError(RuntimeError):
    """A service of the mesh did not come up; the message carries the tail of its log."""


def free_port() -> int:
    """A loopback port free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Mesh:
    """Running service processes and the address of DecisionService."""

    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    _specs: dict[str, tuple[str, Mapping[str, str], list[str] | None, int]] = field(default_factory=dict)
    decide_address: str = ""
    supervisor: Supervisor | None = None

    @classmethod
    def start(
        cls,
        pki: Path,
        model: Path,
        extra_env: Mapping[str, str] | None = None,
        timeout_s: float = 180.0,
        bootstrap: str = "",
        audio_env: Mapping[str, str] | None = None,
        restarts: RestartPolicy | None = DEFAULT_RESTARTS,
    ) -> Mesh:
        """Start reputation, origination and decision (and audio); wait until gRPC is SERVING.

        With ``bootstrap`` set, reputation (and audio) consume in consumer groups of their own that
        start at the topics' current end, so records earlier runs and tests left behind are not
        their work. With ``audio_env`` (extra variables for it) the audio worker runs too. Then the
        services are supervised under ``restarts`` (None: a dead service stays dead).
        """
        mesh = cls()
        # Production sub-deadlines and breakers: nothing here relaxes them (issue 15). Decision
        # verifies SHAKEN in-process with the same trust anchors, its certificates from
        # origination's feed (services.decision.verification).
        common = {
            "FRAUDMESH_CLOCK_SOURCE": "event",
            "FRAUDMESH_METRICS_PORT": "0",
            **(extra_env or {}),
        }
        origination_port, decision_port = free_port(), free_port()
        try:
            mesh.spawn("reputation", "services.reputation", {**common, **fresh_group(bootstrap)})
            if audio_env is not None:
                mesh.start_audio({**common, **audio_env}, bootstrap)
            mesh.spawn(
                "origination",
                "services.origination",
                {
                    **common,
                    "FRAUDMESH_GRPC_PORT": str(origination_port),
                    "FRAUDMESH_STI_TRUST_ANCHORS": str(pki / ROOT_FILE),
                    "FRAUDMESH_X5U_PREWARM_FILE": str(pki / PREWARM_FILE),
                },
                ["serve"],
            )
            mesh._wait_serving("origination", origination_port, "fraudmesh.v1.OriginationService", timeout_s)
            mesh.spawn(
                "decision",
                "services.decision",
                {
                    **common,
                    "FRAUDMESH_GRPC_PORT": str(decision_port),
                    "FRAUDMESH_STI_TRUST_ANCHORS": str(pki / ROOT_FILE),
                    "FRAUDMESH_MODEL_PATH": str(model),
                },
            )
            mesh._wait_serving("decision", decision_port, "fraudmesh.v1.DecisionService", timeout_s)
        except BaseException:
            mesh.stop()
            raise
        mesh.decide_address = f"127.0.0.1:{decision_port}"
        if restarts is not None:
            mesh.supervise(restarts)
        return mesh

    def spawn(
        self, name: str, module: str, env: Mapping[str, str], args: list[str] | None = None, nice: int = 0
    ) -> None:
        """Start service ``name`` (``python -m module``), logging to .stack/logs/<name>-run.log."""
        self.processes[name] = ServiceProcess(module, env, LOGS / f"{name}-run.log", args or [], nice)
        self._specs[name] = (module, env, args, nice)

    def supervise(self, policy: RestartPolicy = DEFAULT_RESTARTS) -> None:
        """Restart any service that exits from now until ``stop`` (same module, arguments, environment)."""
        self.supervisor = Supervisor(
            self.processes, lambda name: self.spawn(name, *self._specs[name]), policy
        )
        self.supervisor.start()

    def start_audio(self, env: Mapping[str, str], bootstrap: str) -> None:
        """Start the audio worker in a fresh consumer group at the end of audio.segments.v1.

        It runs at a lower CPU priority (nice 10): on a small machine it would otherwise take cores
        from Decide during the replay; its backlog is worked off after (verdicts are not on the
        call-setup path).
        """
        group = fresh_group(bootstrap, "fraudmesh-audio-run", (AUDIO_SEGMENTS,))
        self.spawn("audio", "services.audio", {**env, **group}, nice=AUDIO_NICE)

    def _wait_serving(self, name: str, port: int, service: str, timeout_s: float) -> None:
        """Wait for SERVING; a service that died at start is started once more, then it is an error.

        One retry covers a transient start failure of the machine (seen once in CI: gRPC's
        ``pthread_create`` got EAGAIN); a real fault (bad settings, a broken model) fails twice.
        """
        for attempt in (1, 2):
            process = self.processes[name]
            try:
                wait_serving(f"127.0.0.1:{port}", service, timeout_s, process)
                return
            except TimeoutError:
                raise MeshError(
                    f"{name} was not SERVING within {timeout_s:.0f} s:\n{process.tail()}"
                ) from None
            except MeshError as exc:
                if attempt == 2 or process.alive():
                    raise
                log.warning("%s exited at start; starting it once more:\n%s", name, exc)
                process.stop()
                self.spawn(name, *self._specs[name])

    def alive(self, name: str) -> bool:
        """True while the named service runs, or is down but being restarted by the supervisor."""
        running = self.processes[name].alive()
        return running or (self.supervisor is not None and self.supervisor.watching(name))

    @property
    def restarts(self) -> dict[str, int]:
        """Restarts per service so far (services never restarted are left out)."""
        return dict(self.supervisor.restarts) if self.supervisor is not None else {}

    @property
    def failure(self) -> str:
        """Why the mesh is broken for good (a service given up on after its restart budget), or ""."""
        return "; ".join(self.supervisor.failed.values()) if self.supervisor is not None else ""

    def stop(self) -> dict[str, int]:
        """Stop every service (decision first, so its audit queue drains into a live Kafka); exit codes.

        Supervision ends first, so these exits are not taken for crashes.
        """
        if self.supervisor is not None:
            self.supervisor.stop()
        first = [name for name in STOP_ORDER if name in self.processes]
        return {name: self.processes[name].stop() for name in [*first, *self.processes.keys() - set(first)]}


def fresh_group(
    bootstrap: str, prefix: str = "fraudmesh-reputation-run", topics: Sequence[Topic] = REPUTATION_TOPICS
) -> dict[str, str]:
    """FRAUDMESH_APP_ID of a new consumer group committed at the end of its topics (reputation's)."""
    if not bootstrap:
        return {}
    app_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
    for topic in topics:
        start_group_at_end(bootstrap, consumer_group(app_id, topic), topic)
    return {"FRAUDMESH_APP_ID": app_id}


def wait_serving(
    address: str, service: str = "", timeout_s: float = 120.0, process: ServiceProcess | None = None
) -> None:
    """Block until address reports SERVING on grpc.health.v1 (MeshError if process dies, TimeoutError)."""
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(address) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # the typeshed stub lacks the methods
        while time.monotonic() < deadline:
            if process is not None and not process.alive():
                raise MeshError(f"{process.module} exited at start:\n{process.tail()}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise TimeoutError(f"{address} did not report SERVING within {timeout_s:.0f} s")
