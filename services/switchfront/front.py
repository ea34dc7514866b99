"""The redirect server's logic, transport-free: a request's bytes in, a response's bytes out.

INVITE: emergency calls are answered ALLOW before anything else; every other call is decided over
gRPC within the switch's budget and its decision written as a 3xx/4xx/6xx (services.switchfront
.answer); a timeout or failure answers ALLOW (fail-open). OPTIONS (keepalives) → 200, CANCEL → 200
(the INVITE has its final answer already, or gets it within the budget), ACK → absorbed, other
methods → 405. Malformed requests → 400 with a Warning naming the problem when the request can be
addressed at all, else dropped; both counted.

Retransmissions: a request whose transaction (top Via branch and sent-by, and method, RFC 3261
§17.2.3) was answered in the last ``transaction_ttl_s`` gets the same bytes again without a second
decision; one that arrives while its call is being decided is absorbed (the answer is on its way).
The front behaves as a stateless UAS toward retransmission (RFC 3261 §8.2.7): it does not
retransmit its own final responses; the client's INVITE retransmissions recover a lost answer.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from fraudmesh.v1 import call_pb2, decision_pb2
from services.common.emergency import is_emergency_call, is_emergency_destination
from services.switchfront import metrics
from services.switchfront.answer import Answer, AnswerConfig, CallView, Cause, answer_for, fail_open
from services.switchfront.callsetup import Trunks, build_setup, identity_of
from services.switchfront.client import Decisions
from services.switchfront.sip import Request, SipError, parse_request

__all__ = ["Front", "TransactionCache", "write_response"]

log = logging.getLogger(__name__)

ALLOW_METHODS: Final = "INVITE, ACK, CANCEL, OPTIONS"
SERVER: Final = "fraudmesh-switchfront"
_PENDING: Final = b""
_TAG_SECRET: Final = hashlib.sha256(str(time.time_ns()).encode()).digest()[:8]


class TransactionCache:
    """Answers by transaction key, for ``ttl_s``, at most ``max_entries`` (the oldest go first)."""

    def __init__(self, ttl_s: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: collections.OrderedDict[tuple[str, str, str], tuple[float, bytes]] = (
            collections.OrderedDict()
        )
        self._ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock

    def get(self, key: tuple[str, str, str]) -> bytes | None:
        """The answer held for a transaction (b'' while it is being decided), or None."""
        entry = self._entries.get(key)
        if entry is None or entry[0] < self._clock():
            return None
        return entry[1]

    def put(self, key: tuple[str, str, str], answer: bytes) -> None:
        """Hold an answer (or b'' for "deciding") and expire what is due."""
        now = self._clock()
        self._entries[key] = (now + self._ttl_s, answer)
        self._entries.move_to_end(key)
        while self._entries:
            oldest_key, (expires, _) = next(iter(self._entries.items()))
            if expires >= now and len(self._entries) <= self._max:
                break
            del self._entries[oldest_key]
        metrics.TRANSACTIONS.set(len(self._entries))

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True, slots=True)
class Source:
    """Where a request came from and over what: where its response goes."""

    transport: str  # "udp", "tcp" or "tls"
    host: str
    port: int


def write_response(
    request: Request, status: int, phrase: str, headers: tuple[tuple[str, str], ...], source: Source
) -> bytes:
    """A response to request (RFC 3261 §8.2.6): Vias (received/rport filled in), From, To with a tag,
    Call-ID, CSeq, then the answer's headers."""
    vias = request.all("via")
    top = vias[0]
    via = request.via
    if via.host.strip("[]") != source.host:
        top += f";received={source.host}"
    if via.rport:
        top = _fill_rport(top, source.port)
    to = request.first("to")
    if ";tag=" not in to.replace(" ", "").lower().split(">")[-1]:
        digest = hashlib.sha256(_TAG_SECRET + via.branch.encode() + request.call_id.encode()).hexdigest()
        to += f";tag=fm{digest[:16]}"
    lines = [f"SIP/2.0 {status} {phrase}", f"Via: {top}"]
    lines += [f"Via: {value}" for value in vias[1:]]
    lines += [
        f"From: {request.first('from')}",
        f"To: {to}",
        f"Call-ID: {request.call_id}",
        f"CSeq: {request.first('cseq')}",
    ]
    lines += [f"{name}: {value}" for name, value in headers]
    lines += [f"Server: {SERVER}", "Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode("utf-8")


def _fill_rport(via: str, port: int) -> str:
    parts = via.split(";")
    return ";".join(f"rport={port}" if part.strip().lower() == "rport" else part for part in parts)


class Front:
    """Answers SIP requests: decides INVITEs through ``client``, keeps the transaction cache."""

    def __init__(
        self,
        client: Decisions,
        trunks: Trunks,
        config: AnswerConfig,
        region_for: Callable[[str], str],
        emergency_numbers: frozenset[str],
        cache: TransactionCache,
    ) -> None:
        self.client = client
        self.trunks = trunks
        self.config = config
        self.region_for = region_for
        self.emergency_numbers = emergency_numbers
        self.cache = cache

    async def on_request(self, data: bytes, source: Source) -> bytes | None:
        """The response to one datagram or framed stream message (None: nothing to send)."""
        try:
            request, _ = parse_request(data, stream=source.transport != "udp")
        except SipError as exc:
            return self.malformed(exc, source)
        return await self.respond(request, source)

    def malformed(self, exc: SipError, source: Source) -> bytes | None:
        """A 400 naming the problem, or None when the request cannot be addressed (or is an ACK)."""
        request = exc.answerable
        answered = request is not None and request.method != "ACK"
        metrics.MALFORMED(source.transport, exc.reason.value, "true" if answered else "false").inc()
        if not answered or request is None:
            return None
        if request.method == "INVITE" and self.emergency_destination(request, source):
            # A broken INVITE to an emergency service is still routed on: never a 400 for 112.
            call = CallView(request.uri, "", "")
            answer = fail_open(call, self.config, Cause.EMERGENCY)
            metrics.ANSWERS(source.transport, str(answer.status), answer.action, answer.cause.value).inc()
            return write_response(request, answer.status, answer.phrase, answer.headers, source)
        warning = f'399 fraudmesh "{exc.reason.value}: {exc.detail}"'
        return write_response(request, 400, "Bad Request", (("Warning", warning),), source)

    def emergency_destination(self, request: Request, source: Source) -> bool:
        """True when the Request-URI or the To header names an emergency service (never raises)."""
        region = self.region_for(self.trunks.find(request, source.host).tenant)
        return is_emergency_destination(request.uri, region, self.emergency_numbers) or (
            is_emergency_destination(request.first("to"), region, self.emergency_numbers)
        )

    async def respond(self, request: Request, source: Source) -> bytes | None:
        """The response to a parsed request."""
        method = request.method
        metrics.REQUESTS(source.transport, method if method in metrics.METHODS else "other").inc()
        if method == "ACK":
            return None  # for our non-2xx final answers; nothing to do
        via = request.via
        key = (via.branch, f"{via.host}:{via.port or ''}", method)
        held = self.cache.get(key)
        if held is not None:
            metrics.RETRANSMISSIONS(source.transport).inc()
            return held or None
        if method == "OPTIONS" or method == "CANCEL":
            extra = (("Allow", ALLOW_METHODS), ("Accept", "application/sdp")) if method == "OPTIONS" else ()
            return write_response(request, 200, "OK", extra, source)
        if method != "INVITE":
            return write_response(request, 405, "Method Not Allowed", (("Allow", ALLOW_METHODS),), source)
        max_forwards = request.first("max-forwards")
        if max_forwards == "0":
            return write_response(request, 483, "Too Many Hops", (), source)
        self.cache.put(key, _PENDING)
        try:
            answer = await self.answer_invite(request, source)
        except SipError as exc:  # an address inside the INVITE that does not parse
            exc.answerable = request
            response = self.malformed(exc, source) or b""
        else:
            response = write_response(request, answer.status, answer.phrase, answer.headers, source)
        self.cache.put(key, response)
        return response or None

    async def answer_invite(self, request: Request, source: Source) -> Answer:
        """The answer for one INVITE."""
        started = time.perf_counter()
        trunk = self.trunks.find(request, source.host)
        setup = build_setup(request, trunk)
        identity = identity_of(request)
        call = CallView(request.uri, identity.uri, identity.display)
        try:
            answer = await self.answer_setup(setup, call)
        except Exception:  # a bug must not cost the call: route it on, counted as an error
            log.exception("answering an INVITE failed")
            answer = fail_open(call, self.config, Cause.ERROR)
        metrics.ANSWER_SECONDS(source.transport).observe(time.perf_counter() - started)
        metrics.ANSWERS(source.transport, str(answer.status), answer.action, answer.cause.value).inc()
        return answer

    async def answer_setup(self, setup: call_pb2.CallSetup, call: CallView) -> Answer:
        """The answer for a call setup: emergency first, then Decide, fail-open on any failure."""
        answer, _ = await self.decide(setup, call)
        return answer

    async def decide(
        self, setup: call_pb2.CallSetup, call: CallView
    ) -> tuple[Answer, decision_pb2.DecideResponse | None]:
        """The answer and the Decide response behind it (None for emergency and fail-open answers)."""
        if is_emergency_call(setup, self.region_for(setup.tenant), self.emergency_numbers):
            return fail_open(call, self.config, Cause.EMERGENCY), None
        outcome = await self.client.decide(setup)
        response = outcome.response
        if response is None:
            return fail_open(call, self.config, outcome.cause), None
        try:
            shaken = response.origination.shaken_status if response.HasField("origination") else 0
            return answer_for(response.decision, shaken, call, self.config), response
        except Exception:  # a decision the mapping cannot write: route the call on, counted
            log.exception("could not map a decision to an answer")
            return fail_open(call, self.config, Cause.ERROR), None
