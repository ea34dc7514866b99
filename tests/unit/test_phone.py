"""Unit tests for services.common.phone; every expectation was checked against phonenumbers 9.0.43."""

from __future__ import annotations

import pickle
import re

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from phonenumbers import shortnumberinfo

from services.common.phone import (
    InvalidNumberError,
    InvalidNumberReason,
    NormalizedNumber,
    NumberKind,
    normalize,
    normalize_cache_info,
)

K = NumberKind
R = InvalidNumberReason

FORMATS = [
    ("+8613800138000", "CN", "+8613800138000", K.MOBILE, "CN", "+86138"),
    ("008613800138000", "CN", "+8613800138000", K.MOBILE, "CN", "+86138"),
    ("13800138000", "CN", "+8613800138000", K.MOBILE, "CN", "+86138"),
    ("+86 138 0013 8000", "US", "+8613800138000", K.MOBILE, "CN", "+86138"),
    ("010 6552 9988", "CN", "+861065529988", K.FIXED_LINE, "CN", "+8610"),
    ("(010) 65529988", "CN", "+861065529988", K.FIXED_LINE, "CN", "+8610"),
    ("010-65529988", "CN", "+861065529988", K.FIXED_LINE, "CN", "+8610"),
    ("010.6552.9988", "CN", "+861065529988", K.FIXED_LINE, "CN", "+8610"),
    ("+86 10 6552 9988", "CN", "+861065529988", K.FIXED_LINE, "CN", "+8610"),
    ("0755 1234 5678", "CN", "+8675512345678", K.FIXED_LINE, "CN", "+86755"),
    # CN virtual-operator (MVNO) and newer ranges are ordinary mobiles in the metadata.
    ("17012345678", "CN", "+8617012345678", K.MOBILE, "CN", "+86170"),
    ("17112345678", "CN", "+8617112345678", K.MOBILE, "CN", "+86171"),
    ("16512345678", "CN", "+8616512345678", K.MOBILE, "CN", "+86165"),
    ("16712345678", "CN", "+8616712345678", K.MOBILE, "CN", "+86167"),
    # CN 400 is SHARED_COST in phonenumbers, not UAN; 800 is TOLL_FREE. Both are valid.
    ("4008123123", "CN", "+864008123123", K.SHARED_COST, "CN", "+86400"),
    ("400-812-3123", "CN", "+864008123123", K.SHARED_COST, "CN", "+86400"),
    ("8008101234", "CN", "+868008101234", K.TOLL_FREE, "CN", "+86800"),
    ("800 810 1234", "CN", "+868008101234", K.TOLL_FREE, "CN", "+86800"),
    # The IP long-distance prefix 17951 is stripped as a carrier code by phonenumbers.
    ("17951 13800138000", "CN", "+8613800138000", K.MOBILE, "CN", "+86138"),
    # NANP metadata cannot tell fixed from mobile, and does not exclude the fictional 555-01xx.
    ("(212) 555-0123", "US", "+12125550123", K.FIXED_LINE_OR_MOBILE, "US", "+1212"),
    ("+1 650 253 0000", "US", "+16502530000", K.FIXED_LINE_OR_MOBILE, "US", "+1650"),
    ("2015550123", "US", "+12015550123", K.FIXED_LINE_OR_MOBILE, "US", "+1201"),
    ("1-650-253-0000", "US", "+16502530000", K.FIXED_LINE_OR_MOBILE, "US", "+1650"),
    ("+1 800 253 0000", "CN", "+18002530000", K.TOLL_FREE, "US", "+1800"),
    ("011 44 20 7946 0958", "US", "+442079460958", K.FIXED_LINE, "GB", "+4420"),
    ("+44 20 7946 0958", "US", "+442079460958", K.FIXED_LINE, "GB", "+4420"),
    ("020 7946 0958", "GB", "+442079460958", K.FIXED_LINE, "GB", "+4420"),
    ("+44 7400 123456", "CN", "+447400123456", K.MOBILE, "GB", "+447400"),
    # Non-geographic country codes report phonenumbers' region "001".
    ("+800 1234 5678", "US", "+80012345678", K.TOLL_FREE, "001", "+8001234"),
]

SHORT_NUMBERS = [
    ("110", "CN", "CN:110", K.EMERGENCY),
    ("119", "CN", "CN:119", K.EMERGENCY),
    ("120", "CN", "CN:120", K.EMERGENCY),
    # phonenumbers lists only 110/119/120 as CN emergency numbers: 122 (traffic police) and 112
    # are valid short numbers but not emergency ones; the policy's emergency_numbers add them.
    ("122", "CN", "CN:122", K.SHORT_CODE),
    ("112", "CN", "CN:112", K.SHORT_CODE),
    ("12321", "CN", "CN:12321", K.SHORT_CODE),
    ("10086", "CN", "CN:10086", K.SHORT_CODE),
    ("911", "US", "US:911", K.EMERGENCY),
    ("112", "US", "US:112", K.EMERGENCY),
    ("411", "US", "US:411", K.SHORT_CODE),
    ("999", "GB", "GB:999", K.EMERGENCY),
    ("112", "GB", "GB:112", K.EMERGENCY),
    ("tel:110", "CN", "CN:110", K.EMERGENCY),
    ("sip:911@10.0.0.1;user=phone", "US", "US:911", K.EMERGENCY),
]

URIS = [
    ("tel:+1-650-253-0000", "US", "+16502530000"),
    ("TEL:+1-650-253-0000", "US", "+16502530000"),
    ("sip:+8613800138000@10.0.0.1;user=phone", "CN", "+8613800138000"),
    ("sip:+8613800138000@10.0.0.1:5060;transport=udp;user=phone", "US", "+8613800138000"),
    ("sips:+8613800138000@sbc.example.net;user=phone", "CN", "+8613800138000"),
    ("<sip:+8613800138000@10.0.0.1;user=phone>", "CN", "+8613800138000"),
    ("<sips:13800138000@10.0.0.1>", "CN", "+8613800138000"),
    ('"Caller" <sip:13800138000@10.0.0.1;user=phone>;tag=a1b2', "CN", "+8613800138000"),
    ("sip:010-6552-9988@gw.example.cn", "CN", "+861065529988"),
    ("tel:13800138000;phone-context=+86", "US", "+8613800138000"),
    ("tel:13800138000;phone-context=+86", "ZZ", "+8613800138000"),
    ("tel:555-0123;phone-context=+1-212", "CN", "+12125550123"),
    ("sip:13800138000;phone-context=+86@10.0.0.1;user=phone", "US", "+8613800138000"),
    ("tel:+8613800138000;phone-context=+1", "US", "+8613800138000"),
    ("tel:6502530000;phone-context=example.com", "US", "+16502530000"),
    ("tel:13800138000;isub=1234", "CN", "+8613800138000"),
    ("  tel:+86-138-0013-8000  ", "CN", "+8613800138000"),
]

GARBAGE = [
    ("", "CN", R.EMPTY),
    ("   ", "CN", R.EMPTY),
    ("\t", "US", R.EMPTY),
    ("sip:@10.0.0.1", "CN", R.EMPTY),
    ("abc", "CN", R.NOT_A_NUMBER),
    ("+", "CN", R.NOT_A_NUMBER),
    # phonenumbers alone accepts a doubled plus and silently drops a trailing letter.
    ("++8613800138000", "CN", R.NOT_A_NUMBER),
    ("1380013800O", "CN", R.NOT_A_NUMBER),
    ("1-800-FLOWERS", "US", R.NOT_A_NUMBER),
    ("*86", "CN", R.NOT_A_NUMBER),
    ("13800138000#", "CN", R.NOT_A_NUMBER),
    ("+86 138+0013 8000", "CN", R.NOT_A_NUMBER),
    ("\uff11\uff13\uff18\uff10\uff10\uff11\uff13\uff18\uff10\uff10\uff10", "CN", R.NOT_A_NUMBER),
    ("sip:anonymous@anonymous.invalid", "CN", R.NOT_A_NUMBER),
    ("<sip:+8613800138000@10.0.0.1", "CN", R.NOT_A_NUMBER),
    ("+999 123", "CN", R.INVALID_COUNTRY_CODE),
    ("+999 1234567", "US", R.INVALID_COUNTRY_CODE),
    ("00999 1234567", "CN", R.INVALID_COUNTRY_CODE),
    ("12", "CN", R.TOO_SHORT),
    ("1", "CN", R.TOO_SHORT),
    ("+44 1234", "US", R.TOO_SHORT),
    # Short numbers exist only in national form, so a "+86" emergency number is just too short.
    ("+86110", "CN", R.TOO_SHORT),
    ("1" * 25, "CN", R.TOO_LONG),
    ("+86 138 0013 8000 1234", "CN", R.TOO_LONG),
    ("9" * 600, "CN", R.TOO_LONG),
    ("9" * 33, "CN", R.TOO_LONG),
    ("+" + "9" * 40, "CN", R.TOO_LONG),
    ("tel:" + "9" * 40, "CN", R.TOO_LONG),
    ("13800138000", "ZZ", R.NO_REGION_FOR_NATIONAL),
    ("008613800138000", "ZZ", R.NO_REGION_FOR_NATIONAL),
    ("110", "ZZ", R.NO_REGION_FOR_NATIONAL),
    ("1380013800", "CN", R.INVALID_FOR_REGION),
    # Only exactly "110" is the emergency number; longer numbers starting 110 are unallocated.
    ("1101234567", "CN", R.INVALID_FOR_REGION),
    # A Beijing number without its area code has a possible length, so it is not "too short".
    ("65529988", "CN", R.INVALID_FOR_REGION),
    ("+1 212 055 0123", "US", R.INVALID_FOR_REGION),
]

UNALLOCATED: list[tuple[str, str, str, str | None]] = [
    ("1380013800", "CN", "+861380013800", "CN"),
    ("1101234567", "CN", "+861101234567", "CN"),
    # +1 is shared by the NANP regions, so an unallocated +1 number belongs to none of them.
    ("+1 212 055 0123", "CN", "+12120550123", None),
]

DIGIT_RUN = re.compile(r"[0-9]{2,}")
CN_MOBILE_PREFIXES = ["38", "39", "50", "86", "70", "71"]
EXAMPLE_NUMBERS = [
    example
    for region in sorted(phonenumbers.SUPPORTED_REGIONS)
    for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE)
    if (example := phonenumbers.example_number_for_type(region, kind)) is not None
]
EMERGENCY_EXAMPLES = [
    (region, metadata.emergency.example_number)
    for region in sorted(shortnumberinfo.SUPPORTED_SHORT_REGIONS)
    if (metadata := phonenumbers.PhoneMetadata.short_metadata_for_region(region)) is not None
    and metadata.emergency is not None
    and metadata.emergency.example_number
]
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(("raw", "region", "canonical", "kind", "number_region", "geo_prefix"), FORMATS)
def test_real_formats(
    raw: str, region: str, canonical: str, kind: NumberKind, number_region: str, geo_prefix: str
) -> None:
    result = normalize(raw, region)
    assert result.canonical == canonical
    assert result.e164 == canonical
    assert result.kind is kind
    assert result.region == number_region
    assert result.country_code == phonenumbers.parse(canonical).country_code
    assert result.geo_prefix == geo_prefix
    assert canonical.startswith(geo_prefix)
    assert result.valid
    assert not result.is_emergency
    assert not result.is_short


@pytest.mark.parametrize(("raw", "region", "canonical", "kind"), SHORT_NUMBERS)
def test_short_and_emergency_numbers(raw: str, region: str, canonical: str, kind: NumberKind) -> None:
    result = normalize(raw, region)
    assert result.canonical == canonical
    assert result.kind is kind
    assert result.is_emergency is (kind is K.EMERGENCY)
    assert result.is_short
    assert result.e164 is None
    assert result.region == region
    assert result.country_code == phonenumbers.country_code_for_region(region)
    assert result.valid
    assert result.geo_prefix is None


@pytest.mark.parametrize(("raw", "region", "canonical"), URIS)
def test_uri_forms(raw: str, region: str, canonical: str) -> None:
    assert normalize(raw, region).canonical == canonical


@pytest.mark.parametrize(("raw", "region", "reason"), GARBAGE)
def test_garbage_raises_with_reason(raw: str, region: str, reason: InvalidNumberReason) -> None:
    with pytest.raises(InvalidNumberError) as info:
        normalize(raw, region)
    assert info.value.reason is reason
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(("raw", "region", "reason"), GARBAGE)
def test_error_messages_never_contain_the_number(raw: str, region: str, reason: InvalidNumberReason) -> None:
    with pytest.raises(InvalidNumberError) as info:
        normalize(raw, region)
    message = str(info.value)
    assert reason.value in message
    for run in DIGIT_RUN.findall(raw):
        assert run not in message
    assert not any(ch.isdigit() for ch in message)


@pytest.mark.parametrize(("raw", "region", "canonical", "number_region"), UNALLOCATED)
def test_allow_unallocated_returns_invalid_numbers(
    raw: str, region: str, canonical: str, number_region: str | None
) -> None:
    result = normalize(raw, region, allow_unallocated=True)
    assert result.canonical == canonical
    assert result.e164 == canonical
    assert result.region == number_region
    assert not result.valid
    assert result.kind is K.UNKNOWN
    assert result.geo_prefix is None
    assert not result.is_emergency
    assert not result.is_short


def test_allow_unallocated_still_rejects_impossible_numbers() -> None:
    with pytest.raises(InvalidNumberError) as info:
        normalize("12", "CN", allow_unallocated=True)
    assert info.value.reason is R.TOO_SHORT


def test_allow_unallocated_does_not_change_valid_numbers() -> None:
    assert normalize("13800138000", "CN", allow_unallocated=True) == normalize("13800138000", "CN")


@pytest.mark.parametrize("region", ["XX", "cn", "UK", "001", "", "China", "13800138000"])
def test_unknown_default_region_is_a_value_error(region: str) -> None:
    with pytest.raises(ValueError, match="unknown default region") as info:
        normalize("+8613800138000", region)
    assert not isinstance(info.value, InvalidNumberError)
    assert "13800138000" not in str(info.value)


def test_repr_hides_the_number() -> None:
    result = normalize("+8613800138000", "CN")
    assert "13800138000" not in repr(result)
    assert "mobile" in repr(result)


def test_result_is_frozen() -> None:
    result = normalize("+8613800138000", "CN")
    with pytest.raises(AttributeError):
        result.canonical = "+10000000000"  # type: ignore[misc]


def test_error_pickles_with_its_reason() -> None:
    error = pickle.loads(pickle.dumps(InvalidNumberError(R.TOO_LONG)))
    assert isinstance(error, InvalidNumberError)
    assert error.reason is R.TOO_LONG
    assert str(error) == str(InvalidNumberError(R.TOO_LONG))


def test_enum_values_are_stable() -> None:
    assert {kind.value for kind in NumberKind} == {
        "fixed_line", "mobile", "fixed_line_or_mobile", "toll_free", "premium_rate", "shared_cost",
        "voip", "personal_number", "pager", "uan", "voicemail", "short_code", "emergency", "unknown",
    }  # fmt: skip
    assert {reason.value for reason in InvalidNumberReason} == {
        "empty", "not_a_number", "too_short", "too_long", "invalid_country_code",
        "no_region_for_national", "invalid_for_region",
    }  # fmt: skip


@pytest.mark.parametrize(("region", "example"), EMERGENCY_EXAMPLES)
def test_every_regions_emergency_example_normalises_as_emergency(region: str, example: str) -> None:
    result = normalize(example, region)
    assert result.kind is K.EMERGENCY
    assert result.canonical == f"{region}:{example}"


def test_cache_hits_on_repeat_and_across_formats() -> None:
    before = normalize_cache_info()
    first = normalize("+86 135 1234 5678", "CN")
    after_first = normalize_cache_info()
    assert after_first.misses == before.misses + 1
    second = normalize("+8613512345678", "CN")
    third = normalize("sip:+8613512345678@10.0.0.1;user=phone", "US")
    after_repeat = normalize_cache_info()
    assert after_repeat.misses == after_first.misses
    assert after_repeat.hits == after_first.hits + 2
    assert first == second == third
    assert after_repeat.maxsize == 65536


def test_cache_keeps_allow_unallocated_apart() -> None:
    with pytest.raises(InvalidNumberError):
        normalize("1380013801", "CN")
    assert not normalize("1380013801", "CN", allow_unallocated=True).valid


def test_errors_are_cached_and_raised_fresh() -> None:
    before = normalize_cache_info()
    with pytest.raises(InvalidNumberError) as first:
        normalize("+999 7654321", "CN")
    after_first = normalize_cache_info()
    with pytest.raises(InvalidNumberError) as second:
        normalize("+999-765-4321", "CN")
    after_second = normalize_cache_info()
    assert after_first.misses == before.misses + 1
    assert after_second.misses == after_first.misses
    assert after_second.hits == after_first.hits + 1
    assert first.value.reason is second.value.reason is R.INVALID_COUNTRY_CODE
    assert first.value is not second.value


def test_cleaning_errors_never_reach_the_cache() -> None:
    before = normalize_cache_info()
    for raw in ("", "abc", "++1", "x" * 1000):
        with pytest.raises(InvalidNumberError):
            normalize(raw, "CN")
    after = normalize_cache_info()
    assert (after.hits, after.misses) == (before.hits, before.misses)


def _outcome(raw: str, region: str, *, allow_unallocated: bool) -> NormalizedNumber | InvalidNumberError:
    try:
        return normalize(raw, region, allow_unallocated=allow_unallocated)
    except InvalidNumberError as exc:
        return exc


phoneish_text = st.text(alphabet="0123456789+-() .;:<>@=tesip", max_size=40)


@PROPERTY_SETTINGS
@given(
    raw=st.one_of(st.text(), phoneish_text),
    region=st.sampled_from(["CN", "US"]),
    allow_unallocated=st.booleans(),
)
def test_normalize_only_raises_invalid_number_error(raw: str, region: str, allow_unallocated: bool) -> None:
    outcome = _outcome(raw, region, allow_unallocated=allow_unallocated)
    if isinstance(outcome, InvalidNumberError):
        assert isinstance(outcome.reason, InvalidNumberReason)
        assert not any(ch.isdigit() for ch in str(outcome))
    else:
        assert outcome.valid or allow_unallocated
        assert (outcome.e164 is None) is outcome.is_short


@st.composite
def presented_numbers(draw: st.DrawFn) -> str:
    example = draw(st.sampled_from(EXAMPLE_NUMBERS))
    nsn = phonenumbers.national_significant_number(example)
    keep = max(1, len(nsn) - 4)
    tail = draw(st.text(alphabet="0123456789", min_size=len(nsn) - keep, max_size=len(nsn) - keep))
    separator = draw(st.sampled_from(["", " ", "-", "."]))
    return f"+{example.country_code}{separator}{nsn[:keep]}{separator}{tail}"


@PROPERTY_SETTINGS
@given(
    raw=presented_numbers(),
    first=st.sampled_from(["CN", "US", "GB", "DE"]),
    second=st.sampled_from(["CN", "US", "GB", "IN", "ZZ"]),
)
def test_e164_output_is_idempotent(raw: str, first: str, second: str) -> None:
    result = normalize(raw, first, allow_unallocated=True)
    assert result.e164 is not None
    again = normalize(result.e164, second, allow_unallocated=True)
    assert again.canonical == result.canonical
    assert again == result


cn_mobiles = st.builds(
    lambda prefix, rest: f"1{prefix}{rest}",
    st.sampled_from(CN_MOBILE_PREFIXES),
    st.text(alphabet="0123456789", min_size=8, max_size=8),
).filter(lambda n: phonenumbers.is_valid_number(phonenumbers.parse(n, "CN")))


@PROPERTY_SETTINGS
@given(number=cn_mobiles)
def test_cn_mobile_formatting_invariance(number: str) -> None:
    grouped = f"{number[:3]} {number[3:7]} {number[7:]}"
    dashed = f"{number[:3]}-{number[3:7]}-{number[7:]}"
    presentations = [
        ("+86" + number, "CN"),
        ("+86" + number, "US"),
        ("0086" + number, "CN"),
        (number, "CN"),
        (grouped, "CN"),
        (dashed, "CN"),
        ("+86 " + grouped, "GB"),
        (f"sip:+86{number}@10.0.0.1;user=phone", "US"),
        (f"tel:{dashed};phone-context=+86", "US"),
    ]
    results = {normalize(raw, region) for raw, region in presentations}
    assert len(results) == 1
    (result,) = results
    assert result.canonical == "+86" + number
    assert result.kind is K.MOBILE
    assert result.geo_prefix == "+86" + number[:3]
