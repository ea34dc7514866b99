"""Which identity a call is attributed to: the one rule every service keys a caller by.

The rule (README, docs/architecture.md):

1. **P-Asserted-Identity first.** When the trunk sent a PAI that is not a privacy placeholder, the
   call is attributed to it: it is the identity the network asserts (RFC 3325), what the SHAKEN
   ``orig`` covers (RFC 8224 §8.3), and what the callee's handset displays on IMS networks. The
   From user part is only what the caller's equipment wrote.
2. **Else From.**
3. **Withheld** (the chosen value is empty, or a placeholder such as
   ``sip:anonymous@anonymous.invalid``): the call is attributed to the *withheld bucket* of its
   tenant and ingress trunk, ``WITHHELD:<tenant>/<trunk>``. Withheld callers are normal traffic
   (privacy requests, some PBXs); the bucket gives them a reputation per trunk — a trunk that
   suddenly delivers thousands of withheld calls an hour reads as such — without pretending they
   are one number. The bucket's key is pseudonymised like a number and never logged.
4. Anything else that does not normalise is an invalid caller ID (``InvalidNumberError``).

Decision, reputation, origination statistics, audio, training and the simulator all call
``attribute`` (``attribute_setup`` for a call setup, ``attribute_record`` for any record that
carries the call's PAI, From, tenant and ingress trunk: CDRs, audio segments and verdicts), so the
second call of a caller reads what the first folded, whatever mix of PAI and From its trunk sends.
Complaints are the exception: they name the number the callee saw (on IMS the PAI) and are folded
under it as given.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Protocol

from fraudmesh.v1 import call_pb2
from services.common.phone import NormalizedNumber, normalize

__all__ = [
    "WITHHELD_PREFIX",
    "CallerFields",
    "CallerIdentity",
    "IdentitySource",
    "attribute",
    "attribute_record",
    "attribute_setup",
    "is_withheld",
    "presented_caller",
    "withheld_key",
]

WITHHELD_PREFIX: Final = "WITHHELD:"
MAX_TRUNK_LENGTH: Final = 128

_WITHHELD_USERS: Final = frozenset(
    {"anonymous", "unavailable", "unknown", "restricted", "private", "withheld", "anonymous.invalid"}
)


class IdentitySource(enum.Enum):
    """Where the attributed identity came from, as a stable string for traces and tests."""

    P_ASSERTED_IDENTITY = "pai"
    FROM = "from"
    WITHHELD = "withheld"


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    """The identity a call is attributed to.

    ``key`` is what gets pseudonymised: the number's canonical form, or the withheld bucket's
    ``WITHHELD:<tenant>/<trunk>``. ``number`` is the normalised number (None when withheld).
    Neither field appears in ``repr``.
    """

    key: str
    number: NormalizedNumber | None
    source: IdentitySource

    @property
    def withheld(self) -> bool:
        """True when the call is attributed to its trunk's withheld bucket."""
        return self.source is IdentitySource.WITHHELD

    def __repr__(self) -> str:
        return f"CallerIdentity(source={self.source.value})"


def is_withheld(raw: str) -> bool:
    """True for an empty caller ID or a privacy placeholder such as ``sip:anonymous@anonymous.invalid``."""
    text = raw.strip().lower()
    if not text:
        return True
    if "<" in text:
        text = text.partition("<")[2].partition(">")[0]
    for scheme in ("sips:", "sip:", "tel:"):
        if text.startswith(scheme):
            text = text[len(scheme) :]
            break
    user = text.partition("@")[0].partition(";")[0].strip()
    return user in _WITHHELD_USERS


def presented_caller(setup: call_pb2.CallSetup) -> str:
    """The raw calling identity the rule picks: a usable PAI, else From (may be a withheld form)."""
    return _chosen(setup.p_asserted_identity, setup.calling_number)


def _chosen(p_asserted_identity: str, calling_number: str) -> str:
    pai = p_asserted_identity.strip()
    if pai and not is_withheld(pai):
        return pai
    return calling_number.strip()


def withheld_key(tenant: str, trunk: str) -> str:
    """The withheld bucket of one tenant's ingress trunk (trunk ids beyond 128 characters are cut)."""
    return f"{WITHHELD_PREFIX}{tenant}/{trunk[:MAX_TRUNK_LENGTH]}"


def attribute(
    p_asserted_identity: str, calling_number: str, *, tenant: str, trunk: str, region: str
) -> CallerIdentity:
    """Attribute a call by the rule in the module doc; raises ``InvalidNumberError`` for an unusable CLI.

    Unallocated numbers are kept (``allow_unallocated``): a spoofer's unallocated number still
    earns a reputation. ``region`` is the tenant's home region for national-form numbers.
    """
    pai = p_asserted_identity.strip()
    source = IdentitySource.P_ASSERTED_IDENTITY if pai and not is_withheld(pai) else IdentitySource.FROM
    raw = _chosen(p_asserted_identity, calling_number)
    if is_withheld(raw):
        return CallerIdentity(withheld_key(tenant, trunk), None, IdentitySource.WITHHELD)
    number = normalize(raw, region, allow_unallocated=True)
    return CallerIdentity(number.canonical, number, source)


class CallerFields(Protocol):
    """A record naming its call's caller the way a setup does: CallSetup, Cdr, AudioSegment, AudioVerdict."""

    @property
    def p_asserted_identity(self) -> str: ...

    @property
    def calling_number(self) -> str: ...

    @property
    def tenant(self) -> str: ...

    @property
    def ingress_trunk_id(self) -> str: ...


def attribute_record(record: CallerFields, region: str) -> CallerIdentity:
    """``attribute`` for any record carrying its call's PAI, From, tenant and ingress trunk."""
    return attribute(
        record.p_asserted_identity,
        record.calling_number,
        tenant=record.tenant,
        trunk=record.ingress_trunk_id,
        region=region,
    )


def attribute_setup(setup: call_pb2.CallSetup, region: str) -> CallerIdentity:
    """``attribute`` for a call setup (its PAI, From, tenant and ingress trunk)."""
    return attribute_record(setup, region)
