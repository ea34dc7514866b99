"""The one caller-identity rule: PAI unless absent or a placeholder, else From; withheld → trunk bucket."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraudmesh.v1 import call_pb2, events_pb2
from services.common.identity import (
    WITHHELD_PREFIX,
    CallerFields,
    IdentitySource,
    attribute,
    attribute_record,
    attribute_setup,
    is_withheld,
    presented_caller,
    withheld_key,
)
from services.common.phone import InvalidNumberError
from services.common.pseudonym import Pseudonymizer
from services.common.settings import Secret

MOBILE = "+8613812345678"
OTHER = "+8613987654321"
PLACEHOLDERS = [
    "",
    "   ",
    "anonymous",
    "Anonymous",
    "sip:anonymous@anonymous.invalid",
    '"Anonymous" <sip:anonymous@anonymous.invalid>',
    "<sip:anonymous@anonymous.invalid>;tag=1",
    "sips:Restricted@sbc.example",
    "tel:unavailable",
    "<sip:withheld@pbx.example;user=phone>",
    "Private",
    "unknown",
]


def who(pai: str, from_: str, tenant: str = "demo-cn", trunk: str = "trunk-ic-1") -> tuple[str, str, bool]:
    identity = attribute(pai, from_, tenant=tenant, trunk=trunk, region="CN")
    return identity.key, identity.source.value, identity.withheld


@pytest.mark.parametrize(
    ("pai", "from_", "expected"),
    [
        (f"<sip:{MOBILE}@ims.example;user=phone>", "013987654321", (MOBILE, "pai", False)),
        (f"tel:{MOBILE}", "sip:+8613987654321@pbx.example", (MOBILE, "pai", False)),
        ("", "13812345678", (MOBILE, "from", False)),
        ("", f"sip:{MOBILE}@peer.example;user=phone", (MOBILE, "from", False)),
        ("sip:anonymous@anonymous.invalid", "13812345678", (MOBILE, "from", False)),
        ('"Anonymous" <sip:anonymous@anonymous.invalid>', MOBILE, (MOBILE, "from", False)),
        (
            f"<sip:{MOBILE}@ims.example>",
            '"Anonymous" <sip:anonymous@anonymous.invalid>',
            (MOBILE, "pai", False),
        ),
        ("", "anonymous", ("WITHHELD:demo-cn/trunk-ic-1", "withheld", True)),
        ("anonymous", "", ("WITHHELD:demo-cn/trunk-ic-1", "withheld", True)),
        ("", "", ("WITHHELD:demo-cn/trunk-ic-1", "withheld", True)),
    ],
    ids=[
        "pai_over_national_from",
        "pai_over_other_from",
        "from_national",
        "from_sip_uri",
        "pai_placeholder_falls_back_to_from",
        "pai_display_name_placeholder_falls_back_to_from",
        "privacy_from_with_pai_is_the_pai",
        "withheld_from_without_pai",
        "withheld_both",
        "nothing_at_all",
    ],
)
def test_the_rule(pai: str, from_: str, expected: tuple[str, str, bool]) -> None:
    assert who(pai, from_) == expected


@pytest.mark.parametrize("raw", PLACEHOLDERS)
def test_withheld_placeholders(raw: str) -> None:
    assert is_withheld(raw)
    identity = attribute("", raw, tenant="demo-cn", trunk="gw-1", region="CN")
    assert identity.withheld
    assert identity.number is None
    assert identity.source is IdentitySource.WITHHELD
    assert identity.key == withheld_key("demo-cn", "gw-1") == f"{WITHHELD_PREFIX}demo-cn/gw-1"


@pytest.mark.parametrize("raw", [MOBILE, "13812345678", f"<sip:{MOBILE}@x>", "sip:anonymousx@host", "anon"])
def test_numbers_and_lookalikes_are_not_withheld(raw: str) -> None:
    assert not is_withheld(raw)


@pytest.mark.parametrize(
    ("pai", "from_"),
    [("", "call-me-maybe"), ("not a number", MOBILE), ("<sip:pbx@host>", MOBILE), ("", "+86 12")],
    ids=["garbage_from", "garbage_pai_is_not_skipped", "sip_user_without_digits", "too_short"],
)
def test_garbage_is_an_invalid_number(pai: str, from_: str) -> None:
    with pytest.raises(InvalidNumberError):
        attribute(pai, from_, tenant="demo-cn", trunk="t", region="CN")


def test_the_withheld_bucket_is_per_tenant_and_trunk() -> None:
    buckets = {
        attribute("", "anonymous", tenant=tenant, trunk=trunk, region="CN").key
        for tenant in ("demo-cn", "demo-us")
        for trunk in ("trunk-a", "trunk-b")
    }
    assert len(buckets) == 4
    pseudonymize = Pseudonymizer(Secret(b"k" * 32))
    assert len({pseudonymize(b) for b in buckets} | {pseudonymize(MOBILE)}) == 5
    long = attribute("", "", tenant="t", trunk="x" * 500, region="CN")
    assert long.key == withheld_key("t", "x" * 128)


def test_repr_leaks_nothing() -> None:
    for identity in (
        attribute(f"tel:{MOBILE}", OTHER, tenant="secret-tenant", trunk="secret-trunk", region="CN"),
        attribute("", "anonymous", tenant="secret-tenant", trunk="secret-trunk", region="CN"),
    ):
        text = repr(identity) + str(identity)
        assert not re.search(r"\d{4}", text)
        assert "secret" not in text
        assert "WITHHELD" not in text


def test_presented_caller_is_the_raw_identity_the_rule_picks() -> None:
    assert presented_caller(
        call_pb2.CallSetup(p_asserted_identity=f"tel:{MOBILE}", calling_number=OTHER)
    ) == (f"tel:{MOBILE}")
    assert (
        presented_caller(call_pb2.CallSetup(p_asserted_identity=" anonymous ", calling_number=OTHER)) == OTHER
    )
    assert presented_caller(call_pb2.CallSetup(calling_number=f" {OTHER} ")) == OTHER


def _records(pai: str, from_: str, trunk: str) -> list[CallerFields]:
    """A setup, CDR, audio segment and verdict of one call, as each producer fills them."""
    return [
        call_pb2.CallSetup(
            call_id="c1",
            tenant="demo-cn",
            p_asserted_identity=pai,
            calling_number=from_,
            ingress_trunk_id=trunk,
        ),
        events_pb2.Cdr(
            call_id="c1",
            tenant="demo-cn",
            p_asserted_identity=pai,
            calling_number=from_,
            ingress_trunk_id=trunk,
        ),
        events_pb2.AudioSegment(
            segment_id="s1",
            tenant="demo-cn",
            p_asserted_identity=pai,
            calling_number=from_,
            ingress_trunk_id=trunk,
        ),
        events_pb2.AudioVerdict(
            segment_id="s1",
            tenant="demo-cn",
            p_asserted_identity=pai,
            calling_number=from_,
            ingress_trunk_id=trunk,
        ),
    ]


def test_every_record_of_a_call_is_attributed_alike() -> None:
    setup, *others = _records(f"<sip:{MOBILE}@ims.example;user=phone>", "010 8888 6666", "trunk-ic-north")
    assert isinstance(setup, call_pb2.CallSetup)
    expected = attribute_setup(setup, "CN")
    assert expected.key == MOBILE
    assert expected.number is not None
    assert expected.number.canonical == MOBILE
    assert [attribute_record(record, "CN") for record in others] == [expected] * 3
    withheld = {attribute_record(r, "CN").key for r in _records("", "anonymous", "trunk-ic-north")}
    assert withheld == {"WITHHELD:demo-cn/trunk-ic-north"}


@given(
    st.integers(min_value=10**7, max_value=10**8 - 1),
    st.sampled_from(
        ["+86138{}", "138{}", "0086138{}", "<sip:+86138{}@ims.example;user=phone>", "tel:+86138{}"]
    ),
    st.sampled_from([*PLACEHOLDERS[:6], "+8613987654321", "013987654321", "sip:+4479112233@pbx"]),
)
def test_a_usable_pai_wins_over_any_from(digits: int, pai_form: str, from_: str) -> None:
    identity = attribute(pai_form.format(digits), from_, tenant="t", trunk="tr", region="CN")
    assert identity.key == f"+86138{digits}"
    assert identity.source is IdentitySource.P_ASSERTED_IDENTITY
