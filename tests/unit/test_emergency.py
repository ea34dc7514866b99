"""Emergency destinations in every form a switch sends (services.common.emergency).

The class of forms is generated, not listed: every emergency number of every region with short-number
metadata, wrapped in every presentation (bare, separators, national IDD form, +cc, tel: with and
without phone-context, sip:/sips: with and without user=phone, percent escapes, display names), plus
RFC 5031 service URNs; and ordinary numbers in the same wrappings must stay non-emergency.
"""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneMetadata, shortnumberinfo

from fraudmesh.v1 import call_pb2
from services.common.emergency import is_emergency_call, is_emergency_destination

PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REGIONS = sorted(
    region
    for region in shortnumberinfo.SUPPORTED_SHORT_REGIONS
    if (metadata := PhoneMetadata.short_metadata_for_region(region)) is not None
    and metadata.emergency is not None
    and metadata.emergency.example_number
)


def _emergency_numbers(region: str) -> list[str]:
    """Every digit string of length 2-4 that phonenumbers calls an emergency number of region."""
    return [
        digits
        for length in (2, 3, 4)
        for value in range(10**length)
        if shortnumberinfo.is_emergency_number(digits := str(value).zfill(length), region)
    ][:8]


SAMPLED = ("CN", "US", "GB", "DE", "IN", "FR", "JP", "BR")
EMERGENCY = {region: _emergency_numbers(region) for region in SAMPLED}


def _spaced(digits: str, draw: st.DrawFn) -> str:
    separator = draw(st.sampled_from(["", " ", "-", "."]))
    return separator.join(digits) if separator else digits


@st.composite
def emergency_forms(draw: st.DrawFn) -> tuple[str, str]:
    """(presented destination, tenant region) for a real emergency number in a generated form."""
    region = draw(st.sampled_from(sorted(EMERGENCY)))
    digits = draw(st.sampled_from(EMERGENCY[region]))
    code = str(phonenumbers.country_code_for_region(region))
    idd = {"CN": "00", "US": "011", "GB": "00", "DE": "00", "IN": "00", "FR": "00", "JP": "010", "BR": "0021"}
    number = draw(
        st.sampled_from(
            [
                _spaced(digits, draw),
                f"+{code}{digits}",
                f"+{code} {digits}",
                f"{idd[region]}{code}{digits}",
            ]
        )
    )
    host = draw(st.sampled_from(["ims.example.net", "10.0.0.1", "[2001:db8::1]:5060"]))
    national = _spaced(digits, draw)
    form = draw(
        st.sampled_from(
            [
                number,
                f"tel:{number}",
                f"tel:{national};phone-context=+{code}",
                f"tel:{national};phone-context=ims.example.net",
                f"sip:{number}@{host};user=phone",
                f"sip:{number}@{host}",
                f"sips:{number}@{host};user=phone",
                f"sip:{national};phone-context=+{code}@{host};user=phone",
                f"sip:{number.replace('+', '%2B')}@{host};user=phone",
                f"<sip:{number}@{host};user=phone>",
                f'"Emergency" <tel:{number}>;tag=abc',
                f"  {number}  ",
            ]
        )
    )
    if form.lower().startswith(("sip:", "sips:", "tel:")) and draw(st.booleans()):
        form = form[:4].upper() + form[4:]
    return form, region


@st.composite
def sos_urns(draw: st.DrawFn) -> str:
    service = draw(
        st.sampled_from(
            ["", ".police", ".fire", ".ambulance", ".marine", ".mountain", ".poison", ".gas", ".physician"]
        )
    )
    urn = f"urn:service:sos{service}"
    urn = draw(st.sampled_from([urn, urn.upper(), urn.title()]))
    return draw(st.sampled_from([urn, f"<{urn}>", f"{urn};foo=bar", f" <{urn}> "]))


@PROPERTY
@given(emergency_forms())
def test_every_presentation_of_an_emergency_number_is_an_emergency(case: tuple[str, str]) -> None:
    raw, region = case
    assert is_emergency_destination(raw, region), "an emergency number was not recognised"


@PROPERTY
@given(sos_urns(), st.sampled_from(["CN", "US", "ZZ", "XX", ""]))
def test_service_urns_are_emergencies_in_any_region(urn: str, region: str) -> None:
    assert is_emergency_destination(urn, region)


@pytest.mark.parametrize(
    "raw",
    [
        "urn:service:sos",
        "urn:service:sos.police",
        "tel:110;phone-context=+86",
        "tel:110;phone-context=beijing.example.cn",
        "sip:110@ims.example.net;user=phone",
        "sips:+86110@ims.example.net;user=phone",
        "sip:sos@ims.example.net",
        "+86110",
        "0086110",
        "122",  # the policy's extra number
        "tel:122;phone-context=+86",
        "+86122",
    ],
)
def test_the_issues_examples(raw: str) -> None:
    assert is_emergency_destination(raw, "CN", frozenset({"122"}))


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("13800138000", "CN"),
        ("+8613800138000", "CN"),
        ("sip:+8613800138000@ims.example.net;user=phone", "CN"),
        ("1101234", "CN"),
        ("11", "CN"),
        ("10086", "CN"),
        ("122", "CN"),  # not without the policy's extra list
        ("911", "CN"),  # another country's national number is not dialable here
        ("urn:service:counseling", "CN"),
        ("urn:service:sosx", "CN"),
        ("sip:sosa@ims.example.net", "CN"),
        ("9" * 600, "CN"),
        ("", "CN"),
        ("abc", "CN"),
        ("110", "ZZ"),
        ("+", "CN"),
        ("00", "CN"),
    ],
)
def test_ordinary_destinations_are_not_emergencies(raw: str, region: str) -> None:
    assert not is_emergency_destination(raw, region)


@pytest.mark.parametrize("region", ["CN", "US", "GB", "DE", "IN", "BR", "ER", "NE"])
def test_bare_digits_agree_with_phonenumbers_on_all_short_strings(region: str) -> None:
    for length in range(1, 4):
        for value in range(10**length):
            digits = str(value).zfill(length)
            expected = shortnumberinfo.is_emergency_number(digits, region)
            assert is_emergency_destination(digits, region) is expected


@pytest.mark.parametrize("region", REGIONS)
def test_every_regions_example_in_national_and_international_form(region: str) -> None:
    metadata = PhoneMetadata.short_metadata_for_region(region)
    assert metadata is not None
    assert metadata.emergency is not None
    example = metadata.emergency.example_number
    assert example is not None
    assert is_emergency_destination(example, region)
    assert is_emergency_destination(f"+{phonenumbers.country_code_for_region(region)}{example}", region)


@PROPERTY
@given(
    st.text(max_size=80), st.sampled_from(["CN", "US", "ZZ", "", "xx"]), st.frozensets(st.text(max_size=8))
)
def test_never_raises(raw: str, region: str, extra: frozenset[str]) -> None:
    assert isinstance(is_emergency_destination(raw, region, extra), bool)


def test_a_call_is_an_emergency_by_its_request_uri_too() -> None:
    setup = call_pb2.CallSetup(called_number="+8613800138000", request_uri="urn:service:sos.fire")
    assert is_emergency_call(setup, "CN")
    assert not is_emergency_call(call_pb2.CallSetup(called_number="+8613800138000"), "CN")
    assert is_emergency_call(call_pb2.CallSetup(called_number="urn:service:sos"), "CN")
