"""The switch front against real SIP peers: SIPp (Debian's sip-tester) as the UAC over UDP and TCP,
and a raw UDP client for what SIPp cannot do (send one INVITE twice with one branch: SIPp takes
the identical cached answer for a retransmission of its own and loops). Decision runs as its own
process at production settings, on the local Redis and Kafka."""

from __future__ import annotations

import json
import re
import socket
import ssl
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loadtest.processes import ServiceProcess
from loadtest.sipp import Call, run_sipp, uac_scenario
from loadtest.switchstack import LOGS, SwitchStack, free_udp_and_tcp_port, log_folder, wait_front
from services.switchfront.sip import parse_name_addr
from tests.integration.conftest import Stack
from tests.tlsutil import mesh_pki

pytestmark = [pytest.mark.integration, pytest.mark.interop]

TOKEN = "switch-check-token-0123456789"
DENIED = "+8613800138111"


@pytest.fixture(scope="module")
def switch(stack: Stack) -> Iterator[SwitchStack]:
    """Decision and the front, with a deny-listed caller and a bearer token on the HTTP endpoint."""
    running = SwitchStack.start(stack.env, {"FRAUDMESH_HTTP_TOKEN": TOKEN})
    running.deny(DENIED)
    yield running
    running.stop()


def _sipp(switch: SwitchStack, call: Call, transport: str = "u1") -> Any:
    folder = log_folder(f"test-{uuid.uuid4().hex[:8]}")
    result = run_sipp(uac_scenario(call), f"127.0.0.1:{switch.sip_port}", folder, transport=transport)
    assert result.returncode == 0, f"SIPp failed ({result.statuses}):\n{result.log[-3000:]}"
    return result


def test_a_clean_call_is_redirected_to_its_own_request_uri_with_verstat(switch: SwitchStack) -> None:
    result = _sipp(switch, Call())
    assert result.statuses == [(302, "Moved Temporarily")]
    contact = parse_name_addr(result.header("Contact")).uri
    assert contact.startswith("sip:+8613900139000@127.0.0.1:")
    assert result.header("P-Asserted-Identity").endswith(";verstat=No-TN-Validation>")
    assert re.match(r"action=(ALLOW|LABEL);score=", result.header("X-Fraudmesh-Decision"))  # the model's call


def test_a_clean_call_over_tcp_gets_the_same_answer(switch: SwitchStack) -> None:
    result = _sipp(switch, Call(), transport="t1")
    assert result.statuses == [(302, "Moved Temporarily")]


def test_a_deny_listed_caller_gets_603_network_blocked_with_reason_and_redress(switch: SwitchStack) -> None:
    result = _sipp(switch, Call(caller=DENIED, expect=603))
    assert result.statuses == [(603, "Network Blocked")]
    assert result.header("Reason") == 'SIP;cause=603;text="Network Blocked"'
    assert result.header("Call-Info") == "<https://redress.fraudmesh.example/blocked>;purpose=info"
    assert "reasons=DENY_LISTED" in result.header("X-Fraudmesh-Decision")


@pytest.mark.parametrize(
    ("request_uri", "to_uri"),
    [
        ("urn:service:sos", "urn:service:sos"),
        ("urn:service:sos.police", "urn:service:sos.police"),
        ("sip:110@[remote_ip]:[remote_port];user=phone", "tel:110"),
    ],
)
def test_an_emergency_call_is_routed_on_even_from_a_deny_listed_caller(
    switch: SwitchStack, request_uri: str, to_uri: str
) -> None:
    before = switch.metric("fraudmesh_switchfront_answers_total", cause="emergency")
    result = _sipp(switch, Call(caller=DENIED, request_uri=request_uri, to_uri=to_uri))
    assert result.statuses == [(302, "Moved Temporarily")]
    assert result.header("X-Fraudmesh-Decision") == "action=ALLOW;cause=emergency"
    assert switch.metric("fraudmesh_switchfront_answers_total", cause="emergency") == before + 1


def test_a_malformed_invite_gets_400_naming_the_problem(switch: SwitchStack) -> None:
    result = _sipp(switch, Call(max_forwards="Max-Forwards: seventy", expect=400))
    assert result.statuses == [(400, "Bad Request")]
    assert result.header("Warning").startswith('399 fraudmesh "bad_max_forwards:')


def _invite(port: int, branch: str, request_uri: str = "sip:+8613900139000@example.net;user=phone") -> bytes:
    lines = [
        f"INVITE {request_uri} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bK{branch}",
        f"From: <sip:+8613800138000@example.org;user=phone>;tag={branch}",
        "To: <sip:+8613900139000@example.net;user=phone>",
        f"Call-ID: {branch}@fraudmesh.test",
        "CSeq: 1 INVITE",
        "Max-Forwards: 70",
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


def _exchange(sock: socket.socket, target: tuple[str, int], message: bytes) -> bytes:
    sock.sendto(message, target)
    return sock.recvfrom(65535)[0]


def test_a_retransmitted_invite_gets_the_same_answer_without_a_second_decision(switch: SwitchStack) -> None:
    def answers() -> float:
        return switch.metric("fraudmesh_switchfront_answers_total", transport="udp")

    def retransmissions() -> float:
        return switch.metric("fraudmesh_switchfront_retransmissions_total")

    answered, retransmitted = answers(), retransmissions()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        target = ("127.0.0.1", switch.sip_port)
        invite = _invite(sock.getsockname()[1], uuid.uuid4().hex)
        first = _exchange(sock, target, invite)
        again = _exchange(sock, target, invite)
    assert first.startswith(b"SIP/2.0 302 ")
    assert again == first
    assert answers() == answered + 1
    assert retransmissions() == retransmitted + 1


def test_options_keepalives_and_other_methods_are_answered(switch: SwitchStack) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        target = ("127.0.0.1", switch.sip_port)
        invite = _invite(sock.getsockname()[1], uuid.uuid4().hex)
        options = invite.replace(b"INVITE sip:", b"OPTIONS sip:").replace(b"1 INVITE", b"1 OPTIONS")
        assert _exchange(sock, target, options).startswith(b"SIP/2.0 200 OK")
        bye = invite.replace(b"INVITE sip:", b"BYE sip:").replace(b"1 INVITE", b"1 BYE")
        assert _exchange(sock, target, bye).startswith(b"SIP/2.0 405 Method Not Allowed")
        garbage = b"NOT SIP AT ALL\r\n\r\n"
        sock.sendto(garbage, target)  # nothing to address an answer to: dropped, counted
        assert _exchange(sock, target, options).startswith(b"SIP/2.0 200 OK")
    assert switch.metric("fraudmesh_switchfront_malformed_total", answered="false") >= 1


def _post(switch: SwitchStack, body: bytes, token: str = TOKEN) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{switch.http_port}/v1/decide",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _setup(caller: str, **extra: str) -> bytes:
    setup = {
        "call_id": uuid.uuid4().hex,
        "tenant": "demo-cn",
        "calling_number": caller,
        "called_number": "+8613900139000",
        "request_uri": "sip:+8613900139000@core.example;user=phone",
        **extra,
    }
    return json.dumps(setup).encode()


def test_the_http_endpoint_answers_with_the_decision_and_its_sip_mapping(switch: SwitchStack) -> None:
    status, body = _post(switch, _setup("+8613800138000", display_name="Zhang"))
    assert status == 200
    assert (body["action"], body["status"], body["cause"]) == ("ALLOW", 302, "decided")
    assert body["contact"] == "sip:+8613900139000@core.example;user=phone"
    assert body["headers"]["P-Asserted-Identity"] == '"Zhang" <tel:+8613800138000;verstat=No-TN-Validation>'
    assert body["decision"]["action"] == "ACTION_ALLOW"

    status, body = _post(switch, _setup(DENIED))
    assert (status, body["action"], body["status"], body["reason"]) == (200, "BLOCK", 603, "Network Blocked")
    assert body["headers"]["Reason"] == 'SIP;cause=603;text="Network Blocked"'

    status, body = _post(switch, _setup(DENIED, request_uri="urn:service:sos", called_number="110"))
    assert (status, body["action"], body["cause"]) == (200, "ALLOW", "emergency")


def test_the_http_endpoint_refuses_bad_input_and_missing_tokens(switch: SwitchStack) -> None:
    assert _post(switch, b"{not json")[0] == 400
    assert _post(switch, b'{"call_id": "x"}')[0] == 400
    assert _post(switch, b'{"call_id": "x", "tenant": "t", "no_such_field": 1}')[0] == 400
    assert _post(switch, _setup("+8613800138000"), token="wrong-token-0123456789")[0] == 401


def test_a_front_whose_decision_service_is_down_routes_every_call_on(stack: Stack) -> None:
    sip_port, http_port = free_udp_and_tcp_port(), free_udp_and_tcp_port()
    front = ServiceProcess(
        "services.switchfront",
        {
            **stack.env,
            "FRAUDMESH_DECISION_TARGET": f"127.0.0.1:{free_udp_and_tcp_port()}",  # nothing listens
            "FRAUDMESH_SIP_PORT": str(sip_port),
            "FRAUDMESH_HTTP_PORT": str(http_port),
            "FRAUDMESH_METRICS_PORT": "0",
        },
        LOGS / f"switchfront-down-{sip_port}.log",
    )
    try:
        wait_front(front, http_port, 60, path="/healthz")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(5)
            answer = _exchange(
                sock, ("127.0.0.1", sip_port), _invite(sock.getsockname()[1], uuid.uuid4().hex)
            )
        assert answer.startswith(b"SIP/2.0 302 Moved Temporarily")
        assert b"X-Fraudmesh-Decision: action=ALLOW;cause=" in answer
    finally:
        assert front.stop() == 0, front.tail()


def test_a_front_running_the_decision_core_in_process_answers_the_same(stack: Stack) -> None:
    running = SwitchStack.start(stack.env, in_process=True)
    try:
        running.deny(DENIED)
        assert _sipp(running, Call()).statuses == [(302, "Moved Temporarily")]
        blocked = _sipp(running, Call(caller=DENIED, expect=603))
        assert blocked.header("Reason") == 'SIP;cause=603;text="Network Blocked"'
        assert running.metric("fraudmesh_switchfront_answers_total", cause="decided") == 2
        assert running.metric("fraudmesh_decision_decisions_total") >= 2  # the core's metrics, same process
    finally:
        running.stop()


def test_the_http_endpoint_completes_a_call_from_its_configured_trunk(switch: SwitchStack) -> None:
    body = json.loads(_setup("+8613800138000"))
    del body["tenant"]
    body["ingress_trunk_id"] = "intl-gw"  # deploy/switchfront/trunks.yaml: demo-cn, international gateway
    status, answer = _post(switch, json.dumps(body).encode())
    assert (status, answer["cause"]) == (200, "decided")  # without the trunk's tenant: 400
    assert answer["decision"]["call_id"] == body["call_id"]


def test_with_mutual_tls_the_http_endpoint_needs_a_client_certificate_and_probes_use_the_health_port(
    stack: Stack, tmp_path: Path
) -> None:
    pki = mesh_pki()
    files = {}
    for name, data in (
        ("ca.pem", pki.ca),
        ("server.pem", pki.server.cert),
        ("server.key", pki.server.key),
        ("client.pem", pki.client.cert),
        ("client.key", pki.client.key),
    ):
        (tmp_path / name).write_bytes(data)
        files[name] = str(tmp_path / name)
    sip_port, http_port, health_port, tls_port = (free_udp_and_tcp_port() for _ in range(4))
    front = ServiceProcess(
        "services.switchfront",
        {
            **stack.env,
            "FRAUDMESH_DECISION_TARGET": f"127.0.0.1:{free_udp_and_tcp_port()}",
            "FRAUDMESH_SIP_PORT": str(sip_port),
            "FRAUDMESH_HTTP_PORT": str(http_port),
            "FRAUDMESH_HEALTH_PORT": str(health_port),
            "FRAUDMESH_SIP_TLS_PORT": str(tls_port),
            "FRAUDMESH_METRICS_PORT": "0",
            "FRAUDMESH_TLS_CERT_FILE": files["server.pem"],
            "FRAUDMESH_TLS_KEY_FILE": files["server.key"],
            "FRAUDMESH_TLS_CLIENT_CA_FILE": files["ca.pem"],
        },
        LOGS / f"switchfront-tls-{sip_port}.log",
    )
    try:
        wait_front(front, health_port, 60, path="/healthz")
        url = f"https://127.0.0.1:{http_port}/v1/decide"
        body = _setup("+8613800138000")
        trusted = ssl.create_default_context(cafile=files["ca.pem"])
        anonymous = urllib.request.Request(url, data=body)
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(anonymous, timeout=5, context=trusted).read()
        trusted.load_cert_chain(files["client.pem"], files["client.key"])
        request = urllib.request.Request(url, data=body)
        with urllib.request.urlopen(request, timeout=5, context=trusted) as response:
            answer = json.loads(response.read())
        assert (answer["action"], answer["status"]) == ("ALLOW", 302)  # decision unreachable: fail-open
        assert answer["cause"] == "unavailable"
        with (
            socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw,
            trusted.wrap_socket(raw, server_hostname="localhost") as sip,
        ):
            invite = _invite(sip.getsockname()[1], uuid.uuid4().hex).replace(b"SIP/2.0/UDP", b"SIP/2.0/TLS")
            sip.sendall(invite)
            assert sip.recv(65535).startswith(b"SIP/2.0 302 Moved Temporarily")  # SIP over TLS, fail-open
    finally:
        assert front.stop() == 0, front.tail()
