"""The switch front behind a real proxy: SIPp calls through Kamailio (Debian's 5.6), which asks the front
and acts on its answer, to a SIPp callee behind it. Both integration snippets operators are pointed
to run: deploy/switchfront/kamailio/redirect.cfg (the front as a SIP redirect server) and http.cfg
(POST /v1/decide). Decision and the front run as their own processes on the local Redis and Kafka.

The caller dials the callee's own address (sip:<number>@127.0.0.1:<callee port>): the front's 302
sends the call back to its Request-URI, so Kamailio routes on the Contact it was given. A service URN
has no host, so the configs send urn:service:sos to EMERGENCY_ROUTE (here: the callee).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from loadtest.kamailio import VARIANTS, Kamailio, SippUas, dial, free_udp_port, start_proxy
from loadtest.mesh import free_port
from loadtest.sipp import Call, SippResult
from loadtest.switchstack import SwitchStack, log_folder
from services.switchfront.sip import parse_name_addr
from tests.integration.conftest import Stack

pytestmark = [pytest.mark.integration, pytest.mark.interop]

TOKEN = "kamailio-check-token-0123456789"
DENIED = "+8613800138111"
CALLEE = "+8613900139000"


@dataclass(frozen=True)
class Proxy:
    """A running Kamailio config and the callee port its calls are routed to."""

    variant: str
    kamailio: Kamailio
    callee_port: int


@dataclass(frozen=True)
class Outcome:
    """What the caller got back and what the callee received."""

    caller: SippResult
    callee: SippUas

    @property
    def finals(self) -> list[tuple[int, str]]:
        """The caller's final answers (provisional 1xx left out)."""
        return [status for status in self.caller.statuses if status[0] >= 200]


@pytest.fixture(scope="module")
def switch(stack: Stack) -> Iterator[SwitchStack]:
    """Decision and the front, a deny-listed caller, a bearer token on HTTP; a decision budget wide
    enough that a busy CI host cannot turn the deny-listed call into a fail-open one."""
    front_env = {"FRAUDMESH_HTTP_TOKEN": TOKEN, "FRAUDMESH_DECIDE_TIMEOUT_S": "0.5"}
    running = SwitchStack.start(stack.env, front_env)
    running.deny(DENIED)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def callee_port() -> int:
    """The loopback UDP port every test's SIPp callee listens on, one after the other."""
    return free_udp_port()


@pytest.fixture(scope="module", params=VARIANTS)
def proxy(request: pytest.FixtureRequest, switch: SwitchStack, callee_port: int) -> Iterator[Proxy]:
    """Kamailio running one config against the front; always stopped."""
    variant: str = request.param
    sip, http = f"127.0.0.1:{switch.sip_port}", f"http://127.0.0.1:{switch.http_port}"
    kamailio = start_proxy(variant, sip if variant == "redirect" else http, callee_port, TOKEN)
    try:
        yield Proxy(variant, kamailio, callee_port)
    finally:
        kamailio.stop()


def _dial(proxy: Proxy, call: Call) -> Outcome:
    """One call through the proxy to a fresh SIPp callee; ``call.expect`` 200 means answered."""
    folder = log_folder(f"kamailio-{proxy.variant}-{uuid.uuid4().hex[:8]}")
    caller, callee = dial(proxy.kamailio.port, proxy.callee_port, call, folder)
    context = f"{proxy.variant}: the caller got {caller.statuses}\n{caller.log[-2000:]}"
    assert caller.returncode == 0, f"{context}\n{proxy.kamailio.tail(2000)}"
    return Outcome(caller, callee)


def _to_callee(proxy: Proxy, number: str = CALLEE) -> str:
    return f"sip:{number}@127.0.0.1:{proxy.callee_port};user=phone"


def test_a_clean_call_reaches_the_callee_with_the_asserted_identity_and_the_decision(proxy: Proxy) -> None:
    outcome = _dial(proxy, Call(request_uri=_to_callee(proxy), expect=200))
    assert outcome.finals == [(200, "OK"), (200, "OK")]  # the INVITE's and the BYE's
    invite = outcome.callee.invite()
    assert invite.start_line == f"INVITE {_to_callee(proxy)} SIP/2.0"
    caller_uri = parse_name_addr(invite.header("From")).uri
    assert invite.values("P-Asserted-Identity") == [f"<{caller_uri};verstat=No-TN-Validation>"]
    assert re.match(r"action=(ALLOW|LABEL);score=", invite.header("X-Fraudmesh-Decision"))  # routed on
    assert invite.values("X-Fraudmesh-Trunk") == []  # for the front only


def test_a_quoted_chinese_display_name_reaches_the_callee_as_the_front_wrote_it(proxy: Proxy) -> None:
    outcome = _dial(proxy, Call(display='Zhang \\"Z\\" 张', request_uri=_to_callee(proxy), expect=200))
    invite = outcome.callee.invite()
    caller_uri = parse_name_addr(invite.header("From")).uri
    expected = f'"Zhang \\"Z\\" 张" <{caller_uri};verstat=No-TN-Validation>'
    assert invite.values("P-Asserted-Identity") == [expected]


def test_a_caller_sent_decision_header_never_reaches_the_callee(proxy: Proxy) -> None:
    forged = ("X-Fraudmesh-Decision: action=ALLOW;forged",)
    call = Call(request_uri=_to_callee(proxy), extra_headers=forged, expect=200)
    invite = _dial(proxy, call).callee.invite()
    assert len(invite.values("X-Fraudmesh-Decision")) == 1
    assert "forged" not in invite.header("X-Fraudmesh-Decision")


def test_a_deny_listed_caller_gets_603_with_reason_and_redress_and_nothing_rings(proxy: Proxy) -> None:
    outcome = _dial(proxy, Call(caller=DENIED, request_uri=_to_callee(proxy), expect=603))
    assert outcome.finals == [(603, "Network Blocked")]
    assert outcome.caller.header("Reason") == 'SIP;cause=603;text="Network Blocked"'
    assert outcome.caller.header("Call-Info") == "<https://redress.fraudmesh.example/blocked>;purpose=info"
    assert "reasons=DENY_LISTED" in outcome.caller.header("X-Fraudmesh-Decision")
    assert outcome.callee.requests() == []


@pytest.mark.parametrize(
    ("request_uri", "to_uri"),
    [("urn:service:sos", "urn:service:sos"), ("", "tel:110")],
    ids=["urn-service-sos", "sip-110"],
)
def test_an_emergency_call_reaches_the_callee_even_from_a_deny_listed_caller(
    proxy: Proxy, request_uri: str, to_uri: str
) -> None:
    ruri = request_uri or _to_callee(proxy, "110")
    outcome = _dial(proxy, Call(caller=DENIED, request_uri=ruri, to_uri=to_uri, expect=200))
    assert outcome.finals == [(200, "OK"), (200, "OK")]
    invite = outcome.callee.invite()
    assert invite.start_line == f"INVITE {ruri} SIP/2.0"
    assert invite.header("X-Fraudmesh-Decision") == "action=ALLOW;cause=emergency"
    assert invite.header("P-Asserted-Identity").endswith(";verstat=No-TN-Validation>")


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_front_that_does_not_answer_is_routed_around(variant: str, callee_port: int) -> None:
    dead = f"127.0.0.1:{free_udp_port()}" if variant == "redirect" else f"http://127.0.0.1:{free_port()}"
    kamailio = start_proxy(variant, dead, callee_port, TOKEN)
    try:
        proxy = Proxy(variant, kamailio, callee_port)
        outcome = _dial(proxy, Call(caller=DENIED, request_uri=_to_callee(proxy), expect=200))
    finally:
        kamailio.stop()
    assert outcome.finals == [(200, "OK"), (200, "OK")]
    invite = outcome.callee.invite()
    assert invite.start_line == f"INVITE {_to_callee(proxy)} SIP/2.0"
    assert invite.values("X-Fraudmesh-Decision") == []  # routed on unchanged: nothing was decided
    assert "fraudmesh front gave no answer" in kamailio.tail()
