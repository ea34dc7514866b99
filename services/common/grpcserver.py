"""grpc.aio servers with the standard health (grpc.health.v1) and reflection services.

Health starts NOT_SERVING for every registered service and the process flips it to SERVING once
warm (models compiled, caches primed), so Kubernetes' native gRPC readiness probe only routes
calls to a replica that can answer within the call-setup budget.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

OVERALL = ""


@dataclass
class ServerHandle:
    """A started-but-not-yet-serving gRPC server, its bound port and its health servicer."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    service_names: tuple[str, ...]

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


async def start_server(
    bind: str,
    port: int,
    service_names: Iterable[str],
    register: Iterable[tuple[object, object]] = (),
    *,
    max_concurrent_rpcs: int | None = None,
) -> ServerHandle:
    """Build, register and start a grpc.aio server on ``bind:port`` (port 0 picks a free one).

    ``register`` holds ``(add_XServicer_to_server, servicer)`` pairs from the generated code;
    ``service_names`` are their full names (e.g. ``fraudmesh.v1.DecisionService``) for health and
    reflection.
    """
    names = tuple(service_names)
    server = grpc.aio.server(
        maximum_concurrent_rpcs=max_concurrent_rpcs,
        options=[("grpc.so_reuseport", 0), ("grpc.keepalive_permit_without_calls", 1)],
    )
    for add, servicer in register:
        add(servicer, server)  # type: ignore[operator]
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    bound = server.add_insecure_port(f"{bind}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind gRPC server to {bind}:{port}")
    handle = ServerHandle(server, bound, health_servicer, names)
    await handle.set_serving(False)
    await server.start()
    return handle
