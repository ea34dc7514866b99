"""A strict SIP request parser and response writer (RFC 3261 §7, §8.2.6, §18, §20; RFC 3581).

Enough SIP for a redirect server, and no more: a request's start line, its headers (compact forms,
folded lines, case-insensitive names, several values per line where the grammar allows it), its
body framed by Content-Length, and a response that mirrors Via, From, To (tagged), Call-ID and
CSeq. Anything that does not follow the grammar raises ``SipError`` with a stable ``reason`` and,
when the message got far enough to be answered, the headers a 400 needs; nothing here logs.

Why our own: the Python SIP libraries on PyPI are either whole user agents (pjsua2 with its C
stack, sippy's B2BUA) or unmaintained (aiosip, pysip), and none of them rejects malformed input
with a reason. This module is small, strict and fuzzed (``fuzz/sip_message.py``).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "MAX_MESSAGE_BYTES",
    "NameAddr",
    "ParseProblem",
    "Request",
    "SipError",
    "Via",
    "parse_name_addr",
    "parse_request",
    "split_values",
]

MAX_MESSAGE_BYTES: Final = 65_535  # the largest UDP datagram; TCP messages are held to it too
MAX_HEADERS: Final = 128
CRLF: Final = "\r\n"

# RFC 3261 §7.3.3 and RFC 8224 (y = Identity): compact form → full name, lower case.
COMPACT: Final = {
    "i": "call-id",
    "f": "from",
    "t": "to",
    "v": "via",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "e": "content-encoding",
    "k": "supported",
    "s": "subject",
    "o": "event",
    "r": "refer-to",
    "b": "referred-by",
    "u": "allow-events",
    "x": "session-expires",
    "y": "identity",
}
# Headers whose grammar is a comma-separated list of name-addr or params values (RFC 3261 §7.3.1);
# every other header's value is kept whole (Identity, User-Agent, Subject, Date may hold commas).
LISTS: Final = frozenset(
    {"via", "contact", "p-asserted-identity", "diversion", "history-info", "route", "record-route"}
)
_TOKEN: Final = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
_HEADER_NAME: Final = _TOKEN
_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_NOT_IN_URI: Final = re.compile(r'[\x00-\x20"<>\x7f]')
_CONTROL: Final = re.compile(r"[\x00-\x08\x0a-\x1f]")
_VERSION: Final = "SIP/2.0"


class ParseProblem(enum.StrEnum):
    """Why a message was refused: stable codes for metrics and the 400's Warning header."""

    TOO_LARGE = "too_large"
    NOT_UTF8 = "not_utf8"
    BAD_START_LINE = "bad_start_line"
    BAD_VERSION = "bad_version"
    BAD_HEADER = "bad_header"
    TOO_MANY_HEADERS = "too_many_headers"
    MISSING_HEADER = "missing_header"
    DUPLICATE_HEADER = "duplicate_header"
    BAD_VIA = "bad_via"
    BAD_CSEQ = "bad_cseq"
    BAD_CONTENT_LENGTH = "bad_content_length"
    TRUNCATED_BODY = "truncated_body"
    BAD_MAX_FORWARDS = "bad_max_forwards"
    BAD_ADDRESS = "bad_address"
    BAD_URI = "bad_uri"


class SipError(ValueError):
    """A message that is not valid SIP; ``answerable`` holds what a 400 response needs, if anything."""

    def __init__(self, reason: ParseProblem, detail: str, answerable: Request | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.answerable = answerable


@dataclass(frozen=True, slots=True)
class Via:
    """The top Via: transport, sent-by host and port, branch, and whether rport was asked for."""

    transport: str
    host: str
    port: int | None
    branch: str
    rport: bool


@dataclass(frozen=True, slots=True)
class NameAddr:
    """One name-addr or addr-spec value: display name (unquoted), URI, header parameters."""

    display: str
    uri: str
    params: dict[str, str]


@dataclass(slots=True)
class Request:
    """A parsed SIP request: start line, headers in order (lower-case full names), body."""

    method: str
    uri: str
    headers: list[tuple[str, str]]
    body: bytes
    _values: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _top_via: Via | None = field(default=None, repr=False)

    def all(self, name: str) -> list[str]:
        """Every value of one header (lower-case full name), in order; list headers split on commas."""
        found = self._values.get(name)
        if found is None:
            found = [value for key, value in self.headers if key == name]
            if name in LISTS:
                found = [item for value in found for item in split_values(value)]
            self._values[name] = found
        return found

    def first(self, name: str) -> str:
        """The first value of one header, or '' when absent."""
        values = self.all(name)
        return values[0] if values else ""

    @property
    def call_id(self) -> str:
        """The Call-ID header."""
        return self.first("call-id")

    @property
    def via(self) -> Via:
        """The top Via (checked at parse time)."""
        if self._top_via is None:
            self._top_via = parse_via(self.all("via")[0])
        return self._top_via

    @property
    def cseq(self) -> tuple[int, str]:
        """CSeq number and method (checked at parse time)."""
        number, method = self.first("cseq").split()
        return int(number), method


def parse_request(data: bytes, *, stream: bool = False) -> tuple[Request, int]:
    """One request from the start of data, and how many bytes it used (RFC 3261 §7, §18.3).

    On a datagram (stream=False) a Content-Length beyond the data is an error and bytes after the
    body are ignored; on a stream the caller frames messages, passing one whose headers ended.
    Raises SipError; never anything else for any input.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise SipError(ParseProblem.BAD_HEADER, "no empty line after the headers")
    if end > MAX_MESSAGE_BYTES:
        raise SipError(ParseProblem.TOO_LARGE, f"headers over {MAX_MESSAGE_BYTES} bytes")
    try:
        head = data[:end].decode("utf-8")
    except UnicodeDecodeError:
        raise SipError(ParseProblem.NOT_UTF8, "headers are not UTF-8") from None
    lines = head.split(CRLF)
    method, uri = _start_line(lines[0])
    headers = _headers(lines[1:])
    request = Request(method, uri, headers, b"")
    answerable = _answerable(request)
    try:
        _check(request)
        length = _content_length(request)
        body_start = end + 4
        if length is None:
            if stream:
                raise SipError(ParseProblem.BAD_CONTENT_LENGTH, "Content-Length is required on a stream")
            length = len(data) - body_start
        if body_start + length > len(data):
            raise SipError(ParseProblem.TRUNCATED_BODY, "the body is shorter than Content-Length")
        if body_start + length > MAX_MESSAGE_BYTES:
            raise SipError(ParseProblem.TOO_LARGE, f"message over {MAX_MESSAGE_BYTES} bytes")
        request.body = data[body_start : body_start + length]
        return request, body_start + length
    except SipError as exc:
        exc.answerable = answerable
        raise


def _start_line(line: str) -> tuple[str, str]:
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        raise SipError(ParseProblem.BAD_START_LINE, "expected 'METHOD Request-URI SIP/2.0'")
    method, uri, version = parts
    if version != _VERSION:
        if method == _VERSION:
            raise SipError(ParseProblem.BAD_START_LINE, "a response, not a request")
        raise SipError(ParseProblem.BAD_VERSION, "only SIP/2.0 is spoken")
    if not _TOKEN.fullmatch(method):
        raise SipError(ParseProblem.BAD_START_LINE, "the method is not a token")
    _check_uri(uri)
    return method, uri


def _check_uri(uri: str) -> None:
    scheme, colon, rest = uri.partition(":")
    if not colon or not rest or not _SCHEME.fullmatch(scheme):
        raise SipError(ParseProblem.BAD_URI, "a URI needs a scheme and a body")
    if _NOT_IN_URI.search(rest):
        raise SipError(ParseProblem.BAD_URI, "a URI holds no spaces, quotes, brackets or controls")


def _headers(lines: list[str]) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t"):  # folded continuation (LWS): part of the previous value
            if not headers:
                raise SipError(ParseProblem.BAD_HEADER, "a continuation line before any header")
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not _HEADER_NAME.fullmatch(name):
            raise SipError(ParseProblem.BAD_HEADER, "a header line without 'name: value'")
        if _CONTROL.search(value):
            raise SipError(ParseProblem.BAD_HEADER, "control characters in a header value")
        lowered = name.lower()
        headers.append((COMPACT.get(lowered, lowered), value.strip(" \t")))
        if len(headers) > MAX_HEADERS:
            raise SipError(ParseProblem.TOO_MANY_HEADERS, f"more than {MAX_HEADERS} headers")
    return headers


def _answerable(request: Request) -> Request | None:
    """The request when a response can be addressed to it: one parseable top Via, and Call-ID/CSeq."""
    try:
        vias = request.all("via")
        if not vias:
            return None
        parse_via(vias[0])
    except SipError:
        return None
    singles = ("call-id", "cseq", "from", "to")
    if any(sum(1 for key, _ in request.headers if key == name) != 1 for name in singles):
        return None
    return request


def _check(request: Request) -> None:
    for name in ("via", "call-id", "cseq", "from", "to"):
        count = sum(1 for key, _ in request.headers if key == name)
        if count == 0:
            raise SipError(ParseProblem.MISSING_HEADER, f"no {name} header")
        if count > 1 and name != "via":
            raise SipError(ParseProblem.DUPLICATE_HEADER, f"more than one {name} header")
    parse_via(request.all("via")[0])
    if not request.call_id or any(ch in request.call_id for ch in " \t<>"):
        raise SipError(ParseProblem.BAD_HEADER, "Call-ID must be a word")
    cseq = request.first("cseq").split()
    if len(cseq) != 2 or not cseq[0].isascii() or not cseq[0].isdigit() or len(cseq[0]) > 10:
        raise SipError(ParseProblem.BAD_CSEQ, "CSeq must be '<number> <method>'")
    if int(cseq[0]) >= 2**31 or (cseq[1] != request.method and request.method != "ACK"):
        raise SipError(ParseProblem.BAD_CSEQ, "CSeq's number is too large or its method is not the request's")
    if request.method == "ACK" and cseq[1] != "ACK":
        raise SipError(ParseProblem.BAD_CSEQ, "an ACK's CSeq method must be ACK")
    max_forwards = request.all("max-forwards")
    if len(max_forwards) > 1 or (
        max_forwards
        and (not max_forwards[0].isascii() or not max_forwards[0].isdigit() or len(max_forwards[0]) > 3)
    ):
        raise SipError(ParseProblem.BAD_MAX_FORWARDS, "Max-Forwards must be one number 0-255")
    for name in ("from", "to"):
        address = parse_name_addr(request.first(name))
        _check_uri(address.uri)


def _content_length(request: Request) -> int | None:
    values = request.all("content-length")
    if not values:
        return None
    if len(values) > 1 or not values[0].isascii() or not values[0].isdigit() or len(values[0]) > 6:
        raise SipError(ParseProblem.BAD_CONTENT_LENGTH, "Content-Length must be one number")
    return int(values[0])


def split_values(value: str) -> list[str]:
    """A list header's comma-separated values, ignoring commas inside quotes and <...> (§7.3.1)."""
    items: list[str] = []
    start = 0
    quoted = False
    angle = False
    escaped = False
    for index, ch in enumerate(value):
        if escaped:
            escaped = False
        elif quoted:
            if ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            angle = True
        elif ch == ">":
            angle = False
        elif ch == "," and not angle:
            items.append(value[start:index].strip())
            start = index + 1
    if quoted or angle:
        raise SipError(ParseProblem.BAD_ADDRESS, "an unclosed quote or '<' in a header value")
    items.append(value[start:].strip())
    if any(not item for item in items):
        raise SipError(ParseProblem.BAD_ADDRESS, "an empty element in a header list")
    return items


def parse_name_addr(value: str) -> NameAddr:
    """``"Display" <uri>;params``, ``Display <uri>;params`` or ``uri;params`` (RFC 3261 §20.10)."""
    text = value.strip()
    display = ""
    if text.startswith('"'):
        end, display = _quoted(text)
        text = text[end:].lstrip()
        if not text.startswith("<"):
            raise SipError(ParseProblem.BAD_ADDRESS, "a quoted display name must be followed by <uri>")
    elif "<" in text:
        display, _, rest = text.partition("<")
        display = display.strip()
        if display and not re.fullmatch(r"[^\"<>,;]+", display):
            raise SipError(ParseProblem.BAD_ADDRESS, "an unquoted display name holds only tokens")
        text = "<" + rest
    if text.startswith("<"):
        close = text.find(">")
        if close < 0:
            raise SipError(ParseProblem.BAD_ADDRESS, "an unclosed '<'")
        uri = text[1:close]
        params_text = text[close + 1 :].strip()
    else:
        uri, _, params_text = text.partition(";")  # addr-spec: the parameters are the header's
        params_text = ";" + params_text if params_text else ""
        if "?" in uri or "," in uri:
            raise SipError(ParseProblem.BAD_ADDRESS, "an addr-spec with headers or commas needs <...>")
    if params_text and not params_text.startswith(";"):
        raise SipError(ParseProblem.BAD_ADDRESS, "text after the address that is not a ;parameter")
    _check_uri(uri)
    return NameAddr(display, uri, _params(params_text[1:]) if params_text else {})


def _quoted(text: str) -> tuple[int, str]:
    """The end index and unescaped content of the quoted-string text starts with."""
    out: list[str] = []
    index = 1
    while index < len(text):
        ch = text[index]
        if ch == "\\" and index + 1 < len(text):
            out.append(text[index + 1])
            index += 2
            continue
        if ch == '"':
            return index + 1, "".join(out)
        out.append(ch)
        index += 1
    raise SipError(ParseProblem.BAD_ADDRESS, "an unclosed quoted display name")


def _params(text: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in text.split(";"):
        name, _, value = item.partition("=")
        name = name.strip().lower()
        if not name or not _TOKEN.fullmatch(name):
            raise SipError(ParseProblem.BAD_ADDRESS, "a parameter without a name")
        params[name] = value.strip().strip('"')
    return params


def parse_via(value: str) -> Via:
    """One Via value: ``SIP/2.0/<transport> host[:port];params`` with an RFC 3261 branch."""
    protocol, _, rest = value.strip().partition(" ")
    parts = [part.strip() for part in protocol.split("/")]
    if len(parts) != 3 or parts[0] != "SIP" or parts[1] != "2.0" or not _TOKEN.fullmatch(parts[2]):
        raise SipError(ParseProblem.BAD_VIA, "Via must start SIP/2.0/<transport>")
    sent_by, _, params_text = rest.strip().partition(";")
    host, port = _host_port(sent_by.strip())
    params = _params(params_text) if params_text else {}
    branch = params.get("branch", "")
    if not branch or not _TOKEN.fullmatch(branch):
        raise SipError(ParseProblem.BAD_VIA, "the top Via has no branch")
    return Via(parts[2].upper(), host, port, branch, "rport" in params)


def _host_port(sent_by: str) -> tuple[str, int | None]:
    if sent_by.startswith("["):
        close = sent_by.find("]")
        host, rest = sent_by[: close + 1], sent_by[close + 1 :]
    else:
        host, _, port_text = sent_by.partition(":")
        rest = ":" + port_text if port_text else ""
    if not host or not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", host):
        raise SipError(ParseProblem.BAD_VIA, "the Via's sent-by host is not a host")
    if not rest:
        return host, None
    if (
        not rest.startswith(":")
        or not rest[1:].isascii()
        or not rest[1:].isdigit()
        or not 0 < int(rest[1:]) < 65536
    ):
        raise SipError(ParseProblem.BAD_VIA, "the Via's sent-by port is not a port")
    return host, int(rest[1:])
