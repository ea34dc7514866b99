"""grpc.aio servers with the standard health (grpc.health.v1) and reflection services.

Health starts NOT_SERVING for every registered service and the process flips it to SERVING once
warm (models compiled, caches primed), so Kubernetes' native gRPC readiness probe only routes
calls to a replica that can answer within the call-setup budget.

With ``ServerTls`` the server speaks mutual TLS (a client must present a certificate from the
configured CA). The kubelet's gRPC probe cannot, so a plaintext listener on a separate port may
serve grpc.health.v1 alone, sharing the main server's health state.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common.settings import CommonSettings

OVERALL = ""
SERVER_OPTIONS = [("grpc.so_reuseport", 0), ("grpc.keepalive_permit_without_calls", 1)]


@dataclass(frozen=True)
class ServerTls:
    """PEM material of a gRPC server that requires client certificates (mutual TLS)."""

    cert_chain: bytes
    private_key: bytes
    client_ca: bytes

    @classmethod
    def from_files(cls, cert_file: str, key_file: str, client_ca_file: str) -> ServerTls:
        """Read the server's certificate chain, its key and the CA that client certificates need."""
        return cls(
            Path(cert_file).read_bytes(), Path(key_file).read_bytes(), Path(client_ca_file).read_bytes()
        )

    def credentials(self) -> grpc.ServerCredentials:
        """Server credentials that refuse any client without a certificate chaining to the CA."""
        return grpc.ssl_server_credentials(
            [(self.private_key, self.cert_chain)], root_certificates=self.client_ca, require_client_auth=True
        )


def server_tls(settings: CommonSettings) -> ServerTls | None:
    """The mTLS material named by FRAUDMESH_TLS_*_FILE, or None (plaintext) when they are unset."""
    if not settings.tls_cert_file:
        return None
    return ServerTls.from_files(settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file)


@dataclass
class ServerHandle:
    """A started-but-not-yet-serving gRPC server, its bound port and its health servicer."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    service_names: tuple[str, ...]
    health_server: grpc.aio.Server | None = None
    health_port: int = 0
    # What must stop with the server (background feeds), awaited after in-flight calls finished.
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def set_serving(self, serving: bool = True) -> None:
        """Mark every registered service (and the overall server) SERVING or NOT_SERVING."""
        response = health_pb2.HealthCheckResponse
        status = response.SERVING if serving else response.NOT_SERVING
        for name in (OVERALL, *self.service_names):
            await self.health.set(name, status)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Report NOT_SERVING, then stop accepting calls and let in-flight ones finish."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)
        if self.health_server is not None:
            await self.health_server.stop(0)
        for stop in self.on_stop:
            await stop()


async def start_server(
    bind: str,
    port: int,
    service_names: Iterable[str],
    register: Iterable[tuple[object, object]] = (),
    *,
    max_concurrent_rpcs: int | None = None,
    tls: ServerTls | None = None,
    health_port: int | None = None,
    reuse_port: bool = False,
) -> ServerHandle:
    """Build, register and start a grpc.aio server on ``bind:port`` (port 0 picks a free one).

    ``register`` holds ``(add_XServicer_to_server, servicer)`` pairs from the generated code;
    ``service_names`` are their full names (e.g. ``fraudmesh.v1.DecisionService``) for health and
    reflection. ``tls`` switches the port to mutual TLS; ``health_port`` (0 picks a free one) adds
    a plaintext listener serving only grpc.health.v1. ``reuse_port`` sets SO_REUSEPORT so several
    processes can serve one port (the kernel spreads connections between them).
    """
    names = tuple(service_names)
    options = [("grpc.so_reuseport", 1), *SERVER_OPTIONS[1:]] if reuse_port else SERVER_OPTIONS
    server = grpc.aio.server(maximum_concurrent_rpcs=max_concurrent_rpcs, options=options)
    for add, servicer in register:
        add(servicer, server)  # type: ignore[operator]
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    address = f"{bind}:{port}"
    bound = server.add_secure_port(address, tls.credentials()) if tls else server.add_insecure_port(address)
    if bound == 0:
        raise OSError(f"cannot bind gRPC server to {address}")
    handle = ServerHandle(server, bound, health_servicer, names)
    if health_port is not None:
        handle.health_server = grpc.aio.server(options=SERVER_OPTIONS)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, handle.health_server)
        handle.health_port = handle.health_server.add_insecure_port(f"{bind}:{health_port}")
        if handle.health_port == 0:
            raise OSError(f"cannot bind gRPC health listener to {bind}:{health_port}")
    await handle.set_serving(False)
    await server.start()
    if handle.health_server is not None:
        await handle.health_server.start()
    return handle


async def until_signalled() -> None:
    """Return at the first SIGTERM or SIGINT; the serving process then drains and exits."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
