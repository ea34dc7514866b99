"""atheris target: the switch front's SIP parser and INVITE reading must only ever answer, never raise.

Feeds arbitrary bytes as a datagram and as a stream message to ``parse_request`` (which may raise
only ``SipError``); a request that parses is read the way the front reads an INVITE (trunk,
CallSetup, caller identity), and answered both ways a decision can go and fail-open (which may
raise only ``SipError``, for an address inside it that does not parse). The seed corpus of
well-formed INVITEs is fuzz/corpus/sip_message.
Run: ``python -m fuzz.sip_message -runs=1000000 <new-corpus-dir> fuzz/corpus/sip_message``.
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports(include=["services.switchfront"]):
    from fraudmesh.v1 import common_pb2, verdicts_pb2
    from services.switchfront.answer import AnswerConfig, CallView, Cause, answer_for, fail_open
    from services.switchfront.callsetup import Trunk, Trunks, build_setup, identity_of
    from services.switchfront.front import Source, write_response
    from services.switchfront.sip import SipError, parse_request

_TRUNKS = Trunks([], Trunk("fuzz", "fuzz", common_pb2.INGRESS_KIND_VOIP_PEER, "CN"), "x-trunk")
_SOURCE = Source("udp", "127.0.0.1", 5060)
_BLOCK = verdicts_pb2.Decision(
    action=common_pb2.ACTION_BLOCK,
    sip=verdicts_pb2.SipResponse(
        status_code=603, reason_phrase="Network Blocked", redress_contact="+18005550100"
    ),
)
_LABEL = verdicts_pb2.Decision(action=common_pb2.ACTION_LABEL, label='Scam "Likely"')


def test_one_input(data: bytes) -> None:
    """One fuzz case; anything but the typed error is a finding."""
    for stream in (False, True):
        try:
            request, used = parse_request(data, stream=stream)
        except SipError as exc:
            if exc.answerable is not None:
                write_response(exc.answerable, 400, "Bad Request", (("Warning", exc.detail),), _SOURCE)
            continue
        if not 0 < used <= len(data):
            raise AssertionError(f"parse_request used {used} of {len(data)} bytes")
        with contextlib.suppress(SipError):
            setup = build_setup(request, _TRUNKS.find(request, "127.0.0.1"), now=0.0)
            identity = identity_of(request)
            call = CallView(request.uri, identity.uri, identity.display)
            for answer in (
                answer_for(_BLOCK, 0, call, AnswerConfig()),
                answer_for(
                    _LABEL, verdicts_pb2.SHAKEN_STATUS_VERIFIED, call, AnswerConfig(label_header="X-L")
                ),
                fail_open(call, AnswerConfig(), Cause.TIMEOUT),
            ):
                write_response(request, answer.status, answer.phrase, answer.headers, _SOURCE)
            setup.SerializeToString()


def main() -> None:
    """libFuzzer entry point (flags and corpus folders on the command line)."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
