"""Decide for the switch front: in this process (the decision core) or over gRPC; never a raise.

Both give an ``Outcome``: the DecideResponse, or the cause of a fail-open answer (timeout,
unavailable, error). In process, a call whose budget runs out is answered fail-open while its
decision finishes in the background, so its audit record still lands (as the gRPC server does).
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
from opentelemetry import trace

from fraudmesh.v1 import call_pb2, decision_pb2, decision_pb2_grpc
from services.common.tracing import outgoing_metadata
from services.decision.decider import Outcome as DecisionOutcome
from services.decision.service import Core, build_core
from services.switchfront.answer import Cause
from services.switchfront.settings import SwitchFrontSettings

__all__ = ["DecisionClient", "Decisions", "InProcessDecisions", "Outcome"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """A Decide response, or why there is none (the cause of a fail-open answer)."""

    response: decision_pb2.DecideResponse | None
    cause: Cause


@functools.cache
def _tracer() -> trace.Tracer:
    """The tracer, looked up once telemetry has installed its provider (not at import time)."""
    return trace.get_tracer(__name__)


class Decisions(Protocol):
    """What the front needs of Decide."""

    async def decide(self, setup: call_pb2.CallSetup, timeout_s: float | None = None) -> Outcome: ...

    async def ready(self, timeout_s: float = 1.0) -> bool: ...

    async def close(self) -> None: ...


class InProcessDecisions:
    """The decision core in this process (services.decision.service.build_core)."""

    def __init__(self, core: Core, timeout_s: float) -> None:
        self.core = core
        self.timeout_s = timeout_s
        self._pending: set[asyncio.Future[DecisionOutcome]] = set()

    @classmethod
    async def build(cls, settings: SwitchFrontSettings) -> InProcessDecisions:
        """Load and warm the decision core (a bad model or trust anchors are fatal, as for decision)."""
        return cls(await build_core(settings), settings.decide_timeout_s)

    async def decide(self, setup: call_pb2.CallSetup, timeout_s: float | None = None) -> Outcome:
        """Decide within the budget; the decision itself is fail-open inside, so only time can fail."""
        budget = timeout_s or self.timeout_s
        task = asyncio.ensure_future(self.core.decider.decide(setup, budget, parent=None))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        try:
            outcome = await asyncio.wait_for(asyncio.shield(task), budget)
        except TimeoutError:
            return Outcome(None, Cause.TIMEOUT)
        except asyncio.CancelledError:
            raise
        except Exception:  # never expected (decide never raises); counted, the call goes on
            return Outcome(None, Cause.ERROR)
        response = decision_pb2.DecideResponse(decision=outcome.decision)
        if outcome.origination is not None:
            response.origination.CopyFrom(outcome.origination)
        return Outcome(response, Cause.DECIDED)

    async def ready(self, timeout_s: float = 1.0) -> bool:
        """Always: the core was warm before the front listened."""
        return True

    async def close(self) -> None:
        """Let decisions in flight finish (bounded), then drain the audit queue and close clients."""
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=5.0)
        await self.core.close()


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
            with _tracer().start_as_current_span("switchfront.decide", kind=trace.SpanKind.CLIENT):
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
