"""Decision and the switch front as local processes, for `make sip-smoke`, the interop tests and the
benchmark: decision at production settings with its admin API (to put a caller on the deny list),
the front on free loopback ports for SIP (UDP and TCP) and HTTP."""

from __future__ import annotations

import secrets
import socket
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from fraudmesh.v1 import admin_pb2, admin_pb2_grpc
from loadtest.mesh import free_port, wait_serving
from loadtest.processes import REPO_ROOT, ServiceProcess

__all__ = ["SwitchStack", "free_udp_and_tcp_port", "log_folder", "wait_front"]

LOGS = REPO_ROOT / ".stack" / "logs"


def free_udp_and_tcp_port() -> int:
    """A port free for both UDP and TCP on loopback right now."""
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise OSError("no loopback port free for both UDP and TCP")


@dataclass
class SwitchStack:
    """Running decision and switch-front processes and their addresses."""

    decision: ServiceProcess
    front: ServiceProcess
    decision_port: int
    admin_port: int
    sip_port: int
    http_port: int
    metrics_port: int
    admin_token: str
    extra: dict[str, ServiceProcess] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        env: Mapping[str, str],
        front_env: Mapping[str, str] | None = None,
        timeout_s: float = 120.0,
        *,
        in_process: bool = False,
    ) -> SwitchStack:
        """Start decision (no origination target: SHAKEN is verified only where anchors are given)
        and the front, which calls it over gRPC or (``in_process``) runs the decision core itself
        (decision then serves only the admin API's lists, shared through Redis); wait for both."""
        token = secrets.token_hex(16)
        decision_port, admin_port = free_port(), free_port()
        sip_port, http_port, metrics_port = free_udp_and_tcp_port(), free_port(), free_port()
        decision = ServiceProcess(
            "services.decision",
            {
                **env,
                "FRAUDMESH_GRPC_PORT": str(decision_port),
                "FRAUDMESH_ORIGINATION_TARGET": "",
                "FRAUDMESH_ADMIN_TOKEN": token,
                "FRAUDMESH_ADMIN_PORT": str(admin_port),
                "FRAUDMESH_METRICS_PORT": "0",
            },
            LOGS / f"switch-decision-{decision_port}.log",
        )
        front = ServiceProcess(
            "services.switchfront",
            {
                **env,
                "FRAUDMESH_DECISION_TARGET": "" if in_process else f"127.0.0.1:{decision_port}",
                "FRAUDMESH_ORIGINATION_TARGET": "",
                "FRAUDMESH_SIP_PORT": str(sip_port),
                "FRAUDMESH_HTTP_PORT": str(http_port),
                "FRAUDMESH_METRICS_PORT": str(metrics_port),
                **(front_env or {}),
            },
            LOGS / f"switchfront-{sip_port}.log",
        )
        stack = cls(decision, front, decision_port, admin_port, sip_port, http_port, metrics_port, token)
        try:
            wait_serving(f"127.0.0.1:{decision_port}", "fraudmesh.v1.DecisionService", timeout_s, decision)
            wait_front(front, http_port, timeout_s)
        except BaseException:
            stack.stop()
            raise
        return stack

    def deny(self, number: str, tenant: str = "") -> None:
        """Put a caller on the deny list through decision's admin API."""
        with grpc.insecure_channel(f"127.0.0.1:{self.admin_port}") as channel:
            admin_pb2_grpc.AdminServiceStub(channel).PutListEntry(
                admin_pb2.PutListEntryRequest(
                    tenant=tenant, number=number, kind=admin_pb2.LIST_KIND_DENY, ttl_s=600, reason="sip check"
                ),
                metadata=(("authorization", f"Bearer {self.admin_token}"),),
                timeout=5.0,
            )

    def metric(self, name: str, **labels: str) -> float:
        """The sum of one front metric's samples whose labels include ``labels``."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{key}="{value}"' in line for key, value in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self) -> None:
        """Stop the front first (its answers in flight), then decision."""
        for process in (*self.extra.values(), self.front, self.decision):
            process.stop()


def log_folder(name: str) -> Path:
    """A folder for one run's SIPp files under .stack/logs."""
    folder = LOGS / "sipp" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait_front(process: ServiceProcess, http_port: int, timeout_s: float, path: str = "/readyz") -> None:
    """Block until the front's HTTP endpoint answers 200 on path (readyz: decision reachable)."""
    deadline = time.monotonic() + timeout_s
    url = f"http://127.0.0.1:{http_port}{path}"
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"the switch front exited at start:\n{process.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the switch front was not ready within {timeout_s:.0f} s:\n{process.tail()}")
