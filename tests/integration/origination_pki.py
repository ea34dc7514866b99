"""A test-time STI PKI and x5u HTTPS server for the origination integration tests (test-only keys).

``home`` (SPC H001) is provisioned as a local PEM through the pre-warm file, as an air-gapped
operator would; ``other`` (SPC O002) is only reachable at its x5u on a local TLS server, so the
service must fetch it in the background. Keys derive from a public seed: never trust any of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fraudmesh.v1 import call_pb2, common_pb2
from services.origination.fetch import FetchPolicy, HostAllowList, IPAddress, X5uFetcher
from tests.tlsutil import tls_server
from tests.unit.vectors import simpki

SEED = 8801
HOME_X5U = "https://cert.home.test/H001.pem"
OTHER_HOST = "cert.other.test"


@dataclass
class X5uServer:
    """The local HTTPS server of the ``other`` carrier's x5u: URL, TLS trust, connection count."""

    url: str
    port: int
    ca_pem: str
    connections: int = 0
    paths: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Pki:
    """Trust anchor, the two signing carriers, and the files the service reads."""

    root: simpki.Issued
    home: simpki.Issued
    other: simpki.Issued
    anchor_file: Path
    prewarm_file: Path


def build_pki(folder: Path) -> tuple[Pki, bytes]:
    """The PKI written to folder; also returns the other carrier's chain PEM for its x5u server."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
    end = start + timedelta(days=365)
    root = simpki.issue(SEED, "it-sti-ca", None, start, end, ca=True)
    sub = simpki.issue(SEED, "it-sti-subca", root, start, end, ca=True, path_length=0)
    home = simpki.issue(SEED, "it-home", sub, start, end, spcs=["H001"])
    other = simpki.issue(SEED, "it-other", sub, start, end, spcs=["O002"])
    (folder / "root.pem").write_text(root.pem)
    (folder / "home.pem").write_text(home.pem + sub.pem)
    (folder / "prewarm.txt").write_text(f"# test-only\n{HOME_X5U} home.pem\n")
    pki = Pki(root, home, other, folder / "root.pem", folder / "prewarm.txt")
    return pki, (other.pem + sub.pem).encode()


@contextlib.asynccontextmanager
async def x5u_server(folder: Path, chain_pem: bytes) -> AsyncIterator[X5uServer]:
    """Serve chain_pem at https://cert.other.test:<port>/O002.pem (Cache-Control max-age 600)."""
    tls = tls_server(OTHER_HOST, folder)
    state = X5uServer("", 0, tls.ca_pem)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            state.paths.append(head.split(b" ")[1].decode())
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/pem-certificate-chain\r\n"
                + f"Content-Length: {len(chain_pem)}\r\nCache-Control: max-age=600\r\n\r\n".encode()
                + chain_pem
            )
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    listener = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls.context)
    state.port = listener.sockets[0].getsockname()[1]
    state.url = f"https://{OTHER_HOST}:{state.port}/O002.pem"
    try:
        yield state
    finally:
        listener.close()
        await listener.wait_closed()


def loopback_fetcher(server: X5uServer) -> Callable[[str], Awaitable[object]]:
    """The production fetcher, allowed (only here) to reach the loopback test server."""

    async def resolve(_host: str, _port: int) -> list[str]:
        return ["127.0.0.1"]

    def loopback_only(address: IPAddress) -> bool:
        return address.is_loopback

    policy = FetchPolicy(
        HostAllowList(frozenset({OTHER_HOST, "cert.home.test"})),
        ports=frozenset({server.port}),
        address_allowed=loopback_only,
    )
    return X5uFetcher(policy, ssl_context=ssl.create_default_context(cadata=server.ca_pem), resolver=resolve)


def signed_setup(
    carrier: simpki.Issued,
    x5u: str,
    *,
    caller: str = "+8613800138000",
    callee: str = "+8613912345678",
    attest: str = "A",
    iat: int | None = None,
    ingress: common_pb2.IngressKind.ValueType = common_pb2.INGRESS_KIND_DOMESTIC_INTERCONNECT,
    trunk: str = "trunk-ic-1",
) -> call_pb2.CallSetup:
    """A call setup carrying one freshly signed SHAKEN PASSporT (a unique origid each time)."""
    claims = simpki.shaken_claims(
        caller.lstrip("+"),
        [callee.lstrip("+")],
        int(time.time()) if iat is None else iat,
        attest,
        str(uuid.uuid4()),
    )
    token = simpki.jws(carrier.key, simpki.shaken_header(x5u), claims)
    return call_pb2.CallSetup(
        call_id=f"it-{uuid.uuid4()}",
        tenant="demo-cn",
        calling_number=caller,
        called_number=callee,
        identity_headers=[simpki.identity(token, x5u)],
        ingress_trunk_id=trunk,
        ingress_kind=ingress,
    )
