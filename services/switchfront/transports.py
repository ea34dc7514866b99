"""SIP over UDP, TCP and TLS for the front: framing and sending, nothing about calls.

UDP: one datagram is one request; the response goes to the source address and port when the
request asked for rport (RFC 3581), else to the source address and the Via's sent-by port (RFC
3261 §18.2.2). TCP/TLS: requests are framed by Content-Length (required on a stream), answered on
the same connection, several in flight at once; CRLF keepalives (RFC 5626 §4.4.1) get CRLF back. A
message that cannot be framed gets its 400 (when addressable) and the connection is closed, since
the stream has lost its place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import typing
from typing import Final

from services.switchfront import metrics
from services.switchfront.front import Front, Source
from services.switchfront.sip import MAX_MESSAGE_BYTES, ParseProblem, Request, SipError, parse_request

__all__ = ["SipDatagram", "serve_stream", "start_udp"]

log = logging.getLogger(__name__)

_KEEPALIVE: Final = b"\r\n\r\n"
IDLE_TIMEOUT_S: Final = 300.0


class SipDatagram(asyncio.DatagramProtocol):
    """The UDP listener: each datagram answered by its own task."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self.transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.DatagramTransport, transport)  # uvloop's is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data.strip(b"\r\n") == b"":
            return  # a keepalive
        task = asyncio.ensure_future(self._answer(data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        source = Source("udp", addr[0], addr[1])
        destination = addr
        try:
            request, _ = parse_request(data)
        except SipError as exc:
            response = self.front.malformed(exc, source)
            if exc.answerable is not None and not exc.answerable.via.rport:
                destination = (addr[0], exc.answerable.via.port or 5060)
        else:
            response = await self.front.respond(request, source)
            if not request.via.rport:
                destination = (addr[0], request.via.port or 5060)
        if response is not None and self.transport is not None:
            self.transport.sendto(response, destination)

    async def drain(self, timeout_s: float) -> None:
        """Wait (bounded) for answers in flight."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout_s)


async def start_udp(
    front: Front, host: str, port: int, *, reuse_port: bool
) -> tuple[asyncio.DatagramTransport, SipDatagram]:
    """Listen for SIP over UDP."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind((host, port))
    transport, protocol = await loop.create_datagram_endpoint(lambda: SipDatagram(front), sock=sock)
    return transport, protocol


async def serve_stream(
    front: Front, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, transport: str
) -> None:
    """One SIP connection: frame, answer each request concurrently, write answers as they come."""
    peer = writer.get_extra_info("peername") or ("", 0)
    source = Source(transport, str(peer[0]), int(peer[1]))
    metrics.CONNECTIONS.inc()
    tasks: set[asyncio.Task[None]] = set()
    buffer = b""

    async def answer(request: Request) -> None:
        response = await front.respond(request, source)
        if response is not None and not writer.is_closing():
            writer.write(response)

    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), IDLE_TIMEOUT_S)
            if not chunk:
                break
            buffer += chunk
            while buffer:
                stripped = buffer.lstrip(b"\r\n")
                if len(stripped) != len(buffer):
                    if buffer.startswith(_KEEPALIVE):
                        writer.write(b"\r\n")  # RFC 5626 pong
                    buffer = stripped
                    continue
                framed = _frame(buffer)
                if framed is None:
                    break
                if isinstance(framed, SipError):
                    response = front.malformed(framed, source)
                    if response is not None:
                        writer.write(response)
                    return
                request, used = framed
                buffer = buffer[used:]
                task = asyncio.ensure_future(answer(request))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
    except (TimeoutError, ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        if tasks:
            await asyncio.wait(list(tasks), timeout=5.0)
        metrics.CONNECTIONS.dec()
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
            await writer.wait_closed()


def _frame(buffer: bytes) -> tuple[Request, int] | SipError | None:
    """How many bytes the first message takes, a framing error, or None while more must arrive."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_MESSAGE_BYTES:
            return SipError(ParseProblem.TOO_LARGE, f"headers over {MAX_MESSAGE_BYTES} bytes")
        return None
    try:
        return parse_request(buffer, stream=True)
    except SipError as exc:
        if exc.reason is ParseProblem.TRUNCATED_BODY and len(buffer) <= MAX_MESSAGE_BYTES:
            return None
        return exc
