"""Phone-number normalisation for the call path: whatever a switch presents, to one canonical string.

Every service keys reputation, pseudonyms and rules on ``NormalizedNumber.canonical``, so two
presentations of the same number ("+86 138 0013 8000", "008613800138000", "13800138000" from CN,
"sip:+8613800138000@host;user=phone") must give the same canonical, and garbage must fail with an
``InvalidNumberError`` whose ``reason`` is a stable enum rather than an exception from deep inside
phonenumbers.

Input accepted by ``normalize``:

* Optional URI wrapping: ``<...>`` angle brackets, then a ``sip:``/``sips:`` scheme (the user part
  before ``@`` is taken) or a ``tel:`` scheme. URI parameters (``;user=phone``, ``;isub=``, ...)
  are dropped. A ``phone-context`` whose value is a global prefix such as ``+86`` or ``+1-212`` is
  prepended to a number that has no ``+`` of its own (RFC 3966); any other context is ignored.
* Visual separators: spaces, tabs, ``-``, ``.``, ``(`` and ``)``.
* Then ASCII digits, with at most one leading ``+``. Letters, ``*``, ``#``, a second ``+`` or
  non-ASCII digits make the input ``NOT_A_NUMBER``. Inputs longer than 512 characters, or with
  more than 32 digits, are ``TOO_LONG`` without reaching phonenumbers or the cache.
* National form is parsed in ``default_region``, including its international prefix ("00" in CN,
  "011" in US) and its trunk prefix ("0" in CN/GB). Pass ``"ZZ"`` (``NO_DEFAULT_REGION``) as
  ``default_region`` when the source has no home region; national-form input then fails with
  ``NO_REGION_FOR_NATIONAL``.

Classification, in order:

1. National-form digits that are exactly an emergency number of ``default_region`` (phonenumbers'
   ``shortnumberinfo.is_emergency_number``) -> ``NumberKind.EMERGENCY``.
2. A number phonenumbers considers valid -> its type, with an E.164 canonical.
3. National-form digits that are exactly a valid short number of ``default_region`` ->
   ``NumberKind.SHORT_CODE``.
4. A number of possible length that is not valid (unallocated or unknown range) -> raises
   ``INVALID_FOR_REGION``, or with ``allow_unallocated=True`` is returned with ``valid=False``.
5. Anything else raises with the reason phonenumbers gives (too short, too long, ...).

Short and emergency numbers have no E.164 form, so they are only recognised in national form and
their canonical is ``"<REGION>:<digits>"`` (e.g. ``"CN:110"``); ``"+86110"`` is ``TOO_SHORT``.

Results and errors are memoised in a bounded LRU keyed on the cleaned digits, so the hot numbers of
the call path cost a dictionary lookup. Nothing here logs, and no message contains a number.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from typing import Final

import phonenumbers
from phonenumbers import (
    NumberParseException,
    PhoneMetadata,
    PhoneNumber,
    PhoneNumberType,
    ValidationResult,
    shortnumberinfo,
)

__all__ = [
    "NON_GEOGRAPHIC_REGION",
    "NO_DEFAULT_REGION",
    "InvalidNumberError",
    "InvalidNumberReason",
    "NormalizedNumber",
    "NumberKind",
    "normalize",
    "normalize_cache_info",
    "shared_national_prefix",
]

NO_DEFAULT_REGION: Final = phonenumbers.UNKNOWN_REGION
NON_GEOGRAPHIC_REGION: Final = phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY
MAX_RAW_LENGTH: Final = 512
MAX_DIGITS: Final = 32
CACHE_SIZE: Final = 65536

_KNOWN_REGIONS: Final = frozenset(phonenumbers.SUPPORTED_REGIONS) | {NO_DEFAULT_REGION}
_SEPARATORS: Final = (" ", "\t", "-", ".", "(", ")")
_URI_SCHEMES: Final = (("sips:", True), ("sip:", True), ("tel:", False))


class NumberKind(enum.Enum):
    """What a number is, as a stable lowercase string for storage, features and metrics."""

    FIXED_LINE = "fixed_line"
    MOBILE = "mobile"
    FIXED_LINE_OR_MOBILE = "fixed_line_or_mobile"
    TOLL_FREE = "toll_free"
    PREMIUM_RATE = "premium_rate"
    SHARED_COST = "shared_cost"
    VOIP = "voip"
    PERSONAL_NUMBER = "personal_number"
    PAGER = "pager"
    UAN = "uan"
    VOICEMAIL = "voicemail"
    SHORT_CODE = "short_code"
    EMERGENCY = "emergency"
    UNKNOWN = "unknown"


class InvalidNumberReason(enum.Enum):
    """Why an input is not a usable phone number, as a stable string for metrics and features."""

    EMPTY = "empty"
    NOT_A_NUMBER = "not_a_number"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    INVALID_COUNTRY_CODE = "invalid_country_code"
    NO_REGION_FOR_NATIONAL = "no_region_for_national"
    INVALID_FOR_REGION = "invalid_for_region"


_REASON_TEXT: Final[dict[InvalidNumberReason, str]] = {
    InvalidNumberReason.EMPTY: "no number present",
    InvalidNumberReason.NOT_A_NUMBER: "contains characters that are not part of a phone number",
    InvalidNumberReason.TOO_SHORT: "too few digits",
    InvalidNumberReason.TOO_LONG: "too many digits",
    InvalidNumberReason.INVALID_COUNTRY_CODE: "unknown country calling code",
    InvalidNumberReason.NO_REGION_FOR_NATIONAL: "national-format number but no default region",
    InvalidNumberReason.INVALID_FOR_REGION: "not a valid number in its numbering plan",
}


class InvalidNumberError(ValueError):
    """Raised for input that is not a usable phone number; the message names the reason, never the number."""

    def __init__(self, reason: InvalidNumberReason) -> None:
        super().__init__(f"invalid phone number ({reason.value}): {_REASON_TEXT[reason]}")
        self.reason = reason

    def __reduce__(self) -> tuple[type[InvalidNumberError], tuple[InvalidNumberReason]]:
        """Pickle by reason so the error survives process boundaries intact."""
        return (InvalidNumberError, (self.reason,))


@dataclass(frozen=True, slots=True)
class NormalizedNumber:
    """One number in canonical form plus the classification the scorers need.

    ``canonical``: E.164 ("+8613800138000") for dialable numbers, ``"<REGION>:<digits>"`` for
    short and emergency numbers. ``e164``: the E.164 form, None for short and emergency numbers.
    ``region``: ISO 3166-1 alpha-2 code of the number's region; ``"001"`` for non-geographic
    country codes such as +800; for short and emergency numbers the default region; None when
    phonenumbers cannot attribute an unallocated number to one region. ``country_code``: the
    country calling code. ``is_short``: True for short codes and emergency numbers.
    ``valid``: False only for unallocated numbers returned under ``allow_unallocated=True``.
    ``geo_prefix``: for valid dialable numbers, "+", the country code and the leading national
    digits up to the end of the geographic area code when phonenumbers reports one ("+8610",
    "+1212", "+4420"), otherwise up to the end of the national destination code, which for
    mobiles is the operator range ("+86138"); None when neither is known, for unallocated numbers
    and for short and emergency numbers. The number fields are left out of ``repr``.
    """

    canonical: str = field(repr=False)
    e164: str | None = field(repr=False)
    region: str | None
    country_code: int | None
    kind: NumberKind
    is_emergency: bool
    is_short: bool
    valid: bool
    geo_prefix: str | None


_KIND_BY_TYPE: Final[dict[int, NumberKind]] = {
    PhoneNumberType.FIXED_LINE: NumberKind.FIXED_LINE,
    PhoneNumberType.MOBILE: NumberKind.MOBILE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE: NumberKind.FIXED_LINE_OR_MOBILE,
    PhoneNumberType.TOLL_FREE: NumberKind.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE: NumberKind.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST: NumberKind.SHARED_COST,
    PhoneNumberType.VOIP: NumberKind.VOIP,
    PhoneNumberType.PERSONAL_NUMBER: NumberKind.PERSONAL_NUMBER,
    PhoneNumberType.PAGER: NumberKind.PAGER,
    PhoneNumberType.UAN: NumberKind.UAN,
    PhoneNumberType.VOICEMAIL: NumberKind.VOICEMAIL,
    PhoneNumberType.UNKNOWN: NumberKind.UNKNOWN,
}

_PARSE_REASONS: Final[dict[int, InvalidNumberReason]] = {
    NumberParseException.INVALID_COUNTRY_CODE: InvalidNumberReason.INVALID_COUNTRY_CODE,
    NumberParseException.NOT_A_NUMBER: InvalidNumberReason.TOO_SHORT,
    NumberParseException.TOO_SHORT_AFTER_IDD: InvalidNumberReason.TOO_SHORT,
    NumberParseException.TOO_SHORT_NSN: InvalidNumberReason.TOO_SHORT,
    NumberParseException.TOO_LONG: InvalidNumberReason.TOO_LONG,
}

_POSSIBILITY_REASONS: Final[dict[int, InvalidNumberReason]] = {
    ValidationResult.INVALID_COUNTRY_CODE: InvalidNumberReason.INVALID_COUNTRY_CODE,
    ValidationResult.TOO_SHORT: InvalidNumberReason.TOO_SHORT,
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: InvalidNumberReason.TOO_SHORT,
    ValidationResult.TOO_LONG: InvalidNumberReason.TOO_LONG,
    ValidationResult.INVALID_LENGTH: InvalidNumberReason.INVALID_FOR_REGION,
}


def _is_ascii_digits(text: str) -> bool:
    """True for a non-empty run of 0-9 only (str.isdigit alone also accepts other scripts)."""
    return text.isascii() and text.isdigit()


def _without_separators(text: str) -> str:
    """Text with the visual separators removed."""
    for separator in _SEPARATORS:
        if separator in text:
            text = text.replace(separator, "")
    return text


def _global_context(params: str) -> str | None:
    """The "+digits" prefix of a URI's phone-context parameter, or None if absent or not global."""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "phone-context":
            prefix = _without_separators(value)
            if prefix.startswith("+") and _is_ascii_digits(prefix[1:]):
                return prefix
            return None
    return None


def _clean(raw: str) -> str | InvalidNumberReason:
    """Strip URI wrapping and separators to "+digits" or "digits", or say why that is impossible."""
    if len(raw) > MAX_RAW_LENGTH:
        return InvalidNumberReason.TOO_LONG
    text = raw.strip()
    if not text:
        return InvalidNumberReason.EMPTY
    if _is_ascii_digits(text) or (text[0] == "+" and _is_ascii_digits(text[1:])):
        return text if len(text) <= MAX_DIGITS + 1 else InvalidNumberReason.TOO_LONG
    if "<" in text:
        start = text.find("<")
        end = text.find(">", start)
        if end < 0:
            return InvalidNumberReason.NOT_A_NUMBER
        text = text[start + 1 : end].strip()
    context: str | None = None
    if ":" in text:
        head = text[:5].lower()
        for scheme, has_host in _URI_SCHEMES:
            if head.startswith(scheme):
                text = text[len(scheme) :]
                if has_host:
                    text = text.partition("@")[0]
                text, _, params = text.partition(";")
                context = _global_context(params) if params else None
                break
    number = _without_separators(text)
    if not number:
        return InvalidNumberReason.EMPTY
    if context is not None and not number.startswith("+"):
        number = context + number
    digits = number[1:] if number.startswith("+") else number
    if not _is_ascii_digits(digits):
        return InvalidNumberReason.NOT_A_NUMBER
    return number if len(digits) <= MAX_DIGITS else InvalidNumberReason.TOO_LONG


def e164_digits(raw: str) -> str | None:
    """The digits of a number presented in international form (``+``, URI and separators allowed), else None.

    This is RFC 8224 section 8.3 canonicalisation for international numbers — strip the URI, visual
    separators and the ``+`` — without a numbering-plan lookup, for comparisons on the call path.
    """
    cleaned = _clean(raw)
    if isinstance(cleaned, InvalidNumberReason) or not cleaned.startswith("+") or len(cleaned) < 2:
        return None
    return cleaned[1:]


def _check_region(default_region: str) -> None:
    """Reject a default region phonenumbers does not know; that is a configuration bug, not bad input."""
    if default_region in _KNOWN_REGIONS:
        return
    shown = f" {default_region!r}" if default_region.isalpha() and len(default_region) <= 3 else ""
    raise ValueError(
        f"unknown default region{shown}: expected an upper-case ISO 3166-1 alpha-2 code "
        f"supported by phonenumbers (e.g. 'CN', 'US', 'GB') or {NO_DEFAULT_REGION!r} for none"
    )


@functools.lru_cache(maxsize=512)
def _emergency_lengths(region: str) -> frozenset[int]:
    """Digit counts of a region's emergency numbers, so that ordinary numbers skip the regex match."""
    metadata = PhoneMetadata.short_metadata_for_region(region.upper(), None)
    if metadata is None or metadata.emergency is None:
        return frozenset()
    return frozenset(metadata.emergency.possible_length)


def _is_region_emergency(digits: str, region: str) -> bool:
    """True if national-form digits are exactly one of the region's emergency numbers."""
    return len(digits) in _emergency_lengths(region) and shortnumberinfo.is_emergency_number(digits, region)


def _short(digits: str, region: str, *, emergency: bool) -> NormalizedNumber:
    """A short code or emergency number, which exists only inside its region."""
    return NormalizedNumber(
        canonical=f"{region}:{digits}",
        e164=None,
        region=region,
        country_code=phonenumbers.country_code_for_region(region),
        kind=NumberKind.EMERGENCY if emergency else NumberKind.SHORT_CODE,
        is_emergency=emergency,
        is_short=True,
        valid=True,
        geo_prefix=None,
    )


def _geo_prefix(number: PhoneNumber) -> str | None:
    """The E.164 prefix through the area code, else through the national destination code."""
    length = phonenumbers.length_of_geographical_area_code(number)
    if length <= 0:
        length = phonenumbers.length_of_national_destination_code(number)
    if length <= 0:
        return None
    return f"+{number.country_code}{phonenumbers.national_significant_number(number)[:length]}"


def _dialable(number: PhoneNumber, *, valid: bool) -> NormalizedNumber:
    """A number with an E.164 form; unallocated ones get no kind and no prefix."""
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return NormalizedNumber(
        canonical=e164,
        e164=e164,
        region=phonenumbers.region_code_for_number(number),
        country_code=number.country_code,
        kind=_KIND_BY_TYPE.get(phonenumbers.number_type(number), NumberKind.UNKNOWN)
        if valid
        else NumberKind.UNKNOWN,
        is_emergency=False,
        is_short=False,
        valid=valid,
        geo_prefix=_geo_prefix(number) if valid else None,
    )


@functools.lru_cache(maxsize=CACHE_SIZE)
def _normalize_cached(
    number: str, default_region: str, allow_unallocated: bool
) -> NormalizedNumber | InvalidNumberReason:
    """Classify cleaned digits; errors are returned, not raised, so that they are cached too."""
    national = not number.startswith("+")
    region = None if default_region == NO_DEFAULT_REGION else default_region
    if national and region is not None and _is_region_emergency(number, region):
        return _short(number, region, emergency=True)
    try:
        parsed = phonenumbers.parse(number, region)
    except NumberParseException as exc:
        if national and region is None:
            return InvalidNumberReason.NO_REGION_FOR_NATIONAL
        return _PARSE_REASONS.get(exc.error_type, InvalidNumberReason.NOT_A_NUMBER)
    if phonenumbers.is_valid_number(parsed):
        return _dialable(parsed, valid=True)
    if (
        national
        and region is not None
        and phonenumbers.national_significant_number(parsed) == number
        and shortnumberinfo.is_valid_short_number_for_region(parsed, region)
    ):
        return _short(number, region, emergency=False)
    possibility = phonenumbers.is_possible_number_with_reason(parsed)
    if possibility == ValidationResult.IS_POSSIBLE:
        return _dialable(parsed, valid=False) if allow_unallocated else InvalidNumberReason.INVALID_FOR_REGION
    return _POSSIBILITY_REASONS.get(possibility, InvalidNumberReason.INVALID_FOR_REGION)


def normalize(raw: str, default_region: str, *, allow_unallocated: bool = False) -> NormalizedNumber:
    """Normalise a presented number to its canonical form, raising InvalidNumberError for garbage.

    Raises ValueError (not InvalidNumberError) when ``default_region`` is unknown, since that is a
    configuration error. See the module docstring for accepted input and classification rules.
    """
    _check_region(default_region)
    cleaned = _clean(raw)
    if isinstance(cleaned, InvalidNumberReason):
        raise InvalidNumberError(cleaned)
    region_key = NO_DEFAULT_REGION if cleaned.startswith("+") else default_region
    result = _normalize_cached(cleaned, region_key, allow_unallocated)
    if isinstance(result, InvalidNumberReason):
        raise InvalidNumberError(result)
    return result


def normalize_cache_info() -> functools._CacheInfo:
    """Hit/miss/size counters of the normalisation cache, for metrics."""
    return _normalize_cached.cache_info()


def shared_national_prefix(a: NormalizedNumber, b: NormalizedNumber) -> int:
    """How many leading national significant digits two dialable numbers of one country share.

    0 for numbers of different countries and for short codes. Neighbour spoofing presents a number
    sharing the callee's leading digits: the context feature ``callee_prefix_shared`` and
    origination's ``NEIGHBOR_SPOOFING`` check both count them with this one rule.
    """
    if a.e164 is None or b.e164 is None or a.country_code is None or a.country_code != b.country_code:
        return 0
    start = 1 + len(str(a.country_code))
    shared = 0
    for x, y in zip(a.e164[start:], b.e164[start:], strict=False):
        if x != y:
            break
        shared += 1
    return shared
