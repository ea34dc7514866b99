"""Emergency calls in every form a switch sends: the check that runs before anything else can fail.

A call is an emergency call when its called number or its Request-URI is, after unwrapping:

* an RFC 5031 service URN: ``urn:service:sos`` or any sub-service (``urn:service:sos.police``,
  ``.fire``, ``.ambulance``, ...), case-insensitive, with or without ``<>`` and URI parameters; a
  SIP URI whose user part is ``sos`` or ``sos.<sub>`` (3GPP TS 24.229's emergency user);
* an emergency number of the tenant's region (phonenumbers' short-number metadata: CN 110/112/119/
  120, US 911/112, ...) or one of the policy's extra numbers (CN 122), in any presentation:
  bare digits, with visual separators, ``tel:`` with or without a ``phone-context`` (a global
  context such as ``+86`` makes ``tel:110;phone-context=+86`` the international form; a domain
  context leaves it national), ``sip:``/``sips:`` with or without ``user=phone``, percent-escaped
  user parts, display names and angle brackets;
* the international form of such a number: ``+86110``, ``+86 110``, and the region's international
  prefix followed by the country code (``0086110`` from CN, ``011 1 911`` from US). Any country's
  emergency number in international form counts (``+1911`` for a CN tenant too): recognising an
  emergency that is not one only lets a call through to an emergency service, while missing one
  could block it.

``is_emergency_call`` never raises: anything it cannot read is not an emergency *by this check*,
and the decision's own guard answers ALLOW on any error regardless.
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from typing import Final

import phonenumbers
from phonenumbers import PhoneMetadata, shortnumberinfo

from fraudmesh.v1 import call_pb2

__all__ = ["is_emergency_call", "is_emergency_destination"]

MAX_LENGTH: Final = 2048
_SOS: Final = "urn:service:sos"
_SCHEMES: Final = ("sips:", "sip:", "tel:")
_SEPARATORS: Final = re.compile(r"[\s\-.()]")
_DIGITS: Final = re.compile(r"\+?[0-9]{1,32}")


def is_emergency_call(setup: call_pb2.CallSetup, region: str, extra: frozenset[str] = frozenset()) -> bool:
    """True when the call's called number or Request-URI is an emergency destination; never raises."""
    try:
        return is_emergency_destination(setup.called_number, region, extra) or (
            bool(setup.request_uri) and is_emergency_destination(setup.request_uri, region, extra)
        )
    except Exception:  # a checker that raises would be worse than one that says no
        return False


def is_emergency_destination(raw: str, region: str, extra: frozenset[str] = frozenset()) -> bool:
    """True when one presented destination (number, URI or URN) is an emergency service; never raises."""
    try:
        return _is_emergency(raw, region, extra)
    except Exception:  # see is_emergency_call
        return False


def _is_emergency(raw: str, region: str, extra: frozenset[str]) -> bool:
    number = _destination(raw)
    if number is None:
        return False
    if number == _SOS:
        return True
    if not number.startswith("+"):
        if _national_emergency(number, region, extra):
            return True
        international = _international_from_idd(number, region)
        if international is None:
            return False
        number = international
    return _international_emergency(number[1:], region, extra)


def _destination(raw: str) -> str | None:
    """``urn:service:sos`` for a service URN or SIP ``sos`` user, else ``[+]digits``, else None."""
    text = raw[:MAX_LENGTH].strip()
    if not text:
        return None
    if "<" in text:
        text = text.partition("<")[2].partition(">")[0].strip()
    if "%" in text:
        text = urllib.parse.unquote(text)
    lower = text.lower()
    if _is_sos_urn(lower):
        return _SOS
    context = ""
    for scheme in _SCHEMES:
        if lower.startswith(scheme):
            text = text[len(scheme) :]
            if scheme != "tel:":
                text = text.partition("@")[0]
                if _is_sos_user(text.partition(";")[0].strip().lower()):
                    return _SOS
            text, _, params = text.partition(";")
            context = _phone_context(params)
            break
    number = _SEPARATORS.sub("", text)
    if context and not number.startswith("+"):
        number = context + number
    return number if _DIGITS.fullmatch(number) else None


def _is_sos_urn(lower: str) -> bool:
    """``urn:service:sos`` or ``urn:service:sos.<sub>`` (parameters after ``;`` allowed)."""
    if not lower.startswith(_SOS):
        return False
    rest = lower[len(_SOS) :]
    return rest == "" or rest[0] in ".;"


def _is_sos_user(user: str) -> bool:
    return user == "sos" or user.startswith("sos.")


def _phone_context(params: str) -> str:
    """A global ``phone-context`` prefix (``+86``) from URI parameters, else ''."""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "phone-context":
            prefix = _SEPARATORS.sub("", value)
            return prefix if prefix.startswith("+") and prefix[1:].isdigit() else ""
    return ""


def _national_emergency(digits: str, region: str, extra: frozenset[str]) -> bool:
    if digits in _cleaned(extra):
        return True
    return region in _REGIONS and _region_emergency(digits, region)


@functools.lru_cache(maxsize=64)
def _cleaned(extra: frozenset[str]) -> frozenset[str]:
    """The policy's extra numbers as national digits (entries that are not such numbers drop out)."""
    return frozenset(
        number for number in (_destination(str(n)) for n in extra) if number is not None and number.isdigit()
    )


_REGIONS: Final = frozenset(phonenumbers.SUPPORTED_SHORT_REGIONS)


@functools.lru_cache(maxsize=512)
def _emergency_lengths(region: str) -> frozenset[int]:
    metadata = PhoneMetadata.short_metadata_for_region(region, None)
    if metadata is None or metadata.emergency is None:
        return frozenset()
    return frozenset(metadata.emergency.possible_length)


def _region_emergency(digits: str, region: str) -> bool:
    return len(digits) in _emergency_lengths(region) and shortnumberinfo.is_emergency_number(digits, region)


@functools.lru_cache(maxsize=512)
def _idd(region: str) -> re.Pattern[str] | None:
    """The region's international-call prefix pattern ("00" in CN, "011" in US), anchored at the start."""
    metadata = PhoneMetadata.metadata_for_region(region, None) if region in _REGIONS else None
    if metadata is None or not metadata.international_prefix:
        return None
    return re.compile(f"(?:{metadata.international_prefix})")


def _international_from_idd(digits: str, region: str) -> str | None:
    """``0086110`` dialled in CN → ``+86110``; None when the digits do not start with the IDD prefix."""
    pattern = _idd(region)
    if pattern is None:
        return None
    match = pattern.match(digits)
    if match is None or match.end() == 0 or match.end() >= len(digits):
        return None
    return "+" + digits[match.end() :]


def _international_emergency(digits: str, home: str, extra: frozenset[str]) -> bool:
    """``<cc><emergency number of a region of cc>``; extra numbers count under the home country code."""
    home_code = phonenumbers.country_code_for_region(home) if home in _REGIONS else 0
    for length in (1, 2, 3):
        code, rest = digits[:length], digits[length:]
        if not rest:
            return False
        regions = phonenumbers.region_codes_for_country_code(int(code))
        if not regions or regions == (phonenumbers.UNKNOWN_REGION,):
            continue
        if int(code) == home_code and rest in _cleaned(extra):
            return True
        return any(_region_emergency(rest, region) for region in regions if region in _REGIONS)
    return False
