"""Caller-ID consistency checks: each stable reason code fires exactly when it should."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudmesh.v1 import call_pb2, common_pb2
from services.common.identity import is_withheld, presented_caller
from services.common.reasons import REASONS, Reason
from services.origination.callerid import (
    TenantRules,
    check_caller_id,
)

ON_NET = common_pb2.INGRESS_KIND_ON_NET
DOMESTIC = common_pb2.INGRESS_KIND_DOMESTIC_INTERCONNECT
INTL = common_pb2.INGRESS_KIND_INTERNATIONAL_GATEWAY
VOIP = common_pb2.INGRESS_KIND_VOIP_PEER
UNSPECIFIED = common_pb2.INGRESS_KIND_UNSPECIFIED

RULES = TenantRules(
    region="CN",
    home_ranges=("+86138", "+86139"),
    risky_ranges=("+86170", "+86171", "CN:95"),
    area_regions={"+8610": "CN-BJ", "+86755": "CN-GD", "+8620": "CN-GD"},
)
CALLEE = "+8613900139000"


def call(
    calling: str,
    ingress: int = DOMESTIC,
    called: str = CALLEE,
    pai: str = "",
    region: str = "",
) -> call_pb2.CallSetup:
    return call_pb2.CallSetup(
        calling_number=calling,
        p_asserted_identity=pai,
        called_number=called,
        ingress_kind=ingress,  # type: ignore[arg-type]
        ingress_region=region,
    )


def codes(setup: call_pb2.CallSetup, rules: TenantRules = RULES) -> tuple[str, ...]:
    return check_caller_id(setup, rules).reason_codes


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (call("+8613012345678", DOMESTIC, called="+8618612345678"), ()),
        (call("+8613012345678", INTL, called="+8618612345678"), ("INTL_INGRESS_DOMESTIC_CLI",)),
        (call("13012345678", INTL, called="+8618612345678"), ("INTL_INGRESS_DOMESTIC_CLI",)),
        (call("+12025550123", INTL), ()),
        (call("0012025550123", INTL), ()),
        (call("+8613812345678", ON_NET, called="+8618612345678"), ()),
        (call("+8613812345678", DOMESTIC, called="+8618612345678"), ("ONNET_CLI_OFFNET_INGRESS",)),
        (call("+8613812345678", VOIP, called="+8618612345678"), ("ONNET_CLI_OFFNET_INGRESS",)),
        (call("+8613812345678", UNSPECIFIED, called="+8618612345678"), ()),
        (
            call("+8613812345678", INTL, called="+8618612345678"),
            ("INTL_INGRESS_DOMESTIC_CLI", "ONNET_CLI_OFFNET_INGRESS"),
        ),
        (call("+8617012345678", DOMESTIC), ("RISKY_RANGE",)),
        (call("95588", DOMESTIC), ("RISKY_RANGE",)),
        (
            call("+86139001399", DOMESTIC),
            ("INVALID_CLI", "ONNET_CLI_OFFNET_INGRESS", "NEIGHBOR_SPOOFING"),
        ),
        (call("+8612345678901", DOMESTIC), ("INVALID_CLI",)),
        (call("not-a-number", DOMESTIC), ("INVALID_CLI",)),
        (call("110", DOMESTIC), ("INVALID_CLI",)),
        (call("", DOMESTIC), ()),
        (call("anonymous", DOMESTIC), ()),
        (call("sip:anonymous@anonymous.invalid", DOMESTIC), ()),
        (call('"Withheld" <sip:Restricted@host>', INTL), ()),
    ],
    ids=[
        "domestic_ok",
        "intl_domestic_e164",
        "intl_domestic_national",
        "intl_foreign",
        "intl_foreign_idd",
        "onnet_on_net",
        "onnet_from_interconnect",
        "onnet_from_voip",
        "onnet_unknown_ingress",
        "onnet_from_intl",
        "risky_virtual",
        "risky_short_code",
        "unallocated_still_checked",
        "invalid_unallocated",
        "invalid_garbage",
        "invalid_emergency_caller",
        "withheld_empty",
        "withheld_anonymous",
        "withheld_sip_anonymous",
        "withheld_display_name",
    ],
)
def test_reason_codes(setup: call_pb2.CallSetup, expected: tuple[str, ...]) -> None:
    assert codes(setup) == expected


@pytest.mark.parametrize(
    ("calling", "called", "ingress", "fires"),
    [
        ("+8613312345678", "+8613312345999", DOMESTIC, True),
        ("+8613312340000", "+8613312349999", DOMESTIC, True),
        ("+8613312300000", "+8613312399999", DOMESTIC, False),
        ("+8613312345678", "+8613312345678", DOMESTIC, True),
        ("+8613312345678", "+8613312345999", ON_NET, False),
        ("+8613312345678", "13312345999", INTL, True),
        ("+12025550123", "+12025550199", INTL, True),
        ("+12025550123", "+12025559999", INTL, False),
        ("+8613312345678", "+13312345999", DOMESTIC, False),
        ("+8613312345678", "110", DOMESTIC, False),
        ("+8613312345678", "garbage", DOMESTIC, False),
    ],
    ids=[
        "seven_digits",
        "exactly_seven",
        "six_digits",
        "same_number",
        "on_net",
        "national_callee",
        "nanp_npa_nxx_plus_one",
        "nanp_npa_nxx_only",
        "other_country",
        "short_callee",
        "garbage_callee",
    ],
)
def test_neighbor_spoofing(calling: str, called: str, ingress: int, fires: bool) -> None:
    assert ("NEIGHBOR_SPOOFING" in codes(call(calling, ingress, called=called))) is fires


def test_neighbor_digits_configurable() -> None:
    setup = call("+8613312300000", DOMESTIC, called="+8613312399999")
    assert "NEIGHBOR_SPOOFING" not in codes(setup)
    assert "NEIGHBOR_SPOOFING" in codes(setup, TenantRules(region="CN", neighbor_digits=6))


def test_pai_is_preferred_over_from() -> None:
    setup = call("+8613012345678", INTL, pai="<sip:+12025550123@gw.example>")
    assert presented_caller(setup) == "<sip:+12025550123@gw.example>"
    assert codes(setup) == ()
    spoofed = call("+12025550123", INTL, pai="+8613012345678")
    assert codes(spoofed) == ("INTL_INGRESS_DOMESTIC_CLI",)


@pytest.mark.parametrize(
    ("calling", "ingress", "region", "fires"),
    [
        ("01065529988", ON_NET, "CN-GD", True),
        ("01065529988", ON_NET, "CN-BJ", False),
        ("01065529988", ON_NET, "cn-bj", False),
        ("075512345678", ON_NET, "CN-GD", False),
        ("02012345678", ON_NET, "CN-GD", False),
        ("01065529988", DOMESTIC, "CN-GD", False),
        ("01065529988", ON_NET, "", False),
        ("+8613012345678", ON_NET, "CN-GD", False),
        ("02112345678", ON_NET, "CN-GD", False),
    ],
    ids=[
        "beijing_fixed_at_guangdong",
        "beijing_fixed_at_beijing",
        "case_insensitive",
        "shenzhen_at_guangdong",
        "guangzhou_at_guangdong",
        "interconnect_not_checked",
        "no_ingress_region",
        "mobile_not_checked",
        "unmapped_area",
    ],
)
def test_fixed_line_region_mismatch(calling: str, ingress: int, region: str, fires: bool) -> None:
    assert (Reason.CLI_REGION_MISMATCH in codes(call(calling, ingress, region=region))) is fires


def test_region_check_is_off_without_area_regions() -> None:
    setup = call("01065529988", ON_NET, region="CN-GD")
    assert codes(setup, TenantRules(region="CN")) == ()


def test_result_carries_normalised_numbers() -> None:
    result = check_caller_id(call("013800138000", DOMESTIC, called="13900139000"), TenantRules(region="CN"))
    assert result.caller is not None
    assert result.callee is not None
    assert (result.caller.canonical, result.callee.canonical, result.withheld) == (
        "+8613800138000",
        "+8613900139000",
        False,
    )
    withheld = check_caller_id(call("anonymous"), RULES)
    assert (withheld.caller, withheld.withheld) == (None, True)


@pytest.mark.parametrize(
    ("raw", "withheld"),
    [
        ("", True),
        ("  ", True),
        ("Anonymous", True),
        ("<sip:anonymous@anonymous.invalid>;tag=1", True),
        ("sips:unavailable@host", True),
        ("tel:private", True),
        ("+8613800138000", False),
        ("sip:+8613800138000@host", False),
        ("sip:alice@host", False),
    ],
)
def test_is_withheld(raw: str, withheld: bool) -> None:
    assert is_withheld(raw) is withheld


@pytest.mark.parametrize(
    "kwargs",
    [
        {"home_ranges": ("86138",)},
        {"risky_ranges": ("+86 170",)},
        {"area_regions": {"8610": "CN-BJ"}},
        {"area_regions": {"+8610": "Beijing"}},
        {"neighbor_digits": 0},
        {"neighbor_digits": 16},
    ],
)
def test_rules_fail_fast_on_bad_configuration(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case names its own problem
        TenantRules(region="CN", **kwargs)  # type: ignore[arg-type]


def test_codes_are_documented_reasons() -> None:
    emitted = {
        "INVALID_CLI",
        "INTL_INGRESS_DOMESTIC_CLI",
        "ONNET_CLI_OFFNET_INGRESS",
        "NEIGHBOR_SPOOFING",
        "RISKY_RANGE",
        Reason.CLI_REGION_MISMATCH,
    }
    assert emitted <= set(REASONS)


@settings(max_examples=300, deadline=1000)
@given(
    st.text(max_size=40),
    st.text(max_size=40),
    st.text(max_size=40),
    st.sampled_from([ON_NET, DOMESTIC, INTL, VOIP, UNSPECIFIED]),
    st.text(max_size=8),
)
def test_never_raises_and_only_emits_known_codes(
    calling: str, pai: str, called: str, ingress: int, region: str
) -> None:
    result = check_caller_id(call(calling, ingress, called=called, pai=pai, region=region), RULES)
    assert set(result.reason_codes) <= set(REASONS)
    assert len(set(result.reason_codes)) == len(result.reason_codes)
