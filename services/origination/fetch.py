"""The x5u fetcher: downloads an STI certificate chain without becoming an SSRF or download-bomb vector.

An x5u URL arrives in an unauthenticated SIP header, so it is attacker-controlled until the chain
behind it verifies. Asterisk got this wrong (CVE-2022-26498: unbounded downloads; CVE-2022-26499:
requests to arbitrary internal addresses). Here a fetch:

* accepts only ``https`` URLs without userinfo, query or fragment, whose host is on the allow-list
  (exact names or ``.suffix`` entries) and whose port is allowed (443 and 8443 by default);
* resolves the host once, refuses the whole answer unless every address is public unicast by
  the explicit allow rule below, and connects to an address it checked, so a second DNS answer
  cannot rebind it to an internal address;
* verifies TLS against the host name (SNI and certificate name are the URL host);
* treats any redirect as a failure, caps the header block and the body (8 KiB by default; a larger
  Content-Length is refused before reading, a longer body stops being read), and accepts only PEM
  certificates served as ``application/pem-certificate-chain``, ``application/x-pem-file`` or
  ``text/plain`` without content coding;
* gives up after a short total timeout (2 s by default).

The address rule (``is_public_address``) is an allow rule written out here, not the interpreter's
``ipaddress`` tables (Python 3.11's let 192.0.0.8 and 3fff::1 through):

* IPv4: unicast only (0.0.0.0/0 minus 224.0.0.0/4 multicast, RFC 5771) minus every block of the
  IANA IPv4 Special-Purpose Address Registry not marked globally reachable (``IANA_IPV4_SPECIAL``);
* IPv6: only inside 2000::/3 (global unicast, RFC 4291) minus every block of the IANA IPv6
  Special-Purpose Address Registry not marked globally reachable (``IANA_IPV6_SPECIAL``; "N/A" and
  terminated entries such as Teredo count as not marked);
* a more specific globally reachable entry inside a refused block stays refused (192.0.0.9/32 PCP
  anycast in 192.0.0.0/24, AMT or ORCHIDv2 in 2001::/23): an STI certificate repository is never
  a protocol anycast address;
* IPv6 forms carrying an IPv4 address are judged by that address: IPv4-mapped ``::ffff:0:0/96``,
  NAT64 ``64:ff9b::/96`` (RFC 6052; what DNS64 synthesises) and 6to4 ``2002::/16`` (RFC 3056);
  IPv4-compatible ``::/96`` (deprecated), local-use NAT64 ``64:ff9b:1::/48`` and Teredo are refused.

The tables were transcribed on 2026-12-02 from the registries as IANA publishes them (IPv4: 25
entries; IPv6: 25 entries, last updated 2025-10-09); re-check them when IANA updates either.

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
    "IANA_IPV4_SPECIAL",
    "IANA_IPV6_SPECIAL",
    "FetchError",
    "FetchPolicy",
    "FetchRefusal",
    "FetchedChain",
    "HostAllowList",
    "IPAddress",
    "SpecialPurposeBlock",
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


@dataclass(frozen=True, slots=True)
class SpecialPurposeBlock:
    """One entry of an IANA Special-Purpose Address Registry (RFC 6890, RFC 8190).

    ``globally_reachable`` is the registry's column: True, False, or None where it says "N/A" or
    the entry is terminated; only True keeps a block fetchable.
    """

    block: str
    name: str
    rfc: str
    globally_reachable: bool | None


IANA_IPV4_SPECIAL: Final = (
    SpecialPurposeBlock("0.0.0.0/8", '"This network"', "RFC 791 section 3.2", False),
    SpecialPurposeBlock("0.0.0.0/32", '"This host on this network"', "RFC 1122 section 3.2.1.3", False),
    SpecialPurposeBlock("10.0.0.0/8", "Private-Use", "RFC 1918", False),
    SpecialPurposeBlock("100.64.0.0/10", "Shared Address Space", "RFC 6598", False),
    SpecialPurposeBlock("127.0.0.0/8", "Loopback", "RFC 1122 section 3.2.1.3", False),
    SpecialPurposeBlock("169.254.0.0/16", "Link Local", "RFC 3927", False),
    SpecialPurposeBlock("172.16.0.0/12", "Private-Use", "RFC 1918", False),
    SpecialPurposeBlock("192.0.0.0/24", "IETF Protocol Assignments", "RFC 6890 section 2.1", False),
    SpecialPurposeBlock("192.0.0.0/29", "IPv4 Service Continuity Prefix", "RFC 7335", False),
    SpecialPurposeBlock("192.0.0.8/32", "IPv4 dummy address", "RFC 7600", False),
    SpecialPurposeBlock("192.0.0.9/32", "Port Control Protocol Anycast", "RFC 7723", True),
    SpecialPurposeBlock("192.0.0.10/32", "Traversal Using Relays around NAT Anycast", "RFC 8155", True),
    SpecialPurposeBlock("192.0.0.170/32", "NAT64/DNS64 Discovery", "RFC 8880, RFC 7050 section 2.2", False),
    SpecialPurposeBlock("192.0.0.171/32", "NAT64/DNS64 Discovery", "RFC 8880, RFC 7050 section 2.2", False),
    SpecialPurposeBlock("192.0.2.0/24", "Documentation (TEST-NET-1)", "RFC 5737", False),
    SpecialPurposeBlock("192.31.196.0/24", "AS112-v4", "RFC 7535", True),
    SpecialPurposeBlock("192.52.193.0/24", "AMT", "RFC 7450", True),
    SpecialPurposeBlock("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", "RFC 7526", None),
    SpecialPurposeBlock("192.88.99.2/32", "6a44-relay anycast address", "RFC 6751", False),
    SpecialPurposeBlock("192.168.0.0/16", "Private-Use", "RFC 1918", False),
    SpecialPurposeBlock("192.175.48.0/24", "Direct Delegation AS112 Service", "RFC 7534", True),
    SpecialPurposeBlock("198.18.0.0/15", "Benchmarking", "RFC 2544", False),
    SpecialPurposeBlock("198.51.100.0/24", "Documentation (TEST-NET-2)", "RFC 5737", False),
    SpecialPurposeBlock("203.0.113.0/24", "Documentation (TEST-NET-3)", "RFC 5737", False),
    SpecialPurposeBlock("240.0.0.0/4", "Reserved", "RFC 1112 section 4", False),
    SpecialPurposeBlock("255.255.255.255/32", "Limited Broadcast", "RFC 8190, RFC 919 section 7", False),
)
"""The IANA IPv4 Special-Purpose Address Registry as transcribed on 2026-12-02 (192.0.0.170/171 split)."""

IANA_IPV6_SPECIAL: Final = (
    SpecialPurposeBlock("::1/128", "Loopback Address", "RFC 4291", False),
    SpecialPurposeBlock("::/128", "Unspecified Address", "RFC 4291", False),
    SpecialPurposeBlock("::ffff:0:0/96", "IPv4-mapped Address", "RFC 4291", False),
    SpecialPurposeBlock("64:ff9b::/96", "IPv4-IPv6 Translat.", "RFC 6052", True),
    SpecialPurposeBlock("64:ff9b:1::/48", "IPv4-IPv6 Translat.", "RFC 8215", False),
    SpecialPurposeBlock("100::/64", "Discard-Only Address Block", "RFC 6666", False),
    SpecialPurposeBlock("100:0:0:1::/64", "Dummy IPv6 Prefix", "RFC 9780", False),
    SpecialPurposeBlock("2001::/23", "IETF Protocol Assignments", "RFC 2928", False),
    SpecialPurposeBlock("2001::/32", "TEREDO", "RFC 4380, RFC 8190", None),
    SpecialPurposeBlock("2001:1::1/128", "Port Control Protocol Anycast", "RFC 7723", True),
    SpecialPurposeBlock("2001:1::2/128", "Traversal Using Relays around NAT Anycast", "RFC 8155", True),
    SpecialPurposeBlock("2001:1::3/128", "DNS-SD Service Registration Protocol Anycast", "RFC 9665", True),
    SpecialPurposeBlock("2001:2::/48", "Benchmarking", "RFC 5180, RFC Errata 1752", False),
    SpecialPurposeBlock("2001:3::/32", "AMT", "RFC 7450", True),
    SpecialPurposeBlock("2001:4:112::/48", "AS112-v6", "RFC 7535", True),
    SpecialPurposeBlock("2001:10::/28", "Deprecated (previously ORCHID)", "RFC 4843", None),
    SpecialPurposeBlock("2001:20::/28", "ORCHIDv2", "RFC 7343", True),
    SpecialPurposeBlock(
        "2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix", "RFC 9374", True
    ),
    SpecialPurposeBlock("2001:db8::/32", "Documentation", "RFC 3849", False),
    SpecialPurposeBlock("2002::/16", "6to4", "RFC 3056", None),
    SpecialPurposeBlock("2620:4f:8000::/48", "Direct Delegation AS112 Service", "RFC 7534", True),
    SpecialPurposeBlock("3fff::/20", "Documentation", "RFC 9637", False),
    SpecialPurposeBlock("5f00::/16", "Segment Routing (SRv6) SIDs", "RFC 9602", False),
    SpecialPurposeBlock("fc00::/7", "Unique-Local", "RFC 4193, RFC 8190", False),
    SpecialPurposeBlock("fe80::/10", "Link-Local Unicast", "RFC 4291", False),
)
"""The IANA IPv6 Special-Purpose Address Registry as transcribed on 2026-12-02 (last updated 2025-10-09)."""

_IPV4_MULTICAST: Final = ipaddress.IPv4Network("224.0.0.0/4")
_IPV6_GLOBAL_UNICAST: Final = ipaddress.IPv6Network("2000::/3")
_IPV4_MAPPED: Final = ipaddress.IPv6Network("::ffff:0:0/96")
_NAT64_WELL_KNOWN: Final = ipaddress.IPv6Network("64:ff9b::/96")
_SIXTOFOUR: Final = ipaddress.IPv6Network("2002::/16")
_IPV4_REFUSED: Final = (
    _IPV4_MULTICAST,
    *(ipaddress.IPv4Network(b.block) for b in IANA_IPV4_SPECIAL if b.globally_reachable is not True),
)
_IPV6_REFUSED: Final = tuple(
    ipaddress.IPv6Network(b.block)
    for b in IANA_IPV6_SPECIAL
    if b.globally_reachable is not True and ipaddress.IPv6Network(b.block) != _SIXTOFOUR
)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, NAT64 well-known-prefix or 6to4 address stands for, if any."""
    if address in _IPV4_MAPPED or address in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIXTOFOUR:
        return ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)
    return None


def is_public_address(address: IPAddress) -> bool:
    """The default address policy: public unicast by the explicit allow rule of the module doc."""
    if isinstance(address, ipaddress.IPv4Address):
        return not any(address in block for block in _IPV4_REFUSED)
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return is_public_address(embedded)
    return address in _IPV6_GLOBAL_UNICAST and not any(address in block for block in _IPV6_REFUSED)


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
