"""Caller-ID consistency checks: does the presented calling number fit where the call came from?

Each check returns a stable reason code from services.common.reasons; none of them blocks by itself
(the decision policy weighs them with reputation and STIR/SHAKEN):

* ``INVALID_CLI`` — the caller ID does not parse as a number, is unallocated in its numbering plan,
  or is an emergency number (emergency services never originate calls). A withheld caller ID
  (empty, or ``anonymous``/``unavailable``/... as the user part) is not invalid and skips every check.
* ``INTL_INGRESS_DOMESTIC_CLI`` — an international gateway delivers a number of the tenant's own
  region. Roaming subscribers calling home produce this legitimately; the policy must allow for it.
* ``ONNET_CLI_OFFNET_INGRESS`` — a number in the tenant's own subscriber ranges arrives from any
  ingress that is not on-net. Numbers ported out of those ranges need to be excluded upstream.
* ``NEIGHBOR_SPOOFING`` — caller and callee share at least ``neighbor_digits`` leading national
  digits (same country code), on a call that is not on-net.
* ``RISKY_RANGE`` — the caller is in a configured risky range (e.g. virtual-operator prefixes).
* ``DNO_LISTED`` — the caller is on the do-not-originate list: numbers that only ever receive
  calls (bank and government inbound lines, unassigned blocks), so any call "from" them is spoofed.
  ``dno`` holds canonical numbers, and ``+digits`` prefixes ending in ``*`` for whole blocks.
* ``CLI_REGION_MISMATCH`` (opt-in) — an
  on-net fixed-line caller whose area code maps, via the tenant's ``area_regions``, to a different
  ISO 3166-2 subdivision than the on-net ingress point. Fixed lines do not roam, so an on-net
  switch in one province presenting another province's fixed number is usually a PBX or SIP trunk
  customer spoofing; on interconnect traffic the point of interconnection says little about the
  caller's area, so the check is limited to on-net ingress. Off unless ``area_regions`` is set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from fraudmesh.v1 import call_pb2, common_pb2
from services.common.identity import is_withheld, presented_caller
from services.common.phone import (
    InvalidNumberError,
    NormalizedNumber,
    NumberKind,
    normalize,
    shared_national_prefix,
)
from services.common.reasons import Reason

__all__ = [
    "CallerIdResult",
    "TenantRules",
    "check_caller_id",
    "load_dno",
]

_PREFIX: Final = re.compile(r"\+[0-9]{1,15}|[A-Z]{2}:[0-9]{1,15}")
_SUBDIVISION: Final = re.compile(r"[A-Z]{2}-[A-Z0-9]{1,3}")


@dataclass(frozen=True, slots=True)
class TenantRules:
    """A tenant's caller-ID rules: home region, own and risky number ranges, thresholds.

    Ranges are canonical prefixes: ``+<digits>`` for E.164 numbers, ``<REGION>:<digits>`` for short
    codes. ``area_regions`` maps E.164 area prefixes (e.g. ``+8610``) to ISO 3166-2 subdivisions
    (``CN-BJ``) for the opt-in fixed-line region check.
    """

    region: str
    home_ranges: tuple[str, ...] = ()
    risky_ranges: tuple[str, ...] = ()
    neighbor_digits: int = 7
    area_regions: Mapping[str, str] = field(default_factory=dict)
    dno: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        """Fail fast on malformed configuration rather than silently never matching."""
        for prefix in (*self.home_ranges, *self.risky_ranges):
            if _PREFIX.fullmatch(prefix) is None:
                raise ValueError(f"range {prefix!r} is not '+digits' or 'RR:digits'")
        for prefix, subdivision in self.area_regions.items():
            if not prefix.startswith("+") or _PREFIX.fullmatch(prefix) is None:
                raise ValueError(f"area prefix {prefix!r} is not '+digits'")
            if _SUBDIVISION.fullmatch(subdivision) is None:
                raise ValueError(f"area region {subdivision!r} is not an ISO 3166-2 code like 'CN-BJ'")
        if not 1 <= self.neighbor_digits <= 15:
            raise ValueError("neighbor_digits must be between 1 and 15")


@dataclass(frozen=True, slots=True)
class CallerIdResult:
    """The reason codes of the caller-ID checks, plus the normalised numbers they were based on."""

    reason_codes: tuple[Reason, ...]
    caller: NormalizedNumber | None
    callee: NormalizedNumber | None
    withheld: bool


def _area_region(number: NormalizedNumber, area_regions: Mapping[str, str]) -> str | None:
    """The subdivision of the longest configured area prefix matching the number."""
    best: tuple[int, str] | None = None
    for prefix, subdivision in area_regions.items():
        if number.canonical.startswith(prefix) and (best is None or len(prefix) > best[0]):
            best = (len(prefix), subdivision)
    return best[1] if best else None


def check_caller_id(setup: call_pb2.CallSetup, rules: TenantRules) -> CallerIdResult:
    """Run every caller-ID consistency check on one call setup and return the codes that fired."""
    raw = presented_caller(setup)
    callee = _try_normalize(setup.called_number, rules.region)
    if is_withheld(raw):
        return CallerIdResult((), None, callee, withheld=True)
    caller = _try_normalize(raw, rules.region)
    if caller is None or caller.is_emergency:
        return CallerIdResult((Reason.INVALID_CLI,), caller, callee, withheld=False)
    codes: list[Reason] = []
    if not caller.valid:
        codes.append(Reason.INVALID_CLI)
    ingress = setup.ingress_kind
    known_ingress = ingress != common_pb2.INGRESS_KIND_UNSPECIFIED
    on_net = ingress == common_pb2.INGRESS_KIND_ON_NET
    if ingress == common_pb2.INGRESS_KIND_INTERNATIONAL_GATEWAY and caller.region == rules.region:
        codes.append(Reason.INTL_INGRESS_DOMESTIC_CLI)
    if known_ingress and not on_net and caller.canonical.startswith(rules.home_ranges):
        codes.append(Reason.ONNET_CLI_OFFNET_INGRESS)
    if not on_net and callee is not None and shared_national_prefix(caller, callee) >= rules.neighbor_digits:
        codes.append(Reason.NEIGHBOR_SPOOFING)
    if rules.risky_ranges and caller.canonical.startswith(rules.risky_ranges):
        codes.append(Reason.RISKY_RANGE)
    if rules.dno and _on_dno(caller.canonical, rules.dno):
        codes.append(Reason.DNO_LISTED)
    if rules.area_regions and on_net and caller.kind is NumberKind.FIXED_LINE and setup.ingress_region:
        expected = _area_region(caller, rules.area_regions)
        if expected is not None and expected != setup.ingress_region.strip().upper():
            codes.append(Reason.CLI_REGION_MISMATCH)
    return CallerIdResult(tuple(codes), caller, callee, withheld=False)


def _on_dno(canonical: str, dno: frozenset[str]) -> bool:
    """True if the number or one of its leading prefixes (``+8610*``) is on the DNO list."""
    if canonical in dno:
        return True
    return any(canonical[:length] + "*" in dno for length in range(2, len(canonical)))


def load_dno(lines: list[str], region: str) -> frozenset[str]:
    """A DNO list from text lines: numbers in any format (normalised in ``region``) or ``+digits*`` blocks.

    Blank lines and ``#`` comments are skipped; a line that is neither raises ValueError naming it.
    """
    entries: set[str] = set()
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if text.endswith("*"):
            if _PREFIX.fullmatch(text[:-1]) is None or not text.startswith("+"):
                raise ValueError(f"DNO line {number}: block {text!r} is not '+digits*'")
            entries.add(text)
            continue
        try:
            entries.add(normalize(text, region, allow_unallocated=True).canonical)
        except InvalidNumberError:
            raise ValueError(f"DNO line {number}: not a phone number") from None
    return frozenset(entries)


def _try_normalize(raw: str, region: str) -> NormalizedNumber | None:
    """normalize() keeping unallocated numbers, or None for input that is not a number at all."""
    try:
        return normalize(raw, region, allow_unallocated=True)
    except InvalidNumberError:
        return None
