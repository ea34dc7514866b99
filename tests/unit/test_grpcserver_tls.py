"""Mutual TLS on the shared gRPC server: only clients with a certificate from the CA are served.

Certificates are generated at test time; nothing secret is kept in the repository.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fraudmesh.v1 import call_pb2, decision_pb2, decision_pb2_grpc
from services.common.grpcserver import ServerHandle, ServerTls, server_tls, start_server
from services.common.settings import CommonSettings, Secret, SettingsError, load
from tests.tlsutil import Pki, mesh_pki
from tests.unit.test_grpcserver import _AlwaysAllow

SERVICE = decision_pb2.DESCRIPTOR.services_by_name["DecisionService"].full_name


@pytest.fixture(scope="module")
def pki() -> Pki:
    return mesh_pki()


@pytest.fixture
async def mtls_server(pki: Pki) -> AsyncIterator[ServerHandle]:
    handle = await start_server(
        "127.0.0.1",
        0,
        [SERVICE],
        [(decision_pb2_grpc.add_DecisionServiceServicer_to_server, _AlwaysAllow())],
        tls=ServerTls(pki.server.cert, pki.server.key, pki.ca),
        health_port=0,
    )
    await handle.set_serving()
    try:
        yield handle
    finally:
        await handle.stop(0)


async def _decide(channel: grpc.aio.Channel) -> str:
    reply = await decision_pb2_grpc.DecisionServiceStub(channel).Decide(
        decision_pb2.DecideRequest(setup=call_pb2.CallSetup(call_id="c-1")), timeout=5
    )
    return reply.decision.call_id


async def test_client_with_a_mesh_certificate_is_served(pki: Pki, mtls_server: ServerHandle) -> None:
    credentials = grpc.ssl_channel_credentials(pki.ca, pki.client.key, pki.client.cert)
    async with grpc.aio.secure_channel(f"127.0.0.1:{mtls_server.port}", credentials) as channel:
        assert await _decide(channel) == "c-1"


@pytest.mark.parametrize("who", ["no certificate", "another CA's certificate", "plaintext"])
async def test_other_clients_are_refused(pki: Pki, mtls_server: ServerHandle, who: str) -> None:
    target = f"127.0.0.1:{mtls_server.port}"
    channel: grpc.aio.Channel
    if who == "plaintext":
        channel = grpc.aio.insecure_channel(target)
    elif who == "no certificate":
        channel = grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(pki.ca))
    else:
        credentials = grpc.ssl_channel_credentials(pki.ca, pki.stranger.key, pki.stranger.cert)
        channel = grpc.aio.secure_channel(target, credentials)
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _decide(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_plaintext_health_listener_serves_only_health(mtls_server: ServerHandle) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{mtls_server.health_port}") as channel:
        health_stub: Any = health_pb2_grpc.HealthStub(channel)  # typeshed types only the sync stub
        reply = await health_stub.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await _decide(channel)
        assert missing.value.code() == grpc.StatusCode.UNIMPLEMENTED

        await mtls_server.set_serving(False)
        reply = await health_stub.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING


def test_tls_is_off_unless_configured_and_all_three_files_are_needed(pki: Pki, tmp_path: Path) -> None:
    key = {"FRAUDMESH_PSEUDONYM_KEY": "ab" * 32}
    assert server_tls(load(CommonSettings, key)) is None

    files = {"cert": pki.server.cert, "key": pki.server.key, "ca": pki.ca}
    for name, pem in files.items():
        (tmp_path / name).write_bytes(pem)
    env = {
        **key,
        "FRAUDMESH_TLS_CERT_FILE": str(tmp_path / "cert"),
        "FRAUDMESH_TLS_KEY_FILE": str(tmp_path / "key"),
        "FRAUDMESH_TLS_CLIENT_CA_FILE": str(tmp_path / "ca"),
    }
    assert server_tls(load(CommonSettings, env)) == ServerTls(pki.server.cert, pki.server.key, pki.ca)

    with pytest.raises(SettingsError, match="must be set together"):
        load(CommonSettings, {**key, "FRAUDMESH_TLS_CERT_FILE": str(tmp_path / "cert")})
    assert CommonSettings(pseudonym_key=Secret(b"k" * 32)).grpc_health_port == 0
