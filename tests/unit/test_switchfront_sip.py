"""The switch front's SIP parser and response writer: strict, typed errors, never anything else."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.switchfront.front import Source, TransactionCache, write_response
from services.switchfront.sip import (
    ParseProblem,
    SipError,
    parse_name_addr,
    parse_request,
    parse_via,
    split_values,
)

INVITE = (
    "INVITE sip:+8613900139000@core.example;user=phone SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1;rport\r\n"
    "Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK-0\r\n"
    'From: "Zhang \\"Wei\\"" <sip:+8613800138000@peer.example;user=phone>;tag=a1\r\n'
    "To: <sip:+8613900139000@core.example;user=phone>\r\n"
    "Call-ID: abc@peer\r\n"
    "CSeq: 7 INVITE\r\n"
    "Max-Forwards: 69\r\n"
    "P-Asserted-Identity: <sip:+8613800138000@peer.example;user=phone>, <tel:+8613800138000>\r\n"
    "Identity: eyJh.eyJi.c2ln;info=<https://cert.example/a,b.pem>;alg=ES256;ppt=shaken\r\n"
    "User-Agent: Switch/1.0 (build 7, x86)\r\n"
    "Content-Length: 4\r\n"
    "\r\n"
    "v=0\n"
)


def test_a_full_invite_parses_with_lists_split_and_identity_kept_whole() -> None:
    request, used = parse_request(INVITE.encode())
    assert used == len(INVITE.encode())
    assert (request.method, request.uri, request.call_id, request.cseq) == (
        "INVITE",
        "sip:+8613900139000@core.example;user=phone",
        "abc@peer",
        (7, "INVITE"),
    )
    assert request.all("p-asserted-identity") == [
        "<sip:+8613800138000@peer.example;user=phone>",
        "<tel:+8613800138000>",
    ]
    assert request.all("identity") == [
        "eyJh.eyJi.c2ln;info=<https://cert.example/a,b.pem>;alg=ES256;ppt=shaken"
    ]
    assert request.first("user-agent") == "Switch/1.0 (build 7, x86)"
    assert request.body == b"v=0\n"
    assert request.via.branch == "z9hG4bK-1"
    assert request.via.rport
    assert request.via.port == 5060
    sender = parse_name_addr(request.first("from"))
    assert (sender.display, sender.uri, sender.params) == (
        'Zhang "Wei"',
        "sip:+8613800138000@peer.example;user=phone",
        {"tag": "a1"},
    )


def test_compact_forms_and_folded_lines_are_read() -> None:
    text = (
        "INVITE tel:+8613900139000 SIP/2.0\r\n"
        "v: SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bKx\r\n"
        "f: <tel:+8613800138000>;tag=1\r\n"
        "t: <tel:+8613900139000>\r\n"
        "i: folded@x\r\n"
        "CSeq: 1\r\n"
        " INVITE\r\n"
        "y: a.b.c;info=<https://x/y>\r\n"
        "l: 0\r\n\r\n"
    )
    request, _ = parse_request(text.encode(), stream=True)
    assert request.cseq == (1, "INVITE")
    assert request.via.host == "[2001:db8::1]"
    assert request.via.transport == "TCP"
    assert request.all("identity") == ["a.b.c;info=<https://x/y>"]


@pytest.mark.parametrize(
    ("mutate", "problem", "answerable"),
    [
        (lambda t: t.replace("SIP/2.0\r\n", "SIP/3.0\r\n", 1), ParseProblem.BAD_VERSION, False),
        (lambda t: t.replace("INVITE sip:", "INVITE  sip:", 1), ParseProblem.BAD_START_LINE, False),
        (lambda t: t.replace("CSeq: 7 INVITE", "CSeq: 7 BYE"), ParseProblem.BAD_CSEQ, True),
        (lambda t: t.replace("CSeq: 7 INVITE", "CSeq: seven INVITE"), ParseProblem.BAD_CSEQ, True),
        (lambda t: t.replace("Max-Forwards: 69", "Max-Forwards: many"), ParseProblem.BAD_MAX_FORWARDS, True),
        (lambda t: t.replace("Call-ID: abc@peer\r\n", ""), ParseProblem.MISSING_HEADER, False),
        (
            lambda t: t.replace("Call-ID: abc@peer", "Call-ID: abc@peer\r\nCall-ID: b"),
            ParseProblem.DUPLICATE_HEADER,
            False,
        ),
        (lambda t: t.replace(";branch=z9hG4bK-1", ""), ParseProblem.BAD_VIA, False),
        (lambda t: t.replace("Content-Length: 4", "Content-Length: 40"), ParseProblem.TRUNCATED_BODY, True),
        (
            lambda t: t.replace("Content-Length: 4", "Content-Length: -4"),
            ParseProblem.BAD_CONTENT_LENGTH,
            True,
        ),
        (lambda t: t.replace("To: <sip:", "To: <nothing"), ParseProblem.BAD_URI, True),
        (lambda t: t.replace("To: <sip:+86", 'To: "x <sip:+86'), ParseProblem.BAD_ADDRESS, True),
        (lambda t: t.replace("User-Agent:", "User Agent:"), ParseProblem.BAD_HEADER, False),
        (lambda t: t.replace("\r\n\r\n", "\r\n"), ParseProblem.BAD_HEADER, False),
        (lambda t: "SIP/2.0 200 OK\r\n" + t.split("\r\n", 1)[1], ParseProblem.BAD_START_LINE, False),
    ],
)
def test_every_grammar_fault_has_its_reason(mutate: object, problem: ParseProblem, answerable: bool) -> None:
    with pytest.raises(SipError) as caught:
        parse_request(mutate(INVITE).encode())  # type: ignore[operator]
    assert caught.value.reason is problem
    assert (caught.value.answerable is not None) is answerable


def test_headers_that_are_not_utf8_or_too_many_are_refused() -> None:
    with pytest.raises(SipError) as caught:
        parse_request(INVITE.replace("Zhang", "Zh\udcffng").encode("utf-8", "surrogateescape"))
    assert caught.value.reason is ParseProblem.NOT_UTF8
    many = INVITE.replace("Max-Forwards: 69\r\n", "X-A: 1\r\n" * 200)
    with pytest.raises(SipError) as caught:
        parse_request(many.encode())
    assert caught.value.reason is ParseProblem.TOO_MANY_HEADERS


def test_a_stream_needs_content_length() -> None:
    with pytest.raises(SipError) as caught:
        parse_request(INVITE.replace("Content-Length: 4\r\n", "").encode(), stream=True)
    assert caught.value.reason is ParseProblem.BAD_CONTENT_LENGTH


def test_list_values_split_outside_quotes_and_brackets_only() -> None:
    assert split_values('"a, b" <sip:x@y>;p=1, <tel:+1;q=a,b>') == ['"a, b" <sip:x@y>;p=1', "<tel:+1;q=a,b>"]
    with pytest.raises(SipError):
        split_values("<sip:x@y>,,<sip:z@w>")
    with pytest.raises(SipError):
        split_values('"open <sip:x@y>')


def test_an_addr_spec_keeps_its_parameters_apart_from_the_uri() -> None:
    address = parse_name_addr("sip:+861@h;tag=9")
    assert (address.uri, address.params) == ("sip:+861@h", {"tag": "9"})
    assert parse_name_addr("Anonymous <sip:anonymous@anonymous.invalid>").display == "Anonymous"
    with pytest.raises(SipError):
        parse_name_addr("sip:a@b?x=y")


def test_via_ports_and_hosts_are_checked() -> None:
    assert parse_via("SIP/2.0/UDP h.example:5080;branch=z9hG4bKa").port == 5080
    for bad in ("SIP/2.0/UDP h:0;branch=z9hG4bKa", "SIP/2.0/UDP h:99999;branch=b", "SIP/1.0/UDP h;branch=b"):
        with pytest.raises(SipError):
            parse_via(bad)


def test_a_response_mirrors_the_request_and_fills_received_rport_and_a_stable_tag() -> None:
    request, _ = parse_request(INVITE.encode())
    source = Source("udp", "192.0.2.7", 40000)
    answer = write_response(request, 302, "Moved Temporarily", (("Contact", "<sip:x@y>"),), source)
    lines = answer.decode().split("\r\n")
    assert lines[0] == "SIP/2.0 302 Moved Temporarily"
    assert lines[1] == "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1;rport=40000;received=192.0.2.7"
    assert lines[2] == "Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK-0"
    assert lines[4].startswith("To: <sip:+8613900139000@core.example;user=phone>;tag=fm")
    assert "Contact: <sip:x@y>" in lines
    assert lines[-3:] == ["Content-Length: 0", "", ""]
    assert (
        write_response(request, 302, "Moved Temporarily", (), source).split(b"\r\n")[4] == lines[4].encode()
    )


def test_the_transaction_cache_expires_and_stays_bounded() -> None:
    now = [0.0]
    cache = TransactionCache(ttl_s=32.0, max_entries=2, clock=lambda: now[0])
    cache.put(("b1", "h:1", "INVITE"), b"one")
    assert cache.get(("b1", "h:1", "INVITE")) == b"one"
    now[0] = 33.0
    assert cache.get(("b1", "h:1", "INVITE")) is None
    for index in range(5):
        cache.put((f"b{index}", "h:1", "INVITE"), b"x")
    assert len(cache) == 2


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2048))
def test_any_bytes_parse_or_raise_sip_error(data: bytes) -> None:
    with contextlib.suppress(SipError):
        parse_request(data)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, len(INVITE) - 1), st.integers(0, 255), st.booleans())
def test_a_mutated_invite_parses_or_raises_sip_error(position: int, byte: int, stream: bool) -> None:
    data = bytearray(INVITE.encode())
    data[position] = byte
    try:
        request, _ = parse_request(bytes(data), stream=stream)
    except SipError:
        return
    _ = request.via, request.cseq  # what was checked at parse time stays readable
