"""The x5u fetcher: downloads an STI certificate chain without becoming an SSRF or download-bomb vector.

An x5u URL arrives in an unauthenticated SIP header, so it is attacker-controlled until the chain
behind it verifies. Asterisk got this wrong (CVE-2022-26498: unbounded downloads; CVE-2022-26499:
requests to arbitrary internal addresses). Here a fetch:

* accepts only ``https`` URLs without userinfo, query or fragment, whose host is on the allow-list
  (exact names or ``.suffix`` entries) and whose port is allowed (443 and 8443 by default);
* resolves the host once, refuses the whole answer if any address is private, loopback,
  link-local, multicast, reserved, unspecified or otherwise not global (IPv4-mapped and 6to4
  addresses are judged by the IPv4 address inside), and connects to an address it checked, so a
  second DNS answer cannot rebind it to an internal address;
* verifies TLS against the host name (SNI and certificate name are the URL host);
* treats any redirect as a failure, caps the header block and the body (8 KiB by default; a larger
  Content-Length is refused before reading, a longer body stops being read), and accepts only PEM
  certificates served as ``application/pem-certificate-chain``, ``application/x-pem-file`` or
  ``text/plain`` without content coding;
* gives up after a short total timeout (2 s by default).

The address policy and resolver are injectable so tests can allow 127.0.0.1 explicitly; the
default policy never does.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from cryptography import x509

__all__ = [
    "DEFAULT_PORTS",
    "FetchError",
    "FetchPolicy",
    "FetchRefusal",
    "FetchedChain",
    "HostAllowList",
    "IPAddress",
    "TargetUrl",
    "X5uFetcher",
    "check_url",
    "is_public_address",
    "parse_max_age",
    "parse_pem_chain",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

DEFAULT_PORTS: Final = frozenset({443, 8443})
MAX_URL_LENGTH: Final = 1024
MAX_HEADER_BLOCK: Final = 8192
CONTENT_TYPES: Final = frozenset(
    {"application/pem-certificate-chain", "application/x-pem-file", "text/plain"}
)

_URL_CHARS: Final = re.compile(r"[!#-;=?-\[\]_a-z~]+")
_STATUS_LINE: Final = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: [^\r\n]*)?")
_HEX_DIGITS: Final = frozenset(b"0123456789abcdefABCDEF")
_HEADER_NAME: Final = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_PEM_CHAIN: Final = re.compile(
    rb"(?:\s*-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----)+\s*"
)
_MAX_AGE: Final = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?([0-9]{1,10})\"?\s*(?:,|$)", re.IGNORECASE)


class FetchRefusal(enum.Enum):
    """Why an x5u fetch was refused or failed, as a stable string for metrics and logs."""

    BAD_URL = "bad_url"
    NOT_HTTPS = "not_https"
    USERINFO = "userinfo"
    QUERY = "query"
    FRAGMENT = "fragment"
    HOST_NOT_ALLOWED = "host_not_allowed"
    PORT_NOT_ALLOWED = "port_not_allowed"
    DNS_FAILED = "dns_failed"
    ADDRESS_REFUSED = "address_refused"
    CONNECT_FAILED = "connect_failed"
    TLS_FAILED = "tls_failed"
    TIMEOUT = "timeout"
    REDIRECT = "redirect"
    HTTP_STATUS = "http_status"
    BAD_RESPONSE = "bad_response"
    OVERSIZE = "oversize"
    CONTENT_TYPE = "content_type"
    CONTENT_ENCODING = "content_encoding"
    NOT_PEM = "not_pem"


class FetchError(Exception):
    """An x5u fetch was refused or failed; ``reason`` says why (the message never holds the body)."""

    def __init__(self, reason: FetchRefusal, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class HostAllowList:
    """Hosts an x5u may name: exact lower-case names, or suffixes starting with '.' (subdomains only)."""

    hosts: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Reject entries that would match more than intended."""
        if any(not suffix.startswith(".") or suffix.count(".") < 2 for suffix in self.suffixes):
            raise ValueError("allow-list suffixes must look like '.example.com'")
        if any(host != host.lower() or not host or host.endswith(".") for host in self.hosts):
            raise ValueError("allow-list hosts must be lower-case names without a trailing dot")

    @classmethod
    def of(cls, entries: Iterable[str]) -> HostAllowList:
        """Build from mixed entries: '.example.com' is a suffix, anything else an exact host."""
        items = [entry.strip().lower() for entry in entries if entry.strip()]
        return cls(
            frozenset(e for e in items if not e.startswith(".")), tuple(e for e in items if e.startswith("."))
        )

    def allows(self, host: str) -> bool:
        """True if host is listed exactly or ends with a listed suffix."""
        return host in self.hosts or any(host.endswith(suffix) for suffix in self.suffixes)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped or 6to4 IPv6 address carries, if any."""
    if isinstance(address, ipaddress.IPv6Address):
        return address.ipv4_mapped or address.sixtofour
    return None


def is_public_address(address: IPAddress) -> bool:
    """The default address policy: only global unicast addresses (and what they embed) may be fetched."""
    for candidate in (address, _embedded_ipv4(address)):
        if candidate is None:
            continue
        if (
            not candidate.is_global
            or candidate.is_private
            or candidate.is_loopback
            or candidate.is_link_local
            or candidate.is_multicast
            or candidate.is_reserved
            or candidate.is_unspecified
        ):
            return False
    return True


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """What the fetcher may contact and accept; the defaults are the production limits."""

    allow: HostAllowList
    ports: frozenset[int] = DEFAULT_PORTS
    address_allowed: Callable[[IPAddress], bool] = field(default=is_public_address)
    max_bytes: int = 8192
    timeout_s: float = 2.0
    max_certificates: int = 4


@dataclass(frozen=True, slots=True)
class TargetUrl:
    """An x5u URL that passed the static checks: host (lower case), port and request path."""

    host: str
    port: int
    path: str


@dataclass(frozen=True, slots=True)
class FetchedChain:
    """Certificates served at an x5u URL (leaf first) and the Cache-Control max-age, if any."""

    url: str
    certificates: tuple[x509.Certificate, ...]
    max_age_s: int | None


def check_url(url: str, policy: FetchPolicy) -> TargetUrl:
    """Apply every check that needs no network to an x5u URL; raises FetchError with the reason."""
    if len(url) > MAX_URL_LENGTH or not _URL_CHARS.fullmatch(url):
        raise FetchError(FetchRefusal.BAD_URL, "empty, too long or contains characters not allowed")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchError(FetchRefusal.BAD_URL, "unparseable URL") from None
    if parts.scheme.lower() != "https":
        raise FetchError(FetchRefusal.NOT_HTTPS, "only https URLs are fetched")
    if "@" in parts.netloc:
        raise FetchError(FetchRefusal.USERINFO, "URL carries userinfo")
    if "?" in url:
        raise FetchError(FetchRefusal.QUERY, "URL carries a query")
    if "#" in url:
        raise FetchError(FetchRefusal.FRAGMENT, "URL carries a fragment")
    host = parts.hostname
    if not host or host.endswith(".") or "%" in host:
        raise FetchError(FetchRefusal.BAD_URL, "URL has no usable host")
    if not policy.allow.allows(host):
        raise FetchError(FetchRefusal.HOST_NOT_ALLOWED, "host is not on the allow-list")
    port = 443 if port is None else port
    if port not in policy.ports:
        raise FetchError(FetchRefusal.PORT_NOT_ALLOWED, f"port {port} is not allowed")
    path = parts.path or "/"
    if not path.startswith("/"):
        raise FetchError(FetchRefusal.BAD_URL, "URL path is not absolute")
    return TargetUrl(host, port, path)


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve host to its TCP addresses with the system resolver, in the order it returns them."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_max_age(cache_control: str) -> int | None:
    """The max-age of a Cache-Control value in seconds, or None when absent or unparseable."""
    match = _MAX_AGE.search(cache_control)
    return int(match.group(1)) if match else None


def parse_pem_chain(body: bytes, max_certificates: int = 4) -> tuple[x509.Certificate, ...]:
    """Parse a body that must consist only of PEM CERTIFICATE blocks; raises FetchError(NOT_PEM)."""
    if _PEM_CHAIN.fullmatch(body) is None:
        raise FetchError(FetchRefusal.NOT_PEM, "body is not only PEM certificates")
    try:
        certificates = tuple(x509.load_pem_x509_certificates(body))
    except ValueError:
        raise FetchError(FetchRefusal.NOT_PEM, "PEM certificate does not parse") from None
    if not 1 <= len(certificates) <= max_certificates:
        raise FetchError(FetchRefusal.NOT_PEM, "wrong number of certificates")
    return certificates


def _parse_head(head: bytes) -> tuple[int, dict[bytes, bytes]]:
    """Status code and lower-cased headers of a response head; repeated headers joined with ', '."""
    lines = head[:-4].split(b"\r\n")
    status = _STATUS_LINE.fullmatch(lines[0])
    if status is None:
        raise FetchError(FetchRefusal.BAD_RESPONSE, "bad status line")
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or _HEADER_NAME.fullmatch(name) is None:
            raise FetchError(FetchRefusal.BAD_RESPONSE, "bad header line")
        key = name.lower()
        value = value.strip(b" \t")
        headers[key] = headers[key] + b", " + value if key in headers else value
    return int(status.group(1)), headers


class X5uFetcher:
    """Fetches x5u certificate chains under a FetchPolicy; one short-lived HTTPS/1.1 GET per call."""

    def __init__(
        self,
        policy: FetchPolicy,
        *,
        ssl_context: ssl.SSLContext | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        context = ssl_context if ssl_context is not None else ssl.create_default_context()
        if context.verify_mode != ssl.CERT_REQUIRED or not context.check_hostname:
            raise ValueError("the TLS context must verify certificates and host names")
        if policy.max_bytes < 1 or policy.timeout_s <= 0:
            raise ValueError("max_bytes and timeout_s must be positive")
        self._policy = policy
        self._context = context
        self._resolver = resolver

    async def __call__(self, url: str) -> FetchedChain:
        """Fetch and parse the chain at url; raises FetchError with the reason on any refusal."""
        target = check_url(url, self._policy)
        try:
            async with asyncio.timeout(self._policy.timeout_s):
                addresses = await self._resolve(target)
                reader, writer = await self._connect(target, addresses)
                try:
                    status, headers, body = await self._exchange(target, reader, writer)
                finally:
                    writer.transport.abort()
        except TimeoutError:
            raise FetchError(FetchRefusal.TIMEOUT, "x5u fetch timed out") from None
        if 300 <= status < 400:
            raise FetchError(FetchRefusal.REDIRECT, f"redirect ({status}) refused")
        if status != 200:
            raise FetchError(FetchRefusal.HTTP_STATUS, f"status {status}")
        certificates = parse_pem_chain(body, self._policy.max_certificates)
        max_age = parse_max_age(headers.get(b"cache-control", b"").decode("latin-1"))
        return FetchedChain(url, certificates, max_age)

    async def _resolve(self, target: TargetUrl) -> list[str]:
        """Resolve once and insist every address passes the address policy."""
        try:
            addresses = await self._resolver(target.host, target.port)
            parsed = [ipaddress.ip_address(address) for address in addresses]
        except (OSError, ValueError, UnicodeError):
            raise FetchError(FetchRefusal.DNS_FAILED, "host did not resolve") from None
        if not parsed:
            raise FetchError(FetchRefusal.DNS_FAILED, "host resolved to nothing")
        if not all(self._policy.address_allowed(address) for address in parsed):
            raise FetchError(FetchRefusal.ADDRESS_REFUSED, "host resolves to a refused address")
        return [str(address) for address in parsed]

    async def _connect(
        self, target: TargetUrl, addresses: list[str]
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Open TLS to the first reachable checked address, with SNI and name check against the host."""
        failure = FetchError(FetchRefusal.CONNECT_FAILED, "no address accepted the connection")
        for address in addresses:
            try:
                return await asyncio.open_connection(
                    address,
                    target.port,
                    ssl=self._context,
                    server_hostname=target.host,
                    limit=MAX_HEADER_BLOCK,
                )
            except ssl.SSLError as exc:
                failure = FetchError(FetchRefusal.TLS_FAILED, type(exc).__name__)
            except OSError:
                continue
        raise failure

    async def _exchange(
        self, target: TargetUrl, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[int, dict[bytes, bytes], bytes]:
        """Send the GET and read a bounded response: status, headers and (for 200) the body."""
        host = f"[{target.host}]" if ":" in target.host else target.host
        authority = host if target.port == 443 else f"{host}:{target.port}"
        request = (
            f"GET {target.path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: fraudmesh-origination\r\n"
            "Accept: application/pem-certificate-chain, text/plain;q=0.5\r\n"
            "Accept-Encoding: identity\r\nConnection: close\r\n\r\n"
        )
        writer.write(request.encode("ascii"))
        try:
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.LimitOverrunError, asyncio.IncompleteReadError, ValueError):
            raise FetchError(FetchRefusal.BAD_RESPONSE, "response head missing or too large") from None
        except ssl.SSLError as exc:
            raise FetchError(FetchRefusal.TLS_FAILED, type(exc).__name__) from None
        except OSError:
            raise FetchError(FetchRefusal.CONNECT_FAILED, "connection lost") from None
        status, headers = _parse_head(head)
        if status != 200:
            return status, headers, b""
        self._check_representation(headers)
        try:
            body = await self._read_body(reader, headers)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            raise FetchError(FetchRefusal.BAD_RESPONSE, "body truncated or malformed") from None
        except ssl.SSLError as exc:
            raise FetchError(FetchRefusal.TLS_FAILED, type(exc).__name__) from None
        except OSError:
            raise FetchError(FetchRefusal.CONNECT_FAILED, "connection lost") from None
        return status, headers, body

    @staticmethod
    def _check_representation(headers: dict[bytes, bytes]) -> None:
        """Refuse content codings and media types other than PEM certificates or text."""
        coding = headers.get(b"content-encoding", b"identity").strip().lower()
        if coding != b"identity":
            raise FetchError(FetchRefusal.CONTENT_ENCODING, "content coding refused")
        media = headers.get(b"content-type", b"").partition(b";")[0].strip().lower()
        if media.decode("latin-1") not in CONTENT_TYPES:
            raise FetchError(FetchRefusal.CONTENT_TYPE, "content type is not a PEM certificate chain")

    async def _read_body(self, reader: asyncio.StreamReader, headers: dict[bytes, bytes]) -> bytes:
        """Read at most max_bytes of body (Content-Length, chunked or until close); longer is refused."""
        limit = self._policy.max_bytes
        encoding = headers.get(b"transfer-encoding")
        length = headers.get(b"content-length")
        if encoding is not None:
            if length is not None or encoding.strip().lower() != b"chunked":
                raise FetchError(FetchRefusal.BAD_RESPONSE, "unsupported transfer coding")
            return await self._read_chunked(reader, limit)
        if length is not None:
            if not length.isdigit() or len(length) > 12:
                raise FetchError(FetchRefusal.BAD_RESPONSE, "bad Content-Length")
            size = int(length)
            if size > limit:
                raise FetchError(FetchRefusal.OVERSIZE, f"Content-Length {size} over {limit}")
            return await reader.readexactly(size)
        body = b""
        while chunk := await reader.read(limit + 1 - len(body)):
            body += chunk
            if len(body) > limit:
                raise FetchError(FetchRefusal.OVERSIZE, f"body over {limit} bytes")
        return body

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
        """Decode a chunked body, refusing as soon as the declared sizes pass the limit."""
        body = b""
        while True:
            size_line = (await reader.readuntil(b"\r\n"))[:-2].partition(b";")[0].strip()
            if not size_line or len(size_line) > 8 or not set(size_line) <= _HEX_DIGITS:
                raise FetchError(FetchRefusal.BAD_RESPONSE, "bad chunk size")
            size = int(size_line, 16)
            if len(body) + size > limit:
                raise FetchError(FetchRefusal.OVERSIZE, f"body over {limit} bytes")
            if size == 0:
                break
            body += await reader.readexactly(size)
            if await reader.readexactly(2) != b"\r\n":
                raise FetchError(FetchRefusal.BAD_RESPONSE, "chunk not terminated")
        for _ in range(32):
            if await reader.readuntil(b"\r\n") == b"\r\n":
                return body
        raise FetchError(FetchRefusal.BAD_RESPONSE, "too many trailer lines")
