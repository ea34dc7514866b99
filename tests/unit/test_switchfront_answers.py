"""Decisions as SIP answers, INVITEs as CallSetups, trunks, and the front's paths that need no Decide."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudmesh.v1 import common_pb2, verdicts_pb2
from services.common.settings import load
from services.switchfront.answer import AnswerConfig, CallView, Cause, answer_for, fail_open
from services.switchfront.callsetup import Trunk, TrunkError, Trunks, build_setup
from services.switchfront.client import DecisionClient
from services.switchfront.front import Front, Source, TransactionCache
from services.switchfront.service import emergency_numbers
from services.switchfront.settings import SwitchFrontSettings
from services.switchfront.sip import parse_request

CALL = CallView("sip:+8613900139000@core;user=phone", "sip:+8613800138000@peer;user=phone;verstat=x", "Zhang")


def _decision(action: int, **fields: object) -> verdicts_pb2.Decision:
    return verdicts_pb2.Decision(call_id="c", action=action, score=0.5, **fields)  # type: ignore[arg-type]


def test_allow_routes_to_the_request_uri_with_the_shaken_verstat() -> None:
    answer = answer_for(
        _decision(common_pb2.ACTION_ALLOW), verdicts_pb2.SHAKEN_STATUS_VERIFIED, CALL, AnswerConfig()
    )
    headers = dict(answer.headers)
    assert (answer.status, answer.action, answer.contact) == (302, "ALLOW", CALL.request_uri)
    assert headers["P-Asserted-Identity"] == (
        '"Zhang" <sip:+8613800138000@peer;user=phone;verstat=TN-Validation-Passed>'
    )
    failed = answer_for(
        _decision(common_pb2.ACTION_ALLOW), verdicts_pb2.SHAKEN_STATUS_FAILED, CALL, AnswerConfig()
    )
    assert "verstat=TN-Validation-Failed" in dict(failed.headers)["P-Asserted-Identity"]


def test_label_puts_the_tenants_label_in_the_display_name_and_the_operators_header() -> None:
    decision = _decision(common_pb2.ACTION_LABEL, label='疑似"诈骗"', reason_codes=["HIGH_RISK_RANGE"])
    answer = answer_for(
        decision, 0, CALL, AnswerConfig(allow_contact="sip:core@x", label_header="X-Call-Label")
    )
    headers = dict(answer.headers)
    assert answer.contact == "sip:core@x"
    assert headers["P-Asserted-Identity"].startswith(
        '"疑似\\"诈骗\\"" <sip:+8613800138000@peer;user=phone;verstat='
    )
    assert headers["X-Call-Label"] == '疑似"诈骗"'
    assert headers["X-Fraudmesh-Decision"] == "action=LABEL;score=0.500;reasons=HIGH_RISK_RANGE"


def test_challenge_goes_to_the_screening_uri_or_else_the_policys_response() -> None:
    sip = verdicts_pb2.SipResponse(status_code=480, reason_phrase="Call Screening Required")
    decision = _decision(common_pb2.ACTION_CHALLENGE, sip=sip)
    routed = answer_for(decision, 0, CALL, AnswerConfig(challenge_uri="sip:ivr@screen"))
    assert (routed.status, routed.contact) == (302, "sip:ivr@screen")
    assert answer_for(decision, 0, CALL, AnswerConfig()).status == 480


def test_block_sends_603_plus_or_608_with_the_redress_contact() -> None:
    sip = verdicts_pb2.SipResponse(
        status_code=603,
        reason_phrase="Network Blocked",
        reason_header='SIP;cause=603;text="Network Blocked"',
        redress_contact="+1 (800) 555-0100",
    )
    answer = answer_for(_decision(common_pb2.ACTION_BLOCK, sip=sip), 0, CALL, AnswerConfig())
    headers = dict(answer.headers)
    assert (answer.status, answer.phrase) == (603, "Network Blocked")
    assert headers["Reason"] == 'SIP;cause=603;text="Network Blocked"'
    assert headers["Call-Info"] == "<tel:+18005550100>;purpose=info"
    sip.status_code, sip.reason_phrase, sip.redress_contact = 608, "Rejected", "https://redress.example/jcard"
    rejected = answer_for(_decision(common_pb2.ACTION_BLOCK, sip=sip), 0, CALL, AnswerConfig())
    assert dict(rejected.headers)["Call-Info"] == "<https://redress.example/jcard>;purpose=jwscard"


def test_a_block_without_its_sip_mapping_is_never_sent_blind() -> None:
    answer = answer_for(_decision(common_pb2.ACTION_BLOCK), 0, CALL, AnswerConfig())
    assert (answer.status, answer.action) == (302, "ALLOW")


def test_fail_open_answers_allow_and_names_the_cause() -> None:
    answer = fail_open(CALL, AnswerConfig(), Cause.TIMEOUT)
    assert (answer.status, answer.cause) == (302, Cause.TIMEOUT)
    assert dict(answer.headers)["X-Fraudmesh-Decision"] == "action=ALLOW;cause=timeout"


INVITE = (
    "INVITE sip:+8613900139000@core;user=phone SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-9\r\n"
    '"Li" <sip:+8613800138000@peer;user=phone>;tag=1\r\n'
    "To: <tel:+8613900139000>\r\n"
    "Call-ID: call-9\r\n"
    "CSeq: 1 INVITE\r\n"
    "{extra}"
    "Content-Length: 0\r\n\r\n"
).replace('"Li"', 'From: "Li"')


def _request(extra: str = "") -> object:
    return parse_request(INVITE.format(extra=extra).encode())[0]


TRUNK = Trunk("intl-gw", "demo-cn", common_pb2.INGRESS_KIND_INTERNATIONAL_GATEWAY, "CN")


def test_an_invite_becomes_the_callsetup_decision_reads() -> None:
    extra = (
        "P-Asserted-Identity: <tel:+8613800138001>, <sip:+8613800138001@ims>\r\n"
        "Identity: a.b.c;info=<https://x/1>\r\nIdentity: d.e.f;info=<https://x/2>\r\n"
        "Diversion: <sip:+8613700137002@core>;reason=user-busy;counter=1,"
        " <sip:+8613700137001@core>;reason=unconditional\r\n"
        "User-Agent: SBC 9\r\n"
    )
    setup = build_setup(_request(extra), TRUNK, now=1_800_000_000.0)  # type: ignore[arg-type]
    assert (setup.calling_number, setup.display_name, setup.p_asserted_identity) == (
        "sip:+8613800138000@peer;user=phone",
        "Li",
        "tel:+8613800138001",
    )
    assert (setup.called_number, setup.request_uri) == (
        "tel:+8613900139000",
        "sip:+8613900139000@core;user=phone",
    )
    assert list(setup.identity_headers) == ["a.b.c;info=<https://x/1>", "d.e.f;info=<https://x/2>"]
    assert [(d.number, d.reason) for d in setup.diversions] == [
        ("sip:+8613700137001@core", "unconditional"),
        ("sip:+8613700137002@core", "user-busy"),
    ]
    assert (setup.tenant, setup.ingress_trunk_id, setup.ingress_kind, setup.user_agent) == (
        "demo-cn",
        "intl-gw",
        common_pb2.INGRESS_KIND_INTERNATIONAL_GATEWAY,
        "SBC 9",
    )
    assert setup.event_time.seconds == 1_800_000_000


def test_history_info_retargets_become_diversions_when_there_is_no_diversion_header() -> None:
    extra = (
        "History-Info: <sip:+8613700137001@core>;index=1, <sip:+8613700137002@core;cause=302>;index=1.1,"
        " <sip:+8613900139000@core;cause=486>;index=1.1.1\r\n"
    )
    setup = build_setup(_request(extra), TRUNK)  # type: ignore[arg-type]
    assert [(d.number, d.reason) for d in setup.diversions] == [
        ("sip:+8613700137001@core", "unconditional"),
        ("sip:+8613700137002@core", "user-busy"),
    ]


def test_trunks_come_from_the_named_header_then_the_source_network_then_the_default(tmp_path: Path) -> None:
    path = tmp_path / "trunks.yaml"
    path.write_text(
        "header: X-Trunk\n"
        "default: {id: other, tenant: demo-cn, kind: DOMESTIC_INTERCONNECT, region: CN}\n"
        "trunks:\n"
        "  - {id: gw, tenant: demo-cn, kind: INTERNATIONAL_GATEWAY, region: CN-GD,"
        " sources: [198.51.100.0/24]}\n"
        "  - {id: voip, tenant: demo-us, kind: VOIP_PEER, region: US}\n"
    )
    trunks = Trunks.load(path)
    assert trunks.find(_request(), "198.51.100.7").id == "gw"  # type: ignore[arg-type]
    assert trunks.find(_request(), "203.0.113.1").id == "other"  # type: ignore[arg-type]
    named = trunks.find(_request("X-Trunk: voip\r\n"), "198.51.100.7")  # type: ignore[arg-type]
    assert (named.id, named.tenant, named.kind) == ("voip", "demo-us", common_pb2.INGRESS_KIND_VOIP_PEER)
    path.write_text("default: {id: x, tenant: t, kind: SATELLITE, region: CN}\n")
    with pytest.raises(TrunkError, match="kind"):
        Trunks.load(path)


def test_the_shipped_trunks_and_policy_files_load() -> None:
    root = Path(__file__).resolve().parents[2]
    assert Trunks.load(root / "deploy/switchfront/trunks.yaml").default.tenant == "demo-cn"
    assert "122" in emergency_numbers("deploy/policy/default.yaml")


def _settings() -> SwitchFrontSettings:
    return load(
        SwitchFrontSettings,
        {"FRAUDMESH_PSEUDONYM_KEY": "ab" * 32, "FRAUDMESH_DECISION_TARGET": "127.0.0.1:1"},
    )


async def _front() -> Front:
    settings = _settings()
    trunks = Trunks([], Trunk("t", "demo-cn", common_pb2.INGRESS_KIND_ON_NET, "CN"), "")
    return Front(
        DecisionClient(settings),
        trunks,
        AnswerConfig(),
        settings.region_for,
        frozenset({"122"}),
        TransactionCache(32.0, 100),
    )


SOURCE = Source("udp", "127.0.0.1", 5060)


async def test_a_broken_invite_to_an_emergency_service_is_still_routed_on() -> None:
    front = await _front()
    broken = INVITE.format(extra="Max-Forwards: lots\r\n").replace(
        "INVITE sip:+8613900139000@core;user=phone", "INVITE sip:122@core;user=phone"
    )
    answer = await front.on_request(broken.encode(), SOURCE)
    assert answer is not None
    assert answer.startswith(b"SIP/2.0 302 Moved Temporarily\r\n")
    assert b"cause=emergency" in answer
    ordinary = await front.on_request(INVITE.format(extra="Max-Forwards: lots\r\n").encode(), SOURCE)
    assert ordinary is not None
    assert ordinary.startswith(b"SIP/2.0 400 Bad Request\r\n")
    await front.client.close()


async def test_options_cancel_ack_and_unknown_methods_need_no_decision() -> None:
    front = await _front()

    def as_method(method: str) -> bytes:
        return INVITE.format(extra="").replace("INVITE", method).encode()

    assert (await front.on_request(as_method("OPTIONS"), SOURCE) or b"").startswith(b"SIP/2.0 200 OK")
    assert (await front.on_request(as_method("CANCEL"), SOURCE) or b"").startswith(b"SIP/2.0 200 OK")
    assert await front.on_request(as_method("ACK"), SOURCE) is None
    assert (await front.on_request(as_method("REGISTER"), SOURCE) or b"").startswith(b"SIP/2.0 405 ")
    hops = INVITE.format(extra="Max-Forwards: 0\r\n").encode()
    assert (await front.on_request(hops, SOURCE) or b"").startswith(b"SIP/2.0 483 Too Many Hops")
    await front.client.close()


def test_settings_refuse_an_open_http_endpoint_off_loopback() -> None:
    with pytest.raises(ValueError, match="mutual TLS or a token"):
        SwitchFrontSettings(pseudonym_key=_settings().pseudonym_key, http_bind="0.0.0.0")
