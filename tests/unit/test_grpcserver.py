"""The shared gRPC bootstrap serves health and reflection, and gates readiness on warm-up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from fraudmesh.v1 import call_pb2, decision_pb2, decision_pb2_grpc, verdicts_pb2
from services.common.grpcserver import start_server


class _AlwaysAllow(decision_pb2_grpc.DecisionServiceServicer):
    async def Decide(
        self, request: decision_pb2.DecideRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> decision_pb2.DecideResponse:
        return decision_pb2.DecideResponse(decision=verdicts_pb2.Decision(call_id=request.setup.call_id))

    async def DecideStream(
        self,
        request_iterator: AsyncIterator[decision_pb2.DecideRequest],
        context: grpc.aio.ServicerContext[object, object],
    ) -> AsyncIterator[decision_pb2.DecideResponse]:
        async for request in request_iterator:
            yield await self.Decide(request, context)


async def test_health_reflection_and_readiness_gate() -> None:
    name = decision_pb2.DESCRIPTOR.services_by_name["DecisionService"].full_name
    handle = await start_server(
        "127.0.0.1", 0, [name], [(decision_pb2_grpc.add_DecisionServiceServicer_to_server, _AlwaysAllow())]
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{handle.port}") as channel:
            health_stub: Any = health_pb2_grpc.HealthStub(channel)  # typeshed types only the sync stub
            before = await health_stub.Check(health_pb2.HealthCheckRequest(service=name))
            assert before.status == health_pb2.HealthCheckResponse.NOT_SERVING

            await handle.set_serving()
            after = await health_stub.Check(health_pb2.HealthCheckRequest(service=name))
            assert after.status == health_pb2.HealthCheckResponse.SERVING
            overall = await health_stub.Check(health_pb2.HealthCheckRequest(service=""))
            assert overall.status == health_pb2.HealthCheckResponse.SERVING

            reflection_stub: Any = reflection_pb2_grpc.ServerReflectionStub(channel)  # type: ignore[arg-type]
            responses = reflection_stub.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])
            )
            listed = {s.name async for r in responses for s in r.list_services_response.service}
            assert {name, "grpc.health.v1.Health"} <= listed

            reply = await decision_pb2_grpc.DecisionServiceStub(channel).Decide(
                decision_pb2.DecideRequest(setup=call_pb2.CallSetup(call_id="c-1")), timeout=5
            )
            assert reply.decision.call_id == "c-1"
    finally:
        await handle.stop(0)
