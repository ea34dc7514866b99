"""``make sip-smoke``: decision and the switch front on the local stack, real SIP peers against them.

Starts decision (for its admin API: one caller goes on the deny list) and the front (the decision
core in its own process, production settings), then runs SIPp scenarios as the switch would send
them — over UDP and TCP, clean, deny-listed, emergency (URN and number), malformed — and, when
Kamailio is installed, the same calls through Kamailio as the proxy in front (redirect and HTTP
variants). Prints one line per scenario with the answer received; exits 1 if any answer is not
the expected one.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from loadtest.kamailio import VARIANTS, dial, free_udp_port, start_proxy
from loadtest.sipp import Call, run_sipp, uac_scenario
from loadtest.switchstack import SwitchStack, log_folder

DENIED = "+8613800138111"


@dataclass(frozen=True)
class Scenario:
    """One line of the smoke: what is sent, over what, and which answer is right."""

    name: str
    call: Call
    transport: str = "u1"


SCENARIOS = (
    Scenario("clean call, UDP", Call()),
    Scenario("clean call, TCP", Call(), "t1"),
    Scenario("deny-listed caller", Call(caller=DENIED, expect=603)),
    Scenario("emergency URN from a deny-listed caller", Call(caller=DENIED, request_uri="urn:service:sos")),
    Scenario(
        "emergency number 110 from a deny-listed caller",
        Call(caller=DENIED, request_uri="sip:110@[remote_ip]:[remote_port];user=phone", to_uri="tel:110"),
    ),
    Scenario(
        "malformed INVITE (Max-Forwards: seventy)", Call(max_forwards="Max-Forwards: seventy", expect=400)
    ),
)


def run_sipp_scenarios(stack: SwitchStack, say: Callable[[str], None]) -> bool:
    """Every SIPp scenario against the front; True when each got its expected answer."""
    ok = True
    for scenario in SCENARIOS:
        folder = log_folder(f"smoke-{uuid.uuid4().hex[:8]}")
        result = run_sipp(
            uac_scenario(scenario.call), f"127.0.0.1:{stack.sip_port}", folder, transport=scenario.transport
        )
        got = result.statuses[-1] if result.statuses else (0, "no answer")
        passed = result.returncode == 0 and got[0] == scenario.call.expect
        ok &= passed
        detail = result.header("X-Fraudmesh-Decision") or result.header("Warning")
        say(f"{'ok ' if passed else 'BAD'} {scenario.name:<48} -> {got[0]} {got[1]}  [{detail}]")
    return ok


def main() -> int:
    """Entry point of ``python -m loadtest.sipsmoke``."""
    env = {key: value for key, value in os.environ.items() if key.startswith("FRAUDMESH_")}
    print("starting decision and the switch front (decision core in process) ...", flush=True)
    stack = SwitchStack.start(env, in_process=True)
    try:
        stack.deny(DENIED)
        ok = run_sipp_scenarios(stack, lambda line: print(line, flush=True))
        ok &= run_kamailio_scenarios(stack, lambda line: print(line, flush=True))
    finally:
        stack.stop()
    print("sip-smoke: every answer as expected" if ok else "sip-smoke: some answers were wrong (above)")
    return 0 if ok else 1


def run_kamailio_scenarios(stack: SwitchStack, say: Callable[[str], None]) -> bool:
    """The calls through Kamailio in front (both configs), when it is installed (else a line saying so).

    The caller dials the callee's own address; the front's 302 routes the call back there, so an
    allowed call is answered (200) by the SIPp callee behind Kamailio and a blocked one never rings.
    """
    if shutil.which("kamailio") is None:
        say("kamailio is not installed (make deps installs it): proxy scenarios not run")
        return True
    ok = True
    callee_port = free_udp_port()
    callee = f"sip:+8613900139000@127.0.0.1:{callee_port};user=phone"
    calls = (
        ("clean call", Call(request_uri=callee, expect=200)),
        ("deny-listed caller", Call(caller=DENIED, request_uri=callee, expect=603)),
        ("emergency URN, deny-listed caller", Call(caller=DENIED, request_uri="urn:service:sos", expect=200)),
    )
    for variant in VARIANTS:
        front = (
            f"127.0.0.1:{stack.sip_port}" if variant == "redirect" else f"http://127.0.0.1:{stack.http_port}"
        )
        proxy = start_proxy(variant, front, callee_port)
        try:
            for name, call in calls:
                caller, reached = dial(
                    proxy.port, callee_port, call, log_folder(f"smoke-{uuid.uuid4().hex[:8]}")
                )
                finals = [status for status in caller.statuses if status[0] >= 200]
                got = finals[0] if finals else (0, "no answer")
                rang = any(r.start_line.startswith("INVITE ") for r in reached.requests())
                passed = caller.returncode == 0 and got[0] == call.expect and rang == (call.expect == 200)
                ok &= passed
                where = "the callee rang" if rang else "the callee did not ring"
                label = f"kamailio {variant}: {name}"
                say(f"{'ok ' if passed else 'BAD'} {label:<48} -> {got[0]} {got[1]}, {where}")
        finally:
            proxy.stop()
    return ok


if __name__ == "__main__":
    sys.exit(main())
