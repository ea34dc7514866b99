"""The x5u fetcher against a local TLS server: every SSRF and download-bomb refusal, and the happy path.

The server listens on 127.0.0.1 with a certificate for ``x5u.test`` from a CA made at test time.
Only these tests allow loopback, through the injected address policy; the default policy refuses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from services.origination.fetch import (
    DEFAULT_PORTS,
    IANA_IPV4_SPECIAL,
    IANA_IPV6_SPECIAL,
    FetchError,
    FetchPolicy,
    FetchRefusal,
    HostAllowList,
    IPAddress,
    SpecialPurposeBlock,
    X5uFetcher,
    check_url,
    is_public_address,
    parse_max_age,
    parse_pem_chain,
    system_resolver,
)
from tests.tlsutil import tls_server
from tests.unit.vectors import simpki

HOST = "x5u.test"
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Server:
    """The scripted local HTTPS server: port, CA PEM, requests seen, SNI names seen, connections."""

    port: int
    ca_pem: str
    chain_pem: bytes
    requests: list[bytes] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)
    connections: int = 0


def _response(status: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("latin-1") + body


def _chunked(body: bytes, size: int = 500) -> bytes:
    out = b""
    for start in range(0, len(body), size):
        piece = body[start : start + size]
        out += f"{len(piece):x};ext=1\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\nX-Trailer: 1\r\n\r\n"


PEM_TYPE = ("Content-Type", "application/pem-certificate-chain")


async def _serve_path(path: str, server: Server, writer: asyncio.StreamWriter) -> None:
    body = server.chain_pem
    scripted: dict[str, bytes] = {
        "/chain.pem": _response(
            "200 OK",
            [PEM_TYPE, ("Content-Length", str(len(body))), ("Cache-Control", "public, max-age=600")],
            body,
        ),
        "/text.pem": _response("200 OK", [("Content-Type", "text/plain; charset=us-ascii")], body),
        "/chunked.pem": _response("200 OK", [PEM_TYPE, ("Transfer-Encoding", "chunked")], _chunked(body)),
        "/redirect": _response(
            "302 Found", [("Location", f"https://{HOST}/chain.pem"), ("Content-Length", "0")]
        ),
        "/moved": _response("301 Moved Permanently", [("Location", "http://169.254.169.254/")]),
        "/404": _response("404 Not Found", [("Content-Length", "0")]),
        "/big-declared": _response("200 OK", [PEM_TYPE, ("Content-Length", "100000")], body),
        "/big-chunked": _response(
            "200 OK", [PEM_TYPE, ("Transfer-Encoding", "chunked")], _chunked(b"A" * 9000, 4000)
        ),
        "/html": _response(
            "200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))], body
        ),
        "/no-type": _response("200 OK", [("Content-Length", str(len(body)))], body),
        "/gzip": _response(
            "200 OK", [PEM_TYPE, ("Content-Encoding", "gzip"), ("Content-Length", str(len(body)))], body
        ),
        "/not-pem": _response("200 OK", [PEM_TYPE, ("Content-Length", "5")], b"hello"),
        "/private-key": _response(
            "200 OK",
            [PEM_TYPE],
            body + b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ),
        "/der": _response(
            "200 OK",
            [PEM_TYPE],
            x509.load_pem_x509_certificate(body).public_bytes(serialization.Encoding.DER),
        ),
        "/garbage": b"SMTP ready\r\n\r\n",
        "/te-and-cl": _response(
            "200 OK", [PEM_TYPE, ("Transfer-Encoding", "chunked"), ("Content-Length", "5")], b"0\r\n\r\n"
        ),
        "/two-lengths": _response(
            "200 OK", [PEM_TYPE, ("Content-Length", "5"), ("Content-Length", "6")], b"x"
        ),
        "/huge-head": _response("200 OK", [PEM_TYPE, *[("X-Pad", "p" * 100)] * 100], body),
        "/truncated": _response("200 OK", [PEM_TYPE, ("Content-Length", str(len(body) + 50))], body),
    }
    if path == "/slow":
        await asyncio.sleep(30)
        return
    if path == "/big-undeclared":
        writer.write(_response("200 OK", [PEM_TYPE]))
        for _ in range(200):
            writer.write(b"A" * 1024)
            await writer.drain()
        return
    writer.write(scripted.get(path, _response("404 Not Found", [("Content-Length", "0")])))
    await writer.drain()


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    tls = tls_server(HOST, tmp_path_factory.mktemp("tls"))
    context = tls.context
    root = simpki.issue(11, "f-root", None, START, START + timedelta(days=365), ca=True)
    sub = simpki.issue(11, "f-sub", root, START, START + timedelta(days=365), ca=True, path_length=0)
    leaf = simpki.issue(11, "f-leaf", sub, START, START + timedelta(days=365), spcs=["F001"])
    state = Server(0, tls.ca_pem, (leaf.pem + sub.pem).encode())

    def remember_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        state.sni.append(name)

    context.sni_callback = remember_sni
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        state.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            state.requests.append(head)
            path = head.split(b" ")[1].decode()
            await _serve_path(path, state, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass
        finally:
            handlers.discard(task)
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError, ssl.SSLError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    listener = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    state.port = listener.sockets[0].getsockname()[1]
    yield state
    for task in list(handlers):
        task.cancel()
    listener.close()
    await listener.wait_closed()


def loopback_resolver(*addresses: str) -> Callable[[str, int], Awaitable[list[str]]]:
    async def resolve(_host: str, _port: int) -> list[str]:
        return list(addresses or ("127.0.0.1",))

    return resolve


def allow_loopback_in_tests(address: IPAddress) -> bool:
    return address.is_loopback


def fetcher(
    server: Server,
    *,
    timeout_s: float = 2.0,
    address_allowed: Callable[[IPAddress], bool] = allow_loopback_in_tests,
    resolver: Callable[[str, int], Awaitable[list[str]]] | None = None,
    hosts: frozenset[str] = frozenset({HOST, "other.test"}),
    context: ssl.SSLContext | None = None,
) -> X5uFetcher:
    policy = FetchPolicy(
        allow=HostAllowList(hosts),
        ports=frozenset({server.port}),
        address_allowed=address_allowed,
        timeout_s=timeout_s,
    )
    return X5uFetcher(
        policy,
        ssl_context=context or ssl.create_default_context(cadata=server.ca_pem),
        resolver=resolver or loopback_resolver(),
    )


def url(server: Server, path: str, host: str = HOST) -> str:
    return f"https://{host}:{server.port}{path}"


async def refusal(coro: Awaitable[object]) -> FetchRefusal:
    with pytest.raises(FetchError) as raised:
        await coro
    return raised.value.reason


# --- the happy paths ---


async def test_fetches_a_pem_chain_over_tls_with_sni_and_max_age(server: Server) -> None:
    before = len(server.sni)
    fetched = await fetcher(server)(url(server, "/chain.pem"))
    assert [c.subject.rfc4514_string() for c in fetched.certificates] == [
        "CN=f-leaf,O=fraudmesh test-only PKI",
        "CN=f-sub,O=fraudmesh test-only PKI",
    ]
    assert fetched.max_age_s == 600
    assert server.sni[before:] == [HOST]
    request = server.requests[-1]
    assert request.startswith(b"GET /chain.pem HTTP/1.1\r\n")
    assert f"\r\nHost: {HOST}:{server.port}\r\n".encode() in request
    assert b"\r\nConnection: close\r\n" in request


@pytest.mark.parametrize("path", ["/text.pem", "/chunked.pem"])
async def test_text_plain_and_chunked_bodies(server: Server, path: str) -> None:
    fetched = await fetcher(server)(url(server, path))
    assert len(fetched.certificates) == 2
    assert fetched.max_age_s is None


# --- refusals over the wire ---


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/redirect", FetchRefusal.REDIRECT),
        ("/moved", FetchRefusal.REDIRECT),
        ("/404", FetchRefusal.HTTP_STATUS),
        ("/big-declared", FetchRefusal.OVERSIZE),
        ("/big-undeclared", FetchRefusal.OVERSIZE),
        ("/big-chunked", FetchRefusal.OVERSIZE),
        ("/html", FetchRefusal.CONTENT_TYPE),
        ("/no-type", FetchRefusal.CONTENT_TYPE),
        ("/gzip", FetchRefusal.CONTENT_ENCODING),
        ("/not-pem", FetchRefusal.NOT_PEM),
        ("/private-key", FetchRefusal.NOT_PEM),
        ("/der", FetchRefusal.NOT_PEM),
        ("/garbage", FetchRefusal.BAD_RESPONSE),
        ("/te-and-cl", FetchRefusal.BAD_RESPONSE),
        ("/two-lengths", FetchRefusal.BAD_RESPONSE),
        ("/huge-head", FetchRefusal.BAD_RESPONSE),
        ("/truncated", FetchRefusal.BAD_RESPONSE),
    ],
)
async def test_wire_refusals(server: Server, path: str, reason: FetchRefusal) -> None:
    assert await refusal(fetcher(server)(url(server, path))) == reason


async def test_redirect_is_not_followed(server: Server) -> None:
    before = len(server.requests)
    assert await refusal(fetcher(server)(url(server, "/redirect"))) == FetchRefusal.REDIRECT
    assert [r.split(b" ")[1] for r in server.requests[before:]] == [b"/redirect"]


async def test_slow_server_times_out(server: Server) -> None:
    started = time.monotonic()
    assert await refusal(fetcher(server, timeout_s=0.3)(url(server, "/slow"))) == FetchRefusal.TIMEOUT
    assert time.monotonic() - started < 1.5


async def test_tls_name_mismatch_is_refused(server: Server) -> None:
    assert (
        await refusal(fetcher(server)(url(server, "/chain.pem", host="other.test")))
        == FetchRefusal.TLS_FAILED
    )


async def test_untrusted_server_certificate_is_refused(server: Server) -> None:
    system_trust = ssl.create_default_context()
    assert (
        await refusal(fetcher(server, context=system_trust)(url(server, "/chain.pem")))
        == FetchRefusal.TLS_FAILED
    )


def test_tls_verification_cannot_be_switched_off() -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError, match="verify"):
        X5uFetcher(FetchPolicy(HostAllowList(frozenset({HOST}))), ssl_context=context)


async def test_connection_refused(server: Server) -> None:
    closed = FetchPolicy(
        HostAllowList(frozenset({HOST})), ports=frozenset({1}), address_allowed=allow_loopback_in_tests
    )
    probe = X5uFetcher(
        closed, ssl_context=ssl.create_default_context(cadata=server.ca_pem), resolver=loopback_resolver()
    )
    assert await refusal(probe(f"https://{HOST}:1/chain.pem")) == FetchRefusal.CONNECT_FAILED


# --- address policy: SSRF ---


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "239.255.255.250",
        "198.18.0.1",
        "192.0.2.1",
        "240.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::1",
        "2002:a00:1::1",
        "64:ff9b::7f00:1",
        "2001:db8::1",
        "2001::1",
        # let through by Python 3.11's ipaddress tables, refused by the explicit allow rule
        "192.0.0.8",
        "3fff::1",
        "192.0.0.9",
        "192.0.0.171",
        "192.88.99.2",
        "5f00::1",
        "100:0:0:1::1",
        "2001:1::1",
        "2001:20::1",
        # IPv4 inside IPv6: judged by the embedded address, or refused
        "64:ff9b::10.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::808:808",
        "2002:0a00:0001::",
        "::8.8.8.8",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        # the rest of the special-purpose list
        "198.19.255.1",
        "203.0.113.9",
        "fec0::1",
        "4000::1",
    ],
)
def test_default_policy_refuses_non_public_addresses(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700::1111",
        "2606:4700:4700::1111",
        "2002:808:808::1",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "192.31.196.1",
        "192.175.48.6",
        "2620:4f:8000::1",
        "223.255.255.254",
        "2a00:1450:4001:80b::200e",
    ],
)
def test_default_policy_allows_public_unicast(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


def test_address_rule_does_not_rely_on_the_interpreters_tables() -> None:
    """The interpreter's is_global may say yes where the registry says no; the rule must not follow it."""
    for address in ("192.0.0.8", "3fff::1"):
        assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("table", "version"), [(IANA_IPV4_SPECIAL, 4), (IANA_IPV6_SPECIAL, 6)], ids=["ipv4", "ipv6"]
)
def test_every_registry_block_not_marked_globally_reachable_is_refused(
    table: tuple[SpecialPurposeBlock, ...], version: int
) -> None:
    assert len(table) >= 25
    for entry in table:
        network = ipaddress.ip_network(entry.block)
        assert network.version == version
        assert entry.name
        assert entry.rfc.startswith("RFC")
        if entry.globally_reachable is True:
            continue
        embeds_ipv4 = entry.block in ("::ffff:0:0/96", "2002::/16")
        for address in (
            network.network_address,
            network.broadcast_address,
            network[network.num_addresses // 2],
        ):
            if embeds_ipv4:
                continue  # judged by the IPv4 address inside (covered above)
            assert not is_public_address(address), (entry.block, str(address))


def test_globally_reachable_entries_inside_a_refused_block_stay_refused() -> None:
    inside = [e for e in IANA_IPV4_SPECIAL + IANA_IPV6_SPECIAL if e.globally_reachable is True]
    refused_parents = [
        ipaddress.ip_network(e.block)
        for e in IANA_IPV4_SPECIAL + IANA_IPV6_SPECIAL
        if e.globally_reachable is False
    ]
    nested = [
        e
        for e in inside
        if any(
            ipaddress.ip_network(e.block).version == parent.version
            and ipaddress.ip_network(e.block).subnet_of(parent)  # type: ignore[arg-type]
            for parent in refused_parents
        )
    ]
    assert {e.block for e in nested} >= {"192.0.0.9/32", "192.0.0.10/32", "2001:3::/32", "2001:20::/28"}
    for entry in nested:
        assert not is_public_address(ipaddress.ip_network(entry.block).network_address), entry.block


@pytest.mark.parametrize(
    "addresses",
    [("127.0.0.1",), ("10.0.0.7",), ("8.8.8.8", "127.0.0.1"), ("::ffff:169.254.169.254",)],
)
async def test_default_policy_refuses_before_connecting(server: Server, addresses: tuple[str, ...]) -> None:
    before = server.connections
    probe = fetcher(server, address_allowed=is_public_address, resolver=loopback_resolver(*addresses))
    assert await refusal(probe(url(server, "/chain.pem"))) == FetchRefusal.ADDRESS_REFUSED
    assert server.connections == before


async def test_resolution_happens_once_and_the_checked_address_is_used(server: Server) -> None:
    calls: list[tuple[str, int]] = []

    async def rebinding(host: str, port: int) -> list[str]:
        calls.append((host, port))
        return ["127.0.0.1"] if len(calls) == 1 else ["10.0.0.1"]

    fetched = await fetcher(server, resolver=rebinding)(url(server, "/chain.pem"))
    assert len(fetched.certificates) == 2
    assert calls == [(HOST, server.port)]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (OSError("nxdomain"), FetchRefusal.DNS_FAILED),
        ([], FetchRefusal.DNS_FAILED),
        (["not-an-ip"], FetchRefusal.DNS_FAILED),
    ],
)
async def test_dns_failures(server: Server, answer: OSError | list[str], reason: FetchRefusal) -> None:
    async def resolve(_host: str, _port: int) -> list[str]:
        if isinstance(answer, OSError):
            raise answer
        return answer

    assert await refusal(fetcher(server, resolver=resolve)(url(server, "/chain.pem"))) == reason


async def test_system_resolver_resolves_localhost() -> None:
    addresses = await system_resolver("localhost", 443)
    assert addresses
    assert all(ipaddress.ip_address(a).is_loopback for a in addresses)


# --- URL checks (no network) ---

ALLOW = FetchPolicy(HostAllowList.of(["cert.carrier.example", ".sti.example"]))


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        ("http://cert.carrier.example/a.pem", FetchRefusal.NOT_HTTPS),
        ("ftp://cert.carrier.example/a.pem", FetchRefusal.NOT_HTTPS),
        ("file:///etc/passwd", FetchRefusal.NOT_HTTPS),
        ("//cert.carrier.example/a.pem", FetchRefusal.NOT_HTTPS),
        ("https://user@cert.carrier.example/a.pem", FetchRefusal.USERINFO),
        ("https://user:pw@cert.carrier.example/a.pem", FetchRefusal.USERINFO),
        ("https://cert.carrier.example@127.0.0.1/a.pem", FetchRefusal.USERINFO),
        ("https://cert.carrier.example/a.pem?x=1", FetchRefusal.QUERY),
        ("https://cert.carrier.example/a.pem?", FetchRefusal.QUERY),
        ("https://cert.carrier.example/a.pem#frag", FetchRefusal.FRAGMENT),
        ("https://cert.carrier.example:80/a.pem", FetchRefusal.PORT_NOT_ALLOWED),
        ("https://cert.carrier.example:8080/a.pem", FetchRefusal.PORT_NOT_ALLOWED),
        ("https://cert.carrier.example:99999/a.pem", FetchRefusal.BAD_URL),
        ("https://cert.carrier.example:x/a.pem", FetchRefusal.BAD_URL),
        ("https://other.example/a.pem", FetchRefusal.HOST_NOT_ALLOWED),
        ("https://sti.example/a.pem", FetchRefusal.HOST_NOT_ALLOWED),
        ("https://evilsti.example/a.pem", FetchRefusal.HOST_NOT_ALLOWED),
        ("https://cert.carrier.example.evil.test/a.pem", FetchRefusal.HOST_NOT_ALLOWED),
        ("https://127.0.0.1/a.pem", FetchRefusal.HOST_NOT_ALLOWED),
        ("https://[::1]/a.pem", FetchRefusal.HOST_NOT_ALLOWED),
        ("https://cert.carrier.example./a.pem", FetchRefusal.BAD_URL),
        ("https:///a.pem", FetchRefusal.BAD_URL),
        ("https://cert.carrier.example/a b.pem", FetchRefusal.BAD_URL),
        ("https://cert.carrier.example/a\\b.pem", FetchRefusal.BAD_URL),
        ("https://cert.carrier.example/\r\nHost: x", FetchRefusal.BAD_URL),
        ("https://cert.carrier.\u0435xample/a.pem", FetchRefusal.BAD_URL),
        ("https://cert.carrier.example/" + "a" * 1100, FetchRefusal.BAD_URL),
        ("", FetchRefusal.BAD_URL),
    ],
)
def test_url_refusals(candidate: str, reason: FetchRefusal) -> None:
    with pytest.raises(FetchError) as raised:
        check_url(candidate, ALLOW)
    assert raised.value.reason == reason


@pytest.mark.parametrize(
    ("candidate", "host", "port", "path"),
    [
        ("https://cert.carrier.example/a.pem", "cert.carrier.example", 443, "/a.pem"),
        ("HTTPS://CERT.carrier.example:8443/x/y.pem", "cert.carrier.example", 8443, "/x/y.pem"),
        ("https://a.b.sti.example", "a.b.sti.example", 443, "/"),
    ],
)
def test_url_accepted(candidate: str, host: str, port: int, path: str) -> None:
    target = check_url(candidate, ALLOW)
    assert (target.host, target.port, target.path) == (host, port, path)


def test_allow_list_validation() -> None:
    assert {443, 8443} == DEFAULT_PORTS
    with pytest.raises(ValueError, match="suffixes"):
        HostAllowList(suffixes=("example",))
    with pytest.raises(ValueError, match="suffixes"):
        HostAllowList(suffixes=(".com",))
    with pytest.raises(ValueError, match="hosts"):
        HostAllowList(frozenset({"Cert.Example"}))
    assert not HostAllowList().allows("anything.example")


async def test_default_policy_refuses_the_test_server_outright(server: Server) -> None:
    production = X5uFetcher(FetchPolicy(HostAllowList(frozenset({HOST}))), resolver=loopback_resolver())
    assert await refusal(production(url(server, "/chain.pem"))) == FetchRefusal.PORT_NOT_ALLOWED
    assert await refusal(production(f"https://{HOST}/chain.pem")) == FetchRefusal.ADDRESS_REFUSED


# --- body parsing helpers ---


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("max-age=600", 600),
        ("public, max-age=60, must-revalidate", 60),
        ('max-age="30"', 30),
        ("MAX-AGE=5", 5),
        ("s-maxage=10", None),
        ("no-store", None),
        ("max-age=-1", None),
        ("max-age=99999999999", None),
        ("", None),
    ],
)
def test_parse_max_age(value: str, expected: int | None) -> None:
    assert parse_max_age(value) == expected


async def test_parse_pem_chain_limits(server: Server) -> None:
    assert len(parse_pem_chain(server.chain_pem)) == 2
    with pytest.raises(FetchError) as raised:
        parse_pem_chain(server.chain_pem * 3, max_certificates=4)
    assert raised.value.reason == FetchRefusal.NOT_PEM
    with pytest.raises(FetchError):
        parse_pem_chain(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(FetchError):
        parse_pem_chain(b"")
    assert len(parse_pem_chain(server.chain_pem.replace(b"\n", b"\r\n"))) == 2
