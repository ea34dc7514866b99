"""Decide over gRPC for the switch front: one channel, the switch's budget as deadline, never a raise."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from fraudmesh.v1 import call_pb2, decision_pb2, decision_pb2_grpc
from services.common.tracing import outgoing_metadata
from services.switchfront.answer import Cause
from services.switchfront.settings import SwitchFrontSettings

__all__ = ["DecisionClient", "Outcome"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """A Decide response, or why there is none (the cause of a fail-open answer)."""

    response: decision_pb2.DecideResponse | None
    cause: Cause


class DecisionClient:
    """A DecisionService stub on one channel; round_robin over every address the target resolves to."""

    def __init__(self, settings: SwitchFrontSettings) -> None:
        options = [("grpc.lb_policy_name", "round_robin"), ("grpc.enable_retries", 0)]
        if settings.tls_server_ca_file:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=Path(settings.tls_server_ca_file).read_bytes(),
                private_key=Path(settings.tls_client_key_file).read_bytes(),
                certificate_chain=Path(settings.tls_client_cert_file).read_bytes(),
            )
            self.channel = grpc.aio.secure_channel(settings.decision_target, credentials, options=options)
        else:
            self.channel = grpc.aio.insecure_channel(settings.decision_target, options=options)
        self._stub = decision_pb2_grpc.DecisionServiceStub(self.channel)
        self.timeout_s = settings.decide_timeout_s

    async def decide(self, setup: call_pb2.CallSetup, timeout_s: float | None = None) -> Outcome:
        """Decide one call within the budget; a timeout, an unreachable or failing server is a cause."""
        request = decision_pb2.DecideRequest(setup=setup)
        try:
            response: Any = await self._stub.Decide(
                request, timeout=timeout_s or self.timeout_s, metadata=outgoing_metadata()
            )
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return Outcome(None, Cause.TIMEOUT)
            if code == grpc.StatusCode.UNAVAILABLE:
                return Outcome(None, Cause.UNAVAILABLE)
            return Outcome(None, Cause.ERROR)
        except asyncio.CancelledError:
            raise
        except Exception:  # any other failure on the call path is a fail-open, counted by cause
            return Outcome(None, Cause.ERROR)
        return Outcome(response, Cause.DECIDED)

    async def ready(self, timeout_s: float = 1.0) -> bool:
        """True once the channel is connected (readiness)."""
        try:
            await asyncio.wait_for(self.channel.channel_ready(), timeout_s)
        except (TimeoutError, grpc.aio.AioRpcError):
            return False
        return True

    async def close(self) -> None:
        """Close the channel."""
        await self.channel.close()
